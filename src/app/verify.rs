//! `compose-harden verify`: run the project on the engine as written and as hardened (the
//! fixer applied in process to a private copy, or `--hardened FILE`), each through the
//! whole lifecycle, and judge every service. Nothing of the user's files changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::inputs::{display_path, options};
use super::projects::BASES;
use super::{ExitStatus, Io, IoResult};
use crate::cli::{ListFormat, VerifyArgs};
use crate::config::{self, Config};
use crate::edit::Applicability;
use crate::fixer;
use crate::runtime::docker::Engine;
use crate::runtime::lifecycle::{self, Run};
use crate::runtime::model::{self, Project};
use crate::runtime::verdict::{self, EngineInfo, Report, ServiceReport, Verdict};

/// An error for the user, and exit 2.
type Failed = String;

pub(super) fn verify(args: VerifyArgs, io: &mut Io) -> IoResult {
    match prepare_and_run(&args, io) {
        Ok((report, errors)) => {
            for e in &errors {
                writeln!(io.stderr, "compose-harden verify: error: {e}")?;
            }
            match args.format {
                ListFormat::Json => {
                    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
                    writeln!(io.stdout, "{text}")?;
                }
                ListFormat::Text => super::verify_text::write(&report, io.stdout)?,
            }
            Ok(if !errors.is_empty() {
                ExitStatus::Error
            } else if report.breaks() {
                ExitStatus::Failure
            } else {
                ExitStatus::Success
            })
        }
        Err(e) => {
            writeln!(io.stderr, "compose-harden verify: error: {e}")?;
            Ok(ExitStatus::Error)
        }
    }
}

/// The compose files of the project and its directory: `-f` files, or the file given, or
/// the compose file (and its override) of the directory given (default `.`).
/// `verify` and `learn` both run one project found this way.
pub(super) fn project_files(
    shared: &crate::cli::Shared,
) -> Result<(Vec<PathBuf>, PathBuf), String> {
    if shared.paths.len() > 1 {
        return Err("one project: one PATH, or its files with -f".into());
    }
    let files = if !shared.files.is_empty() {
        if !shared.paths.is_empty() {
            return Err("give either a PATH or -f files, not both".into());
        }
        shared.files.clone()
    } else {
        let path = shared.paths.first().cloned().unwrap_or_else(|| ".".into());
        if path.is_dir() {
            let base = BASES
                .iter()
                .map(|b| path.join(b))
                .find(|p| p.is_file())
                .ok_or_else(|| format!("{}: no compose file here", display_path(&path)))?;
            let mut files = vec![base];
            for o in ["compose.override.yaml", "compose.override.yml"] {
                if path.join(o).is_file() {
                    files.push(path.join(o));
                }
            }
            files
        } else {
            vec![path]
        }
    };
    for f in &files {
        if !f.is_file() {
            return Err(format!("{}: no such file", display_path(f)));
        }
    }
    let dir = files[0]
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dir = dir.canonicalize().unwrap_or(dir);
    Ok((files, dir))
}

