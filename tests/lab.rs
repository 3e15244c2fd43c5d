//! The engine lab without an engine: for every project under `lab/projects/`, `fix` with
//! the project's own `compose-harden.toml` must give exactly the hardening its
//! `expect.toml` names (cap_drop ALL, the cap_add set, the user, no-new-privileges), and
//! every wrong case must be a complete file that differs from it. `.ci/e2e` then runs
//! the same projects on a real engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

#[derive(Debug, Default, PartialEq)]
struct Hardening {
    cap_drop: Vec<String>,
    cap_add: Vec<String>,
    user: Option<String>,
    nnp: bool,
}

fn projects() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/projects");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("lab/projects exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expect.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The fixed file, as `fix -` writes it to standard output.
fn fixed(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    let out = Command::cargo_bin("compose-harden")
        .unwrap()
        .current_dir(dir)
        .args(["fix", "--config", "compose-harden.toml", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The hardening keys of each service of a lab file (plain block YAML, two-space indent).
fn hardening(text: &str) -> BTreeMap<String, Hardening> {
    let mut out: BTreeMap<String, Hardening> = BTreeMap::new();
    let (mut service, mut key) = (None::<String>, String::new());
    let mut in_services = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            in_services = trimmed == "services:";
            service = None;
        } else if in_services && indent == 2 {
            let name = trimmed.trim_end_matches(':').to_string();
            out.entry(name.clone()).or_default();
            service = Some(name);
        } else if let (Some(s), true) = (&service, indent == 4) {
            let (k, v) = trimmed.split_once(':').unwrap_or((trimmed, ""));
            key = k.to_string();
            if k == "user" {
                out.get_mut(s).unwrap().user = Some(v.trim().trim_matches('"').to_string());
            }
        } else if let (Some(s), Some(item)) = (&service, trimmed.strip_prefix("- ")) {
            let h = out.get_mut(s).unwrap();
            match key.as_str() {
                "cap_drop" => h.cap_drop.push(item.to_string()),
                "cap_add" => h.cap_add.push(item.to_string()),
                "security_opt" if item == "no-new-privileges:true" => h.nnp = true,
                _ => {}
            }
        }
    }
    for h in out.values_mut() {
        h.cap_add.sort();
    }
    out
}

fn strings(v: Option<&toml::Value>) -> Vec<String> {
    let mut xs: Vec<String> = v
        .and_then(|v| v.as_array())
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    xs.sort();
    xs
}

fn expect(dir: &Path) -> toml::Table {
    let text = std::fs::read_to_string(dir.join("expect.toml")).unwrap();
    text.parse().unwrap()
}

#[test]
fn fix_gives_each_lab_project_exactly_its_expected_hardening() {
    let dirs = projects();
    assert!(
        dirs.len() >= 8,
        "the lab has a project per behaviour: {dirs:?}"
    );
    for dir in dirs {
        let got = hardening(&fixed(&dir));
        let services = expect(&dir)["services"].as_table().unwrap().clone();
        for (name, want) in services {
            let want = want.as_table().unwrap();
            let expected = Hardening {
                cap_drop: vec!["ALL".into()],
                cap_add: strings(want.get("cap_add")),
                user: want.get("user").map(|u| u.as_str().unwrap().to_string()),
                nnp: want.get("nnp").is_none_or(|v| v.as_bool().unwrap()),
            };
            assert_eq!(
                got.get(&name),
                Some(&expected),
                "{}: service {name}",
                dir.display()
            );
        }
    }
}

#[test]
fn every_wrong_case_is_a_complete_file_that_differs_from_the_expected_hardening() {
    for dir in projects() {
        let good = hardening(&fixed(&dir));
        let wrong = expect(&dir).get("wrong").cloned();
        for case in wrong
            .and_then(|w| w.as_array().cloned())
            .unwrap_or_default()
        {
            let file = case["file"].as_str().unwrap();
            let service = case["service"].as_str().unwrap();
            let phase = case["phase"].as_str().unwrap();
            assert!(
                ["first-start", "ready", "restart", "stop"].contains(&phase),
                "{file}: phase {phase}"
            );
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let bad = hardening(&text);
            assert_eq!(
                bad.keys().collect::<Vec<_>>(),
                good.keys().collect::<Vec<_>>(),
                "{file}"
            );
            assert_eq!(bad[service].cap_drop, ["ALL"], "{file}: complete hardening");
            assert_ne!(bad[service], good[service], "{file}: one thing is wrong");
            for (name, h) in &bad {
                if name != service {
                    assert_eq!(h, &good[name], "{file}: only {service} differs");
                }
            }
        }
    }
}
