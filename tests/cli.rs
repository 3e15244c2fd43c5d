//! CLI tests: exit code, stdout and stderr pinned for each command.

use std::path::Path;

use assert_cmd::Command;

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Run the binary in `dir` and render exit code, stdout and stderr for a snapshot.
fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("compose-harden").unwrap();
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1");
    if let Some(s) = stdin {
        cmd.write_stdin(s);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn render((code, stdout, stderr): (i32, String, String)) -> String {
    format!("exit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}")
}

const STACK: &str = "\
services:
  # the database
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: example
  app:
    image: ghcr.io/acme/app:1.4
    ports:
      - \"8080:8080\"
  agent:
    image: acme/agent
    privileged: true
";

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

#[test]
fn fix_diff_prints_a_diff_and_exits_1_without_touching_the_file() {
    let dir = project(&[("compose.yaml", STACK)]);
    let out = run(dir.path(), &["fix", "--diff", "compose.yaml"], None);
    assert_eq!(out.0, 1);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap(),
        STACK
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__fix_diff", render(out)));
}

#[test]
fn fix_diff_applies_with_git_apply() {
    let dir = project(&[("compose.yaml", STACK)]);
    let (_, diff, _) = run(
        dir.path(),
        &["fix", "--diff", "--unverified", "compose.yaml"],
        None,
    );
    std::fs::write(dir.path().join("p.diff"), &diff).unwrap();
    let git = std::process::Command::new("git")
        .args(["apply", "p.diff"])
        .current_dir(dir.path())
        .status();
    let Ok(status) = git else {
        eprintln!("git not installed; skipping the git apply check");
        return;
    };
    assert!(status.success());
    let applied = std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap();
    let (code, _, _) = run(dir.path(), &["fix", "--unverified", "compose.yaml"], None);
    assert_eq!(code, 0);
    // Fixing the already patched file changes nothing.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap(),
        applied
    );
}

#[test]
fn fix_writes_in_place_and_a_second_run_is_a_no_op() {
    let dir = project(&[("compose.yaml", STACK)]);
    let first = run(dir.path(), &["fix", "compose.yaml"], None);
    assert_eq!(first.0, 0);
    let written = std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap();
    assert_ne!(written, STACK);
    let second = run(dir.path(), &["fix", "--diff", "compose.yaml"], None);
    assert_eq!((second.0, second.1.as_str()), (0, ""));
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "cli__fix_in_place",
            format!("{}\n--- file\n{written}", render(first))
        )
    });
}