/// Apply the fixer to private copies of `files` (in `tmp`); the copies' paths.
fn harden(
    args: &VerifyArgs,
    files: &[PathBuf],
    dir: &Path,
    tmp: &Path,
) -> Result<Vec<PathBuf>, Failed> {
    let shared = &args.shared;
    let root = crate::project::root_of(&files[0], shared.paths.first().map(PathBuf::as_path));
    let config_path = shared
        .config
        .clone()
        .or_else(|| config::find_within(dir, root.as_deref()));
    let config = match &config_path {
        Some(p) => Some(Config::load(p).map_err(|(_, m)| format!("{}: {m}", display_path(p)))?),
        None => None,
    };
    let (opts, unverified) = options(shared, config.as_ref(), root);
    let min = if unverified {
        Applicability::Unverified
    } else {
        Applicability::Verified
    };
    let mut texts = Vec::new();
    for f in files {
        let bytes = super::inputs::read_file(f, shared.max_size).map_err(|p| p.render())?;
        let text = super::inputs::decode(&display_path(f), bytes).map_err(|p| p.render())?;
        texts.push((text, Some(dir)));
    }
    let fixed = fixer::fix_project(texts, &opts, min)
        .map_err(|(i, e)| super::inputs::file_error(&display_path(&files[i]), e).render())?;
    let mut out = Vec::new();
    for (i, (f, x)) in files.iter().zip(fixed).enumerate() {
        let name = f
            .file_name()
            .map_or("compose.yaml".into(), |n| n.to_owned());
        let copy = tmp.join(format!("{i}")).join(name);
        std::fs::create_dir_all(copy.parent().unwrap_or(tmp))
            .and_then(|_| std::fs::write(&copy, x.text.as_bytes()))
            .map_err(|e| format!("cannot write the hardened copy: {e}"))?;
        out.push(copy);
    }
    Ok(out)
}

/// `services` and every service they depend on, in the model.
pub(super) fn with_dependencies(model: &Value, services: &[String]) -> Vec<String> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = services.to_vec();
    while let Some(s) = stack.pop() {
        if !seen.insert(s.clone()) {
            continue;
        }
        if let Some(d) = model["services"][&s]["depends_on"].as_object() {
            stack.extend(d.keys().cloned());
        }
    }
    seen.into_iter().collect()
}

/// Why a service cannot run: the model's reason, or an image the engine does not have
/// (verify never pulls). The second is also an error.
fn skips(
    engine: &Engine,
    projects: [&Project; 2],
    services: &[String],
) -> (BTreeMap<String, String>, Vec<Failed>) {
    let mut reasons = BTreeMap::new();
    let mut errors = Vec::new();
    let mut present: BTreeMap<String, bool> = BTreeMap::new();
    for svc in services {
        for p in projects {
            let Some(spec) = p.service(svc) else {
                reasons.insert(svc.clone(), "not in the hardened file".to_string());
                break;
            };
            if let Some(r) = model::skip_reason(spec, &p.model) {
                reasons.insert(svc.clone(), r);
                break;
            }
            let image = spec["image"].as_str().unwrap_or_default().to_string();
            let here = *present.entry(image.clone()).or_insert_with(|| {
                engine
                    .call(
                        &["image", "inspect", "--format", "{{.Id}}", &image],
                        Duration::from_secs(30),
                        None,
                    )
                    .is_ok_and(|o| o.ok)
            });
            if !here {
                let build = spec.get("build").is_some();
                let r = format!(
                    "image {image} is not on the engine (verify never pulls; {} it first)",
                    if build { "build" } else { "pull or build" }
                );
                errors.push(format!("service {svc}: {r}"));
                reasons.insert(svc.clone(), r);
                break;
            }
        }
    }
    (reasons, errors)
}

