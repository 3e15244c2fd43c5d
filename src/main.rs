use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use compose_harden::app::{self, Io};
use compose_harden::cli::Cli;

/// glibc's malloc raises its mmap threshold to the size of each large block freed (up to
/// 32 MiB), so after the first big file every tree and text of that size comes from the
/// heap, where freed memory stays with the process and the next big allocation lands
/// beside it. A fixed threshold keeps large blocks in their own mappings, returned to the
/// system when freed: the peak memory of a big file then drops by about a tenth.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets a malloc parameter; called once, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 2; --help and --version exit 0.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let stop = compose_harden::fsread::stop_flag();
    let reading = compose_harden::fsread::reading_flag();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Nothing written yet (the read phase): the first signal ends the run at once, even
        // when a read blocks.
        let _ = signal_hook::flag::register_conditional_shutdown(
            signal,
            130,
            std::sync::Arc::clone(&reading),
        );
        // A second signal ends the process at once.
        let _ = signal_hook::flag::register_conditional_shutdown(
            signal,
            130,
            std::sync::Arc::clone(&stop),
        );
        let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(&stop));
    }
    let mut io = Io {
        stdin: &mut std::io::stdin().lock(),
        stdout: &mut stdout.lock(),
        // One write per line, not one per piece of a formatted message. Not a held lock:
        // the progress bar draws on stderr from the worker threads, and a lock held here
        // for the whole run would block them (and the run) for good.
        stderr: &mut std::io::LineWriter::new(std::io::stderr()),
        color,
        progress: std::io::stderr().is_terminal(),
        stop,
    };
    ExitCode::from(app::run(cli, &mut io) as u8)
}
