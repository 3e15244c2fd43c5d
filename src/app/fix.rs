//! `compose-harden fix` and `fix --diff`.

use std::path::{Path, PathBuf};

use super::inputs::*;
use super::{ExitStatus, Io, IoResult};
use crate::cli::FixArgs;
use crate::diff;
use crate::edit::Applicability;
use crate::escape::visible;
use crate::fixer::{self, Fixed};
use crate::report;
use crate::rules::Diagnostic;
use crate::write;

/// Counts for the closing summary.
#[derive(Default)]
pub(super) struct Tally {
    files: usize,
    changed_files: usize,
    fixed: usize,
    left_unverified: usize,
    unfixable: usize,
    errors: usize,
    interrupted: usize,
    /// Services with findings: every fix applied / some fix left for --unverified / some
    /// finding without a fix.
    services_done: usize,
    services_unverified: usize,
    services_human: usize,
}

impl Tally {
    fn add(&mut self, fixed: &Fixed) {
        self.files += 1;
        if fixed.changed() {
            self.changed_files += 1;
        }
        // Per service: (some finding has no fix, some fix was left unapplied).
        let mut by_service: std::collections::HashMap<&str, (bool, bool)> =
            std::collections::HashMap::new();
        for (d, applied) in fixed.diagnostics.iter().zip(&fixed.applied) {
            let e = by_service.entry(d.service.as_str()).or_default();
            e.0 |= d.fix.is_none();
            e.1 |= !applied;
        }
        for (human, left) in by_service.into_values() {
            if human {
                self.services_human += 1;
            } else if left {
                self.services_unverified += 1;
            } else {
                self.services_done += 1;
            }
        }
        for (d, applied) in fixed.diagnostics.iter().zip(&fixed.applied) {
            match (&d.fix, applied) {
                (Some(_), true) => self.fixed += 1,
                (Some(_), false) => self.left_unverified += 1,
                (None, _) => self.unfixable += 1,
            }
        }
    }
}

fn interrupted(display: &str) -> FileProblem {
    problem(display, INTERRUPTED.into())
}

