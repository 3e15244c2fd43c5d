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

const BASE: &str = "\
services:
  # the database
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: example
  cache:
    image: redis:7
    cap_drop: [ALL]
  web:
    image: nginx:1.27
    userns_mode: host
    security_opt:
      - label:disable
";

#[test]
fn into_writes_only_the_hardening_keys_into_a_new_overlay() {
    let dir = project(&[("compose.yaml", BASE)]);
    let args = ["fix", "--into", "compose.hardening.yaml", "compose.yaml"];
    let out = run(dir.path(), &args, None);
    assert_eq!(
        read(&dir, "compose.yaml"),
        BASE,
        "the base file is untouched"
    );
    snap(
        "teams__into_new",
        format!(
            "{}--- overlay\n{}",
            render(out),
            read(&dir, "compose.hardening.yaml")
        ),
    );
    let again = run(dir.path(), &args, None);
    assert_eq!(
        render(again),
        "exit: 0\n--- stdout\n--- stderr\ncompose.hardening.yaml is up to date: hardening for 3 services\n"
    );
}

#[test]
fn into_diff_of_a_new_overlay_applies_with_git_apply() {
    let dir = project(&[("compose.yaml", BASE)]);
    let out = run(
        dir.path(),
        &["fix", "--into", "compose.hardening.yaml", "--diff"],
        None,
    );
    assert_eq!(out.0, 1, "{out:?}");
    assert!(!dir.path().join("compose.hardening.yaml").exists());
    std::fs::write(dir.path().join("p.diff"), &out.1).unwrap();
    let git = std::process::Command::new("git")
        .current_dir(dir.path())
        .args(["apply", "p.diff"])
        .output()
        .unwrap();
    assert!(git.status.success(), "{git:?}");
    let written = run(
        dir.path(),
        &["fix", "--into", "compose.hardening.yaml"],
        None,
    );
    assert_eq!(written.0, 0);
    assert!(written.2.contains("is up to date"), "{written:?}");
}

#[test]
fn into_updates_an_existing_overlay_in_place_and_drops_what_is_no_longer_needed() {
    let dir = project(&[("compose.yaml", BASE)]);
    let args = ["fix", "--into", "compose.hardening.yaml", "compose.yaml"];
    assert_eq!(run(dir.path(), &args, None).0, 0);
    // The base moves on: cache is gone, db now sets no-new-privileges itself, a new
    // service appears; someone annotated the overlay and added a key of their own.
    let base = BASE
        .replace("  cache:\n    image: redis:7\n    cap_drop: [ALL]\n", "")
        .replace(
            "POSTGRES_PASSWORD: example\n",
            "POSTGRES_PASSWORD: example\n    security_opt: [no-new-privileges:true]\n",
        )
        + "  worker:\n    image: grafana/grafana:11.0.0\n";
    std::fs::write(dir.path().join("compose.yaml"), &base).unwrap();
    let overlay = read(&dir, "compose.hardening.yaml").replace(
        "  db:\n",
        "  db:  # reviewed by ops\n    environment:\n      EXTRA: \"1\"\n",
    );
    std::fs::write(dir.path().join("compose.hardening.yaml"), &overlay).unwrap();
    let diff = run(
        dir.path(),
        &[
            "fix",
            "--into",
            "compose.hardening.yaml",
            "--diff",
            "compose.yaml",
        ],
        None,
    );
    assert_eq!(diff.0, 1);
    snap("teams__into_update", render(diff));
    assert_eq!(run(dir.path(), &args, None).0, 0);
    let updated = read(&dir, "compose.hardening.yaml");
    assert!(updated.contains("  db:  # reviewed by ops\n    environment:\n      EXTRA: \"1\"\n"));
    assert_eq!(
        updated.matches("no-new-privileges:true").count(),
        2,
        "{updated}"
    );
    let again = run(dir.path(), &args, None);
    assert!(again.2.contains("is up to date"), "{again:?}");
}

