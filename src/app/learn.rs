//! `compose-harden learn`: for each service, the least-privilege `cap_add` measured on the
//! engine ([`crate::runtime::learn`]), written as `measured` `[[image]]` rows to a profile
//! file beside the compose file, which `fix` reads as verified knowledge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::inputs::{display_path, options};
use super::{ExitStatus, Io, IoResult};
use crate::cli::LearnArgs;
use crate::config::{self, Config};
use crate::knowledge::{self, Class, Confidence, ImageRef, Profile};
use crate::runtime::docker::Engine;
use crate::runtime::learn::{self, Failure, Learned};
use crate::runtime::lifecycle;
use crate::runtime::model::{self, Project};
use crate::runtime::verdict;

/// The profile file `learn` writes and `fix` reads, beside the compose file.
pub const LEARNED_FILE: &str = "compose-harden.learned.toml";

pub(super) fn learn(args: LearnArgs, io: &mut Io) -> IoResult {
    match run(&args, io) {
        Ok(status) => Ok(status),
        Err(e) => {
            writeln!(io.stderr, "compose-harden learn: error: {}", esc(&e))?;
            Ok(ExitStatus::Error)
        }
    }
}

/// One service's outcome.
enum Outcome {
    Skipped(String),
    Learned(Box<(Learned, Profile, f64)>),
}

