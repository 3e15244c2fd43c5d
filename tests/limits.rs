//! The documented input limits (README, "Limits"): `check` and `fix` agree on them, and
//! `fix` never refuses its own output over a limit the input was within.

use assert_cmd::Command;
use compose_harden::document::Document;
use compose_harden::edit::Applicability;
use compose_harden::fixer::{self, Options};
use compose_harden::yaml::{Limits, Tree};

fn tiny_services(n: usize) -> String {
    let mut s = String::from("services:\n");
    for i in 0..n {
        s.push_str(&format!("  s{i:06}:\n    image: nginx\n"));
    }
    s
}

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("compose-harden")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A file of tiny services over the service limit is refused by every command with the
/// same message, before any rule runs (memory is what rules keep per service).
#[test]
fn check_and_fix_refuse_a_file_over_the_service_limit_alike() {
    let max = Limits::default().max_services;
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_services(max + 1);
    std::fs::write(dir.path().join("compose.yaml"), &text).unwrap();
    let want = format!(
        "compose.yaml:1:1: error: {} services, over the limit of {max} services per file\n",
        max + 1
    );
    for args in [&["check"][..], &["fix", "--diff"], &["fix"]] {
        let (code, stdout, stderr) = run(dir.path(), &[args, &["compose.yaml"]].concat());
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stderr.starts_with(&want), "{args:?}: {stderr}");
    }
    let after = std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap();
    assert!(after == text, "the refused file is left as it was");
}

/// The hardening keys a fix adds may take the fixed file past the node limit the input
/// was within: the fixed file is re-read under `Limits::for_output`, not refused.
#[test]
fn fix_does_not_refuse_its_own_output_over_the_node_limit() {
    let text = tiny_services(40);
    let nodes = Tree::parse(text.clone(), Limits::default())
        .unwrap()
        .node_count();
    let limits = Limits {
        max_nodes: nodes + 1,
        max_services: 40,
        ..Limits::default()
    };
    Document::parse(text.clone(), limits).expect("the input is within the limits");
    let opts = Options {
        limits,
        ..Options::default()
    };
    let fixed = fixer::fix(text, &opts, None, Applicability::Unverified).expect("fixed");
    assert!(fixed.changed());
    let after = Tree::parse(fixed.text.clone(), Limits::default()).unwrap();
    assert!(
        after.node_count() > nodes + 1,
        "the output passes the input's limit"
    );
    Document::parse(fixed.text, limits.for_output()).expect("the output is within for_output");
}
