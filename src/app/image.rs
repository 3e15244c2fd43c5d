//! `inspect` and `profile`: a proposed `[[image]]` row, followed by the evidence it rests
//! on as comments, so that a row is reviewed rather than typed.

use std::path::Path;

use super::inputs::{FileProblem, Input, display_path};
use super::{ExitStatus, Io, IoResult};
use crate::cli::{InspectArgs, ProfileArgs, RowFormat};
use crate::evidence::{self, Evidence};
use crate::knowledge::Profile;
use crate::runtime::inspect::{self, Inspection};

/// Largest Dockerfile or script read.
const MAX_READ: u64 = 1 << 20;

pub(super) fn inspect(args: InspectArgs, io: &mut Io) -> IoResult {
    let path = Path::new(&args.image);
    let result = if path.exists() {
        inspect::inspect_archive(path).map(|i| (i, false))
    } else {
        inspect::inspect_engine(&args.image)
    };
    let (i, cached) = match result {
        Ok(r) => r,
        Err(e) => {
            writeln!(io.stderr, "error: {}", escape(&e))?;
            return Ok(ExitStatus::Error);
        }
    };
    match args.format {
        RowFormat::Json => {
            serde_json::to_writer_pretty(&mut *io.stdout, &i)?;
            writeln!(io.stdout)?;
        }
        RowFormat::Toml => write_inspection(&i, io)?,
    }
    if cached {
        writeln!(
            io.stderr,
            "{}: from the cache (digest {})",
            escape(&i.image),
            i.digest
        )?;
    }
    if let Some(reason) = &i.proposal.cannot_tell {
        writeln!(
            io.stderr,
            "{}: cannot tell: {}",
            escape(&i.image),
            escape(reason)
        )?;
    }
    Ok(ExitStatus::Success)
}

fn write_inspection(i: &Inspection, io: &mut Io) -> std::io::Result<()> {
    writeln!(io.stdout, "# inspected {} ({})", escape(&i.image), i.digest)?;
    let c = &i.config;
    let words = |w: &Option<Vec<String>>| serde_json::to_string(w).unwrap_or_default();
    writeln!(
        io.stdout,
        "# User {:?}, Entrypoint {}, Cmd {}",
        c.user.clone().unwrap_or_default(),
        escape(&words(&c.entrypoint)),
        escape(&words(&c.cmd))
    )?;
    for v in &i.volumes {
        let owner = v.owner.as_deref().unwrap_or("absent");
        let mode = v.mode.as_deref().unwrap_or("");
        writeln!(io.stdout, "# VOLUME {} {owner} {mode}", escape(&v.path))?;
    }
    for f in &i.file_caps {
        writeln!(
            io.stdout,
            "# file capabilities {} on {}",
            f.caps.join(","),
            escape(&f.path)
        )?;
    }
    writeln!(io.stdout, "# setuid/setgid files: {}", i.setuid.len())?;
    write_row(&i.profile, &i.evidence, io)
}

/// The row as TOML, then its evidence as comments.
fn write_row(p: &Profile, evidence: &[Evidence], io: &mut Io) -> std::io::Result<()> {
    #[derive(serde::Serialize)]
    struct Rows<'a> {
        image: [&'a Profile; 1],
    }
    let text = toml::to_string(&Rows { image: [p] }).map_err(std::io::Error::other)?;
    write!(io.stdout, "{text}")?;
    writeln!(io.stdout, "# evidence:")?;
    if evidence.is_empty() {
        writeln!(io.stdout, "#   (none)")?;
    }
    let mut last: Option<(&str, usize, &str)> = None;
    for e in evidence {
        // One line may hold several findings: show it once.
        if last == Some((&e.file, e.line, &e.text)) {
            continue;
        }
        last = Some((&e.file, e.line, &e.text));
        let at = if e.line == 0 {
            e.file.clone()
        } else {
            format!("{}:{}", e.file, e.line)
        };
        writeln!(io.stdout, "#   {}: {}", escape(&at), escape(&e.text))?;
    }
    Ok(())
}

/// Control characters (and bidi overrides) shown escaped, so an untrusted line cannot end
/// a comment or move the cursor.
pub(super) fn escape(s: &str) -> String {
    crate::escape::visible(s).into_owned()
}

