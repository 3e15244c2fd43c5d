//! Discovery and multi-file projects: walking trees (nested repositories, .gitignore,
//! hidden folders, a broken file among good ones), override files merged with their base,
//! and `-f a -f b` projects whose edits land in the file that defines each service.

use std::path::Path;

use assert_cmd::Command;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("compose-harden")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const WEB: &str = "services:\n  web:\n    image: nginx:1.27\n";

#[test]
fn walking_honours_gitignore_hidden_folders_and_compose_names() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (".gitignore", "ignored/\n"),
            ("compose.yaml", WEB),
            ("app/docker-compose.yml", WEB),
            ("app/docker-compose.prod.yml", WEB),
            ("nested/repo/.git/HEAD", "ref: refs/heads/main\n"),
            ("nested/repo/compose.yml", WEB),
            ("ignored/compose.yaml", WEB),
            (".hidden/compose.yaml", WEB),
            ("notes/config.yaml", WEB),
            ("broken/compose.yaml", "services: [\n"),
        ],
    );
    let (code, stdout, stderr) = run(dir.path(), &["fix", "--diff", "."]);
    assert_eq!(code, 2, "a broken file makes the run fail: {stderr}");
    let mut files: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        // docker-compose.prod.yml is analysed with its base, which receives the edits.
        vec![
            "app/docker-compose.yml b/app/docker-compose.yml",
            "compose.yaml b/compose.yaml",
            "nested/repo/compose.yml b/nested/repo/compose.yml",
        ]
    );
    assert!(stderr.contains("broken/compose.yaml:1:"), "{stderr}");
    // An explicit file is always taken, whatever its name.
    let (_, stdout, _) = run(dir.path(), &["fix", "--diff", "notes/config.yaml"]);
    assert!(stdout.contains("diff --git a/notes/config.yaml"));
    // --include / --exclude
    let (_, stdout, _) = run(dir.path(), &["fix", "--diff", "--exclude", "app/**", "."]);
    assert!(!stdout.contains("app/"));
}

#[test]
fn output_order_is_stable_and_one_combined_diff_applies_from_the_root() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        write(dir.path(), &[(&format!("svc{i:02}/compose.yaml"), WEB)]);
    }
    let (_, a, _) = run(dir.path(), &["fix", "--diff", "."]);
    let (_, b, _) = run(dir.path(), &["fix", "--diff", "."]);
    assert_eq!(a, b);
    std::fs::write(dir.path().join("all.diff"), &a).unwrap();
    let Ok(status) = std::process::Command::new("git")
        .args(["apply", "all.diff"])
        .current_dir(dir.path())
        .status()
    else {
        eprintln!("git not installed; skipping git apply");
        return;
    };
    assert!(status.success());
    assert_eq!(
        run(dir.path(), &["fix", "--diff", "."]).0,
        0,
        "everything applied"
    );
}

#[test]
fn override_file_is_merged_with_its_base() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "compose.yaml",
                "services:\n  db:\n    image: postgres:16\n  web:\n    image: nginx:1.27\n",
            ),
            (
                "compose.override.yaml",
                "services:\n  db:\n    security_opt: [no-new-privileges:true]\n    ports: [\"5432:5432\"]\n",
            ),
        ],
    );
    let (code, stdout, _) = run(dir.path(), &["fix", "--diff", "."]);
    assert_eq!(code, 1);
    // The override already gives db no-new-privileges, so the base does not repeat it;
    // the override itself (no image) is not edited.
    assert!(!stdout.contains("a/compose.override.yaml"), "{stdout}");
    let db = stdout
        .split("image: postgres:16")
        .nth(1)
        .unwrap()
        .split("web:")
        .next()
        .unwrap();
    assert!(
        db.contains("cap_drop") && !db.contains("no-new-privileges"),
        "{stdout}"
    );
}

