//! Property tests: compose files generated in many layouts (indent widths, indentless or
//! indented lists, flow and block styles, comments, block scalars as the last key, merge
//! keys, CRLF, BOM, missing final newline) must come out of `fix` parsed, meaning the same
//! outside the hardening keys, with every original line kept, and fixing twice must
//! change nothing.

use compose_harden::document::Document;
use compose_harden::edit::Applicability;
use compose_harden::fixer::{self, HARDENING_KEYS, Options};
use compose_harden::yaml::{Limits, Tree};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Layout {
    indent: usize,
    seq_offset: usize,
    crlf: bool,
    bom: bool,
    final_newline: bool,
}

#[derive(Debug, Clone)]
enum Last {
    Scalar,
    BlockList,
    FlowList,
    Literal,
    KeepLiteral,
    Folded,
    Map,
    Comment,
}

#[derive(Debug, Clone)]
struct Svc {
    image: &'static str,
    flow: bool,
    merge: bool,
    caps: Option<(bool, Vec<&'static str>)>,
    nnp: Option<bool>,
    user: Option<&'static str>,
    last: Last,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        1usize..=5,
        0usize..=4,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(indent, seq_offset, crlf, bom, final_newline)| Layout {
            indent,
            seq_offset,
            crlf,
            bom,
            final_newline,
        })
}

fn svc() -> impl Strategy<Value = Svc> {
    let image = prop::sample::select(vec![
        "postgres:16",
        "redis:7-alpine",
        "nginx:1.27",
        "grafana/grafana:11.2.0",
        "ghcr.io/acme/unknown:1",
        "alpine:3.20",
        "caddy:2",
        "lscr.io/linuxserver/sonarr",
    ]);
    let last = prop::sample::select(vec![
        Last::Scalar,
        Last::BlockList,
        Last::FlowList,
        Last::Literal,
        Last::KeepLiteral,
        Last::Folded,
        Last::Map,
        Last::Comment,
    ]);
    let caps = prop::option::of((
        any::<bool>(),
        prop::sample::subsequence(vec!["NET_RAW", "MKNOD", "CHOWN"], 0..=2),
    ));
    (
        image,
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
        caps,
        prop::option::of(any::<bool>()),
        prop::option::of(prop::sample::select(vec!["\"1000:1000\"", "root", "'999'"])),
        last,
    )
        .prop_map(|(image, flow, merge, caps, nnp, user, last)| Svc {
            image,
            flow,
            merge,
            caps,
            nnp,
            user,
            last,
        })
}