#[test]
fn check_takes_the_overlay_as_part_of_the_project() {
    let dir = project(&[("compose.yaml", BASE)]);
    assert_eq!(run(dir.path(), &["check", "."], None).0, 1);
    assert_eq!(
        run(
            dir.path(),
            &["fix", "--into", "compose.hardening.yaml"],
            None
        )
        .0,
        0
    );
    assert_eq!(
        render(run(dir.path(), &["check", "."], None)),
        "exit: 0\n--- stdout\n--- stderr\n0 findings in 2 files\n"
    );
    assert_eq!(
        render(run(
            dir.path(),
            &[
                "check",
                "-f",
                "compose.yaml",
                "-f",
                "compose.hardening.yaml"
            ],
            None
        )),
        "exit: 0\n--- stdout\n--- stderr\n0 findings in 2 files\n"
    );
}

#[test]
fn into_refuses_standard_input_and_an_empty_project() {
    let dir = project(&[("compose.hardening.yaml", "services: {}\n")]);
    let out = run(
        dir.path(),
        &["fix", "--into", "compose.hardening.yaml", "-"],
        Some(BASE),
    );
    assert_eq!(
        render(out),
        "exit: 2\n--- stdout\n--- stderr\ncompose.hardening.yaml: error: --into needs compose files, not standard input\n"
    );
    let out = run(
        dir.path(),
        &["fix", "--into", "compose.hardening.yaml", "."],
        None,
    );
    assert_eq!(out.0, 2, "{out:?}");
}

const SMALL: &str = "services:\n  db:\n    image: postgres:16\n  web:\n    image: nginx:1.27\n    security_opt: [no-new-privileges:true]\n";

#[test]
fn unknown_rule_ids_are_usage_errors_naming_the_closest_rule() {
    let dir = project(&[("compose.yaml", SMALL)]);
    assert_eq!(
        render(run(
            dir.path(),
            &["check", "--ignore", "CH9", "compose.yaml"],
            None
        )),
        "exit: 2\n--- stdout\n--- stderr\nerror: unknown rule \"CH9\" in --ignore; did you mean CH008 (starved-caps)? `compose-harden rules` lists them\n"
    );
    assert_eq!(
        render(run(
            dir.path(),
            &["fix", "--diff", "--select", "cap-drop-al", "compose.yaml"],
            None
        )),
        "exit: 2\n--- stdout\n--- stderr\nerror: unknown rule \"cap-drop-al\" in --select; did you mean CH003 (cap-drop-all)? `compose-harden rules` lists them\n"
    );
    std::fs::write(
        dir.path().join("compose-harden.toml"),
        "ignore = [\"CH02\"]\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["check", "compose.yaml"], None);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.contains("compose-harden.toml: error: unknown rule \"CH02\" in ignore; did you mean CH002 (no-new-privileges)?"),
        "{stderr}"
    );
}

#[test]
fn select_runs_only_the_named_rules_and_config_select_too() {
    let dir = project(&[("compose.yaml", SMALL)]);
    let out = run(
        dir.path(),
        &[
            "check",
            "--format",
            "concise",
            "--select",
            "CH002",
            "compose.yaml",
        ],
        None,
    );
    assert_eq!(
        render(out),
        "exit: 1\n--- stdout\ncompose.yaml:2:3: CH002 service \"db\" can gain new privileges (no `no-new-privileges:true`)\n--- stderr\n1 finding in 1 file (1 fixable by `compose-harden fix`, 0 more with --unverified, 0 need a human)\n"
    );
    std::fs::write(
        dir.path().join("compose-harden.toml"),
        "select = [\"privileged\"]\n",
    )
    .unwrap();
    assert_eq!(
        render(run(dir.path(), &["check", "compose.yaml"], None)),
        "exit: 0\n--- stdout\n--- stderr\n0 findings in 1 file\n"
    );
}