fn run(args: &LearnArgs, io: &mut Io) -> Result<ExitStatus, String> {
    let (files, dir) = super::verify::project_files(&args.shared)?;
    let engine = Engine::connect()?;
    let project = Project::resolve(&engine, &files, &dir)
        .map_err(|e| format!("{}: {e}", display_path(&files[0])))?;
    let root = crate::project::root_of(&files[0], args.shared.paths.first().map(PathBuf::as_path));
    let config_path = args
        .shared
        .config
        .clone()
        .or_else(|| config::find_within(&dir, root.as_deref()));
    let config = match &config_path {
        Some(p) => Some(Config::load(p).map_err(|(_, m)| format!("{}: {m}", display_path(p)))?),
        None => None,
    };
    let (mut opts, _) = options(&args.shared, config.as_ref(), root);
    let out_file = args
        .write_profiles
        .clone()
        .unwrap_or_else(|| dir.join(LEARNED_FILE));
    let mut rows = read_rows(&out_file)?;
    opts.settings
        .extra_profiles
        .splice(0..0, rows.iter().cloned());
    let all = project.services();
    if let Some(s) = args.services.iter().find(|s| !all.contains(s)) {
        return Err(format!(
            "no service {s:?} in the project (it has: {})",
            all.join(", ")
        ));
    }
    let chosen = if args.services.is_empty() {
        all
    } else {
        args.services.clone()
    };
    let mut outcomes = Vec::new();
    for svc in &chosen {
        let o = learn_one(
            &engine,
            &project,
            svc,
            &opts.settings.extra_profiles,
            !args.services.is_empty(),
            io,
        )?;
        outcomes.push((svc.clone(), o));
    }
    let mut status = ExitStatus::Success;
    let mut total_runs = 0;
    for (svc, o) in &outcomes {
        match o {
            Outcome::Skipped(r) => {
                writeln!(io.stdout, "{svc}: skipped: {r}").map_err(|e| e.to_string())?
            }
            Outcome::Learned(b) => {
                let (l, row, secs) = &**b;
                total_runs += l.runs;
                write_learned(svc, l, row, *secs, io).map_err(|e| e.to_string())?;
                if l.cap_add.is_none() {
                    status = ExitStatus::Failure;
                    continue;
                }
                rows.retain(|r| !(r.repos == row.repos && r.tags == row.tags));
                rows.push(row.clone());
            }
        }
    }
    if outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Learned(_)))
    {
        write_rows(&out_file, &rows)?;
        writeln!(
            io.stdout,
            "{} runs in all; wrote {} to {}",
            total_runs,
            super::fix::plural(rows.len(), "row", "rows"),
            display_path(&out_file)
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(status)
}

fn learn_one(
    engine: &Engine,
    project: &Project,
    svc: &str,
    profiles: &[Profile],
    asked: bool,
    io: &mut Io,
) -> Result<Outcome, String> {
    let Some(spec) = project.service(svc) else {
        return Ok(Outcome::Skipped("not in the project".into()));
    };
    if let Some(r) = model::skip_reason(spec, &project.model) {
        return Ok(Outcome::Skipped(r));
    }
    let image = spec["image"].as_str().unwrap_or_default().to_string();
    let Some(reference) = ImageRef::parse(&image) else {
        return Ok(Outcome::Skipped(format!("image {image:?} cannot be named")));
    };
    let profile = knowledge::lookup(profiles, &reference);
    if let Some(p) = profile.filter(|p| !asked && p.confidence >= Confidence::Verified) {
        return Ok(Outcome::Skipped(format!(
            "already {} ({}); name it with --service to learn it anyway",
            p.confidence.as_str(),
            p.sources.first().map_or("", |s| s.as_str())
        )));
    }
    let id = engine
        .call(
            &[
                "image",
                "inspect",
                "--format",
                "{{.Id}} {{.Config.User}}",
                "--",
                &image,
            ],
            Duration::from_secs(30),
            None,
        )
        .map_err(|e| e.to_string())?;
    if !id.ok {
        return Ok(Outcome::Skipped(format!(
            "image {image} is not on the engine (learn never pulls)"
        )));
    }
    let (digest, image_user) = id.stdout.trim().split_once(' ').map_or_else(
        || (id.stdout.trim().to_string(), String::new()),
        |(d, u)| (d.to_string(), u.trim().to_string()),
    );
    let written_user = spec["user"].as_str().map(str::to_string);
    let runs_as_root = crate::evidence::is_root(written_user.as_deref().unwrap_or(&image_user));
    // Nothing known: what the image says about itself is the first guess.
    let inspected = match profile {
        None => crate::runtime::inspect::inspect_engine(&image)
            .ok()
            .map(|(i, _)| i.profile),
        Some(_) => None,
    };
    let profile = profile.or(inspected.as_ref());
    let start: Vec<String> = profile.map_or_else(Vec::new, |p| {
        if runs_as_root {
            p.caps_as_root.clone()
        } else {
            p.caps_as_nonroot.clone()
        }
    });
    let try_user = (runs_as_root && !binds(spec))
        .then(|| profile.and_then(|p| p.user.clone()))
        .flatten();
    let services = super::verify::with_dependencies(&project.model, &[svc.to_string()]);
    let began = Instant::now();
    let show = io.progress;
    let once = |h: Option<&model::Hardening>| -> Result<lifecycle::Run, String> {
        if show {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("learn {svc}: {h:?}");
            }
        }
        let overrides: BTreeMap<String, model::Hardening> = h
            .map(|h| (svc.to_string(), h.clone()))
            .into_iter()
            .collect();
        let opts = lifecycle::Options {
            label: "learn",
            ..lifecycle::Options::new(std::sync::Arc::clone(&io.stop))
        };
        let mut runs = lifecycle::run(engine, project, &services, &overrides, &opts)?;
        runs.remove(svc)
            .ok_or_else(|| format!("the run has no service {svc}"))
    };
    // As written first: a service broken as written cannot be learned, and the uids its
    // processes run as are what a hardened run must keep (a failed step-down may leave a
    // worker silently running as root).
    let written = once(None)?;
    if let Some(p) = written.failed() {
        return Ok(Outcome::Skipped(format!(
            "it fails as written, at {}: {}",
            p.phase.as_str(),
            p.detail
        )));
    }
    let uids = |r: &lifecycle::Run| -> std::collections::BTreeSet<u32> {
        r.processes.iter().map(|p| p.uid).collect()
    };
    let want = uids(&written);
    let start_nnp = profile.is_none_or(|p| p.nnp);
    let mut learned = learn::search(&start, start_nnp, try_user.as_deref(), |h| {
        let r = once(Some(h))?;
        if let Some(p) = r.failed() {
            let (advice, from) = verdict::advise(&p.detail, &r, &h.cap_add);
            return Ok(Some(Failure {
                phase: p.phase.as_str().to_string(),
                detail: from.unwrap_or_else(|| p.detail.clone()),
                advice,
            }));
        }
        let got = uids(&r);
        Ok((h.user.is_none() && !want.is_empty() && got != want).then(|| Failure {
            phase: "processes".into(),
            detail: format!(
                "its processes run as uids {got:?} where as written they ran as {want:?} (a change of user failed quietly)"
            ),
            advice: vec!["SETGID".into(), "SETUID".into()],
        }))
    })?;
    learned.runs += 1;
    let secs = began.elapsed().as_secs_f64();
    let row = row(
        &reference,
        &digest,
        &image_user,
        runs_as_root,
        profile,
        &learned,
        engine,
    );
    Ok(Outcome::Learned(Box::new((learned, row, secs))))
}

/// Whether the service mounts a host directory.
fn binds(spec: &Value) -> bool {
    spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| v["type"].as_str() == Some("bind"))
}

