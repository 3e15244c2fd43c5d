//! Reading the inputs: paths and `-f` files, their configuration, and running work on
//! groups of them in parallel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::Io;
use crate::cli::Shared;
use crate::config::{self, Config};
use crate::discover::{self, Found};
use crate::facts::Settings;
use crate::fixer::{FileError, Options};
use crate::source::LineIndex;
use crate::yaml::Limits;

pub(super) const INTERRUPTED: &str = "interrupted before this file was processed; it is unchanged";
pub(super) type ConfigError = (Option<(usize, usize)>, String);

/// One input file (or standard input), read and decoded.
pub(super) struct Input {
    /// The path as shown to users and in diffs (`/`-separated, no leading `./`).
    pub(super) display: String,
    pub(super) path: Option<PathBuf>,
    pub(super) text: String,
    /// Named with `-f`: one of the files of the project.
    pub(super) project: bool,
    /// The project root ([`crate::project`]); `None` for standard input.
    pub(super) root: Option<PathBuf>,
    /// For standard input, the path `--stdin-filename` says it stands for.
    pub(super) named: Option<PathBuf>,
}

/// A problem with one file: `path:line:col: message`.
pub(super) struct FileProblem {
    pub(super) display: String,
    pub(super) at: Option<(usize, usize)>,
    pub(super) message: String,
}

impl FileProblem {
    pub(super) fn render(&self) -> String {
        use crate::escape::visible;
        let (path, message) = (visible(&self.display), visible(&self.message));
        match self.at {
            Some((l, c)) => format!("{path}:{l}:{c}: error: {message}"),
            None => format!("{path}: error: {message}"),
        }
    }
}

pub(super) fn display_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    // On Windows `\\` separates; elsewhere it is a character of the name.
    let s = if cfg!(windows) {
        s.replace('\\', "/")
    } else {
        s.into_owned()
    };
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// Options for one file: command-line flags over its configuration file.
pub(super) fn options(
    shared: &Shared,
    config: Option<&Config>,
    root: Option<PathBuf>,
) -> (Options, bool) {
    let c = config.cloned().unwrap_or_default();
    let mut ignore = c.ignore.clone();
    ignore.extend(shared.ignore.iter().cloned());
    // The command line's --select replaces the file's.
    let select = if shared.select.is_empty() {
        &c.select
    } else {
        &shared.select
    };
    let disabled = super::select::disabled(select, &ignore);
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
            root,
            allow_outside: shared.allow_outside,
        },
        limits: Limits::default(),
        disabled,
        // `fix --diff` asks for them.
        diffs: false,
    };
    (opts, shared.unverified || c.unverified.unwrap_or(false))
}

/// Load the configuration governing each input (cached per config file).
pub(super) fn configs(
    shared: &Shared,
    inputs: &[Result<Input, FileProblem>],
) -> Vec<Result<(Options, bool), FileProblem>> {
    let mut cache: HashMap<PathBuf, Result<Config, ConfigError>> = HashMap::new();
    // The config file found upward from each directory (files share directories).
    let mut found: HashMap<PathBuf, Option<PathBuf>> = HashMap::new();
    let mut learned: HashMap<PathBuf, Result<Vec<crate::knowledge::Profile>, String>> =
        HashMap::new();
    inputs
        .iter()
        .map(|input| {
            let mut result = config_for(shared, input, &mut cache, &mut found);
            // Rows `learn` measured, beside the compose file or its config, come first.
            let mut dirs: Vec<PathBuf> = input.as_ref().ok().and_then(dir_of).into_iter().collect();
            if let Some(c) = shared.config.as_ref().and_then(|c| c.parent()) {
                dirs.push(c.to_path_buf());
            }
            for d in dirs {
                let file = d.join(super::learn::LEARNED_FILE);
                let rows = learned
                    .entry(file.clone())
                    .or_insert_with(|| super::learn::read_rows(&file));
                match (&mut result, rows) {
                    (Ok((o, _)), Ok(rows)) => {
                        o.settings.extra_profiles.splice(0..0, rows.iter().cloned());
                    }
                    (Ok(_), Err(m)) => {
                        result = Err(FileProblem {
                            display: display_path(&file),
                            at: None,
                            message: m.clone(),
                        })
                    }
                    _ => {}
                }
            }
            result
        })
        .collect()
}

