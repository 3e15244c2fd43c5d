//! The commands. They write to the streams they are handed (the library never prints on
//! its own): stdout carries only the diff, the fixed text or machine output; everything
//! addressed to a person goes to stderr.

mod check;
mod fix;
mod habits;
mod image;
mod info;
mod inputs;
mod into;
mod learn;
mod prbody;
mod projects;
mod select;
mod verify;
mod verify_text;
mod why;

use std::io::{Read, Write};

use crate::cli::{Cli, Command};

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
    let reading = crate::fsread::reading_flag();
    let result = match cli.command {
        Command::Fix(args) => {
            // Until the first file is written, a signal may end the run at once.
            reading.store(true, std::sync::atomic::Ordering::SeqCst);
            fix::fix(args, io)
        }
        Command::Check(args) => {
            reading.store(true, std::sync::atomic::Ordering::SeqCst);
            check::check(args, io)
        }
        Command::Rule { code } => info::rule(&code, io),
        Command::Rules { format } => info::list_rules(format, io),
        Command::Verify(args) => verify::verify(args, io),
        Command::Why(args) => why::why(args, io),
        Command::Init => info::init(io),
        Command::Inspect(args) => image::inspect(args, io),
        Command::Learn(args) => learn::learn(args, io),
        Command::Profile(args) => image::profile(args, io),
        Command::Completions { shell } => info::completions(shell, io),
        Command::Manpage => info::manpage(io),
    };
    reading.store(false, std::sync::atomic::Ordering::SeqCst);
    // What is still buffered must reach its reader too.
    let flushed = io.stdout.flush().and(io.stderr.flush());
    match result.and_then(|status| flushed.map(|_| status)) {
        Ok(status) => status,
        // The reader left (`| head`): the report was not delivered, so the run did not
        // succeed; no message, nobody reads it.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitStatus::Error,
        Err(e) => {
            let _ = writeln!(
                io.stderr,
                "compose-harden: error: cannot write the output: {}",
                crate::fsread::lower(&e)
            );
            ExitStatus::Error
        }
    }
}

type IoResult = std::io::Result<ExitStatus>;
