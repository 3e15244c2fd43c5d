//! The commands that explain rather than edit: rule, rules, why, init, completions, manpage.

use std::path::Path;

use serde::Serialize;

use super::{ExitStatus, Io, IoResult};
use crate::cli::{Cli, ListFormat};
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
            writeln!(
                io.stdout,
                "\n## Confidence levels (shown after each reason)"
            )?;
            for (level, meaning) in crate::knowledge::CONFIDENCE_LEGEND {
                writeln!(io.stdout, "- {level}: {meaning}")?;
            }
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