fn prepare_and_run(args: &VerifyArgs, io: &mut Io) -> Result<(Report, Vec<Failed>), Failed> {
    let (files, dir) = project_files(&args.shared)?;
    let engine = Engine::connect()?;
    let written = Project::resolve(&engine, &files, &dir)
        .map_err(|e| format!("{}: {e}", display_path(&files[0])))?;
    let tmp = tempfile::Builder::new()
        .prefix("compose-harden-verify-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let hardened_files = match &args.hardened {
        Some(f) => vec![f.clone()],
        None => harden(args, &files, &dir, tmp.path())?,
    };
    let hardened = Project::resolve(&engine, &hardened_files, &dir).map_err(|e| {
        let shown = args.hardened.as_deref().unwrap_or(&files[0]);
        format!("{} (hardened): {e}", display_path(shown))
    })?;
    let all = written.services();
    for s in &args.services {
        if !all.contains(s) {
            return Err(format!(
                "no service {s:?} in the project (it has: {})",
                all.join(", ")
            ));
        }
    }
    let chosen = if args.services.is_empty() {
        all.clone()
    } else {
        args.services.clone()
    };
    // What the chosen services depend on runs too, and is checked for running the same way.
    let wanted = with_dependencies(&written.model, &chosen);
    let (skipped, errors) = skips(&engine, [&written, &hardened], &wanted);
    let to_run: Vec<String> = wanted
        .into_iter()
        .filter(|s| !skipped.contains_key(s))
        .collect();
    let mut runs: [BTreeMap<String, Run>; 2] = Default::default();
    if !to_run.is_empty() {
        // Both runs at once: each has its own project name, volumes and network, and most
        // of a run is waiting (for health, for the settle time, for a stop).
        let (show, stop) = (io.progress, &io.stop);
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| run_one(&engine, &written, &to_run, "as written", show, stop));
            let b = run_one(&engine, &hardened, &to_run, "hardened", show, stop);
            (
                a.join()
                    .unwrap_or_else(|_| Err("the run as written panicked".into())),
                b,
            )
        });
        runs = [a?, b?];
    }
    let views = model::views(&hardened.model);
    let services = chosen
        .iter()
        .map(|s| {
            verdict::judge(
                s,
                skipped.get(s).cloned(),
                views.get(s).cloned().unwrap_or_default(),
                runs[0].remove(s),
                runs[1].remove(s),
            )
        })
        .collect::<Vec<ServiceReport>>();
    let report = Report {
        schema: verdict::SCHEMA,
        engine: EngineInfo {
            server: engine.server.clone(),
            compose: engine.compose.clone(),
        },
        // As the user named it: relative to the current directory when it is below it.
        project: std::env::current_dir()
            .ok()
            .and_then(|c| c.canonicalize().ok())
            .and_then(|c| dir.strip_prefix(c).ok().map(Path::to_path_buf))
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| display_path(&dir), |d| display_path(&d)),
        services,
    };
    Ok((report, errors))
}

fn run_one(
    engine: &Engine,
    project: &Project,
    services: &[String],
    label: &str,
    show: bool,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<BTreeMap<String, Run>, Failed> {
    let started = Instant::now();
    let progress = move |line: &str| {
        if show {
            // Progress goes straight to the terminal (the runs have no handle on io).
            #[allow(clippy::print_stderr)]
            {
                eprintln!("[{:>5.1} s] {line}", started.elapsed().as_secs_f64());
            }
        }
    };
    let opts = lifecycle::Options {
        progress: &progress,
        label,
        ..lifecycle::Options::new(std::sync::Arc::clone(stop))
    };
    lifecycle::run(engine, project, services, &BTreeMap::new(), &opts)
        .map_err(|e| format!("{label} run: {e} (everything it started was removed)"))
}

/// Count of each verdict, for the closing line.
pub(super) fn tally(services: &[ServiceReport]) -> String {
    let n = |v: Verdict| services.iter().filter(|s| s.verdict == v).count();
    format!(
        "{} works hardened, {} breaks hardened, {} broken as written, {} skipped",
        n(Verdict::WorksHardened),
        n(Verdict::BreaksHardened),
        n(Verdict::BrokenAsWritten),
        n(Verdict::Skipped)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_service_brings_what_it_depends_on() {
        let m: Value = serde_json::json!({"services": {
            "web": {"depends_on": {"app": {"condition": "service_started"}}},
            "app": {"depends_on": {"db": {"condition": "service_healthy"}}},
            "db": {},
            "other": {"depends_on": {"db": {}}}
        }});
        assert_eq!(with_dependencies(&m, &["web".into()]), ["app", "db", "web"]);
        assert_eq!(with_dependencies(&m, &["db".into()]), ["db"]);
        // A cycle ends.
        let c: Value = serde_json::json!({"services": {
            "a": {"depends_on": {"b": {}}}, "b": {"depends_on": {"a": {}}}
        }});
        assert_eq!(with_dependencies(&c, &["a".into()]), ["a", "b"]);
    }
}