#[test]
fn fix_unverified_applies_all_fixes() {
    let dir = project(&[("compose.yaml", STACK)]);
    let out = run(
        dir.path(),
        &["fix", "--diff", "--unverified", "compose.yaml"],
        None,
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__fix_diff_unverified", render(out)));
}

#[test]
fn check_lists_findings_and_exits_1() {
    let dir = project(&[("compose.yaml", STACK)]);
    let out = run(dir.path(), &["check", "compose.yaml"], None);
    assert_eq!(out.0, 1);
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__check_text", render(out)));
}

#[test]
fn check_json_and_github_formats() {
    let dir = project(&[("compose.yaml", STACK)]);
    let json = run(
        dir.path(),
        &["check", "--format", "json", "compose.yaml"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&json.1).expect("valid json");
    assert_eq!(v["files"][0]["path"], "compose.yaml");
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__check_json", render(json)));
    let gh = run(
        dir.path(),
        &["check", "--format", "github", "compose.yaml"],
        None,
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__check_github", render(gh)));
}

#[test]
fn check_clean_file_exits_0() {
    let clean = "services:\n  web:\n    image: nginx:1.27\n    security_opt: [no-new-privileges:true]\n    cap_drop: [ALL]\n    cap_add: [CHOWN, SETGID, SETUID]\n";
    let dir = project(&[("compose.yaml", clean)]);
    let out = run(dir.path(), &["check", "compose.yaml"], None);
    assert_eq!(
        render(out),
        "exit: 0\n--- stdout\n--- stderr\n0 findings in 1 file\n"
    );
}

#[test]
fn bad_input_exits_2_names_file_line_col_and_leaves_it_untouched() {
    let bad = "services:\n  web:\n    image: nginx\n   ports: [80\n";
    let dir = project(&[("compose.yaml", bad)]);
    let out = run(dir.path(), &["fix", "compose.yaml"], None);
    assert_eq!(out.0, 2);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap(),
        bad
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__bad_yaml", render(out)));
}

#[test]
fn not_compose_and_v1_are_refused() {
    let dir = project(&[
        (
            "k8s.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n",
        ),
        ("v1.yml", "web:\n  image: nginx\ndb:\n  image: postgres\n"),
    ]);
    let out = run(dir.path(), &["check", "k8s.yaml", "v1.yml"], None);
    assert_eq!(out.0, 2);
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__not_compose", render(out)));
}

#[test]
fn a_bad_file_does_not_stop_the_run() {
    let dir = project(&[
        ("a/compose.yaml", STACK),
        ("b/compose.yaml", "services: [\n"),
        (
            "c/docker-compose.yml",
            "services:\n  web:\n    image: nginx:1.27\n",
        ),
    ]);
    let out = run(dir.path(), &["fix", "."], None);
    assert_eq!(out.0, 2);
    assert_ne!(
        std::fs::read_to_string(dir.path().join("a/compose.yaml")).unwrap(),
        STACK
    );
    assert!(
        std::fs::read_to_string(dir.path().join("c/docker-compose.yml"))
            .unwrap()
            .contains("cap_drop")
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__bad_file_among_good", render(out)));
}

#[test]
fn stdin_to_stdout() {
    let dir = project(&[]);
    let out = run(
        dir.path(),
        &["fix", "-"],
        Some("services:\n  web:\n    image: nginx:1.27\n"),
    );
    assert_eq!(out.0, 0);
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__stdin", render(out)));
}

#[test]
fn rule_docs_and_catalogue() {
    let dir = project(&[]);
    let out = run(dir.path(), &["rules"], None);
    assert_eq!(out.0, 0);
    let mut all = render(out);
    for r in compose_harden::rules::REGISTRY {
        let (code, stdout, _) = run(dir.path(), &["rule", r.id], None);
        assert_eq!(code, 0);
        for heading in [
            "## What it does",
            "## Why is this bad?",
            "## Example",
            "## Use instead",
            "## Fix safety",
        ] {
            assert!(stdout.contains(heading), "{} lacks {heading}", r.id);
        }
        all.push_str(&format!("\n=== {}\n{stdout}", r.id));
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__rules", all));
    let unknown = run(dir.path(), &["rule", "CH999"], None);
    assert_eq!(unknown.0, 2);
}

#[test]
fn why_names_the_capability_to_add_back() {
    let dir = project(&[]);
    let out = run(
        dir.path(),
        &[
            "why",
            "nginx: [emerg] setgid(101) failed (1: Operation not permitted)",
        ],
        None,
    );
    assert_eq!(out.0, 0);
    assert!(out.1.contains("SETGID"));
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__why", render(out)));
    let none = run(dir.path(), &["why", "everything is fine"], None);
    assert_eq!(none.0, 1);
}

#[test]
fn dockerfile_of_a_build_service_is_read() {
    let dir = project(&[
        (
            "compose.yaml",
            "services:\n  app:\n    build: ./app\n  legacy:\n    build:\n      context: ./legacy\n      dockerfile: Containerfile\n  missing:\n    build: ./nowhere\n",
        ),
        (
            "app/Dockerfile",
            "FROM node:22-alpine AS deps\nRUN npm ci\nFROM node:22-alpine\nCOPY --from=deps /app /app\nUSER node\nCMD [\"node\", \"server.js\"]\n",
        ),
        (
            "legacy/Containerfile",
            "ARG PG=16\nFROM postgres:${PG}\nCOPY init.sql /docker-entrypoint-initdb.d/\n",
        ),
    ]);
    let out = run(dir.path(), &["check", "compose.yaml"], None);
    snapshot_settings().bind(|| insta::assert_snapshot!("cli__build_dockerfile", render(out)));
}