/// The options of one input from its configuration file.
fn config_for(
    shared: &Shared,
    input: &Result<Input, FileProblem>,
    cache: &mut HashMap<PathBuf, Result<Config, ConfigError>>,
    found: &mut HashMap<PathBuf, Option<PathBuf>>,
) -> Result<(Options, bool), FileProblem> {
    let root = input.as_ref().ok().and_then(|i| i.root.clone());
    let path = match &shared.config {
        Some(p) => Some(p.clone()),
        None => {
            let dir = match input {
                Ok(i) => dir_of(i).unwrap_or_else(|| PathBuf::from(".")),
                Err(_) => PathBuf::from("."),
            };
            found
                .entry(dir)
                .or_insert_with_key(|dir| config::find_within(dir, root.as_deref()))
                .clone()
        }
    };
    let Some(path) = path else {
        return Ok(options(shared, None, root));
    };
    let loaded = cache
        .entry(path.clone())
        .or_insert_with(|| Config::load(&path));
    let bad = loaded.as_ref().ok().and_then(|c| {
        super::select::unknown(&c.ignore, "ignore")
            .or_else(|| super::select::unknown(&c.select, "select"))
    });
    if let Some(m) = bad {
        return Err(FileProblem {
            display: display_path(&path),
            at: None,
            message: m,
        });
    }
    match loaded {
        Ok(c) => Ok(options(shared, Some(c), root)),
        Err((at, m)) => Err(FileProblem {
            display: display_path(&path),
            at: *at,
            message: m.clone(),
        }),
    }
}

pub(super) fn read_file(path: &Path, max_mib: u64) -> Result<Vec<u8>, FileProblem> {
    use crate::fsread::{self, ReadError};
    fsread::read_bounded(path, max_mib.saturating_mul(1024 * 1024)).map_err(|e| FileProblem {
        display: display_path(path),
        at: None,
        message: match e {
            ReadError::IsDirectory => "is a directory, expected a compose file".into(),
            ReadError::TooBig { .. } => format!("{} (--max-size)", e.message()),
            e => e.message(),
        },
    })
}

pub(super) fn decode(display: &str, bytes: Vec<u8>) -> Result<String, FileProblem> {
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
pub(super) fn inputs(shared: &Shared, io: &mut Io) -> (Vec<Result<Input, FileProblem>>, bool) {
    let mut paths = shared.paths.clone();
    if paths.is_empty() && shared.files.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let mut out = Vec::new();
    let mut from_stdin = false;
    if paths.iter().any(|p| p.as_os_str() == "-") {
        from_stdin = true;
        let r =
            crate::fsread::read_limited(&mut *io.stdin, shared.max_size.saturating_mul(1 << 20));
        out.push(match r {
            Err(e) => Err(FileProblem {
                display: "-".into(),
                at: None,
                message: match e {
                    crate::fsread::ReadError::TooBig { .. } => {
                        format!("standard input: {} (--max-size)", e.message())
                    }
                    e => format!("cannot read standard input: {}", e.message()),
                },
            }),
            Ok(buf) => decode("-", buf).map(|text| Input {
                display: shared
                    .stdin_filename
                    .as_deref()
                    .map_or_else(|| "-".into(), display_path),
                path: None,
                text,
                project: false,
                root: shared
                    .stdin_filename
                    .as_deref()
                    .and_then(|p| crate::project::root_of(p, None)),
                named: shared.stdin_filename.clone(),
            }),
        });
        paths.retain(|p| p.as_os_str() != "-");
    }
    let found = match discover::discover(
        &paths,
        &shared.include,
        &shared.extend_include,
        &shared.exclude,
    ) {
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
    // A directory that holds no compose file is a mistake, not "0 findings".
    for root in paths.iter().filter(|p| p.is_dir()) {
        let any = found.iter().any(|f| match f {
            Found::File(p) | Found::Error(p, _) => p.starts_with(root),
        });
        if !any {
            out.push(Err(FileProblem {
                display: display_path(root),
                at: None,
                message: "no compose file found here (compose.y(a)ml, docker-compose.y(a)ml and their variants; --extend-include adds names)".into(),
            }));
        }
    }
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
                let walked = paths
                    .iter()
                    .find(|w| p.starts_with(w))
                    .map(PathBuf::as_path);
                Ok(Input {
                    display,
                    root: crate::project::root_of(&p, walked),
                    path: Some(p),
                    text,
                    project: false,
                    named: None,
                })
            }
        })
        .collect();
    out.extend(loaded);
    out.extend(named_by_compose_file(&out, max));
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
                    root: crate::project::root_of(p, None),
                    named: None,
                }),
        );
    }
    (out, from_stdin)
}

