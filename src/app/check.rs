//! `compose-harden check`.

use std::path::{Path, PathBuf};

use super::fix::{plural, split};
use super::inputs::*;
use super::{ExitStatus, Io, IoResult};
use crate::cli::{CheckArgs, Format};
use crate::edit::Applicability;
use crate::fixer;
use crate::report;
use crate::rules::Diagnostic;

pub(super) fn check(args: CheckArgs, io: &mut Io) -> IoResult {
    if let Some(status) = super::habits::prepare(&args.shared, io)? {
        return Ok(status);
    }
    let results = process(&args.shared, io, |files, opts, _| {
        let dirs: Vec<Option<PathBuf>> = files.iter().map(dir_of).collect();
        let mut docs = Vec::with_capacity(files.len());
        for (i, f) in files.iter_mut().enumerate() {
            docs.push(
                fixer::parse(std::mem::take(&mut f.text), opts)
                    .map_err(|e| (i, file_error(&f.display, e)))?,
            );
        }
        let refs: Vec<&crate::document::Document> = docs.iter().collect();
        let dir_refs: Vec<Option<&Path>> = dirs.iter().map(|d| d.as_deref()).collect();
        let mut all = fixer::check_project(&refs, opts, &dir_refs);
        for diags in &mut all {
            diags.sort_by_key(|d| (d.line, d.column, d.rule));
        }
        Ok(all)
    });
    let (files, errors) = split(&results, |d: &Vec<Diagnostic>| (&d[..], None));
    // Findings are shown by position; rules run (and fixes apply) per service.
    let findings: usize = files.iter().map(|f| f.diagnostics.len()).sum();
    let count = |a: Applicability| {
        files
            .iter()
            .flat_map(|f| f.diagnostics)
            .filter(|d| d.fix.as_ref().is_some_and(|x| x.applicability == a))
            .count()
    };
    let (verified, unverified) = (
        count(Applicability::Verified),
        count(Applicability::Unverified),
    );
    let rendered = match args.format {
        _ if args.statistics => super::habits::statistics(&files),
        Format::Text if io.color => super::habits::color_text(&report::text(&files)),
        Format::Text => report::text(&files),
        Format::Concise => super::habits::concise(&report::text(&files)),
        Format::Json => report::json(&files, &errors),
        Format::Sarif => report::sarif(&files, &errors),
        Format::Github => report::github(&files, &errors),
        Format::Markdown => report::markdown(&files, &errors, false),
    };
    io.stdout.write_all(rendered.as_bytes())?;
    for p in results.iter().filter_map(|r| r.as_ref().err()) {
        writeln!(io.stderr, "{}", p.render())?;
    }
    if !args.shared.quiet {
        let mut line = format!(
            "{} in {}",
            plural(findings, "finding", "findings"),
            plural(files.len(), "file", "files")
        );
        if findings > 0 {
            line.push_str(&format!(
                " ({verified} fixable by `compose-harden fix`, {unverified} more with --unverified, {} need a human)",
                findings - verified - unverified
            ));
        }
        if !errors.is_empty() {
            line.push_str(&format!(
                "; {} failed",
                plural(errors.len(), "file", "files")
            ));
        }
        writeln!(io.stderr, "{line}")?;
    }
    Ok(if !errors.is_empty() {
        ExitStatus::Error
    } else if findings > 0 && !args.shared.exit_zero {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