#[test]
fn exit_zero_statistics_and_concise() {
    let dir = project(&[("compose.yaml", SMALL)]);
    let out = run(
        dir.path(),
        &["check", "--statistics", "--exit-zero", "compose.yaml"],
        None,
    );
    snap("teams__statistics", render(out));
    let out = run(
        dir.path(),
        &["check", "--format", "concise", "compose.yaml"],
        None,
    );
    snap("teams__concise", render(out));
    let out = run(
        dir.path(),
        &["fix", "--diff", "--exit-zero", "compose.yaml"],
        None,
    );
    assert_eq!(out.0, 0);
    assert!(out.1.starts_with("diff --git"));
}

#[test]
fn color_always_colours_check_text_and_never_does_not() {
    let dir = project(&[("compose.yaml", SMALL)]);
    let out = run(
        dir.path(),
        &["check", "--color", "always", "compose.yaml"],
        None,
    );
    assert!(
        out.1
            .starts_with("\x1b[1mcompose.yaml:2:3:\x1b[0m \x1b[1m\x1b[31mCH001\x1b[0m service"),
        "{:?}",
        out.1
    );
    assert!(
        out.1.contains("  \x1b[32mfix (verified)\x1b[0m: add"),
        "{:?}",
        out.1
    );
    let plain = run(
        dir.path(),
        &["check", "--color", "never", "compose.yaml"],
        None,
    );
    assert!(!plain.1.contains('\x1b'));
    let diff = run(
        dir.path(),
        &["fix", "--diff", "--color", "always", "compose.yaml"],
        None,
    );
    assert!(diff.1.contains("\x1b[32m+"), "{:?}", diff.1);
}

#[test]
fn an_empty_or_mistyped_path_or_a_directory_without_compose_files_is_exit_2() {
    let dir = project(&[("compose.yaml", SMALL), ("docs/readme.txt", "x\n")]);
    let out = run(dir.path(), &["check", "compose.yml"], None);
    assert_eq!(
        render(out),
        "exit: 2\n--- stdout\n--- stderr\ncompose.yml: error: no such file or directory\n0 findings in 0 files; 1 file failed\n"
    );
    let out = run(dir.path(), &["check", "docs"], None);
    assert_eq!(
        render(out),
        "exit: 2\n--- stdout\n--- stderr\ndocs: error: no compose file found here (compose.y(a)ml, docker-compose.y(a)ml and their variants; --extend-include adds names)\n0 findings in 0 files; 1 file failed\n"
    );
    assert_eq!(run(dir.path(), &["check", ""], None).0, 2);
}

#[test]
fn discovery_finds_the_common_variants_and_extend_include_adds_to_them() {
    let dir = project(&[
        ("a/docker-compose-prod.yml", SMALL),
        ("b/app.compose.yaml", SMALL),
        ("c/compose-dev.yml", SMALL),
        ("d/stack.yml", SMALL),
        ("e/notes.yaml", "a: 1\n"),
    ]);
    let out = run(
        dir.path(),
        &["check", "--format", "concise", "--select", "CH003", "."],
        None,
    );
    snap("teams__discovery", render(out));
    let out = run(
        dir.path(),
        &[
            "check",
            "--format",
            "concise",
            "--select",
            "CH003",
            "--extend-include",
            "stack.yml",
            ".",
        ],
        None,
    );
    assert!(out.1.contains("d/stack.yml:2:3: CH003"), "{out:?}");
    assert!(
        out.1.contains("a/docker-compose-prod.yml:2:3: CH003"),
        "{out:?}"
    );
}

#[test]
fn stdin_filename_names_the_input_and_resolves_its_build_context() {
    let dir = project(&[
        ("app/Dockerfile", "FROM node:22\nUSER node\n"),
        ("app/compose.yaml", "services:\n  web:\n    build: .\n"),
    ]);
    let text = read(&dir, "app/compose.yaml");
    let out = run(
        dir.path(),
        &["check", "--stdin-filename", "app/compose.yaml", "-"],
        Some(&text),
    );
    snap("teams__stdin_filename", render(out));
    let out = run(
        dir.path(),
        &["fix", "--diff", "--stdin-filename", "app/compose.yaml", "-"],
        Some(&text),
    );
    assert!(
        out.1
            .starts_with("diff --git a/app/compose.yaml b/app/compose.yaml\n"),
        "{out:?}"
    );
}