fn render(l: &Layout, services: &[Svc]) -> String {
    let i1 = " ".repeat(l.indent);
    let i2 = " ".repeat(l.indent * 2);
    let i3 = " ".repeat(l.indent * 3);
    let dash = |ind: &str| format!("{ind}{}- ", " ".repeat(l.seq_offset));
    let mut s = String::new();
    s.push_str("# generated\nx-base: &base\n");
    s.push_str(&format!("{i1}restart: unless-stopped\n\nservices:\n"));
    for (n, svc) in services.iter().enumerate() {
        if n % 2 == 1 {
            s.push_str(&format!("{i1}# service {n}\n"));
        }
        if svc.flow {
            s.push_str(&format!(
                "{i1}s{n}: {{image: {}, restart: always}}\n",
                svc.image
            ));
            continue;
        }
        s.push_str(&format!("{i1}s{n}:\n"));
        if svc.merge {
            s.push_str(&format!("{i2}<<: *base\n"));
        }
        s.push_str(&format!("{i2}image: {}  # pinned\n", svc.image));
        if let Some(u) = svc.user {
            s.push_str(&format!("{i2}user: {u}\n"));
        }
        if let Some((flow, caps)) = &svc.caps {
            if *flow || caps.is_empty() {
                s.push_str(&format!("{i2}cap_drop: [{}]\n", caps.join(", ")));
            } else {
                s.push_str(&format!("{i2}cap_drop:\n"));
                for c in caps {
                    s.push_str(&format!("{}{c}\n", dash(&i2)));
                }
            }
        }
        if let Some(on) = svc.nnp {
            s.push_str(&format!(
                "{i2}security_opt:\n{}no-new-privileges:{on}\n",
                dash(&i2)
            ));
        }
        match svc.last {
            Last::Scalar => s.push_str(&format!("{i2}restart: always\n")),
            Last::BlockList => s.push_str(&format!(
                "{i2}ports:\n{}\"80:80\"\n{}\"443:443\"\n",
                dash(&i2),
                dash(&i2)
            )),
            Last::FlowList => s.push_str(&format!("{i2}command: [\"sh\", \"-c\", \"sleep 1\"]\n")),
            Last::Literal => s.push_str(&format!("{i2}command: |\n{i3}echo one\n{i3}echo two\n\n")),
            Last::KeepLiteral => s.push_str(&format!("{i2}entrypoint: |+\n{i3}sleep 5\n\n")),
            Last::Folded => s.push_str(&format!("{i2}command: >-\n{i3}sh -c\n{i3}\"true\"\n")),
            Last::Map => s.push_str(&format!("{i2}environment:\n{i3}A: \"1\"\n{i3}B: two\n")),
            Last::Comment => s.push_str(&format!(
                "{i2}restart: always\n{i2}# ports:\n{i2}#   - 80:80\n"
            )),
        }
    }
    if !l.final_newline {
        while s.ends_with('\n') {
            s.pop();
        }
    }
    if l.crlf {
        s = s.replace('\n', "\r\n");
    }
    if l.bom {
        s.insert(0, '\u{feff}');
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Large files are read in parts on two cores; read every generated file (and its fixed
    /// version) that way and require the very tree the whole file gives.
    #[test]
    fn reading_in_parts_gives_the_whole_file_tree(l in layout(), services in prop::collection::vec(svc(), 1..6)) {
        let text = render(&l, &services);
        let fixed = fixer::fix(text.clone(), &Options::default(), None, Applicability::Unverified)
            .expect("fixes")
            .text;
        for t in [text, fixed] {
            let whole = Tree::parse_split(t.clone(), Limits::default(), usize::MAX).map(|t| t.outline());
            let parts = Tree::parse_split(t.clone(), Limits::default(), 0).map(|t| t.outline());
            prop_assert_eq!(parts, whole, "{}", t);
        }
    }

    #[test]
    fn fixing_keeps_meaning_and_is_idempotent(l in layout(), services in prop::collection::vec(svc(), 1..5)) {
        let text = render(&l, &services);
        let before = Document::parse(text.clone(), Limits::default()).expect("generated input parses");
        let opts = Options::default();
        for min in [Applicability::Verified, Applicability::Unverified] {
            let fixed = fixer::fix(text.clone(), &opts, None, min).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            let after = Document::parse(fixed.text.clone(), Limits::default()).expect("output parses");
            prop_assert_eq!(before.skeleton(HARDENING_KEYS).unwrap(), after.skeleton(HARDENING_KEYS).unwrap());
            let again = fixer::fix(fixed.text.clone(), &opts, None, min).expect("second run");
            prop_assert_eq!(&again.text, &fixed.text);
            prop_assert_eq!(text.starts_with('\u{feff}'), fixed.text.starts_with('\u{feff}'));
            prop_assert_eq!(text.ends_with('\n'), fixed.text.ends_with('\n'));
            if l.crlf {
                prop_assert_eq!(fixed.text.matches('\n').count(), fixed.text.matches("\r\n").count());
            }
            // Every verified fix that was applied left its service with cap_drop ALL or an
            // explicit no-fix reason; nothing is left half-done.
            for (d, applied) in fixed.diagnostics.iter().zip(&fixed.applied) {
                if d.fix.as_ref().is_some_and(|f| f.applicability >= min) {
                    prop_assert!(*applied, "fix not applied: {} {}\n{}", d.rule, d.service, text);
                }
            }
        }
    }
}
