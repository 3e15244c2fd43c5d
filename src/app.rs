//! The commands. They write to the streams they are handed (the library never prints on
//! its own): stdout carries only the diff, the fixed text or machine output; everything
//! addressed to a person goes to stderr.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::advisor;
use crate::cli::{CheckArgs, Cli, Command, FixArgs, Format, ListFormat, Shared, WhyArgs};
use crate::config::{self, Config};
use crate::diff;
use crate::discover::{self, Found};
use crate::edit::Applicability;
use crate::engine::{self, FileError, Fixed, Options};
use crate::facts::Settings;
use crate::report;
use crate::rules::{self, Diagnostic, REGISTRY};
use crate::source::LineIndex;
use crate::write;
use crate::yaml::Limits;

/// The process exit status, decided in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Nothing to report, or everything done.
    Success = 0,
    /// Findings (`check`) or a non-empty diff (`fix --diff`).
    Failure = 1,
    /// An error: bad input, unreadable file, usage.
    Error = 2,
}

/// The streams a command may use.
pub struct Io<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    /// Colour the diff (stdout is a terminal and NO_COLOR is unset).
    pub color: bool,
    /// Show a progress bar on stderr for long runs (stderr is a terminal, not --quiet).
    pub progress: bool,
    /// Set when the user asks to stop (SIGINT, SIGTERM): files not yet started are skipped,
    /// files being written are finished, so every file is either old or new.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

pub fn run(cli: Cli, io: &mut Io) -> ExitStatus {
    let result = match cli.command {
        Command::Fix(args) => fix(args, io),
        Command::Check(args) => check(args, io),
        Command::Rule { code } => rule(&code, io),
        Command::Rules { format } => list_rules(format, io),
        Command::Why(args) => why(args, io),
        Command::Init => init(io),
        Command::Completions { shell } => completions(shell, io),
        Command::Manpage => manpage(io),
    };
    // A closed pipe (`| head`) is not an error worth a message.
    result.unwrap_or(ExitStatus::Success)
}

type IoResult = std::io::Result<ExitStatus>;

const INTERRUPTED: &str = "interrupted before this file was processed; it is unchanged";
type ConfigError = (Option<(usize, usize)>, String);

/// One input file (or standard input), read and decoded.
struct Input {
    /// The path as shown to users and in diffs (`/`-separated, no leading `./`).
    display: String,
    path: Option<PathBuf>,
    text: String,
    /// Named with `-f`: one of the files of the project.
    project: bool,
}

/// A problem with one file: `path:line:col: message`.
struct FileProblem {
    display: String,
    at: Option<(usize, usize)>,
    message: String,
}

impl FileProblem {
    fn render(&self) -> String {
        match self.at {
            Some((l, c)) => format!("{}:{l}:{c}: error: {}", self.display, self.message),
            None => format!("{}: error: {}", self.display, self.message),
        }
    }
}

