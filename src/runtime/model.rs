//! The resolved Compose model (`docker compose config --format json`) and the rewrites a
//! check run makes to it: nothing that could collide with what the user runs (no fixed
//! host port, container name, volume or network name), never a pull, a private copy of
//! every bind mount under the project directory, and the hardening under test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::docker::Engine;

/// A project as Compose resolved it.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory relative paths resolve from (`--project-directory`).
    pub dir: PathBuf,
    /// The model, `docker compose config --format json`.
    pub model: Value,
}

/// The hardening applied to one service as an override: `cap_drop: [ALL]`, this
/// `cap_add`, `user:` when set, `no-new-privileges:true` when `nnp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hardening {
    pub user: Option<String>,
    pub cap_add: Vec<String>,
    pub nnp: bool,
}

/// What a service runs with, as the report shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HardeningView {
    pub user: Option<String>,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub security_opt: Vec<String>,
}

impl Project {
    /// Resolve the files with Compose (`-f` each, `--project-directory dir`).
    pub fn resolve(engine: &Engine, files: &[PathBuf], dir: &Path) -> Result<Project, String> {
        let mut args: Vec<String> = vec!["compose".into()];
        for f in files {
            args.push("-f".into());
            args.push(f.display().to_string());
        }
        args.push("--project-directory".into());
        args.push(dir.display().to_string());
        for a in ["config", "--format", "json"] {
            args.push(a.into());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = engine
            .call(&refs, Duration::from_secs(60), None)
            .map_err(|e| format!("docker compose config: {e}"))?;
        if !out.ok {
            return Err(format!("invalid compose project: {}", out.message()));
        }
        let model: Value = serde_json::from_str(&out.stdout)
            .map_err(|e| format!("docker compose config gave no JSON model: {e}"))?;
        Ok(Project {
            dir: dir.to_path_buf(),
            model,
        })
    }

    /// Service names in the model, sorted.
    pub fn services(&self) -> Vec<String> {
        self.model
            .get("services")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn service(&self, name: &str) -> Option<&Value> {
        self.model.get("services")?.get(name)
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What `service` (a model service) runs with.
pub fn view(service: &Value) -> HardeningView {
    HardeningView {
        user: service
            .get("user")
            .and_then(Value::as_str)
            .map(str::to_string),
        cap_drop: strings(service.get("cap_drop")),
        cap_add: strings(service.get("cap_add")),
        security_opt: strings(service.get("security_opt")),
    }
}

/// Why a service must not be run by a check, if it must not.
pub fn skip_reason(service: &Value, model: &Value) -> Option<String> {
    if service.get("privileged").and_then(Value::as_bool) == Some(true) {
        return Some("privileged: it keeps every capability, there is nothing to verify".into());
    }
    if service
        .get("devices")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty())
    {
        return Some("uses host devices".into());
    }
    for mode in ["network_mode", "pid", "ipc"] {
        if service.get(mode).and_then(Value::as_str) == Some("host") {
            return Some(format!("{mode}: host shares the host's namespace"));
        }
    }
    for v in service
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let source = v.get("source").and_then(Value::as_str).unwrap_or("");
        if source.ends_with("docker.sock") || source.ends_with("podman.sock") {
            return Some(format!("mounts the engine socket ({source})"));
        }
        let external = v.get("type").and_then(Value::as_str) == Some("volume")
            && model
                .get("volumes")
                .and_then(|vs| vs.get(source))
                .and_then(|d| d.get("external"))
                .and_then(Value::as_bool)
                == Some(true);
        if external {
            return Some(format!(
                "uses the external volume {source:?}, shared with what you run"
            ));
        }
    }
    if service.get("image").and_then(Value::as_str).is_none() {
        return Some("no image: it needs a build (build it and name the image)".into());
    }
    None
}

/// Rewrite the model so a run under `name` collides with nothing the user runs.
pub fn neutralise(model: &mut Value, name: &str) {
    if let Some(m) = model.as_object_mut() {
        m.insert("name".into(), json!(name));
    }
    // Volume and network names: this run's own (external ones are skipped services').
    for section in ["volumes", "networks"] {
        if let Some(defs) = model.get_mut(section).and_then(Value::as_object_mut) {
            for (key, def) in defs.iter_mut() {
                let external = def.get("external").and_then(Value::as_bool) == Some(true);
                if let (false, Some(d)) = (external, def.as_object_mut()) {
                    d.insert("name".into(), json!(format!("{name}_{key}")));
                }
            }
        }
    }
    let Some(services) = model.get_mut("services").and_then(Value::as_object_mut) else {
        return;
    };
    for svc in services.values_mut() {
        let Some(s) = svc.as_object_mut() else {
            continue;
        };
        s.remove("container_name");
        s.insert("pull_policy".into(), json!("never"));
        if let Some(ports) = s.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("published");
                p.insert("host_ip".into(), json!("127.0.0.1"));
            }
        }
    }
}

