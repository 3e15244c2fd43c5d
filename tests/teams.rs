//! CLI tests for the team and bot features (issue 17): exit code, stdout and stderr pinned.

use std::path::Path;

use assert_cmd::Command;

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

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

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn read(dir: &tempfile::TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path().join(name)).unwrap()
}

fn snap(name: &str, text: String) {
    snapshot_settings().bind(|| insta::assert_snapshot!(name, text));
}

const STARVED: &str = "\
services:
  db:
    image: postgres:16
    cap_drop: [ALL]
    security_opt: [no-new-privileges:true]
  cache:
    image: redis:7
    cap_drop:
      - ALL
    cap_add:
      - SETUID
    security_opt:
      - no-new-privileges:true
  app:
    image: ghcr.io/acme/app:1.4
    cap_drop: [ALL]
    security_opt: [no-new-privileges:true]
";

#[test]
fn ch008_reports_a_cap_drop_all_that_starves_a_known_image() {
    let dir = project(&[("compose.yaml", STARVED)]);
    let out = run(
        dir.path(),
        &["check", "--ignore", "CH001", "compose.yaml"],
        None,
    );
    assert_eq!(out.0, 1);
    snap("teams__ch008_check", render(out));
}

#[test]
fn ch008_fix_adds_only_the_missing_caps_and_a_second_fix_changes_nothing() {
    let dir = project(&[("compose.yaml", STARVED)]);
    let out = run(
        dir.path(),
        &["fix", "--diff", "--ignore", "CH001", "compose.yaml"],
        None,
    );
    assert_eq!(out.0, 1);
    snap("teams__ch008_diff", render(out));
    let out = run(
        dir.path(),
        &["fix", "--ignore", "CH001", "compose.yaml"],
        None,
    );
    assert_eq!(out.0, 0, "{out:?}");
    let out = run(
        dir.path(),
        &["check", "--ignore", "CH001", "compose.yaml"],
        None,
    );
    assert_eq!(out.0, 0, "{out:?}");
    assert!(read(&dir, "compose.yaml").contains("security_opt: [no-new-privileges:true]\n    cap_add: [CHOWN, DAC_OVERRIDE, SETGID, SETUID]\n"));
}

#[test]
fn ch008_is_silent_for_a_non_root_service() {
    let text = "services:\n  db:\n    image: postgres:16\n    user: \"999:999\"\n    cap_drop: [ALL]\n    security_opt: [no-new-privileges:true]\n";
    let dir = project(&[("compose.yaml", text)]);
    let out = run(dir.path(), &["check", "compose.yaml"], None);
    assert_eq!(
        render(out),
        "exit: 0\n--- stdout\n--- stderr\n0 findings in 1 file\n"
    );
}
