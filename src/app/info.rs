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

/// The sections of the man page that clap does not know: exit codes, configuration,
/// environment, files.
const MAN_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Nothing to report: no findings (\fBcheck\fR), an empty diff (\fBfix \-\-diff\fR), or everything done (\fBfix\fR, also when nothing needed fixing).
.TP
\fB1\fR
Findings (\fBcheck\fR), a non\-empty diff (\fBfix \-\-diff\fR, \fBfix \-\-into \-\-diff\fR), or no known signature (\fBwhy\fR). \fB\-\-exit\-zero\fR turns this into 0.
.TP
\fB2\fR
An error: a file that cannot be read or parsed (the others are still processed), an unknown rule in \fB\-\-select\fR/\fB\-\-ignore\fR or the configuration, a missing path or a directory without compose files, a usage error.
.SH CONFIGURATION
\fBcompose\-harden.toml\fR (or \fB.compose\-harden.toml\fR) is found upward from each compose file, or named with \fB\-\-config\fR; \fBcompose\-harden init\fR writes a commented one. Keys: \fBuser\fR (the default user for unknown images), \fBunverified\fR, \fBuserns\-remap\fR, \fBset\-user\fR, \fBselect\fR and \fBignore\fR (rule ids or names, checked), \fB[services.NAME]\fR with \fBcap_add\fR, \fBuser\fR and \fBskip\fR, and \fB[[image]]\fR profiles tried before the built\-in ones. Unknown keys are errors naming the key; flags win over the file.
.PP
Inline, on a service's key line or the line above it: \fB# compose\-harden: ignore[CH001,CH004]\fR (or \fBignore\fR for all rules).
.SH ENVIRONMENT
.TP
\fBNO_COLOR\fR
When set and not empty, \fB\-\-color auto\fR never colours.
.SH FILES
.TP
\fBcompose.hardening.yaml\fR
The overlay \fBfix \-\-into\fR writes; \fBcheck\fR merges it with the base file next to it.
.SH "CONFIDENCE LEVELS"
"#;

pub(super) fn manpage(io: &mut Io) -> IoResult {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut *io.stdout)?;
    man.render_name_section(&mut *io.stdout)?;
    man.render_synopsis_section(&mut *io.stdout)?;
    man.render_description_section(&mut *io.stdout)?;
    man.render_options_section(&mut *io.stdout)?;
    man.render_subcommands_section(&mut *io.stdout)?;
    // Every command with its own synopsis and options.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut buf = Vec::new();
        let m = clap_mangen::Man::new(sub.clone());
        m.render_synopsis_section(&mut buf)?;
        m.render_options_section(&mut buf)?;
        let text = String::from_utf8_lossy(&buf)
            .replace(
                ".SH SYNOPSIS",
                &format!(".SH \"COMMAND: {}\"", sub.get_name().to_uppercase()),
            )
            .replace(".SH OPTIONS", ".SS Options");
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        io.stdout.write_all(text.as_bytes())?;
        writeln!(io.stdout, ".PP\n{}", about.replace('-', "\\-"))?;
    }
    io.stdout.write_all(MAN_EXTRA.as_bytes())?;
    for (level, meaning) in crate::knowledge::CONFIDENCE_LEGEND {
        writeln!(
            io.stdout,
            ".TP\n\\fB{}\\fR\n{}",
            level.replace('-', "\\-"),
            meaning.replace('-', "\\-")
        )?;
    }
    man.render_version_section(&mut *io.stdout)?;
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
