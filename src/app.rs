//! The commands. They write to the streams they are handed (the library never prints on
//! its own): stdout carries only the diff, the fixed text or machine output; everything
//! addressed to a person goes to stderr.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::advisor;
use crate::cli::{CheckArgs, Cli, Command, FixArgs, Format, ListFormat, Shared, WhyArgs};
use crate::diff;
use crate::discover::{self, Found};
use crate::edit::Applicability;
use crate::engine::{self, FileError, Fixed, Options};
use crate::facts::Settings;
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
}

pub fn run(cli: Cli, io: &mut Io) -> ExitStatus {
    let result = match cli.command {
        Command::Fix(args) => fix(args, io),
        Command::Check(args) => check(args, io),
        Command::Rule { code } => rule(&code, io),
        Command::Rules { format } => list_rules(format, io),
        Command::Why(args) => why(args, io),
    };
    // A closed pipe (`| head`) is not an error worth a message.
    result.unwrap_or(ExitStatus::Success)
}

type IoResult = std::io::Result<ExitStatus>;

/// One input file (or standard input), read and decoded.
struct Input {
    /// The path as shown to users and in diffs (`/`-separated, no leading `./`).
    display: String,
    path: Option<PathBuf>,
    text: String,
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

fn options(shared: &Shared) -> Options {
    Options {
        settings: Settings {
            userns_remap: shared.userns_remap,
            set_user: shared.set_user,
            default_user: shared.default_user.clone(),
            extra_profiles: Vec::new(),
        },
        limits: Limits::default(),
        disabled: shared.ignore.clone(),
    }
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
    if paths.is_empty() {
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
            }),
        });
        paths.retain(|p| p.as_os_str() != "-");
        if paths.is_empty() {
            return (out, from_stdin);
        }
    }
    let found = match discover::discover(&paths, &shared.include, &shared.exclude) {
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
                })
            }
        })
        .collect();
    out.extend(loaded);
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
}