const WHY_COMPOSE: &str = "services:\n  db:\n    image: postgres:16\n    cap_drop: [ALL]\n    security_opt: [no-new-privileges:true]\n  app:\n    image: node:22\n    user: \"1000:1000\"\n    cap_drop: [ALL]\n";
const WHY_LOGS: &str = "\
db-1   | chown: changing ownership of '/var/lib/postgresql/data': Operation not permitted
db-1   | error: failed switching to \"postgres\": operation not permitted
app-1  | Error: EACCES: permission denied, open '/app/data/db.sqlite'
app-1  | listening on 3000
";

#[test]
fn why_logs_names_the_service_its_uid_and_the_cap_add_patch() {
    let dir = project(&[("compose.yaml", WHY_COMPOSE), ("logs.txt", WHY_LOGS)]);
    let out = run(
        dir.path(),
        &["why", "--logs", "logs.txt", "-f", "compose.yaml"],
        None,
    );
    assert_eq!(read(&dir, "compose.yaml"), WHY_COMPOSE);
    snap("teams__why_logs", render(out));
}

#[test]
fn why_logs_write_applies_the_patch_through_the_fixer_once() {
    let dir = project(&[("compose.yaml", WHY_COMPOSE)]);
    let args = ["why", "--logs", "-", "-f", "compose.yaml", "--write"];
    let (code, _, stderr) = run(dir.path(), &args, Some(WHY_LOGS));
    assert_eq!(
        (code, stderr.as_str()),
        (
            0,
            "compose.yaml: added cap_add: [CHOWN, SETGID, SETUID] to db\n"
        )
    );
    assert_eq!(
        read(&dir, "compose.yaml"),
        WHY_COMPOSE.replace(
            "security_opt: [no-new-privileges:true]\n",
            "security_opt: [no-new-privileges:true]\n    cap_add: [CHOWN, SETGID, SETUID]\n"
        )
    );
    let (code, _, stderr) = run(dir.path(), &args, Some(WHY_LOGS));
    assert_eq!(code, 0);
    assert_eq!(
        stderr,
        "compose.yaml: nothing written: the services already have these capabilities or do not drop ALL\n"
    );
}

#[test]
fn why_knows_the_common_failures_of_hardened_services() {
    let dir = project(&[]);
    for (line, id) in [
        (
            "PermissionError: [Errno 13] Permission denied: '/data/x'",
            "python-permission-error",
        ),
        (
            "mkdir: cannot create directory '/var/lib/app': Permission denied",
            "mkdir-denied",
        ),
        (
            "java.nio.file.AccessDeniedException: /opt/data/lock",
            "java-access-denied",
        ),
        (
            "ping: socket: Operation not permitted",
            "iputils-ping-socket",
        ),
        (
            "crond: can't set groups: Operation not permitted",
            "crond-set-groups",
        ),
    ] {
        let (code, stdout, _) = run(dir.path(), &["why", line], None);
        assert_eq!(code, 0);
        assert!(
            stdout.contains(&format!("matched: {id} (")),
            "{line}: {stdout}"
        );
    }
    let (_, ping, _) = run(
        dir.path(),
        &["why", "ping: socket: Operation not permitted"],
        None,
    );
    assert!(ping.contains("  add to cap_add: NET_RAW\n"), "{ping}");
    let (_, cron, _) = run(
        dir.path(),
        &[
            "why",
            "crond: can't set groups: Operation not permitted",
            "--service",
            "cron",
        ],
        None,
    );
    assert!(cron.contains("add to the compose file:\nservices:\n  cron:\n    cap_add:\n      - SETGID\n      - SETUID\n"), "{cron}");
}

