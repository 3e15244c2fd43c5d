//! Habits users bring from ruff, hadolint and shellcheck: rule selection checked up
//! front, `--color`, `--statistics`, the concise format.

use super::{ExitStatus, Io};
use crate::cli::{ColorChoice, Shared};
use crate::report::FileReport;

/// Settle what the flags decide before any file is read: the colour, and the rule names
/// of `--select`/`--ignore` (an unknown one is a usage error, exit 2).
pub(super) fn prepare(shared: &Shared, io: &mut Io) -> std::io::Result<Option<ExitStatus>> {
    io.color = match shared.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => io.color,
    };
    let bad = super::select::unknown(&shared.ignore, "--ignore")
        .or_else(|| super::select::unknown(&shared.select, "--select"));
    if let Some(m) = bad {
        writeln!(io.stderr, "error: {m}")?;
        return Ok(Some(ExitStatus::Error));
    }
    for p in &shared.paths {
        if p.as_os_str().is_empty() {
            writeln!(io.stderr, "error: an empty path was given")?;
            return Ok(Some(ExitStatus::Error));
        }
    }
    Ok(None)
}

/// Only the first line of each finding of the text report.
pub(super) fn concise(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|l| !l.starts_with("  "))
        .collect()
}

/// Findings per rule, most first: `count  id  name  (n fixable)`.
pub(super) fn statistics(files: &[FileReport]) -> String {
    let mut counts: Vec<(&str, &str, usize, usize)> = Vec::new();
    for d in files.iter().flat_map(|f| f.diagnostics) {
        let i = match counts.iter().position(|c| c.0 == d.rule) {
            Some(i) => i,
            None => {
                counts.push((d.rule, d.rule_name, 0, 0));
                counts.len() - 1
            }
        };
        counts[i].2 += 1;
        counts[i].3 += usize::from(d.fix.is_some());
    }
    counts.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    let width = counts.iter().map(|c| c.1.len()).max().unwrap_or(0);
    counts
        .iter()
        .map(|(id, name, n, fixable)| {
            format!("{n:>5}  {id}  {name:<width$}  ({fixable} fixable)\n")
        })
        .collect()
}

const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The text report coloured for a terminal: the place bold, the rule red, a verified fix
/// green, an unverified one yellow, the reason dim.
pub(super) fn color_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.split_inclusive('\n') {
        let (body, eol) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if let Some(rest) = body.strip_prefix("  fix (verified)") {
            out.push_str(&format!("  {GREEN}fix (verified){RESET}{rest}{eol}"));
        } else if let Some(rest) = body.strip_prefix("  fix (unverified)") {
            out.push_str(&format!("  {YELLOW}fix (unverified){RESET}{rest}{eol}"));
        } else if body.starts_with("  ") {
            out.push_str(&format!("{DIM}{body}{RESET}{eol}"));
        } else if let Some((place, rest)) = split_place(body) {
            let (rule, message) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!(
                "{BOLD}{place}{RESET} {BOLD}{RED}{rule}{RESET} {message}{eol}"
            ));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// `path:line:col:` and the rest of a finding's first line.
fn split_place(line: &str) -> Option<(&str, &str)> {
    let i = line.find(": CH")?;
    Some((&line[..=i], &line[i + 2..]))
}
