//! `profile` and `inspect` from the command line: exit code, stdout and stderr pinned. The
//! image archive is built here with the `tar` writer; no engine is used.

use std::path::Path;

use assert_cmd::Command;

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::cargo_bin("compose-harden")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        // No engine: an image name must fail without reaching one.
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/compose-harden-test.sock",
        )
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .unwrap();
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap()
    )
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/profile");

#[test]
fn profile_of_a_root_then_drop_dockerfile_reads_its_copied_entrypoint() {
    let out = run(
        Path::new(FIXTURES),
        &[
            "profile",
            "--dockerfile",
            "db/Dockerfile",
            "--repo",
            "ghcr.io/acme/db",
            "--tag",
            "2*",
            "--source",
            "acme/db 2.0 Dockerfile",
        ],
    );
    // The row is a valid profile file as printed.
    let stdout = out.split("--- stdout\n").nth(1).unwrap();
    let rows =
        compose_harden::knowledge::parse_profiles(stdout.split("--- stderr").next().unwrap());
    assert_eq!(rows.unwrap()[0].caps_as_root.len(), 4);
    snapshot_settings().bind(|| insta::assert_snapshot!("profile_db", out));
}

#[test]
fn profile_of_a_non_root_image_with_a_file_capability() {
    let out = run(
        Path::new(FIXTURES),
        &["profile", "--dockerfile", "worker/Dockerfile"],
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("profile_worker", out));
}

#[test]
fn profile_needs_a_file_and_names_a_missing_one() {
    let out = run(Path::new(FIXTURES), &["profile"]);
    assert!(
        out.starts_with("exit: 2\n--- stdout\n--- stderr\nerror: give --dockerfile"),
        "{out}"
    );
    let out = run(Path::new(FIXTURES), &["profile", "--entrypoint", "nope.sh"]);
    assert!(
        out.starts_with("exit: 2\n--- stdout\n--- stderr\nerror: nope.sh: "),
        "{out}"
    );
}

fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

/// A `docker save` archive of a root-then-drop image with a setuid helper nothing runs.
fn archive(dir: &Path) -> std::path::PathBuf {
    let mut layer = tar::Builder::new(Vec::new());
    add(
        &mut layer,
        "etc/passwd",
        0o644,
        b"root:x:0:0::/:/bin/sh\nsvc:x:101:102::/:/bin/sh\n",
    );
    add(&mut layer, "usr/bin/newgrp", 0o4755, b"\x7fELF");
    add(
        &mut layer,
        "usr/local/bin/start",
        0o755,
        b"#!/bin/sh\nchown svc /srv\nexec su-exec svc \"$@\"\n",
    );
    let layer = layer.into_inner().unwrap();
    let hex = "cd".repeat(32);
    let config = r#"{"config":{"Entrypoint":["/usr/local/bin/start"],"Cmd":["svcd","\u001b[31m"],"Volumes":{"/srv":{}}}}"#;
    let manifest = format!(
        r#"[{{"Config":"{hex}.json","RepoTags":["example.org/svc:3.1"],"Layers":["l/layer.tar"]}}]"#
    );
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "l/layer.tar", 0o644, &layer);
    add(&mut b, &format!("{hex}.json"), 0o644, config.as_bytes());
    add(&mut b, "manifest.json", 0o644, manifest.as_bytes());
    let path = dir.join("svc.tar");
    std::fs::write(&path, b.into_inner().unwrap()).unwrap();
    path
}

#[test]
fn inspect_an_archive_prints_an_inspected_row_with_its_evidence() {
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path());
    let out = run(dir.path(), &["inspect", "svc.tar"]);
    snapshot_settings().bind(|| insta::assert_snapshot!("inspect_archive", out));
    let out = run(dir.path(), &["inspect", "svc.tar", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(
        out.split("--- stdout\n")
            .nth(1)
            .unwrap()
            .split("--- stderr")
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["schema"], "compose-harden/inspect/1");
    assert_eq!(json["profile"]["confidence"], "inspected");
    assert_eq!(json["profile"]["user"], "101:102");
    assert_eq!(json["setuid"][0], "/usr/bin/newgrp");
}

#[test]
fn inspect_an_image_without_an_engine_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["inspect", "example.org/nothing:1"]);
    assert!(
        out.starts_with("exit: 2\n--- stdout\n--- stderr\nerror: "),
        "{out}"
    );
    let out = run(dir.path(), &["inspect", "not-an-archive.tar/"]);
    assert!(out.starts_with("exit: 2\n"), "{out}");
}

#[test]
fn fix_inspect_says_when_no_engine_is_reachable_and_fixes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: example.org/unknown:1\n  b:\n    image: postgres:16\n",
    )
    .unwrap();
    let out = run(dir.path(), &["fix", "--diff", "--inspect", "compose.yaml"]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(
        out.contains(
            "note: --inspect: no container engine is reachable (DOCKER_HOST); 1 image not inspected\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("+    user: \"999:999\""),
        "postgres is still fixed (as its own uid, on no volume): {out}"
    );
}

#[test]
fn fix_reads_learned_rows_beside_the_compose_file_as_measured_knowledge() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  php:\n    image: example.org/fpm:1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("compose-harden.learned.toml"),
        r#"[[image]]
repos = ["example.org/fpm"]
tags = ["1"]
checked_tags = ["1"]
digest = "sha256:0123"
class = "self-dropping-daemon"
image_user = "root"
caps_as_root = ["KILL", "SETGID", "SETUID"]
caps_as_nonroot = []
nnp = true
confidence = "measured"
why = "measured: needs KILL (without it, stop: killed after 10 s)"
sources = ["compose-harden learn on Docker 20.10.24, image sha256:0123, 2026-12-02"]
"#,
    )
    .unwrap();
    let out = run(dir.path(), &["check", "compose.yaml"]);
    assert!(
        out.contains("fix (verified): add cap_drop: [ALL], cap_add: [KILL, SETGID, SETUID]"),
        "{out}"
    );
    assert!(
        out.contains("[measured; profile; compose-harden learn on Docker 20.10.24"),
        "{out}"
    );
    std::fs::write(
        dir.path().join("compose-harden.learned.toml"),
        "[[image]]\nrepos = 1\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check", "compose.yaml"]);
    assert!(out.starts_with("exit: 2\n"), "{out}");
    assert!(
        out.contains("compose-harden.learned.toml: error: "),
        "{out}"
    );
}

#[test]
fn learn_without_an_engine_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: x:1\n",
    )
    .unwrap();
    let out = run(dir.path(), &["learn"]);
    assert!(
        out.starts_with("exit: 2\n--- stdout\n--- stderr\ncompose-harden learn: error: "),
        "{out}"
    );
}