#[test]
fn dash_f_project_merges_like_compose_and_edits_the_defining_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("compose.yaml", "services:\n  db:\n    image: postgres:16\n"),
            (
                "compose.prod.yaml",
                "services:\n  db:\n    user: \"999:999\"\n    cap_add: [SYS_NICE]\n  metrics:\n    image: prom/prometheus:latest\n",
            ),
        ],
    );
    let (code, _, stderr) = run(
        dir.path(),
        &["fix", "-f", "compose.yaml", "-f", "compose.prod.yaml"],
    );
    assert_eq!(code, 0, "{stderr}");
    let base = std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap();
    let prod = std::fs::read_to_string(dir.path().join("compose.prod.yaml")).unwrap();
    // db runs as 999 (set in prod): it needs no capabilities back, and keeps SYS_NICE.
    assert!(
        base.contains("cap_drop:") && !base.contains("CHOWN"),
        "{base}"
    );
    // metrics is defined in prod, so its edits go there.
    assert!(prod.contains("cap_drop:"), "{prod}");
    assert!(
        prod.starts_with("services:\n  db:\n    user: \"999:999\"\n    cap_add: [SYS_NICE]\n"),
        "{prod}"
    );
    // A second run changes nothing.
    let (code, stdout, _) = run(
        dir.path(),
        &[
            "fix",
            "--diff",
            "-f",
            "compose.yaml",
            "-f",
            "compose.prod.yaml",
        ],
    );
    assert_eq!((code, stdout.as_str()), (0, ""));
}

#[test]
fn a_walk_analyses_compose_overlays_with_their_base() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: nginx:1.27\n    security_opt: [no-new-privileges:true]\n",
            ),
            (
                "compose.prod.yaml",
                "services:\n  web:\n    restart: always\n",
            ),
        ],
    );
    let (_, stdout, _) = run(dir.path(), &["fix", "--diff", "."]);
    // Alone, the overlay would be a fragment or get a second security_opt.
    assert!(!stdout.contains("a/compose.prod.yaml"), "{stdout}");
    assert!(!stdout.contains("+    security_opt"), "{stdout}");
    assert!(stdout.contains("+    cap_drop"), "{stdout}");
}

#[test]
fn compose_file_in_dot_env_names_the_project_and_its_variables_resolve_tags() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                ".env",
                "COMPOSE_FILE=base.yml;prod.yml\nCOMPOSE_PATH_SEPARATOR=;\nTAG=1.27\n",
            ),
            ("base.yml", "services:\n  web:\n    image: nginx:${TAG}\n"),
            ("prod.yml", "services:\n  web:\n    user: root\n"),
            (
                "compose.yaml",
                "services:\n  db:\n    image: ${REGISTRY}redis:${REDIS_TAG}\n",
            ),
        ],
    );
    let (_, stdout, _) = run(dir.path(), &["check", "--format", "json", "."]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let all: Vec<&serde_json::Value> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["findings"].as_array().unwrap().iter())
        .collect();
    let web = all
        .iter()
        .find(|d| d["service"] == "web" && d["rule"] == "CH001")
        .expect("prod.yml's user: root is merged into web");
    assert!(web["message"].as_str().unwrap().contains("root"));
    let db = all
        .iter()
        .find(|d| d["service"] == "db" && d["rule"] == "CH003")
        .unwrap();
    let why = db["reason"].as_str().unwrap();
    assert!(
        why.contains("${REDIS_TAG}") && why.contains("empty string"),
        "{why}"
    );
}

#[test]
fn the_config_names_project_file_sets() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "compose-harden.toml",
                "[[project]]\nfiles = [\"app/compose.yaml\", \"app/compose.tls.yaml\"]\n",
            ),
            (
                "app/compose.yaml",
                "services:\n  web:\n    image: nginx:1.27\n",
            ),
            (
                "app/compose.tls.yaml",
                "services:\n  web:\n    user: \"0\"\n",
            ),
        ],
    );
    let (_, stdout, _) = run(dir.path(), &["check", "."]);
    assert!(stdout.contains("`user: 0`"), "{stdout}");
}
