//! `compose-harden verify` without an engine: its report format on recorded data, and the
//! errors it gives before (or instead of) touching an engine. The runs on a real engine are
//! the e2e stage (`lab/`).

use std::path::Path;

use assert_cmd::Command;
use compose_harden::runtime::model::HardeningView;
use compose_harden::runtime::state::{Phase, PhaseResult, Run};
use compose_harden::runtime::verdict::{self, EngineInfo, Report};

fn schema() -> jsonschema::Validator {
    let text = include_str!("../docs/verify-report.schema.json");
    let schema: serde_json::Value = serde_json::from_str(text).unwrap();
    jsonschema::draft202012::new(&schema).expect("schema compiles")
}

fn errors(v: &serde_json::Value) -> Vec<String> {
    schema()
        .iter_errors(v)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn a_recorded_report_matches_the_schema() {
    // `verify --hardened hardened.yaml --format json` on the engine: one service works as
    // uid 1000 with no capability, one breaks at first start (chown without CHOWN).
    let text = include_str!("fixtures/verify/report.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(errors(&v), Vec::<String>::new());
    // The schema is not a rubber stamp.
    let mut bad = v.clone();
    bad["services"][0]["verdict"] = "works".into();
    bad["services"][0]["hardened"]["processes"][0]["cap_bnd"] = "c3".into();
    assert_eq!(errors(&bad).len(), 2, "{:?}", errors(&bad));
    let keeper = &v["services"][1];
    assert_eq!(keeper["verdict"], "breaks-hardened");
    assert_eq!(keeper["phase"], "first-start");
    assert_eq!(keeper["advice"], serde_json::json!(["CHOWN"]));
    let idle = &v["services"][0]["hardened"]["processes"][0];
    assert_eq!(
        (idle["uid"].as_u64(), idle["cap_bnd"].as_str()),
        (Some(1000), Some("0000000000000000"))
    );
}

#[test]
fn the_report_the_library_builds_matches_the_schema() {
    let run = Run {
        phases: vec![PhaseResult::new(Phase::FirstStart, false, 0.4, "exited with 1".into())],
        log: vec!["nginx: [emerg] chown(\"/var/cache/nginx/client_temp\", 101) failed (1: Operation not permitted)".into()],
        ..Run::default()
    };
    let ok = Run {
        phases: vec![PhaseResult::new(
            Phase::FirstStart,
            true,
            1.0,
            "started".into(),
        )],
        exit_code: Some(0),
        ..Run::default()
    };
    let h = HardeningView {
        cap_drop: vec!["ALL".into()],
        cap_add: vec!["SETGID".into(), "SETUID".into()],
        ..HardeningView::default()
    };
    let report = Report {
        schema: verdict::SCHEMA,
        engine: EngineInfo {
            server: "20.10.24+dfsg1".into(),
            compose: "2.40.3".into(),
        },
        project: "lab/projects/web".into(),
        services: vec![
            verdict::judge("web", None, h.clone(), Some(ok), Some(run)),
            verdict::judge("agent", Some("privileged".into()), h, None, None),
        ],
    };
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(errors(&v), Vec::<String>::new());
    assert_eq!(v["services"][0]["advice"], serde_json::json!(["CHOWN"]));
    assert_eq!(v["services"][1]["as_written"], serde_json::Value::Null);
}

fn run(dir: &Path, args: &[&str], docker_host: &str) -> (i32, String, String) {
    let out = Command::cargo_bin("compose-harden")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env("DOCKER_HOST", docker_host)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const NO_ENGINE: &str = "unix:///nonexistent/compose-harden-test.sock";

#[test]
fn no_engine_exits_2_and_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let compose = "services:\n  a:\n    image: busybox:1\n";
    std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    let (code, stdout, stderr) = run(dir.path(), &["verify"], NO_ENGINE);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with("compose-harden verify: error: no container engine reachable"),
        "{stderr}"
    );
    assert!(stderr.contains("DOCKER_HOST"), "{stderr}");
    // Nothing of the user's files changed.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap(),
        compose
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn bad_arguments_exit_2_before_any_engine_call() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(dir.path(), &["verify"], NO_ENGINE);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "compose-harden verify: error: .: no compose file here\n"
    );
    let (code, _, stderr) = run(dir.path(), &["verify", "a.yaml", "b.yaml"], NO_ENGINE);
    assert_eq!(code, 2);
    assert!(stderr.contains("one project"), "{stderr}");
    let (code, _, stderr) = run(
        dir.path(),
        &["verify", "--hardened", "h.yaml", "--unverified"],
        NO_ENGINE,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let (code, _, stderr) = run(dir.path(), &["verify", "missing.yaml"], NO_ENGINE);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "compose-harden verify: error: missing.yaml: no such file\n"
    );
}
