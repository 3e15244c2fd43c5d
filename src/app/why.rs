//! `compose-harden why`: explain failure log lines, from one line, a log file, or
//! `docker compose logs` output (whose `db-1 | ` prefix names the service); print the
//! `cap_add` patch per service and, with `--write`, apply it through the fixer.

use std::collections::BTreeMap;
use std::path::Path;

use super::inputs::{decode, display_path, read_file};
use super::{ExitStatus, Io, IoResult};
use crate::advisor::{self, Signature};
use crate::cli::WhyArgs;
use crate::document::Document;
use crate::edit::Applicability;
use crate::fixer::{self, Options};
use crate::knowledge::{self, ImageRef};
use crate::overlay::{self, Value};

/// Remove terminal colour sequences (`docker compose logs` colours its prefixes on a tty).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `db-1  | message` → (`db`, `message`). Compose v2 names containers `service-N`, v1
/// `project_service_N`; the prefix is the container name.
pub(super) fn split_prefix(line: &str) -> Option<(String, &str)> {
    let (prefix, rest) = line.split_once('|')?;
    let name = prefix.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let base = match name.rsplit_once(['-', '_']) {
        Some((b, n)) if !b.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => b,
        _ => name,
    };
    Some((base.to_string(), rest.strip_prefix(' ').unwrap_or(rest)))
}

/// Largest log read by `why --log` / `--logs`.
const MAX_LOG: u64 = 64 << 20;