fn row(
    r: &ImageRef,
    digest: &str,
    image_user: &str,
    as_root: bool,
    known: Option<&Profile>,
    l: &Learned,
    engine: &Engine,
) -> Profile {
    let caps = l.cap_add.clone().unwrap_or_default();
    let class = match known.map(|p| p.class) {
        Some(c) => c,
        None if !as_root => Class::NonRoot,
        None if caps.iter().any(|c| c == "SETUID" || c == "SETGID") => Class::RootThenDrop,
        None => Class::RootNoDrop,
    };
    let mut why: Vec<String> = l
        .needed
        .iter()
        .map(|n| format!("{} (without it, {}: {})", n.cap, n.phase, n.failure))
        .collect();
    if why.is_empty() {
        why.push("no capability".into());
    }
    let mut sources = vec![format!(
        "compose-harden learn on Docker {} (compose {}), image {digest}, {}, scenarios first-start ready restart stop, {} runs",
        engine.server,
        engine.compose,
        today(),
        l.runs
    )];
    sources.extend(
        l.needed
            .iter()
            .map(|n| format!("without {}: {}: {}", n.cap, n.phase, n.failure)),
    );
    let mut notes = Vec::new();
    if let Some((u, res)) = &l.as_user {
        notes.push(match res {
            Ok(()) => format!("works as {u} with no capabilities on named volumes"),
            Err(e) => format!("as {u} with no capabilities it fails ({e})"),
        });
    }
    if !l.nnp {
        notes.push("works only with no-new-privileges off (a setuid helper or a gain of privileges at start)".into());
    }
    let tags: Vec<String> = r.tag.iter().cloned().collect();
    Profile {
        repos: vec![r.repo.clone()],
        tags: tags.clone(),
        checked_tags: tags,
        digest: Some(digest.to_string()),
        class,
        image_user: if image_user.is_empty() {
            "root".into()
        } else {
            image_user.to_string()
        },
        user: l
            .as_user
            .as_ref()
            .filter(|(_, r)| r.is_ok())
            .map(|(u, _)| u.clone()),
        caps_as_root: if as_root { caps.clone() } else { Vec::new() },
        caps_as_nonroot: if as_root { Vec::new() } else { caps },
        low_ports: Vec::new(),
        nnp: l.nnp,
        confidence: Confidence::Measured,
        why: format!("measured: needs {}", why.join("; ")),
        notes: (!notes.is_empty()).then(|| notes.join("; ")),
        sources,
    }
}

fn write_learned(
    svc: &str,
    l: &Learned,
    row: &Profile,
    secs: f64,
    io: &mut Io,
) -> std::io::Result<()> {
    let image = match row.tags.first() {
        Some(t) => format!("{}:{t}", row.repos[0]),
        None => row.repos[0].clone(),
    };
    writeln!(
        io.stdout,
        "{svc}: {image} ({})",
        row.digest.as_deref().unwrap_or("")
    )?;
    match &l.cap_add {
        Some(caps) => writeln!(
            io.stdout,
            "  cap_add: [{}]  no-new-privileges: {}",
            caps.join(", "),
            l.nnp
        )?,
        None => writeln!(
            io.stdout,
            "  not learned: {}",
            l.gave_up.as_deref().unwrap_or("")
        )?,
    }
    for n in &l.needed {
        writeln!(
            io.stdout,
            "    {}: without it, {}: {}",
            n.cap, n.phase, n.failure
        )?;
    }
    if let Some(notes) = &row.notes {
        writeln!(io.stdout, "  {}", esc(notes))?;
    }
    writeln!(io.stdout, "  {} runs, {secs:.1} s", l.runs)
}

/// Log lines, service and image names are the container's and the file's: shown escaped.
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    crate::escape::visible(s)
}

/// The rows of a learned-profile file (none when it does not exist).
pub(super) fn read_rows(path: &Path) -> Result<Vec<Profile>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => knowledge::parse_profiles(&t).map_err(|e| format!("{}: {e}", display_path(path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", display_path(path))),
    }
}

fn write_rows(path: &Path, rows: &[Profile]) -> Result<(), String> {
    #[derive(serde::Serialize)]
    struct Rows<'a> {
        image: &'a [Profile],
    }
    let body = toml::to_string(&Rows { image: rows }).map_err(|e| e.to_string())?;
    let text = format!(
        "# Measured by `compose-harden learn`: each row holds for the image digest it names;\n\
         # learn again when the image changes. `fix` reads this file as verified knowledge.\n\n{body}"
    );
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", display_path(path)))
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
