//! Repositories nobody checked (issue 16): every file read and every byte printed is
//! attacker-controlled. Each test runs the real binary in a fresh temporary directory and
//! pins one defect that main had: unbounded or blocking reads, write errors turned into
//! exit 0, injected control characters and markup, unquoted paths, reads and writes
//! outside the project.

#![cfg(unix)]

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Long enough for a cold, loaded machine; only a hang gets near it.
const TIMEOUT: Duration = Duration::from_secs(20);

const NEEDS_FIX: &str = "services:\n  web:\n    image: nginx:1.27\n";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_compose-harden"));
    c.env("NO_COLOR", "1");
    c
}

/// Wait for `child` at most [`TIMEOUT`]; a hang is killed and fails the test.
fn finish(mut child: std::process::Child, what: &str) -> Run {
    let start = Instant::now();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        if let Some(s) = out.as_mut() {
            let _ = s.read_to_end(&mut o);
        }
        o
    });
    let ereader = std::thread::spawn(move || {
        let mut e = Vec::new();
        if let Some(s) = err.as_mut() {
            let _ = s.read_to_end(&mut e);
        }
        e
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {TIMEOUT:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&ereader.join().unwrap()).into_owned();
    assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let child = bin()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, &format!("compose-harden {}", args.join(" ")))
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, text).unwrap();
}