/// The log text and, per line, the service it came from.
fn lines(args: &WhyArgs, io: &mut Io) -> Result<Vec<(Option<String>, String)>, String> {
    let read = |p: &Path, io: &mut Io| -> Result<String, String> {
        let bytes = if p.as_os_str() == "-" {
            crate::fsread::read_limited(&mut *io.stdin, MAX_LOG)
        } else {
            crate::fsread::read_bounded(p, MAX_LOG)
        }
        .map_err(|e| format!("{}: error: {}", display_path(p), e.message()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let text = match (&args.line, &args.log, &args.logs) {
        (Some(l), None, None) => l.clone(),
        (None, Some(p), None) => read(p, io)?,
        (None, None, Some(p)) => {
            let text = read(p, io)?;
            return Ok(text
                .lines()
                .map(|l| {
                    let l = strip_ansi(l);
                    match split_prefix(&l) {
                        Some((s, rest)) => (Some(s), rest.to_string()),
                        None => (args.service.clone(), l.clone()),
                    }
                })
                .collect());
        }
        _ => return Err("error: give one log line, --log FILE or --logs FILE".into()),
    };
    Ok(text
        .lines()
        .map(|l| (args.service.clone(), l.to_string()))
        .collect())
}

/// Who the service runs as, said the way a person checks it.
fn runs_as(doc: &Document, service: &str) -> Option<String> {
    if let Some(Value::Scalar(u)) = overlay::merged(&[doc], service, "user") {
        return Some(format!("{u} (its `user:`)"));
    }
    let Some(Value::Scalar(image)) = overlay::merged(&[doc], service, "image") else {
        return None;
    };
    let r = ImageRef::parse(&image)?;
    let p = knowledge::lookup(&[], &r)?;
    Some(match &p.user {
        Some(u) if p.image_user == "root" => {
            format!("{u} ({image} starts as root and steps down to {u})")
        }
        _ => format!("{} (the user of {image})", p.image_user),
    })
}

fn uid_of(runs: &str) -> &str {
    runs.split(' ').next().unwrap_or(runs)
}

fn explain_one(
    io: &mut Io,
    line: &str,
    service: Option<&str>,
    sig: &Signature,
    doc: Option<&Document>,
) -> std::io::Result<()> {
    let from = service
        .map(|s| format!(" [service {s}]"))
        .unwrap_or_default();
    writeln!(
        io.stdout,
        "{}{from}\n  matched: {} ({})",
        line.trim(),
        sig.id,
        sig.program
    )?;
    writeln!(io.stdout, "  cause: {}", sig.cause)?;
    if !sig.add_caps.is_empty() {
        writeln!(io.stdout, "  add to cap_add: {}", sig.add_caps.join(", "))?;
    }
    if sig.ownership {
        let runs = match (doc, service) {
            (Some(d), Some(s)) => runs_as(d, s),
            _ => None,
        };
        let uid = runs.as_deref().map(uid_of).unwrap_or("UID:GID");
        if let Some(r) = &runs {
            writeln!(io.stdout, "  runs as: {r}")?;
        }
        writeln!(
            io.stdout,
            "  answer 1: give the path to the service's user: `sudo chown -R {uid} <the host directory or volume mounted there>`"
        )?;
        writeln!(
            io.stdout,
            "  answer 2: run it as root with DAC_OVERRIDE: remove `user:` and add DAC_OVERRIDE to cap_add (root may then write any file it can see)"
        )?;
    } else {
        writeln!(io.stdout, "  fix: {}", sig.fix)?;
    }
    writeln!(io.stdout, "  sources: {}", sig.sources.join("; "))
}

pub(super) fn why(args: WhyArgs, io: &mut Io) -> IoResult {
    let lines = match lines(&args, io) {
        Ok(l) => l,
        Err(m) => {
            writeln!(io.stderr, "{m}")?;
            return Ok(ExitStatus::Error);
        }
    };
    let opts = Options {
        settings: Default::default(),
        limits: Default::default(),
        disabled: vec![],
        diffs: false,
    };
    let doc = match &args.file {
        None => None,
        Some(p) => match load(p, &opts) {
            Ok(d) => Some(d),
            Err(m) => {
                writeln!(io.stderr, "{m}")?;
                return Ok(ExitStatus::Error);
            }
        },
    };
    let mut seen: Vec<(Option<String>, &str)> = Vec::new();
    // Per service: the capabilities its lines ask for.
    let mut patch: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (service, line) in &lines {
        let Some(sig) = advisor::explain(line) else {
            continue;
        };
        if seen.contains(&(service.clone(), sig.id.as_str())) {
            continue;
        }
        seen.push((service.clone(), &sig.id));
        explain_one(io, line, service.as_deref(), sig, doc.as_ref())?;
        if let Some(s) = service
            && !sig.add_caps.is_empty()
        {
            let caps = patch.entry(s.clone()).or_default();
            caps.extend(sig.add_caps.iter().cloned());
            caps.sort();
            caps.dedup();
        }
    }
    if seen.is_empty() {
        writeln!(
            io.stderr,
            "no known failure signature matches; `compose-harden rule CH003` explains what each capability is for"
        )?;
        return Ok(ExitStatus::Failure);
    }
    print_patch(io, &patch, args.file.as_deref())?;
    match (&args.file, args.write, doc) {
        (Some(p), true, Some(d)) => write_patch(io, p, d, &patch, opts),
        _ => Ok(ExitStatus::Success),
    }
}

fn load(p: &Path, opts: &Options) -> Result<Document, String> {
    let display = display_path(p);
    let bytes = read_file(p, 10).map_err(|e| e.render())?;
    let text = decode(&display, bytes).map_err(|e| e.render())?;
    fixer::parse(text, opts).map_err(|e| super::inputs::file_error(&display, e).render())
}

fn print_patch(
    io: &mut Io,
    patch: &BTreeMap<String, Vec<String>>,
    file: Option<&Path>,
) -> std::io::Result<()> {
    if patch.is_empty() {
        return Ok(());
    }
    let target = file
        .map(display_path)
        .unwrap_or_else(|| "the compose file".into());
    writeln!(io.stdout, "\nadd to {target}:\nservices:")?;
    for (service, caps) in patch {
        writeln!(io.stdout, "  {service}:\n    cap_add:")?;
        for c in caps {
            writeln!(io.stdout, "      - {c}")?;
        }
    }
    Ok(())
}

/// Apply the patch with the fixer: each service's `cap_add` (as it is, plus what the log
/// asks for) is given to CH008 as the service's configured `cap_add`, so the edit is made,
/// re-parsed and checked like any other fix.
fn write_patch(
    io: &mut Io,
    path: &Path,
    doc: Document,
    patch: &BTreeMap<String, Vec<String>>,
    mut opts: Options,
) -> IoResult {
    let display = display_path(path);
    for (service, caps) in patch {
        let mut all = match overlay::merged(&[&doc], service, "cap_add") {
            Some(Value::List(i)) => i,
            _ => vec![],
        };
        all.extend(caps.iter().cloned());
        opts.settings.overrides.insert(
            service.clone(),
            crate::config::ServiceOverride {
                cap_add: Some(all),
                ..Default::default()
            },
        );
    }
    opts.disabled = crate::rules::REGISTRY
        .iter()
        .filter(|r| r.id != "CH008")
        .map(|r| r.id.to_string())
        .collect();
    let dir = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    });
    let fixed = match fixer::fix(doc.into_text(), &opts, dir, Applicability::Verified) {
        Ok(f) => f,
        Err(e) => {
            writeln!(
                io.stderr,
                "{}",
                super::inputs::file_error(&display, e).render()
            )?;
            return Ok(ExitStatus::Error);
        }
    };
    let (Some(fp), true) = (fixed.original, fixed.changed()) else {
        writeln!(
            io.stderr,
            "{display}: nothing written: the services already have these capabilities or do not drop ALL"
        )?;
        return Ok(ExitStatus::Success);
    };
    if let Err(m) = crate::write::replace(path, fp, fixed.text.as_bytes()) {
        writeln!(io.stderr, "{display}: error: {m}")?;
        return Ok(ExitStatus::Error);
    }
    writeln!(
        io.stderr,
        "{display}: added {}",
        fixed
            .diagnostics
            .iter()
            .filter_map(|d| d.fix_title.as_deref().map(|t| format!(
                "{} to {}",
                t.trim_start_matches("add "),
                d.service
            )))
            .collect::<Vec<_>>()
            .join("; ")
    )?;
    Ok(ExitStatus::Success)
}