impl Tally {
    fn add(&mut self, fixed: &Fixed) {
        self.files += 1;
        if fixed.changed() {
            self.changed_files += 1;
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

fn fix(args: FixArgs, io: &mut Io) -> IoResult {
    let opts = options(&args.shared);
    let min = if args.shared.unverified {
        Applicability::Unverified
    } else {
        Applicability::Verified
    };
    let (inputs, _) = inputs(&args.shared, io);
    let diff_mode = args.diff;
    // Fix (and write) every file in parallel; report in the stable input order.
    let results: Vec<Result<(Input, Fixed), FileProblem>> = inputs
        .into_par_iter()
        .map(|input| {
            let input = input?;
            let dir = dir_of(&input);
            let fixed = engine::fix(input.text.clone(), &opts, dir.as_deref(), min)
                .map_err(|e| file_error(&input.display, e))?;
            if !diff_mode
                && fixed.changed()
                && let Some(path) = &input.path
            {
                write::replace(path, input.text.as_bytes(), fixed.text.as_bytes()).map_err(
                    |m| FileProblem {
                        display: input.display.clone(),
                        at: None,
                        message: m,
                    },
                )?;
            }
            Ok((input, fixed))
        })
        .collect();

    let mut tally = Tally::default();
    let mut any_diff = false;
    for r in &results {
        match r {
            Err(p) => {
                tally.errors += 1;
                writeln!(io.stderr, "{}", p.render())?;
            }
            Ok((input, fixed)) => {
                tally.add(fixed);
                if args.show_fixes && !args.shared.quiet {
                    for (d, applied) in fixed.diagnostics.iter().zip(&fixed.applied) {
                        if *applied {
                            writeln!(
                                io.stderr,
                                "{}:{}:{}: fixed {} ({}): {}",
                                input.display,
                                d.line,
                                d.column,
                                d.rule,
                                d.service,
                                d.fix_title.as_deref().unwrap_or("")
                            )?;
                        }
                    }
                }
                if !args.shared.quiet {
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
                    let d = diff::unified(&input.display, &input.text, &fixed.text);
                    let d = if io.color { diff::colorize(&d) } else { d };
                    io.stdout.write_all(d.as_bytes())?;
                }
            }
        }
    }
    if !args.shared.quiet {
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
        if tally.errors > 0 {
            line.push_str(&format!(
                "; {} failed",
                plural(tally.errors, "file", "files")
            ));
        }
        writeln!(io.stderr, "{line}")?;
    }
    Ok(if tally.errors > 0 {
        ExitStatus::Error
    } else if diff_mode && any_diff {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

#[derive(Serialize)]
struct JsonFile<'a> {
    path: &'a str,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'a str,
    name: &'a str,
    service: &'a str,
    line: usize,
    column: usize,
    message: &'a str,
    reason: &'a str,
    confidence: &'a str,
    source: Option<&'a str>,
    fix: Option<JsonFix<'a>>,
}

#[derive(Serialize)]
struct JsonFix<'a> {
    title: &'a str,
    applicability: &'a str,
    edits: &'a [crate::edit::Edit],
}

#[derive(Serialize)]
struct JsonError<'a> {
    path: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    files: Vec<JsonFile<'a>>,
    errors: Vec<JsonError<'a>>,
}

fn check(args: CheckArgs, io: &mut Io) -> IoResult {
    let opts = options(&args.shared);
    let (inputs, _) = inputs(&args.shared, io);
    let results: Vec<Result<(Input, Vec<Diagnostic>), FileProblem>> = inputs
        .into_par_iter()
        .map(|input| {
            let input = input?;
            let dir = dir_of(&input);
            let doc = engine::parse(input.text.clone(), &opts)
                .map_err(|e| file_error(&input.display, e))?;
            let diags = engine::check(&doc, &opts, dir.as_deref());
            Ok((input, diags))
        })
        .collect();
    let mut findings = 0usize;
    let mut errors = 0usize;
    let (mut verified, mut unverified) = (0usize, 0usize);
    for r in &results {
        match r {
            Err(_) => errors += 1,
            Ok((_, diags)) => {
                findings += diags.len();
                for d in diags {
                    match d.fix.as_ref().map(|f| f.applicability) {
                        Some(Applicability::Verified) => verified += 1,
                        Some(Applicability::Unverified) => unverified += 1,
                        None => {}
                    }
                }
            }
        }
    }
    match args.format {
        Format::Text => {
            for r in &results {
                match r {
                    Err(p) => writeln!(io.stderr, "{}", p.render())?,
                    Ok((input, diags)) => {
                        for d in diags {
                            writeln!(
                                io.stdout,
                                "{}:{}:{}: {} {}",
                                input.display, d.line, d.column, d.rule, d.message
                            )?;
                            if let (Some(fix), Some(title)) = (&d.fix, &d.fix_title) {
                                writeln!(
                                    io.stdout,
                                    "  fix ({}): {title}",
                                    fix.applicability.as_str()
                                )?;
                            } else {
                                writeln!(io.stdout, "  no fix")?;
                            }
                            let src = d
                                .source
                                .as_deref()
                                .map(|s| format!("; {s}"))
                                .unwrap_or_default();
                            writeln!(
                                io.stdout,
                                "  why: {} [{}{src}]",
                                d.reason,
                                d.confidence.as_str()
                            )?;
                        }
                    }
                }
            }
        }
        Format::Github => {
            for r in &results {
                match r {
                    Err(p) => {
                        let (l, c) = p.at.unwrap_or((1, 1));
                        writeln!(
                            io.stdout,
                            "::error file={},line={l},col={c}::{}",
                            p.display,
                            escape_gh(&p.message)
                        )?;
                        writeln!(io.stderr, "{}", p.render())?;
                    }
                    Ok((input, diags)) => {
                        for d in diags {
                            let fix = match (&d.fix, &d.fix_title) {
                                (Some(f), Some(t)) => {
                                    format!(" fix ({}): {t}.", f.applicability.as_str())
                                }
                                _ => " no fix.".into(),
                            };
                            writeln!(
                                io.stdout,
                                "::warning file={},line={},col={},title={}::{}",
                                input.display,
                                d.line,
                                d.column,
                                d.rule,
                                escape_gh(&format!(
                                    "{}.{fix} why: {} [{}]",
                                    d.message,
                                    d.reason,
                                    d.confidence.as_str()
                                ))
                            )?;
                        }
                    }
                }
            }
        }
        Format::Json => {
            let mut report = JsonReport {
                version: 1,
                files: Vec::new(),
                errors: Vec::new(),
            };
            for r in &results {
                match r {
                    Err(p) => report.errors.push(JsonError {
                        path: &p.display,
                        line: p.at.map(|a| a.0),
                        column: p.at.map(|a| a.1),
                        message: &p.message,
                    }),
                    Ok((input, diags)) => report.files.push(JsonFile {
                        path: &input.display,
                        findings: diags
                            .iter()
                            .map(|d| JsonFinding {
                                rule: d.rule,
                                name: d.rule_name,
                                service: &d.service,
                                line: d.line,
                                column: d.column,
                                message: &d.message,
                                reason: &d.reason,
                                confidence: d.confidence.as_str(),
                                source: d.source.as_deref(),
                                fix: d.fix.as_ref().map(|f| JsonFix {
                                    title: d.fix_title.as_deref().unwrap_or(""),
                                    applicability: f.applicability.as_str(),
                                    edits: &f.edits,
                                }),
                            })
                            .collect(),
                    }),
                }
            }
            serde_json::to_writer_pretty(&mut *io.stdout, &report)
                .map_err(std::io::Error::other)?;
            writeln!(io.stdout)?;
            for p in results.iter().filter_map(|r| r.as_ref().err()) {
                writeln!(io.stderr, "{}", p.render())?;
            }
        }
    }
    if !args.shared.quiet {
        let files = results.len();
        let mut line = format!(
            "{} in {}",
            plural(findings, "finding", "findings"),
            plural(files - errors, "file", "files")
        );
        if findings > 0 {
            line.push_str(&format!(
                " ({verified} fixable by `compose-harden fix`, {unverified} more with --unverified, {} need a human)",
                findings - verified - unverified
            ));
        }
        if errors > 0 {
            line.push_str(&format!("; {} failed", plural(errors, "file", "files")));
        }
        writeln!(io.stderr, "{line}")?;
    }
    Ok(if errors > 0 {
        ExitStatus::Error
    } else if findings > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

fn escape_gh(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
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
