//! The commands that explain rather than edit: rule, rules, why, init, completions, manpage.

use std::path::Path;

use serde::Serialize;

use super::inputs::display_path;
use super::{ExitStatus, Io, IoResult};
use crate::advisor;
use crate::cli::{Cli, ListFormat, WhyArgs};
use crate::config::{self};
use crate::rules::{self, REGISTRY};

pub(super) fn init(io: &mut Io) -> IoResult {
    let path = Path::new(config::FILE_NAMES[0]);
    if path.exists() {
        writeln!(
            io.stderr,
            "{}: error: already exists; not overwritten",
            path.display()
        )?;
        return Ok(ExitStatus::Error);
    }
    if let Err(e) = std::fs::write(path, config::TEMPLATE) {
        writeln!(
            io.stderr,
            "{}: error: {}",
            path.display(),
            e.to_string().to_lowercase()
        )?;
        return Ok(ExitStatus::Error);
    }
    writeln!(io.stderr, "wrote {}", path.display())?;
    Ok(ExitStatus::Success)
}

pub(super) fn completions(shell: clap_complete::Shell, io: &mut Io) -> IoResult {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "compose-harden", &mut *io.stdout);
    Ok(ExitStatus::Success)
}

pub(super) fn manpage(io: &mut Io) -> IoResult {
    let cmd = <Cli as clap::CommandFactory>::command();
    clap_mangen::Man::new(cmd).render(&mut *io.stdout)?;
    Ok(ExitStatus::Success)
}

pub(super) fn rule(code: &str, io: &mut Io) -> IoResult {
    match rules::find(code) {
        Some(r) => {
            writeln!(io.stdout, "# {} ({}): {}\n", r.id, r.name, r.summary)?;
            writeln!(io.stdout, "{}", rules::explanation(r))?;
            Ok(ExitStatus::Success)
        }
        None => {
            let known: Vec<&str> = REGISTRY.iter().map(|r| r.id).collect();
            writeln!(
                io.stderr,
                "error: unknown rule {code:?}; known rules: {}",
                known.join(", ")
            )?;
            Ok(ExitStatus::Error)
        }
    }
}

#[derive(Serialize)]
pub(super) struct JsonRule<'a> {
    id: &'a str,
    name: &'a str,
    summary: &'a str,
    fixable: bool,
    explanation: String,
}

pub(super) fn list_rules(format: ListFormat, io: &mut Io) -> IoResult {
    match format {
        ListFormat::Text => {
            for r in REGISTRY {
                let fix = if r.fixable { "fix" } else { "report" };
                writeln!(
                    io.stdout,
                    "{}  {:<18} {:<7} {}",
                    r.id, r.name, fix, r.summary
                )?;
            }
        }
        ListFormat::Json => {
            let list: Vec<JsonRule> = REGISTRY
                .iter()
                .map(|r| JsonRule {
                    id: r.id,
                    name: r.name,
                    summary: r.summary,
                    fixable: r.fixable,
                    explanation: rules::explanation(r),
                })
                .collect();
            serde_json::to_writer_pretty(&mut *io.stdout, &list).map_err(std::io::Error::other)?;
            writeln!(io.stdout)?;
        }
    }
    Ok(ExitStatus::Success)
}

/// Largest log read by `why --log`.
const MAX_LOG: u64 = 64 << 20;

pub(super) fn why(args: WhyArgs, io: &mut Io) -> IoResult {
    let text = match (&args.line, &args.log) {
        (Some(l), None) => l.clone(),
        (None, Some(p)) => {
            let read = if p.as_os_str() == "-" {
                crate::fsread::read_limited(&mut *io.stdin, MAX_LOG)
            } else {
                crate::fsread::read_bounded(p, MAX_LOG)
            };
            match read {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    writeln!(io.stderr, "{}: error: {}", display_path(p), e.message())?;
                    return Ok(ExitStatus::Error);
                }
            }
        }
        _ => {
            writeln!(io.stderr, "error: give one log line, or --log FILE")?;
            return Ok(ExitStatus::Error);
        }
    };
    let mut seen: Vec<&str> = Vec::new();
    for line in text.lines() {
        let Some(sig) = advisor::explain(line) else {
            continue;
        };
        if seen.contains(&sig.id.as_str()) {
            continue;
        }
        seen.push(&sig.id);
        writeln!(
            io.stdout,
            "{}\n  matched: {} ({})",
            line.trim(),
            sig.id,
            sig.program
        )?;
        writeln!(io.stdout, "  cause: {}", sig.cause)?;
        if !sig.add_caps.is_empty() {
            writeln!(io.stdout, "  add to cap_add: {}", sig.add_caps.join(", "))?;
        }
        writeln!(io.stdout, "  fix: {}", sig.fix)?;
        writeln!(io.stdout, "  sources: {}", sig.sources.join("; "))?;
    }
    if seen.is_empty() {
        writeln!(
            io.stderr,
            "no known failure signature matches; `compose-harden rule CH003` explains what each capability is for"
        )?;
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Success)
}
