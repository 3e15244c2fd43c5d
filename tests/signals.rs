//! Killing a `fix` run over a large tree with SIGTERM or SIGINT leaves every file either
//! exactly as it was or exactly fixed, and no temporary files behind.

#![cfg(unix)]

use std::process::{Command, Stdio};
use std::time::Duration;

const COMPOSE: &str = "services:\n  db:\n    image: postgres:16\n  web:\n    image: nginx:1.27\n";

fn fixed_text() -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_compose-harden"))
        .args(["fix", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(COMPOSE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn interrupt(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3000 {
        let d = dir.path().join(format!("p{i:04}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("compose.yaml"), COMPOSE).unwrap();
    }
    let fixed = fixed_text();
    assert_ne!(fixed, COMPOSE);
    let mut child = Command::new(env!("CARGO_BIN_EXE_compose-harden"))
        .args(["fix", "--quiet", "."])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal once the first files are written (or after a while, whichever is first).
    for _ in 0..500 {
        let started = (0..3000).step_by(100).any(|i| {
            std::fs::read_to_string(dir.path().join(format!("p{i:04}/compose.yaml")))
                .is_ok_and(|t| t != COMPOSE)
        });
        if started {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let (mut old, mut new) = (0, 0);
    for entry in walk(dir.path()) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !name.starts_with(".compose-harden-"),
            "stray temporary file {name}"
        );
        let text = std::fs::read_to_string(&entry).unwrap();
        if text == COMPOSE {
            old += 1;
        } else {
            assert_eq!(text, fixed, "{} is neither old nor new", entry.display());
            new += 1;
        }
    }
    assert_eq!(old + new, 3000);
    eprintln!("{signal}: exit {status:?}, {new} fixed, {old} untouched");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn sigterm_mid_run_leaves_every_file_old_or_new() {
    interrupt("-TERM");
}

#[test]
fn sigint_mid_run_leaves_every_file_old_or_new() {
    interrupt("-INT");
}

/// On a terminal, runs over 200 files or more show a progress bar, drawn on stderr from
/// the worker threads. With stderr locked by the main thread for the whole run, the first
/// draw blocked for good and the run never ended. Runs the tool under `script` (a
/// pseudo-terminal); skipped where `script` is not installed.
#[test]
fn a_run_with_a_progress_bar_on_a_terminal_finishes() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for i in 0..250 {
        let d = dir.path().join(format!("p{i:03}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("compose.yaml"), COMPOSE).unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_compose-harden");
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{bin} fix --diff . > diff.out"),
            "/dev/null",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut finished = None;
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            finished = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if finished.is_none() {
        let _ = child.kill();
        panic!("fix --diff on a terminal did not finish within 60 s");
    }
    let diff = std::fs::read_to_string(dir.path().join("diff.out")).unwrap();
    assert_eq!(diff.matches("diff --git").count(), 250);
}