fn read_small(path: &Path) -> Result<String, String> {
    let shown = display_path(path);
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {}", e.to_string().to_lowercase()))?;
    if !meta.is_file() || meta.len() > MAX_READ {
        return Err(format!("{shown}: not a regular file of at most 1 MiB"));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{shown}: {}", e.to_string().to_lowercase()))
}

pub(super) fn profile(args: ProfileArgs, io: &mut Io) -> IoResult {
    if args.dockerfile.is_none() && args.entrypoint.is_empty() {
        writeln!(
            io.stderr,
            "error: give --dockerfile FILE and/or --entrypoint FILE"
        )?;
        return Ok(ExitStatus::Error);
    }
    let mut ev = Vec::new();
    let mut read = Vec::new();
    let mut scripts: Vec<std::path::PathBuf> = args.entrypoint.clone();
    if let Some(df) = &args.dockerfile {
        let text = match read_small(df) {
            Ok(t) => t,
            Err(e) => {
                writeln!(io.stderr, "error: {}", escape(&e))?;
                return Ok(ExitStatus::Error);
            }
        };
        let (found, copied) = evidence::read_dockerfile(&display_path(df), &text);
        ev.extend(found);
        read.push(display_path(df));
        let dir = df.parent().unwrap_or(Path::new("."));
        for s in copied {
            let p = dir.join(&s);
            if p.is_file() && !scripts.contains(&p) {
                scripts.push(p);
            }
        }
    }
    for s in &scripts {
        match read_small(s) {
            Ok(t) => {
                ev.extend(evidence::read_script(&display_path(s), &t));
                read.push(display_path(s));
            }
            Err(e) => {
                writeln!(io.stderr, "error: {}", escape(&e))?;
                return Ok(ExitStatus::Error);
            }
        }
    }
    let proposal = evidence::propose(&ev);
    let repos = if args.repo.is_empty() {
        vec!["REPLACE/ME".to_string()]
    } else {
        args.repo.clone()
    };
    let sources = if args.source.is_empty() {
        read
    } else {
        args.source.clone()
    };
    let mut row = proposal.to_profile(repos, args.tag.clone(), None, sources);
    row.tags = args.tag.clone();
    writeln!(
        io.stdout,
        "# proposed by compose-harden profile: review every line before use"
    )?;
    write_row(&row, &ev, io)?;
    if args.repo.is_empty() {
        writeln!(
            io.stderr,
            "note: no --repo given; set `repos` before using the row"
        )?;
    }
    if let Some(reason) = &proposal.cannot_tell {
        writeln!(io.stderr, "cannot tell: {}", escape(reason))?;
    }
    Ok(ExitStatus::Success)
}

/// `--inspect`: inspect through the engine the images of services that no profile (from
/// configuration or built in) matches, and add the rows to every file's profiles. Says on
/// stderr what it inspected, and when no engine answers.
pub(super) fn add_inspected(
    opts: &mut [Result<(crate::fixer::Options, bool), FileProblem>],
    inputs: &[Result<Input, FileProblem>],
    io: &mut Io,
) {
    let mut wanted: Vec<(String, crate::knowledge::ImageRef)> = Vec::new();
    for (input, o) in inputs.iter().zip(opts.iter()) {
        let (Ok(input), Ok((o, _))) = (input, o) else {
            continue;
        };
        let Ok(doc) = crate::document::Document::parse(input.text.clone(), Default::default())
        else {
            continue;
        };
        for s in &doc.services {
            let t = &doc.tree;
            if t.lookup(s.map, "build").is_some() {
                continue;
            }
            let Some(raw) = t.lookup(s.map, "image").and_then(|(_, v, _)| t.scalar(v)) else {
                continue;
            };
            let Some(r) = crate::knowledge::ImageRef::parse(raw) else {
                continue;
            };
            let known = crate::knowledge::lookup(&o.settings.extra_profiles, &r).is_some();
            if !known && !wanted.iter().any(|(_, w)| *w == r) {
                wanted.push((r.display(), r));
            }
        }
    }
    if wanted.is_empty() {
        return;
    }
    if !inspect::engine_reachable() {
        let _ = writeln!(
            io.stderr,
            "note: --inspect: no container engine is reachable (DOCKER_HOST); {} not inspected",
            super::fix::plural(wanted.len(), "image", "images")
        );
        return;
    }
    let mut rows = Vec::new();
    for (name, r) in wanted {
        match inspect::inspect_engine(&name) {
            Ok((i, cached)) => {
                let mut row = i.profile;
                row.repos = vec![r.repo.clone()];
                row.tags = r.tag.iter().cloned().collect();
                let from = if cached { ", from the cache" } else { "" };
                let _ = writeln!(
                    io.stderr,
                    "inspected {}: {} ({}{from})",
                    escape(&name),
                    row.confidence.as_str(),
                    i.digest
                );
                rows.push(row);
            }
            Err(e) => {
                let _ = writeln!(io.stderr, "note: --inspect: {}", escape(&e));
            }
        }
    }
    for (o, _) in opts.iter_mut().flatten() {
        o.settings.extra_profiles.extend(rows.iter().cloned());
    }
}