/// Files a walked directory's `.env` names in `COMPOSE_FILE` that the walk did not find
/// (any name: `prod.yml`), read so that the project is analysed whole.
fn named_by_compose_file(
    found: &[Result<Input, FileProblem>],
    max: u64,
) -> Vec<Result<Input, FileProblem>> {
    let paths: Vec<(&PathBuf, Option<&PathBuf>)> = found
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .filter_map(|x| x.path.as_ref().map(|p| (p, x.root.as_ref())))
        .collect();
    let mut have: std::collections::HashSet<PathBuf> = paths
        .iter()
        .map(|(p, _)| super::projects::normal(p))
        .collect();
    let mut dirs: Vec<(PathBuf, Option<&PathBuf>)> = paths
        .iter()
        .map(|(p, root)| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => (d.to_path_buf(), *root),
            _ => (PathBuf::from("."), *root),
        })
        .collect();
    dirs.sort();
    dirs.dedup_by(|a, b| a.0 == b.0);
    let mut out = Vec::new();
    for (dir, root) in dirs {
        for p in super::projects::compose_file(&dir) {
            if have.contains(&p) || !p.is_file() {
                continue;
            }
            have.insert(p.clone());
            let display = display_path(&p);
            if let Some(r) = root
                && let Err(m) = crate::project::inside(&p, r)
            {
                out.push(Err(FileProblem {
                    display,
                    at: None,
                    message: format!("named in COMPOSE_FILE but {m}"),
                }));
                continue;
            }
            out.push(
                read_file(&p, max)
                    .and_then(|b| decode(&display, b))
                    .map(|text| Input {
                        display,
                        path: Some(p.clone()),
                        text,
                        project: false,
                        root: root.cloned(),
                        named: None,
                    }),
            );
        }
    }
    out
}

pub(super) fn file_error(display: &str, e: FileError) -> FileProblem {
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

pub(super) fn dir_of(input: &Input) -> Option<PathBuf> {
    input
        .path
        .as_ref()
        .or(input.named.as_ref())
        .map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        })
}

pub(super) type Processed<T> = Vec<Result<(Input, T), FileProblem>>;

/// What processing one input gave.
pub(super) type Outcome<T> = Result<(Input, T), FileProblem>;

/// One input with its options, waiting for its group to run.
pub(super) type Slot = (
    Result<Input, FileProblem>,
    Result<(Options, bool), FileProblem>,
);

/// Which inputs are analysed together (see [`super::projects`]).
pub(super) fn groups(inputs: &[Result<Input, FileProblem>]) -> Vec<Vec<usize>> {
    let paths: Vec<(Option<PathBuf>, bool)> = inputs
        .iter()
        .map(|i| match i {
            Ok(x) => (x.path.clone(), x.project),
            Err(_) => (None, false),
        })
        .collect();
    super::projects::group(&paths)
}

/// Run `work` on every group of inputs (one file, or the files of one project) in
/// parallel, with the options of the group's first file; results come back in input order.
/// `work` reports a failure with the index (within the group) of the file at fault.
pub(super) fn process<T: Send>(
    shared: &Shared,
    io: &mut Io,
    work: impl Fn(&mut [Input], &Options, bool) -> Result<Vec<T>, (usize, FileProblem)> + Sync,
) -> Processed<T> {
    let (inputs, _) = inputs(shared, io);
    let mut opts = configs(shared, &inputs);
    if shared.inspect {
        super::image::add_inspected(&mut opts, &inputs, io);
    }
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