fn display_path(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// Options for one file: command-line flags over its configuration file.
fn options(shared: &Shared, config: Option<&Config>) -> (Options, bool) {
    let c = config.cloned().unwrap_or_default();
    let mut disabled = c.ignore.clone();
    disabled.extend(shared.ignore.iter().cloned());
    let opts = Options {
        settings: Settings {
            userns_remap: shared.userns_remap || c.userns_remap.unwrap_or(false),
            set_user: shared.set_user || c.set_user.unwrap_or(false),
            default_user: shared
                .default_user
                .clone()
                .or(c.user.clone())
                .unwrap_or_else(|| "10001:10001".into()),
            extra_profiles: c.image.clone(),
            overrides: c.services.clone(),
        },
        limits: Limits::default(),
        disabled,
    };
    (opts, shared.unverified || c.unverified.unwrap_or(false))
}

/// Load the configuration governing each input (cached per config file).
fn configs(
    shared: &Shared,
    inputs: &[Result<Input, FileProblem>],
) -> Vec<Result<(Options, bool), FileProblem>> {
    let mut cache: HashMap<PathBuf, Result<Config, ConfigError>> = HashMap::new();
    inputs
        .iter()
        .map(|input| {
            let path = match &shared.config {
                Some(p) => Some(p.clone()),
                None => {
                    let dir = match input {
                        Ok(i) => dir_of(i).unwrap_or_else(|| PathBuf::from(".")),
                        Err(_) => PathBuf::from("."),
                    };
                    config::find(&dir)
                }
            };
            let Some(path) = path else {
                return Ok(options(shared, None));
            };
            let loaded = cache
                .entry(path.clone())
                .or_insert_with(|| Config::load(&path));
            match loaded {
                Ok(c) => Ok(options(shared, Some(c))),
                Err((at, m)) => Err(FileProblem {
                    display: display_path(&path),
                    at: *at,
                    message: m.clone(),
                }),
            }
        })
        .collect()
}

fn read_file(path: &Path, max_mib: u64) -> Result<Vec<u8>, FileProblem> {
    let display = display_path(path);
    let problem = |m: String| FileProblem {
        display: display.clone(),
        at: None,
        message: m,
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => match std::fs::symlink_metadata(path) {
            Ok(_) => problem("broken symlink: its target does not exist".into()),
            Err(_) => problem("no such file or directory".into()),
        },
        std::io::ErrorKind::PermissionDenied => problem("permission denied".into()),
        _ => problem(e.to_string().to_lowercase()),
    })?;
    if meta.is_dir() {
        return Err(problem("is a directory, expected a compose file".into()));
    }
    if !meta.is_file() {
        return Err(problem(
            "not a regular file (a FIFO, socket or device); skipped".into(),
        ));
    }
    if meta.len() > max_mib * 1024 * 1024 {
        return Err(problem(format!(
            "the file is {} bytes, over the limit of {max_mib} MiB (--max-size)",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => problem("permission denied".into()),
        _ => problem(e.to_string().to_lowercase()),
    })
}

fn decode(display: &str, bytes: Vec<u8>) -> Result<String, FileProblem> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(FileProblem {
            display: display.to_string(),
            at: Some((1, 1)),
            message: "the file is UTF-16; compose files must be UTF-8".into(),
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let (l, c) = LineIndex::new(&prefix).line_col(&prefix, prefix.len());
        FileProblem {
            display: display.to_string(),
            at: Some((l, c)),
            message: "invalid UTF-8; compose files must be UTF-8 text".into(),
        }
    })
}

/// Gather the inputs named on the command line.
fn inputs(shared: &Shared, io: &mut Io) -> (Vec<Result<Input, FileProblem>>, bool) {
    let mut paths = shared.paths.clone();
    if paths.is_empty() && shared.files.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let mut out = Vec::new();
    let mut from_stdin = false;
    if paths.iter().any(|p| p.as_os_str() == "-") {
        from_stdin = true;
        let mut buf = Vec::new();
        let r = io.stdin.read_to_end(&mut buf);
        out.push(match r {
            Err(e) => Err(FileProblem {
                display: "-".into(),
                at: None,
                message: format!("cannot read standard input: {e}"),
            }),
            Ok(_) => decode("-", buf).map(|text| Input {
                display: "-".into(),
                path: None,
                text,
                project: false,
            }),
        });
        paths.retain(|p| p.as_os_str() != "-");
    }
    let found = match discover::discover(&paths, &shared.include, &shared.exclude) {
        Ok(_) if paths.is_empty() => Vec::new(),
        Ok(f) => f,
        Err(e) => {
            out.push(Err(FileProblem {
                display: "compose-harden".into(),
                at: None,
                message: e,
            }));
            return (out, from_stdin);
        }
    };
    let max = shared.max_size;
    let loaded: Vec<Result<Input, FileProblem>> = found
        .into_par_iter()
        .map(|f| match f {
            Found::Error(p, e) => Err(FileProblem {
                display: display_path(&p),
                at: None,
                message: e,
            }),
            Found::File(p) => {
                let display = display_path(&p);
                let bytes = read_file(&p, max)?;
                let text = decode(&display, bytes)?;
                Ok(Input {
                    display,
                    path: Some(p),
                    text,
                    project: false,
                })
            }
        })
        .collect();
    out.extend(loaded);
    for p in &shared.files {
        let display = display_path(p);
        out.push(
            read_file(p, max)
                .and_then(|bytes| decode(&display, bytes))
                .map(|text| Input {
                    display,
                    path: Some(p.clone()),
                    text,
                    project: true,
                }),
        );
    }
    (out, from_stdin)
}

fn file_error(display: &str, e: FileError) -> FileProblem {
    match e {
        FileError::Input(i) => FileProblem {
            display: display.to_string(),
            at: Some((i.line, i.col)),
            message: i.message,
        },
        FileError::Refused(m) => FileProblem {
            display: display.to_string(),
            at: None,
            message: m,
        },
    }
}

fn dir_of(input: &Input) -> Option<PathBuf> {
    input.path.as_ref().map(|p| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

/// Counts for the closing summary.
#[derive(Default)]
struct Tally {
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
        let mut names: Vec<&str> = fixed
            .diagnostics
            .iter()
            .map(|d| d.service.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let mine = || {
                fixed
                    .diagnostics
                    .iter()
                    .zip(&fixed.applied)
                    .filter(|(d, _)| d.service == name)
            };
            if mine().any(|(d, _)| d.fix.is_none()) {
                self.services_human += 1;
            } else if mine().any(|(_, applied)| !applied) {
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

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

type Processed<T> = Vec<Result<(Input, T), FileProblem>>;

/// What processing one input gave.
type Outcome<T> = Result<(Input, T), FileProblem>;

/// One input with its options, waiting for its group to run.
type Slot = (
    Result<Input, FileProblem>,
    Result<(Options, bool), FileProblem>,
);

/// Base files that Compose merges a same-directory override file into.
const BASES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Which inputs are analysed together: the `-f` files as one project, each override file
/// (`compose.override.yaml`) with its base file in the same directory, the rest alone.
fn groups(inputs: &[Result<Input, FileProblem>]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let project: Vec<usize> = (0..inputs.len())
        .filter(|&i| inputs[i].as_ref().is_ok_and(|x| x.project))
        .collect();
    let mut taken = vec![false; inputs.len()];
    for &i in &project {
        taken[i] = true;
    }
    let path = |i: usize| inputs[i].as_ref().ok().and_then(|x| x.path.clone());
    for i in 0..inputs.len() {
        if taken[i] {
            continue;
        }
        let Some(p) = path(i) else { continue };
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let is_override =
            name.starts_with("compose.override.") || name.starts_with("docker-compose.override.");
        if !is_override {
            continue;
        }
        let base = (0..inputs.len()).find(|&j| {
            !taken[j]
                && j != i
                && path(j).is_some_and(|b| {
                    b.parent() == p.parent()
                        && b.file_name()
                            .is_some_and(|n| BASES.contains(&n.to_string_lossy().as_ref()))
                })
        });
        if let Some(b) = base {
            taken[i] = true;
            taken[b] = true;
            out.push(vec![b, i]);
        }
    }
    for (i, t) in taken.iter().enumerate() {
        if !t {
            out.push(vec![i]);
        }
    }
    if !project.is_empty() {
        out.push(project);
    }
    out
}

/// Run `work` on every group of inputs (one file, or the files of one project) in
/// parallel, with the options of the group's first file; results come back in input order.
/// `work` reports a failure with the index (within the group) of the file at fault.
fn process<T: Send>(
    shared: &Shared,
    io: &mut Io,
    work: impl Fn(&mut [Input], &Options, bool) -> Result<Vec<T>, (usize, FileProblem)> + Sync,
) -> Processed<T> {
    let (inputs, _) = inputs(shared, io);
    let opts = configs(shared, &inputs);
    let groups = groups(&inputs);
    let stop = std::sync::Arc::clone(&io.stop);
    // A bar only where a person watches, and only for runs long enough to need one.
    let bar = if io.progress && !shared.quiet && groups.len() >= 200 {
        let b = indicatif::ProgressBar::new(groups.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files  {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut slots: Vec<Option<Slot>> = inputs.into_iter().zip(opts).map(Some).collect();
    let jobs: Vec<Vec<(usize, Slot)>> = groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|&i| (i, slots[i].take().expect("each input is in one group")))
                .collect()
        })
        .collect();
    let mut done: Vec<(usize, Outcome<T>)> = jobs
        .into_par_iter()
        .flat_map_iter(|job| {
            let indices: Vec<usize> = job.iter().map(|(i, _)| *i).collect();
            let mut files = Vec::with_capacity(job.len());
            let mut first_opts = None;
            let mut failed: Option<FileProblem> = None;
            for (_, (input, opts)) in job {
                match (input, opts) {
                    (Ok(input), Ok(o)) => {
                        first_opts.get_or_insert(o);
                        files.push(input);
                    }
                    (Ok(_), Err(p)) | (Err(p), _) => {
                        failed.get_or_insert(p);
                    }
                }
            }
            let results: Vec<Result<(Input, T), FileProblem>> = if let Some(p) = failed {
                // One unreadable file of a project stops the whole project.
                let mut v = vec![Err(p)];
                v.extend(files.into_iter().map(|f| {
                    Err(FileProblem {
                        display: f.display.clone(),
                        at: None,
                        message: "not processed: another file of the same project failed".into(),
                    })
                }));
                v
            } else if stop.load(std::sync::atomic::Ordering::SeqCst) {
                files
                    .into_iter()
                    .map(|f| {
                        Err(FileProblem {
                            display: f.display,
                            at: None,
                            message: INTERRUPTED.into(),
                        })
                    })
                    .collect()
            } else {
                let (opts, unverified) = first_opts.expect("a group has at least one file");
                match work(&mut files, &opts, unverified) {
                    Ok(outs) => files.into_iter().zip(outs).map(Ok).collect(),
                    Err((bad, p)) => files
                        .iter()
                        .enumerate()
                        .map(|(k, f)| {
                            if k == bad {
                                Err(FileProblem {
                                    display: p.display.clone(),
                                    at: p.at,
                                    message: p.message.clone(),
                                })
                            } else {
                                Err(FileProblem {
                                    display: f.display.clone(),
                                    at: None,
                                    message: format!(
                                        "not processed: {} of the same project failed",
                                        files[bad].display
                                    ),
                                })
                            }
                        })
                        .collect(),
                }
            };
            bar.inc(1);
            indices.into_iter().zip(results).collect::<Vec<_>>()
        })
        .collect();
    bar.finish_and_clear();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn fix(args: FixArgs, io: &mut Io) -> IoResult {
    let diff_mode = args.diff;
    let results = process(&args.shared, io, |files, opts, unverified| {
        let min = if unverified {
            Applicability::Unverified
        } else {
            Applicability::Verified
        };
        let dirs: Vec<Option<PathBuf>> = files.iter().map(dir_of).collect();
        // The engine takes the texts; they come back as `fixed.original`.
        let texts: Vec<(String, Option<&Path>)> = files
            .iter_mut()
            .zip(&dirs)
            .map(|(f, d)| (std::mem::take(&mut f.text), d.as_deref()))
            .collect();
        let fixed = engine::fix_project(texts, opts, min)
            .map_err(|(i, e)| (i, file_error(&files[i].display, e)))?;
        if !diff_mode {
            for (i, (f, x)) in files.iter().zip(&fixed).enumerate() {
                if let (true, Some(path)) = (x.changed(), &f.path) {
                    write::replace(path, x.original.as_bytes(), x.text.as_bytes()).map_err(
                        |m| {
                            (
                                i,
                                FileProblem {
                                    display: f.display.clone(),
                                    at: None,
                                    message: m,
                                },
                            )
                        },
                    )?;
                }
            }
        }
        Ok(fixed)
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
            Ok((input, fixed)) => {
                tally.add(fixed);
                if args.shared.verbose {
                    writeln!(
                        io.stderr,
                        "{}: {}",
                        input.display,
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
                                input.display,
                                d.line,
                                d.column,
                                if diff_mode { "would fix" } else { "fixed" },
                                d.rule,
                                d.service,
                                d.fix_title.as_deref().unwrap_or("")
                            )?;
                        }
                    }
                }
                if !quiet {
                    for d in fixed.diagnostics.iter().filter(|d| d.fix.is_none()) {
                        writeln!(
                            io.stderr,
                            "{}:{}:{}: {} {} ({})",
                            input.display, d.line, d.column, d.rule, d.message, d.reason
                        )?;
                    }
                }
                if input.path.is_none() && !diff_mode {
                    io.stdout.write_all(fixed.text.as_bytes())?;
                    continue;
                }
                if diff_mode && fixed.changed() {
                    any_diff = true;
                    let path = input.display.trim_start_matches('/');
                    let d = match &fixed.edits {
                        Some(edits) => diff::unified_from_edits(path, &fixed.original, edits),
                        None => diff::unified(path, &fixed.original, &fixed.text),
                    };
                    let d = if io.color { diff::colorize(&d) } else { d };
                    io.stdout.write_all(d.as_bytes())?;
                }
            }
        }
    }
    if let Some(path) = &args.pr_body {
        let (files, errors) = split(&results, |f| (&f.diagnostics[..], Some(&f.applied[..])));
        let body = report::markdown(&files, &errors, !diff_mode);
        if let Err(e) = std::fs::write(path, body) {
            writeln!(
                io.stderr,
                "{}: error: cannot write the pull-request body: {}",
                display_path(path),
                e.to_string().to_lowercase()
            )?;
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
    } else if diff_mode && any_diff {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Split processed results into per-file reports and errors, in input order.
fn split<'a, T>(
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

fn check(args: CheckArgs, io: &mut Io) -> IoResult {
    let results = process(&args.shared, io, |files, opts, _| {
        let dirs: Vec<Option<PathBuf>> = files.iter().map(dir_of).collect();
        let mut docs = Vec::with_capacity(files.len());
        for (i, f) in files.iter_mut().enumerate() {
            docs.push(
                engine::parse(std::mem::take(&mut f.text), opts)
                    .map_err(|e| (i, file_error(&f.display, e)))?,
            );
        }
        let refs: Vec<&crate::document::Document> = docs.iter().collect();
        let dir_refs: Vec<Option<&Path>> = dirs.iter().map(|d| d.as_deref()).collect();
        let mut all = engine::check_project(&refs, opts, &dir_refs);
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
        Format::Text => report::text(&files),
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
    } else if findings > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

fn init(io: &mut Io) -> IoResult {
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

fn completions(shell: clap_complete::Shell, io: &mut Io) -> IoResult {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "compose-harden", &mut *io.stdout);
    Ok(ExitStatus::Success)
}

fn manpage(io: &mut Io) -> IoResult {
    let cmd = <Cli as clap::CommandFactory>::command();
    clap_mangen::Man::new(cmd).render(&mut *io.stdout)?;
    Ok(ExitStatus::Success)
}

fn rule(code: &str, io: &mut Io) -> IoResult {
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
struct JsonRule<'a> {
    id: &'a str,
    name: &'a str,
    summary: &'a str,
    fixable: bool,
    explanation: String,
}

fn list_rules(format: ListFormat, io: &mut Io) -> IoResult {
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

fn why(args: WhyArgs, io: &mut Io) -> IoResult {
    let text = match (&args.line, &args.log) {
        (Some(l), None) => l.clone(),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut s = String::new();
            io.stdin.read_to_string(&mut s)?;
            s
        }
        (None, Some(p)) => match std::fs::read(p) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                writeln!(
                    io.stderr,
                    "{}: error: {}",
                    display_path(p),
                    e.to_string().to_lowercase()
                )?;
                return Ok(ExitStatus::Error);
            }
        },
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
