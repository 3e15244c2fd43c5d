//! Fixture in, snapshot out: every file under tests/fixtures/fixer is fixed with and
//! without --unverified; the snapshot shows the findings and the diff a reviewer would
//! read. Every fixture is also checked for "fixed output parses", "nothing but hardening
//! keys changed", "fixing twice changes nothing" and "only insertions or whole hardening
//! lines were removed".

use std::path::Path;

use compose_harden::diff;
use compose_harden::document::Document;
use compose_harden::edit::Applicability;
use compose_harden::fixer::{self, HARDENING_KEYS, Options};
use compose_harden::yaml::Limits;

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

fn render(name: &str, text: &str, opts: &Options, dir: Option<&Path>) -> String {
    let mut out = String::new();
    for (label, min) in [
        ("fix", Applicability::Verified),
        ("fix --unverified", Applicability::Unverified),
    ] {
        let with_diff = Options {
            diffs: true,
            ..opts.clone()
        };
        let fixed = fixer::fix(text.to_string(), &with_diff, dir, min)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        // The diff the fixer writes from its edits (or, after a second pass, from the
        // original it rebuilt) turns the original into the fixed text.
        let hunks = fixed.hunks.as_deref().expect("diffs were asked for");
        assert_eq!(
            diff::apply_hunks(text, hunks).unwrap_or_else(|e| panic!("{name} ({label}): {e}")),
            fixed.text,
            "{name} ({label}): the written diff does not give the fixed text"
        );
        if min == Applicability::Verified {
            out.push_str("## findings\n");
            for d in &fixed.diagnostics {
                let fix = match (&d.fix, &d.fix_title) {
                    (Some(f), Some(t)) => format!("{} fix: {t}", f.applicability.as_str()),
                    _ => "no fix".to_string(),
                };
                out.push_str(&format!(
                    "{}:{} {} {}: {}\n    {fix}\n    why: {} [{}]\n",
                    d.line,
                    d.column,
                    d.rule,
                    d.service,
                    d.message,
                    d.reason,
                    d.confidence.as_str()
                ));
            }
        }
        out.push_str(&format!("\n## {label}\n"));
        // Show line endings so CRLF survival is visible in the snapshot.
        let d = diff::unified(name, text, &fixed.text).replace('\r', "␍");
        out.push_str(if d.is_empty() { "(no change)\n" } else { &d });
        check_invariants(name, text, &fixed.text, opts, dir, min);
    }
    out
}

fn check_invariants(
    name: &str,
    before: &str,
    after: &str,
    opts: &Options,
    dir: Option<&Path>,
    min: Applicability,
) {
    let old = Document::parse(before.to_string(), Limits::default()).expect("input parses");
    let new = Document::parse(after.to_string(), Limits::default())
        .unwrap_or_else(|e| panic!("{name}: fixed output does not parse: {e:?}"));
    assert_eq!(
        old.skeleton(HARDENING_KEYS).unwrap(),
        new.skeleton(HARDENING_KEYS).unwrap(),
        "{name}: more than hardening keys changed"
    );
    let again = fixer::fix(after.to_string(), opts, dir, min).expect("second run");
    assert_eq!(
        again.text, after,
        "{name}: fixing twice changed the file again"
    );
    assert_eq!(
        before.starts_with('\u{feff}'),
        after.starts_with('\u{feff}'),
        "{name}: BOM"
    );
    assert_eq!(
        before.ends_with('\n'),
        after.ends_with('\n'),
        "{name}: final newline"
    );
    if before.contains("\r\n") {
        assert_eq!(
            after.matches('\n').count(),
            after.matches("\r\n").count(),
            "{name}: mixed line endings"
        );
    }
    // Every removed line belongs to a hardening key (or is a flow mapping that grew).
    let d = similar::TextDiff::from_lines(before, after);
    for change in d.iter_all_changes() {
        if change.tag() != similar::ChangeTag::Delete {
            continue;
        }
        let line = change.value().trim_end();
        let t = line.trim_start();
        assert!(
            HARDENING_KEYS
                .iter()
                .any(|k| t.starts_with(&format!("{k}:")))
                || t.contains('{')
                || t.starts_with("- ")
                || !before.ends_with('\n'),
            "{name}: line {line:?} was rewritten"
        );
    }
}

#[test]
fn fixer_fixtures() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fixer"));
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 15, "fixtures missing");
    let opts = Options::default();
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        let out = render(&name, &text, &opts, None);
        snapshot_settings().bind(|| insta::assert_snapshot!(format!("fixer__{name}"), out));
    }
}

#[test]
fn userns_remap_adds_host_where_the_daemon_requires_it() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fixer/userns.yml"
    ))
    .unwrap();
    let mut opts = Options::default();
    opts.settings.userns_remap = true;
    let out = render("userns.yml", &text, &opts, None);
    snapshot_settings().bind(|| insta::assert_snapshot!("fixer__userns.yml--userns-remap", out));
}

#[test]
fn set_user_runs_root_then_drop_images_as_their_own_user() {
    let text = "services:\n  db:\n    image: postgres:16-alpine\n  cache:\n    image: redis:7\n  web:\n    image: nginx:1.27\n";
    let mut opts = Options::default();
    opts.settings.set_user = true;
    let out = render("set-user.yml", text, &opts, None);
    snapshot_settings().bind(|| insta::assert_snapshot!("fixer__set-user", out));
}

/// Inputs the fuzzer found; each must fix cleanly (the fixer refuses nothing it made).
#[test]
fn fuzz_regressions() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/regressions"
    ));
    let opts = Options::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if Document::parse(text.clone(), Limits::default()).is_err() {
            continue;
        }
        for min in [Applicability::Verified, Applicability::Unverified] {
            let fixed = fixer::fix(text.clone(), &opts, None, min)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            check_invariants(&name, &text, &fixed.text, &opts, None, min);
        }
    }
}