/// Keep only `keep` (and what they depend on stays the model's business: a dependency on a
/// removed service is dropped).
pub fn retain(model: &mut Value, keep: &[String]) {
    let Some(services) = model.get_mut("services").and_then(Value::as_object_mut) else {
        return;
    };
    services.retain(|k, _| keep.contains(k));
    for svc in services.values_mut() {
        if let Some(d) = svc.get_mut("depends_on").and_then(Value::as_object_mut) {
            d.retain(|k, _| keep.contains(k));
        }
    }
}

/// Apply `h` to `service` as an override.
pub fn apply(model: &mut Value, service: &str, h: &Hardening) {
    let Some(s) = model
        .get_mut("services")
        .and_then(|s| s.get_mut(service))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    s.insert("cap_drop".into(), json!(["ALL"]));
    if h.cap_add.is_empty() {
        s.remove("cap_add");
    } else {
        s.insert("cap_add".into(), json!(h.cap_add));
    }
    if let Some(u) = &h.user {
        s.insert("user".into(), json!(u));
    }
    let mut opts: Vec<String> = strings(s.get("security_opt"))
        .into_iter()
        .filter(|o| !o.starts_with("no-new-privileges"))
        .collect();
    if h.nnp {
        opts.push("no-new-privileges:true".into());
    }
    if opts.is_empty() {
        s.remove("security_opt");
    } else {
        s.insert("security_opt".into(), json!(opts));
    }
}

/// Point every bind mount whose source is under `project_dir` at a private copy under
/// `run_dir` (copied when it exists; left absent for Docker to create, as it would).
pub fn private_binds(model: &mut Value, project_dir: &Path, run_dir: &Path) -> Result<(), String> {
    let base = project_dir
        .canonicalize()
        .unwrap_or_else(|_| project_dir.to_path_buf());
    let Some(services) = model.get_mut("services").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for svc in services.values_mut() {
        for v in svc
            .get_mut("volumes")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(m) = v.as_object_mut() else { continue };
            if m.get("type").and_then(Value::as_str) != Some("bind") {
                continue;
            }
            let Some(src) = m.get("source").and_then(Value::as_str).map(PathBuf::from) else {
                continue;
            };
            let Ok(rel) = src.strip_prefix(&base) else {
                continue;
            };
            let copy = run_dir.join("binds").join(rel);
            if src.exists() && !copy.exists() {
                copy_tree(&src, &copy, 0)
                    .map_err(|e| format!("cannot copy bind mount {}: {e}", src.display()))?;
            }
            m.insert("source".into(), json!(copy.display().to_string()));
        }
    }
    Ok(())
}

/// Copy a file or directory tree (symlinks as links), at most 32 levels deep.
fn copy_tree(src: &Path, dst: &Path, depth: usize) -> std::io::Result<()> {
    if depth > 32 {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(src)?;
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p)?;
    }
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)
    } else if meta.is_dir() {
        std::fs::create_dir_all(dst)?;
        std::fs::set_permissions(dst, meta.permissions())?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()), depth + 1)?;
        }
        Ok(())
    } else {
        std::fs::copy(src, dst).map(|_| ())
    }
}

/// A Go duration as Compose prints it (`1m30s`, `500ms`, `2s`).
pub fn duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" | "" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

/// The service's `stop_grace_period` (Docker's default: 10 s).
pub fn grace(service: &Value) -> Duration {
    service
        .get("stop_grace_period")
        .and_then(Value::as_str)
        .and_then(duration)
        .unwrap_or(Duration::from_secs(10))
}

/// How long a healthcheck may take to say healthy: start period plus every retry, at least
/// `floor`; `None` without a healthcheck (or a disabled one).
pub fn health_budget(service: &Value, floor: Duration) -> Option<Duration> {
    let h = service.get("healthcheck")?;
    if h.get("disable").and_then(Value::as_bool) == Some(true)
        || strings(h.get("test")).first().map(String::as_str) == Some("NONE")
    {
        return None;
    }
    let get = |k: &str, d: u64| {
        h.get(k)
            .and_then(Value::as_str)
            .and_then(duration)
            .unwrap_or(Duration::from_secs(d))
    };
    let retries = h.get("retries").and_then(Value::as_u64).unwrap_or(3) as u32;
    let budget =
        get("start_period", 0) + (get("interval", 30) + get("timeout", 30)) * (retries + 1);
    Some(budget.max(floor))
}