fn symlink(target: &str, dir: &Path, rel: &str) {
    let p = dir.join(rel);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink(target, p).unwrap();
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

// ---------------------------------------------------------------------------------------
// 1, 2: bounded, non-blocking reads; no pseudo files
// ---------------------------------------------------------------------------------------

/// procfs reports a size of 0, so a size check on the metadata let these through.
#[test]
fn a_compose_file_symlinked_into_proc_is_refused() {
    let tmp = TempDir::new().unwrap();
    symlink("/proc/self/status", tmp.path(), "compose.yaml");
    for args in [&["check", "compose.yaml"][..], &["fix", "compose.yaml"]] {
        let r = run(tmp.path(), args);
        assert_eq!(r.code, 2, "{args:?}:\n{}", r.stderr);
        assert!(
            r.stderr
                .contains("compose.yaml: error: a file of the proc pseudo filesystem"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn a_dockerfile_symlinked_into_proc_is_not_read() {
    let tmp = TempDir::new().unwrap();
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  app:\n    build: app\n",
    );
    symlink("/proc/self/status", tmp.path(), "app/Dockerfile");
    let r = run(tmp.path(), &["check", "compose.yaml"]);
    assert!(
        r.stdout.contains("app/Dockerfile: outside the project"),
        "{}",
        r.stdout
    );
    // Reads outside allowed, the pseudo file is still refused.
    let r = run(tmp.path(), &["check", "--allow-outside", "compose.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("app/Dockerfile: a file of the proc pseudo filesystem, not a regular file"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_config_symlinked_into_proc_is_refused() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "compose.yaml", NEEDS_FIX);
    symlink("/proc/self/status", tmp.path(), "compose-harden.toml");
    let r = run(
        tmp.path(),
        &["check", "--config", "compose-harden.toml", "compose.yaml"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot read config: a file of the proc pseudo filesystem"),
        "{}",
        r.stderr
    );
}

/// `--config` naming a FIFO blocked in open() until someone wrote to it.
#[test]
fn a_fifo_given_as_config_does_not_hang() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "compose.yaml", NEEDS_FIX);
    mkfifo(&tmp.path().join("ch.toml"));
    let r = run(
        tmp.path(),
        &["check", "--config", "ch.toml", "compose.yaml"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("ch.toml: error: cannot read config: not a regular file"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_fifo_given_as_dockerfile_does_not_hang() {
    let tmp = TempDir::new().unwrap();
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  app:\n    build:\n      context: .\n      dockerfile: pipe\n",
    );
    mkfifo(&tmp.path().join("pipe"));
    let r = run(tmp.path(), &["check", "compose.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains("pipe: not a regular file"),
        "{}",
        r.stdout
    );
}

/// The first SIGTERM (or SIGINT) ends a run that is still reading: here standard input,
/// held open and never written.
#[test]
fn the_first_signal_stops_the_read_phase() {
    for signal in ["-TERM", "-INT"] {
        let mut child = bin()
            .args(["check", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        std::thread::sleep(Duration::from_millis(300));
        let ok = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let r = finish(child, "check - with a silent stdin");
        drop(stdin);
        assert_eq!(r.code, 130, "{signal}: {}", r.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// 3: a report that cannot be written is an error
// ---------------------------------------------------------------------------------------

fn dev_full() -> fs::File {
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
}

#[test]
fn a_report_written_to_a_full_disk_is_exit_2() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "x.yaml", NEEDS_FIX);
    for format in ["sarif", "text", "json"] {
        let child = bin()
            .current_dir(tmp.path())
            .args(["check", "--format", format, "x.yaml"])
            .stdout(dev_full())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let r = finish(child, "check > /dev/full");
        assert_eq!(r.code, 2, "{format}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("error: cannot write the output: no space left on device"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn messages_written_to_a_full_disk_are_exit_2() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "x.yaml", "services: {}\n");
    for args in [&["check", "missing.yaml"][..], &["check", "x.yaml"]] {
        let child = bin()
            .current_dir(tmp.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(dev_full())
            .spawn()
            .unwrap();
        let r = finish(child, "check 2> /dev/full");
        assert_eq!(r.code, 2, "{args:?}");
    }
}

/// `check tree/ | head -1` with findings exited 0.
#[test]
fn a_closed_pipe_never_turns_findings_into_success() {
    let tmp = TempDir::new().unwrap();
    for i in 0..300 {
        write(tmp.path(), &format!("p{i:03}/compose.yaml"), NEEDS_FIX);
    }
    let mut child = bin()
        .current_dir(tmp.path())
        .args(["check", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let r = finish(child, "check . | head -c 16");
    assert_ne!(r.code, 0, "a report nobody received is not a success");
}

// ---------------------------------------------------------------------------------------
// 5: report injection
// ---------------------------------------------------------------------------------------

/// Values an attacker controls: a service name that closes a Markdown code span, an image
/// that starts a workflow command and colours the terminal, a user with a newline, a
/// Dockerfile whose FROM and USER carry escapes.
const HOSTILE: &str = "services:\n  \"tick`</code><img src=x onerror=alert(1)>`\":\n    image: \"evil\\n::error::pwned\\e[31m\"\n    user: \"root\\n::warning::x\"\n  img:\n    image: \"evil\\n::error::pwned\\e[31m\"\n  app:\n    build: app\n";

fn hostile_tree() -> TempDir {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "compose.yaml", HOSTILE);
    write(
        tmp.path(),
        "app/Dockerfile",
        "FROM alpine\u{1b}]0;title\u{7}\nUSER \"x\u{1b}[2J\"\n",
    );
    tmp
}

fn assert_no_controls(what: &str, s: &str) {
    for (i, line) in s.lines().enumerate() {
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "{what}: line {} holds a control character: {line:?}",
            i + 1
        );
    }
}

fn assert_no_command_lines(what: &str, s: &str) {
    for line in s.lines() {
        assert!(
            !line.trim_start().starts_with("::"),
            "{what}: a line starts a workflow command: {line:?}"
        );
    }
}

#[test]
fn every_format_escapes_attacker_values() {
    let tmp = hostile_tree();
    for format in ["text", "json", "sarif", "github", "markdown"] {
        let r = run(tmp.path(), &["check", "--format", format, "compose.yaml"]);
        assert_eq!(r.code, 1, "{format}: {}", r.stderr);
        assert!(
            r.stdout.contains("evil"),
            "{format}: the image is reported:\n{}",
            r.stdout
        );
        assert_no_controls(format, &r.stdout);
        assert_no_controls(&format!("{format} stderr"), &r.stderr);
        assert_no_command_lines(&format!("{format} stderr"), &r.stderr);
        match format {
            "text" => assert_no_command_lines(format, &r.stdout),
            "markdown" => {
                assert_no_command_lines(format, &r.stdout);
                assert!(!r.stdout.contains("<img"), "{}", r.stdout);
                assert!(!r.stdout.contains("</code>"), "{}", r.stdout);
                // The span around the service name is fenced longer than its backticks.
                assert!(r.stdout.contains("`` tick`"), "{}", r.stdout);
            }
            "github" => {
                for line in r.stdout.lines() {
                    assert!(
                        line.starts_with("::warning ") || line.starts_with("::error "),
                        "one annotation per line: {line:?}"
                    );
                    // GitHub decodes %0A: no decoded line may start a command either.
                    assert!(!line.contains("%0A::"), "{line}");
                }
            }
            _ => {
                serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap();
            }
        }
    }
    let r = run(
        tmp.path(),
        &[
            "fix",
            "--unverified",
            "--show-fixes",
            "--diff",
            "compose.yaml",
        ],
    );
    assert_no_controls("fix stderr", &r.stderr);
    assert_no_command_lines("fix stderr", &r.stderr);
}

#[test]
fn a_pr_body_escapes_attacker_values() {
    let tmp = hostile_tree();
    let r = run(
        tmp.path(),
        &["fix", "--diff", "--pr-body", "body.md", "compose.yaml"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let body = fs::read_to_string(tmp.path().join("body.md")).unwrap();
    assert_no_controls("pr body", &body);
    assert_no_command_lines("pr body", &body);
    assert!(!body.contains("<img"), "{body}");
}

/// Error messages print paths and values escaped too.
#[test]
fn error_messages_escape_paths() {
    let tmp = TempDir::new().unwrap();
    let name = "bad\n::error::x\u{1b}[31m.yaml";
    write(tmp.path(), name, "services: [\n");
    let r = run(tmp.path(), &["check", name]);
    assert_eq!(r.code, 2);
    assert_no_controls("stderr", &r.stderr);
    assert_no_command_lines("stderr", &r.stderr);
    assert!(
        r.stderr.contains("bad\\n::error::x\\u{1b}[31m.yaml"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------
// 6, 7: paths in diff headers and SARIF
// ---------------------------------------------------------------------------------------

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
}

#[test]
fn diff_headers_quote_paths_as_git_does_and_git_applies_them() {
    let tmp = TempDir::new().unwrap();
    let dirs = [
        "tab\there",
        "back\\slash",
        "quo\"te",
        "caf\u{e9}",
        "new\nline",
        "plain dir",
    ];
    for d in dirs {
        write(tmp.path(), &format!("{d}/compose.yaml"), NEEDS_FIX);
    }
    let r = run(tmp.path(), &["fix", "--diff", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("diff --git \"a/tab\\there/compose.yaml\" \"b/tab\\there/compose.yaml\"\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("--- \"a/caf\\303\\251/compose.yaml\"\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("+++ \"b/new\\nline/compose.yaml\"\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("--- a/plain dir/compose.yaml\n"),
        "{}",
        r.stdout
    );
    // git reads the headers back to the same files.
    assert!(git(tmp.path(), &["init", "-q"]).status.success());
    fs::write(tmp.path().join("change.diff"), &r.stdout).unwrap();
    let out = git(tmp.path(), &["apply", "--check", "-v", "change.diff"]);
    assert!(
        out.status.success(),
        "git apply refused the diff:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = git(tmp.path(), &["apply", "change.diff"]);
    assert!(out.status.success());
    for d in dirs {
        let text = fs::read_to_string(tmp.path().join(d).join("compose.yaml")).unwrap();
        assert!(text.contains("cap_drop"), "{d:?} was not patched");
    }
}

#[test]
fn sarif_uris_are_percent_encoded() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "a b#c%d/caf\u{e9}/compose.yaml", NEEDS_FIX);
    let r = run(tmp.path(), &["check", "--format", "sarif", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let uri =
        v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
    assert_eq!(uri, "a%20b%23c%25d/caf%C3%A9/compose.yaml");
}

// ---------------------------------------------------------------------------------------
// 4: limits are errors
// ---------------------------------------------------------------------------------------

/// A privileged service that mounts the Docker socket, behind `depth` merge keys.
fn merge_chain(depth: usize) -> String {
    let mut s = String::from(
        "x-b0: &b0\n  image: docker:27-dind\n  privileged: true\n  volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n",
    );
    for i in 1..depth {
        s.push_str(&format!("x-b{i}: &b{i}\n  <<: *b{}\n  x-n{i}: 1\n", i - 1));
    }
    s.push_str(&format!("services:\n  evil:\n    <<: *b{}\n", depth - 1));
    s
}

#[test]
fn a_merge_chain_past_the_limit_is_an_error_not_zero_findings() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "ok.yaml", &merge_chain(32));
    write(tmp.path(), "deep.yaml", &merge_chain(33));
    let r = run(tmp.path(), &["check", "ok.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains("CH005") || r.stdout.contains("privileged"),
        "{}",
        r.stdout
    );
    let line = 1 + merge_chain(33)
        .lines()
        .position(|l| l == "  evil:")
        .unwrap();
    let want = format!(
        "deep.yaml:{line}:3: error: service \"evil\": merge keys (`<<`) chain more than 32 levels deep"
    );
    for args in [
        &["check", "deep.yaml"][..],
        &["fix", "--diff", "deep.yaml"],
        &["fix", "deep.yaml"],
    ] {
        let r = run(tmp.path(), args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(&want), "{}", r.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// 8, 9: reads and writes stay inside the project
// ---------------------------------------------------------------------------------------

/// A repository whose build context and Dockerfile point at files outside it.
fn repo_reaching_out() -> TempDir {
    let tmp = TempDir::new().unwrap();
    write(
        tmp.path(),
        "outside/Dockerfile",
        "FROM secret-base:1\nUSER secretuser\n",
    );
    fs::create_dir_all(tmp.path().join("repo/.git")).unwrap();
    write(
        tmp.path(),
        "repo/compose.yaml",
        "services:\n  up:\n    build: ../outside\n  abs:\n    build:\n      context: .\n      dockerfile: OUTSIDE_ABS\n  link:\n    build: linked\n",
    );
    let abs = tmp.path().join("outside/Dockerfile");
    let text = fs::read_to_string(tmp.path().join("repo/compose.yaml")).unwrap();
    let text = text.replace("OUTSIDE_ABS", abs.to_str().unwrap());
    fs::write(tmp.path().join("repo/compose.yaml"), text).unwrap();
    symlink(abs.to_str().unwrap(), tmp.path(), "repo/linked/Dockerfile");
    tmp
}

#[test]
fn build_files_outside_the_project_are_not_read() {
    let tmp = repo_reaching_out();
    for format in ["text", "sarif", "markdown", "json"] {
        let r = run(tmp.path(), &["check", "--format", format, "repo"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            !r.stdout.contains("secret"),
            "{format} disclosed an outside file:\n{}",
            r.stdout
        );
    }
    let r = run(tmp.path(), &["check", "repo"]);
    assert_eq!(
        r.stdout.matches("outside the project (its git work tree, or the directory walked); not read or written without --allow-outside").count(),
        3,
        "{}",
        r.stdout
    );
    // Allowed, they are read.
    let r = run(tmp.path(), &["check", "--allow-outside", "repo"]);
    assert_eq!(r.stdout.matches("secretuser").count(), 3, "{}", r.stdout);
}

#[test]
fn without_git_the_walked_directory_bounds_reads() {
    let tmp = repo_reaching_out();
    fs::remove_dir(tmp.path().join("repo/.git")).unwrap();
    let r = run(tmp.path(), &["check", "repo"]);
    assert!(!r.stdout.contains("secret"), "{}", r.stdout);
    let r = run(&tmp.path().join("repo"), &["check", "."]);
    assert!(!r.stdout.contains("secret"), "{}", r.stdout);
}

#[test]
fn fix_does_not_write_through_a_symlink_leaving_the_tree() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "victim/compose.yaml", NEEDS_FIX);
    fs::create_dir_all(tmp.path().join("tree/.git")).unwrap();
    symlink(
        "../../victim/compose.yaml",
        tmp.path(),
        "tree/app/compose.yaml",
    );
    let r = run(tmp.path(), &["fix", "tree"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("tree/app/compose.yaml: error: its real path is outside the project"),
        "{}",
        r.stderr
    );
    let victim = fs::read_to_string(tmp.path().join("victim/compose.yaml")).unwrap();
    assert_eq!(victim, NEEDS_FIX);
    let r = run(tmp.path(), &["fix", "--allow-outside", "tree"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let victim = fs::read_to_string(tmp.path().join("victim/compose.yaml")).unwrap();
    assert!(victim.contains("cap_drop"));
}

#[test]
fn a_pr_body_that_is_a_symlink_is_refused() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "compose.yaml", NEEDS_FIX);
    write(tmp.path(), "victim", "precious\n");
    symlink("victim", tmp.path(), "body.md");
    let r = run(
        tmp.path(),
        &["fix", "--diff", "--pr-body", "body.md", "compose.yaml"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("body.md: error: cannot write the pull-request body: it is a symlink"),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("victim")).unwrap(),
        "precious\n"
    );
}

// ---------------------------------------------------------------------------------------
// 10: the configuration search stops at the repository root
// ---------------------------------------------------------------------------------------

#[test]
fn a_config_above_the_repository_does_not_apply() {
    let tmp = TempDir::new().unwrap();
    write(
        tmp.path(),
        "compose-harden.toml",
        "ignore = [\"CH001\", \"CH002\", \"CH003\", \"CH004\", \"CH005\", \"CH006\"]\n",
    );
    fs::create_dir_all(tmp.path().join("repo/.git")).unwrap();
    write(tmp.path(), "repo/sub/compose.yaml", NEEDS_FIX);
    let r = run(&tmp.path().join("repo"), &["check", "sub/compose.yaml"]);
    assert_eq!(
        r.code, 1,
        "the config above the repository switched rules off:\n{}",
        r.stderr
    );
    // At the repository root, it applies.
    fs::rename(
        tmp.path().join("compose-harden.toml"),
        tmp.path().join("repo/compose-harden.toml"),
    )
    .unwrap();
    let r = run(&tmp.path().join("repo"), &["check", "sub/compose.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------
// 11, 13: temporary files, owner, modes, links, attributes
// ---------------------------------------------------------------------------------------

/// A pid no process has (one that just ended).
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn stale_temporary_files_of_dead_runs_are_removed_and_reported() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "compose.yaml", NEEDS_FIX);
    let stale = format!(".compose-harden-{}-0.tmp", dead_pid());
    let live = format!(".compose-harden-{}-0.tmp", std::process::id());
    write(tmp.path(), &stale, "half a file");
    write(tmp.path(), &live, "another run's");
    let r = run(tmp.path(), &["fix", "compose.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{stale}: removed a temporary file left by an interrupted run"
        )),
        "{}",
        r.stderr
    );
    assert!(!tmp.path().join(&stale).exists());
    assert!(
        tmp.path().join(&live).exists(),
        "a live run's file is left alone"
    );
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn fix_run_as_another_user_refuses_to_change_the_owner() {
    if !is_root() {
        eprintln!("skipped: needs root to run the binary as another user");
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let tmp = TempDir::new().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
    write(tmp.path(), "compose.yaml", NEEDS_FIX);
    let p = tmp.path().join("compose.yaml");
    std::os::unix::fs::chown(&p, Some(1000), Some(1000)).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
    let child = bin()
        .current_dir(tmp.path())
        .args(["fix", "compose.yaml"])
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = finish(child, "fix as nobody");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("the file belongs to 1000:1000"),
        "{}",
        r.stderr
    );
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
    assert_eq!(fs::read_to_string(&p).unwrap(), NEEDS_FIX);
}

#[test]
fn owner_setuid_bits_and_xattrs_are_kept() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "compose.yaml", NEEDS_FIX);
    let p = tmp.path().join("compose.yaml");
    if is_root() {
        std::os::unix::fs::chown(&p, Some(1000), Some(1000)).unwrap();
    }
    fs::set_permissions(&p, fs::Permissions::from_mode(0o6754)).unwrap();
    let cpath = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated strings and a value with its length.
    let xattr = unsafe {
        libc::setxattr(
            cpath.as_ptr(),
            c"user.origin".as_ptr(),
            b"kept".as_ptr().cast(),
            4,
            0,
        )
    } == 0;
    let before = fs::metadata(&p).unwrap();
    let r = run(tmp.path(), &["fix", "compose.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = fs::metadata(&p).unwrap();
    assert!(fs::read_to_string(&p).unwrap().contains("cap_drop"));
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(after.mode() & 0o7777, 0o6754);
    if xattr {
        let mut buf = [0u8; 16];
        // SAFETY: the buffer and its length go together.
        let n = unsafe {
            libc::getxattr(
                cpath.as_ptr(),
                c"user.origin".as_ptr(),
                buf.as_mut_ptr().cast(),
                16,
            )
        };
        assert_eq!(n, 4, "the user.origin attribute was lost");
        assert_eq!(&buf[..4], b"kept");
    } else {
        eprintln!("user xattrs unsupported here; attribute part skipped");
    }
}

#[test]
fn a_file_with_hard_links_is_refused_not_split() {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "compose.yaml", NEEDS_FIX);
    fs::hard_link(
        tmp.path().join("compose.yaml"),
        tmp.path().join("other.yaml"),
    )
    .unwrap();
    let r = run(tmp.path(), &["fix", "compose.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("compose.yaml: error: the file has 2 hard links"),
        "{}",
        r.stderr
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(tmp.path().join("other.yaml")).unwrap().nlink(),
        2
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("other.yaml")).unwrap(),
        NEEDS_FIX
    );
}

// ---------------------------------------------------------------------------------------
// 16: paths as the user gave them
// ---------------------------------------------------------------------------------------

#[test]
fn a_config_error_names_the_config_as_a_relative_path() {
    let tmp = TempDir::new().unwrap();
    fs::create_dir_all(tmp.path().join(".git")).unwrap();
    write(tmp.path(), "compose-harden.toml", "userr = 1\n");
    write(tmp.path(), "sub/compose.yaml", NEEDS_FIX);
    let r = run(tmp.path(), &["check", "sub/compose.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("compose-harden.toml:1:1: error: invalid config: unknown field `userr`"),
        "{}",
        r.stderr
    );
}

#[test]
fn write_errors_name_the_file_as_given() {
    use std::os::unix::fs::PermissionsExt;
    if is_root() {
        // Root writes into read-only directories; the read-only file case stands in.
        let tmp = TempDir::new().unwrap();
        write(tmp.path(), "sub/compose.yaml", NEEDS_FIX);
        fs::set_permissions(
            tmp.path().join("sub/compose.yaml"),
            fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        let r = run(tmp.path(), &["fix", "sub/compose.yaml"]);
        assert_eq!(r.code, 2);
        assert!(
            r.stderr.starts_with("sub/compose.yaml: error: "),
            "{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains(tmp.path().to_str().unwrap()),
            "{}",
            r.stderr
        );
        return;
    }
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "sub/compose.yaml", NEEDS_FIX);
    fs::set_permissions(tmp.path().join("sub"), fs::Permissions::from_mode(0o555)).unwrap();
    let r = run(tmp.path(), &["fix", "sub/compose.yaml"]);
    fs::set_permissions(tmp.path().join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("sub/compose.yaml: error: cannot create a temporary file in sub:"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains(tmp.path().to_str().unwrap()),
        "{}",
        r.stderr
    );
}