#[test]
fn pr_body_to_stdout_folded_with_the_legend_and_nothing_when_nothing_changed() {
    let dir = project(&[("compose.yaml", SMALL)]);
    let (code, body, stderr) = run(dir.path(), &["fix", "--pr-body", "-", "compose.yaml"], None);
    assert_eq!((code, stderr.as_str()), (0, "fixed 4 findings in 1 file\n"));
    assert!(
        body.starts_with("## Least privilege for Docker Compose services\n"),
        "{body}"
    );
    assert!(
        body.contains("<details open><summary>`compose.yaml`: 4 changes</summary>"),
        "{body}"
    );
    assert!(body.contains("- **measured**: "), "{body}");
    let again = run(dir.path(), &["fix", "--pr-body", "-", "compose.yaml"], None);
    assert_eq!(
        render(again),
        "exit: 0\n--- stdout\n--- stderr\nno pull-request body written: nothing changed\nfixed 0 findings in 0 files\n"
    );
    let (code, _, _) = run(
        dir.path(),
        &["fix", "--pr-body", "body.md", "compose.yaml"],
        None,
    );
    assert_eq!(code, 0);
    assert!(!dir.path().join("body.md").exists());
    let both = run(
        dir.path(),
        &["fix", "--diff", "--pr-body", "-", "compose.yaml"],
        None,
    );
    assert_eq!(
        render(both),
        "exit: 2\n--- stdout\n--- stderr\nerror: --pr-body - and --diff both write to standard output; give the body a file\n"
    );
}

#[test]
fn pr_body_of_a_big_tree_stays_under_60000_characters() {
    let files: Vec<(String, &str)> = (0..400)
        .map(|i| (format!("stack{i:03}/compose.yaml"), SMALL))
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let dir = project(&refs);
    let (code, body, _) = run(dir.path(), &["fix", "--pr-body", "-", "."], None);
    assert_eq!(code, 0);
    assert!(body.len() < 60_000, "{}", body.len());
    let kept = body.matches("<details open>").count();
    assert!(
        body.contains(&format!("**{} more files left out**", 400 - kept)),
        "{kept}"
    );
}

#[test]
fn rule_prints_the_confidence_legend() {
    let dir = project(&[]);
    let (code, out, _) = run(dir.path(), &["rule", "CH008"], None);
    assert_eq!(code, 0);
    assert!(out.starts_with("# CH008 (starved-caps): "), "{out}");
    let legend = out.split("## Confidence levels").nth(1).unwrap_or_default();
    for level in [
        "verified",
        "from-source",
        "inferred",
        "pattern",
        "unverified",
        "inspected",
        "measured",
    ] {
        assert!(legend.contains(&format!("\n- {level}: ")), "{level}: {out}");
    }
}

#[test]
fn readme_carries_the_confidence_legend() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (level, meaning) in compose_harden::knowledge::CONFIDENCE_LEGEND {
        assert!(
            readme.contains(&format!("| {level} | {meaning} |")),
            "{level}"
        );
    }
}

#[test]
fn manpage_documents_every_command_option_exit_code_config_and_environment() {
    let dir = project(&[]);
    let (code, man, stderr) = run(dir.path(), &["manpage"], None);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let cmd = <compose_harden::cli::Cli as clap::CommandFactory>::command();
    for sub in cmd.get_subcommands() {
        let title = format!(".SH \"COMMAND: {}\"", sub.get_name().to_uppercase());
        assert!(man.contains(&title), "{title}");
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(man.contains(&roff), "{} --{long}", sub.get_name());
            }
        }
    }
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH CONFIGURATION",
        ".SH ENVIRONMENT",
        "NO_COLOR",
        ".SH \"CONFIDENCE LEVELS\"",
    ] {
        assert!(man.contains(section), "{section}");
    }
}