/// The model's services with the hardening each one states.
pub fn views(model: &Value) -> BTreeMap<String, HardeningView> {
    model
        .get("services")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), view(v))).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/verify/model.json")).unwrap()
    }

    #[test]
    fn neutralise_drops_fixed_names_and_host_ports() {
        let mut m = model();
        neutralise(&mut m, "chv-1-w");
        let web = &m["services"]["web"];
        assert!(web.get("container_name").is_none());
        assert_eq!(web["pull_policy"], "never");
        for p in web["ports"].as_array().unwrap() {
            assert!(p.get("published").is_none(), "{p}");
            assert_eq!(p["host_ip"], "127.0.0.1");
            assert!(p.get("target").is_some());
        }
        assert_eq!(m["name"], "chv-1-w");
        assert_eq!(m["volumes"]["data"]["name"], "chv-1-w_data");
        assert_eq!(m["volumes"]["fixed"]["name"], "chv-1-w_fixed");
        assert_eq!(m["volumes"]["shared"]["name"], "users-volume");
        assert_eq!(m["networks"]["default"]["name"], "chv-1-w_default");
    }

    #[test]
    fn skips_what_must_not_run() {
        let m = model();
        let reason = |s: &str| skip_reason(&m["services"][s], &m);
        assert_eq!(reason("web"), None);
        assert!(reason("priv").unwrap().starts_with("privileged"));
        assert!(reason("sock").unwrap().contains("docker.sock"));
        assert!(reason("ext").unwrap().contains("external volume"));
        assert!(reason("built").unwrap().contains("build"));
        assert!(reason("hostnet").unwrap().contains("network_mode"));
    }

    #[test]
    fn applies_a_hardening_as_an_override() {
        let mut m = model();
        let h = Hardening {
            user: Some("999:999".into()),
            cap_add: vec!["CHOWN".into()],
            nnp: true,
        };
        apply(&mut m, "web", &h);
        let v = view(&m["services"]["web"]);
        assert_eq!(v.user.as_deref(), Some("999:999"));
        assert_eq!(v.cap_drop, ["ALL"]);
        assert_eq!(v.cap_add, ["CHOWN"]);
        assert_eq!(v.security_opt, ["label=disable", "no-new-privileges:true"]);
        apply(&mut m, "web", &Hardening::default());
        let v = view(&m["services"]["web"]);
        assert!(v.cap_add.is_empty());
        assert_eq!(v.security_opt, ["label=disable"]);
    }

    #[test]
    fn retain_drops_dependencies_on_removed_services() {
        let mut m = model();
        retain(&mut m, &["web".into()]);
        assert_eq!(m["services"].as_object().unwrap().len(), 1);
        assert!(
            m["services"]["web"]["depends_on"]
                .as_object()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn private_binds_copy_project_paths_only() {
        let project = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(project.path().join("conf")).unwrap();
        std::fs::write(project.path().join("conf/a.conf"), "x").unwrap();
        let dir = project.path().canonicalize().unwrap();
        let mut m = json!({"services": {"s": {"volumes": [
            {"type": "bind", "source": dir.join("conf").display().to_string(), "target": "/c"},
            {"type": "bind", "source": dir.join("data").display().to_string(), "target": "/d"},
            {"type": "bind", "source": "/etc/localtime", "target": "/etc/localtime"},
            {"type": "volume", "source": "v", "target": "/v"}
        ]}}});
        private_binds(&mut m, project.path(), run.path()).unwrap();
        let vols = m["services"]["s"]["volumes"].as_array().unwrap();
        let copy = run.path().join("binds/conf");
        assert_eq!(vols[0]["source"], copy.display().to_string());
        assert_eq!(std::fs::read_to_string(copy.join("a.conf")).unwrap(), "x");
        // Absent: pointed at the private place, not created (Docker creates it).
        assert_eq!(
            vols[1]["source"],
            run.path().join("binds/data").display().to_string()
        );
        assert!(!run.path().join("binds/data").exists());
        assert_eq!(vols[2]["source"], "/etc/localtime");
        assert_eq!(vols[3]["source"], "v");
    }

    #[test]
    fn go_durations() {
        assert_eq!(duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration("5x"), None);
        assert_eq!(duration(""), None);
        let m = model();
        assert_eq!(grace(&m["services"]["web"]), Duration::from_secs(3));
        assert_eq!(grace(&m["services"]["priv"]), Duration::from_secs(10));
    }

    #[test]
    fn health_budget_covers_every_retry() {
        let m = model();
        let floor = Duration::from_secs(5);
        // interval 2s + timeout 30s (default), 3 retries + the first: 128 s.
        assert_eq!(
            health_budget(&m["services"]["web"], floor),
            Some(Duration::from_secs(128))
        );
        assert_eq!(health_budget(&m["services"]["priv"], floor), None);
    }
}