fn problem(display: &str, message: String) -> FileProblem {
    FileProblem {
        display: display.to_string(),
        at: None,
        message,
    }
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(super) fn fix(args: FixArgs, io: &mut Io) -> IoResult {
    if let Some(status) = super::habits::prepare(&args.shared, io)? {
        return Ok(status);
    }
    if args.diff
        && args
            .pr_body
            .as_deref()
            .is_some_and(|p| p.as_os_str() == "-")
    {
        writeln!(
            io.stderr,
            "error: --pr-body - and --diff both write to standard output; give the body a file"
        )?;
        return Ok(ExitStatus::Error);
    }
    if let Some(overlay) = &args.into {
        return super::into::fix_into(&args, overlay, io);
    }
    let diff_mode = args.diff;
    let results = process(&args.shared, io, |files, opts, unverified| {
        let min = if unverified {
            Applicability::Unverified
        } else {
            Applicability::Verified
        };
        let dirs: Vec<Option<PathBuf>> = files.iter().map(dir_of).collect();
        let opts = &fixer::Options {
            diffs: diff_mode,
            ..opts.clone()
        };
        // The fixer takes the texts (and keeps only their fingerprints).
        let texts: Vec<(String, Option<&Path>)> = files
            .iter_mut()
            .zip(&dirs)
            .map(|(f, d)| (std::mem::take(&mut f.text), d.as_deref()))
            .collect();
        let fixed = fixer::fix_project(texts, opts, min)
            .map_err(|(i, e)| (i, file_error(&files[i].display, e)))?;
        // Diffs are written here, on the worker threads, not while printing.
        let diffs: Vec<Option<String>> = files
            .iter()
            .zip(&fixed)
            .map(|(f, x)| {
                let hunks = x.hunks.as_deref().filter(|_| x.changed())?;
                Some(diff::with_header(f.display.trim_start_matches('/'), hunks))
            })
            .collect();
        if !diff_mode && fixed.iter().any(|x| x.changed()) {
            // Asked to stop while this project was read: leave all of its files as they are.
            if crate::fsread::stop_flag().load(std::sync::atomic::Ordering::SeqCst) {
                return Err((0, interrupted(&files[0].display)));
            }
            // A symlinked compose file whose target lies outside the project is not written
            // (checked for every file of the project before any is written).
            for (i, (f, x)) in files.iter().zip(&fixed).enumerate() {
                if let (true, Some(path), Some(root), false) =
                    (x.changed(), &f.path, &f.root, opts.settings.allow_outside)
                {
                    crate::project::inside(path, root).map_err(|e| {
                        let message = format!("its real path is {e}");
                        (i, problem(&f.display, message))
                    })?;
                }
            }
            crate::fsread::reading_flag().store(false, std::sync::atomic::Ordering::SeqCst);
            for (i, (f, x)) in files.iter().zip(&fixed).enumerate() {
                if let (true, Some(path), Some(original)) = (x.changed(), &f.path, x.original) {
                    write::replace(path, original, x.text.as_bytes())
                        .map_err(|m| (i, problem(&f.display, m)))?;
                }
            }
        }
        Ok(fixed.into_iter().zip(diffs).collect())
    });

    let mut tally = Tally::default();
    let mut any_diff = false;
    let quiet = args.shared.quiet;
    for r in &results {
        match r {
            Err(p) => {
                tally.errors += 1;
                if p.message == INTERRUPTED {
                    tally.interrupted += 1;
                } else {
                    writeln!(io.stderr, "{}", p.render())?;
                }
            }
            Ok((input, (fixed, diff))) => {
                tally.add(fixed);
                if args.shared.verbose {
                    writeln!(
                        io.stderr,
                        "{}: {}",
                        visible(&input.display),
                        if fixed.changed() {
                            "changed"
                        } else {
                            "unchanged"
                        }
                    )?;
                }
                if (args.show_fixes || args.shared.verbose) && !quiet {
                    for (d, applied) in fixed.diagnostics.iter().zip(&fixed.applied) {
                        if *applied {
                            writeln!(
                                io.stderr,
                                "{}:{}:{}: {} {} service {:?}: {}",
                                visible(&input.display),
                                d.line,
                                d.column,
                                if diff_mode { "would fix" } else { "fixed" },
                                d.rule,
                                d.service,
                                visible(d.fix_title.as_deref().unwrap_or(""))
                            )?;
                        }
                    }
                }
                if !quiet {
                    for d in fixed.diagnostics.iter().filter(|d| d.fix.is_none()) {
                        writeln!(
                            io.stderr,
                            "{}:{}:{}: {} {} ({})",
                            visible(&input.display),
                            d.line,
                            d.column,
                            d.rule,
                            visible(&d.message),
                            visible(&d.reason)
                        )?;
                    }
                }
                if input.path.is_none() && !diff_mode {
                    io.stdout.write_all(fixed.text.as_bytes())?;
                    continue;
                }
                if let Some(d) = diff {
                    any_diff = true;
                    if io.color {
                        io.stdout.write_all(diff::colorize(d).as_bytes())?;
                    } else {
                        io.stdout.write_all(d.as_bytes())?;
                    }
                }
            }
        }
    }
    for stale in write::take_removed() {
        let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
        let shown = cwd
            .as_deref()
            .and_then(|c| stale.strip_prefix(c).ok())
            .unwrap_or(&stale);
        writeln!(
            io.stderr,
            "{}: removed a temporary file left by an interrupted run",
            visible(&display_path(shown))
        )?;
    }
    if let Some(path) = &args.pr_body {
        let (files, errors) = split(&results, |(f, _)| {
            (&f.diagnostics[..], Some(&f.applied[..]))
        });
        let body = super::prbody::shape(
            &report::markdown(&files, &errors, !diff_mode),
            super::prbody::MAX_BODY,
        );
        crate::fsread::reading_flag().store(false, std::sync::atomic::Ordering::SeqCst);
        let nothing = tally.changed_files == 0 && errors.is_empty();
        if nothing {
            if !quiet {
                writeln!(io.stderr, "no pull-request body written: nothing changed")?;
            }
        } else if path.as_os_str() == "-" {
            io.stdout.write_all(body.as_bytes())?;
        } else if let Err(m) = write::new_file(path, body.as_bytes()) {
            let p = problem(
                &display_path(path),
                format!("cannot write the pull-request body: {m}"),
            );
            writeln!(io.stderr, "{}", p.render())?;
            tally.errors += 1;
        }
    }
    if !quiet {
        let verb = if diff_mode { "would fix" } else { "fixed" };
        let mut line = format!(
            "{verb} {} in {}",
            plural(tally.fixed, "finding", "findings"),
            plural(tally.changed_files, "file", "files")
        );
        if tally.left_unverified > 0 {
            line.push_str(&format!(
                "; left out {} that may break a service (use --unverified)",
                plural(tally.left_unverified, "unverified fix", "unverified fixes")
            ));
        }
        if tally.unfixable > 0 {
            line.push_str(&format!(
                "; {} no fix can address",
                plural(tally.unfixable, "finding", "findings")
            ));
        }
        if tally.errors > tally.interrupted {
            line.push_str(&format!(
                "; {} failed",
                plural(tally.errors - tally.interrupted, "file", "files")
            ));
        }
        if tally.interrupted > 0 {
            line.push_str(&format!(
                "; interrupted: {} left unchanged",
                plural(tally.interrupted, "file", "files")
            ));
        }
        writeln!(io.stderr, "{line}")?;
        // On a terminal (or with --verbose), a summary table for runs over several files.
        if (io.progress || args.shared.verbose) && tally.files + tally.errors > 1 {
            writeln!(
                io.stderr,
                "  files     {:>6} scanned  {:>6} changed  {:>6} failed\n  services  {:>6} hardened {:>6} need --unverified  {:>6} need a human",
                tally.files + tally.errors,
                tally.changed_files,
                tally.errors,
                tally.services_done,
                tally.services_unverified,
                tally.services_human,
            )?;
        }
    }
    Ok(if tally.errors > 0 {
        ExitStatus::Error
    } else if diff_mode && any_diff && !args.shared.exit_zero {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Split processed results into per-file reports and errors, in input order.
pub(super) fn split<'a, T>(
    results: &'a Processed<T>,
    view: impl Fn(&'a T) -> (&'a [Diagnostic], Option<&'a [bool]>),
) -> (Vec<report::FileReport<'a>>, Vec<report::ErrorReport<'a>>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok((input, t)) => {
                let (diagnostics, applied) = view(t);
                files.push(report::FileReport {
                    path: &input.display,
                    diagnostics,
                    applied,
                });
            }
            Err(p) => errors.push(report::ErrorReport {
                path: &p.display,
                at: p.at,
                message: &p.message,
            }),
        }
    }
    (files, errors)
}
