//! Every output format on one fixture with several findings, a suppressed one, a stale
//! suppression and a config override; SARIF validated against the SARIF 2.1.0 schema and
//! JSON against the schema documented in docs/.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

const COMPOSE: &str = "\
services:
  # compose-harden: ignore[CH001]
  worker:
    image: ghcr.io/acme/worker:2
  db:  # compose-harden: ignore[CH004]
    image: postgres:16
  cache:
    image: redis:7
  agent:
    image: acme/agent
    privileged: true
  proxy:
    image: traefik:v3.2
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
";

const CONFIG: &str = "\
[services.cache]
cap_add = [\"SETGID\", \"SETUID\", \"CHOWN\"]
";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), COMPOSE).unwrap();
    std::fs::write(dir.path().join("compose-harden.toml"), CONFIG).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
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

fn render((code, stdout, stderr): (i32, String, String)) -> String {
    format!("exit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}")
}

#[test]
fn every_format_snapshot() {
    let dir = project();
    for format in ["text", "json", "sarif", "github", "markdown"] {
        let out = run(dir.path(), &["check", "--format", format, "compose.yaml"]);
        assert_eq!(out.0, 1, "{format}");
        let shown = render(out).replace(env!("CARGO_PKG_VERSION"), "[version]");
        snapshot_settings().bind(|| insta::assert_snapshot!(format!("formats__{format}"), shown));
    }
}

#[test]
fn suppressions_hide_findings_and_stale_ones_are_reported() {
    let dir = project();
    let (_, stdout, _) = run(dir.path(), &["check", "compose.yaml"]);
    assert!(
        !stdout.contains("CH001 service \"worker\""),
        "suppressed finding shown"
    );
    assert!(stdout.contains("CH007 suppression of CH004 on service \"db\" matches nothing"));
}

#[test]
fn config_override_sets_the_caps() {
    let dir = project();
    let (_, diff, _) = run(dir.path(), &["fix", "--diff", "compose.yaml"]);
    assert!(
        diff.contains("+      - CHOWN\n+      - SETGID\n+      - SETUID\n"),
        "{diff}"
    );
    let cache_part = diff.split("image: redis:7").nth(1).unwrap_or("");
    assert!(
        !cache_part
            .split("agent:")
            .next()
            .unwrap()
            .contains("DAC_OVERRIDE"),
        "{diff}"
    );
}

#[test]
fn unknown_config_key_is_an_error_naming_it() {
    let dir = project();
    std::fs::write(
        dir.path().join("compose-harden.toml"),
        "[services.db]\ncap_addd = []\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check", "compose.yaml"]);
    assert_eq!(out.0, 2);
    assert!(
        out.2
            .contains("compose-harden.toml:2:1: error: invalid config: unknown field `cap_addd`"),
        "{}",
        out.2
    );
}

#[test]
fn init_writes_a_config_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["init"]);
    assert_eq!(out.0, 0);
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: nginx:1.27\n",
    )
    .unwrap();
    assert_eq!(run(dir.path(), &["check", "compose.yaml"]).0, 1);
    assert_eq!(run(dir.path(), &["init"]).0, 2, "init must not overwrite");
}

fn registry_file(relative: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    for entry in std::fs::read_dir(home.join("registry/src")).ok()? {
        let p = entry.ok()?.path().join(relative);
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

#[test]
fn sarif_is_valid_sarif_2_1_0() {
    // The SARIF 2.1.0 schema ships inside the serde-sarif crate (a dev-dependency).
    let Some(schema_path) = registry_file("serde-sarif-0.8.0/src/schema.json") else {
        eprintln!(
            "skipped: the SARIF schema from the serde-sarif crate was not found in the cargo registry"
        );
        return;
    };
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    // The published schema's `run.language` pattern has a stray `]` that no regex engine
    // accepts; it constrains a field we do not write. Use the pattern it means.
    for def in ["run", "toolComponent"] {
        schema["definitions"][def]["properties"]["language"]["pattern"] =
            "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into();
    }
    let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
    let dir = project();
    let (_, stdout, _) = run(dir.path(), &["check", "--format", "sarif", "compose.yaml"]);
    let log: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The typed model of the same schema reads it back, rules and fixes included.
    let typed: serde_sarif::sarif::Sarif =
        serde_json::from_str(&stdout).expect("serde-sarif reads it");
    let run0 = &typed.runs[0];
    assert_eq!(
        run0.tool.driver.rules.as_ref().unwrap().len(),
        compose_harden::rules::REGISTRY.len()
    );
    assert!(
        run0.results
            .as_ref()
            .unwrap()
            .iter()
            .any(|r| r.fixes.is_some())
    );
}

#[test]
fn json_matches_its_documented_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../docs/json-report.schema.json")).unwrap();
    let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
    let dir = project();
    std::fs::write(dir.path().join("broken.yml"), "services: [\n").unwrap();
    let (_, stdout, _) = run(
        dir.path(),
        &["check", "--format", "json", "compose.yaml", "broken.yml"],
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(report["errors"][0]["path"], "broken.yml");
}

#[test]
fn pr_body_is_written_for_bots() {
    let dir = project();
    let out = run(dir.path(), &["fix", "--pr-body", "body.md", "compose.yaml"]);
    assert_eq!(out.0, 0);
    let body = std::fs::read_to_string(dir.path().join("body.md")).unwrap();
    assert!(body.contains("### Needs a human"));
    assert!(body.contains("| `db` |"));
}

#[test]
fn completions_and_manpage() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = run(dir.path(), &["completions", shell]);
        assert_eq!(code, 0);
        assert!(out.contains("compose-harden"), "{shell}");
    }
    let (code, man, _) = run(dir.path(), &["manpage"]);
    assert_eq!(code, 0);
    assert!(man.contains(".TH compose-harden"));
}
