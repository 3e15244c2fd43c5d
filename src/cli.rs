//! The command line, defined once with clap. `///` on a field is the user's `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Harden Docker Compose files: least privilege per service, as a reviewable diff.
#[derive(Debug, Parser)]
#[command(name = "compose-harden", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add the hardening each service needs, in place (or as a diff with --diff).
    Fix(FixArgs),
    /// Report what is missing, without changing anything.
    Check(CheckArgs),
    /// Show the documentation of one rule (by id or name).
    Rule {
        /// Rule id (`CH003`) or name (`cap-drop-all`).
        code: String,
    },
    /// List all rules.
    Rules {
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Run the project on a Docker engine as written and as hardened, through first start,
    /// ready, restart and stop: does each service still work hardened?
    Verify(VerifyArgs),
    /// Measure on the engine the least-privilege cap_add each service needs (cap_drop ALL,
    /// no-new-privileges), and write it as `measured` profile rows that `fix` then uses.
    Learn(LearnArgs),
    /// Explain a container's failure log line: which capability or setting to add back.
    Why(WhyArgs),
    /// Write a commented starting compose-harden.toml into the current directory.
    Init,
    /// Inspect an image (from the engine, or a `docker save` / OCI layout archive path)
    /// and print the profile row it supports, with its evidence.
    Inspect(InspectArgs),
    /// Propose an `[[image]]` profile row from a Dockerfile and entrypoint scripts, with
    /// the evidence lines it read as comments, for a reviewer.
    Profile(ProfileArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Manpage,
}

#[derive(Debug, Args, Clone)]
pub struct Shared {
    /// Files or directories (walked for compose files); `-` reads standard input.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Files of one project, merged as `docker compose -f a -f b` merges them (repeatable).
    /// Edits go to the file that defines each service.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also apply (or count as fixable) fixes that may break a service.
    #[arg(long)]
    pub unverified: bool,
    /// The Docker daemon runs with userns-remap: add `userns_mode: "host"` where it is required.
    #[arg(long)]
    pub userns_remap: bool,
    /// Run root-then-drop images (postgres, redis …) as their own uid:gid instead of adding capabilities back.
    #[arg(long)]
    pub set_user: bool,
    /// The `user:` proposed for images nothing is known about (an unverified fix) [default: 10001:10001].
    #[arg(long, value_name = "UID:GID")]
    pub default_user: Option<String>,
    /// Inspect, through the engine, the images of services nothing in the knowledge base
    /// matches (a profile with confidence `inspected`, cached by image digest).
    #[arg(long)]
    pub inspect: bool,
    /// Use this configuration file instead of the nearest compose-harden.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Turn off rules (ids or names, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "RULES")]
    pub ignore: Vec<String>,
    /// Run only these rules (ids or names, comma-separated); replaces the config's `select`.
    #[arg(long, value_delimiter = ',', value_name = "RULES")]
    pub select: Vec<String>,
    /// Only walk files matching these globs (replaces the compose file names).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Also walk files matching these globs (added to the compose file names).
    #[arg(long, value_name = "GLOB")]
    pub extend_include: Vec<String>,
    /// Exit 0 even when there are findings or a diff (errors still exit 2).
    #[arg(long)]
    pub exit_zero: bool,
    /// The path standard input stands for: names it in diffs and reports and resolves its
    /// `build:` contexts and configuration from there.
    #[arg(long, value_name = "PATH")]
    pub stdin_filename: Option<PathBuf>,
    /// Colour the output: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Skip files matching these globs.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Read build contexts and Dockerfiles, and write fixes, outside the project (its git
    /// work tree, or the directory walked).
    #[arg(long)]
    pub allow_outside: bool,
    /// Largest file read, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 10)]
    pub max_size: u64,
    /// Print nothing on stderr but errors.
    #[arg(long, short, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print every file looked at and every fix applied.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    #[command(flatten)]
    pub shared: Shared,
    /// Print a unified diff instead of writing; exit 1 when it is not empty.
    #[arg(long)]
    pub diff: bool,
    /// List every change, per service, on stderr.
    #[arg(long)]
    pub show_fixes: bool,
    /// Write a Markdown summary of the change (a pull-request body) to FILE.
    #[arg(long, value_name = "FILE")]
    pub pr_body: Option<PathBuf>,
    /// Leave the compose files untouched and write only the hardening keys into this
    /// overlay, for `docker compose -f compose.yaml -f OVERLAY up` (updated in place when
    /// it exists).
    #[arg(long, value_name = "OVERLAY")]
    pub into: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub shared: Shared,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print how many findings each rule has, instead of the findings.
    #[arg(long)]
    pub statistics: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub shared: Shared,
    /// Check only this service (repeatable; the services it depends on run too).
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Verify this complete compose file as the hardened version instead of running the fixer.
    #[arg(long, value_name = "FILE", conflicts_with = "unverified")]
    pub hardened: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct LearnArgs {
    #[command(flatten)]
    pub shared: Shared,
    /// Learn only this service (repeatable; default: every service whose decision is not
    /// already verified or measured).
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Write the rows here [default: compose-harden.learned.toml beside the compose file].
    #[arg(long, value_name = "FILE")]
    pub write_profiles: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The log line (or several lines) to explain.
    pub line: Option<String>,
    /// Read the log from a file (`-` for standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "logs")]
    pub log: Option<PathBuf>,
    /// Read `docker compose logs` output (`-` for standard input): the `db-1 | ` prefix of
    /// each line names the service.
    #[arg(long, value_name = "FILE")]
    pub logs: Option<PathBuf>,
    /// The compose file the service is defined in: names the uid it runs as, and the file
    /// `--write` changes.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The service the log line comes from (with a single line or --log).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Add the capabilities the log asks for to the compose file (-f), through the fixer.
    #[arg(long, requires = "file")]
    pub write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image known to the engine (`postgres:16`), or the path of an image archive
    /// (`docker save` tar or directory, OCI layout tar or directory).
    #[arg(value_name = "IMAGE|ARCHIVE")]
    pub image: String,
    #[arg(long, value_enum, default_value_t = RowFormat::Toml)]
    pub format: RowFormat,
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The image's Dockerfile; the scripts its final stage copies in are read too.
    #[arg(long, value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// An entrypoint or start script (repeatable).
    #[arg(long, value_name = "FILE")]
    pub entrypoint: Vec<PathBuf>,
    /// The repository the row is for (repeatable).
    #[arg(long, value_name = "REPO")]
    pub repo: Vec<String>,
    /// A tag (glob) whose sources were read (repeatable): the row's `tags` and `checked_tags`.
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Where a reviewer finds the sources read (repeatable; default: the files read).
    #[arg(long, value_name = "SOURCE")]
    pub source: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RowFormat {
    Toml,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    /// One line per finding: `file:line:col: CH003 message`.
    Concise,
    Json,
    Sarif,
    Github,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}
