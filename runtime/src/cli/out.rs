//! Writing to stdout and stderr without panicking when the other end is gone.
//!
//! `sluice runs show 7 | head` closes stdout once `head` has read enough; Rust's `println!`
//! would panic (exit 101). Here a closed pipe ends the output quietly: nothing more is
//! written to that stream, and the command's exit code stays what it would have been (a
//! run's result, for `sluice run`). Any other write error is reported once on stderr and
//! makes the exit code [`super::EXIT_ERROR`]: output lost for another reason (a full disk)
//! is never silent.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// stdout's reader went away: write nothing more there.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// A write to stdout failed for another reason.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Write to stdout (what `outln!`/`out!` call).
pub(crate) fn stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| if newline { out.write_all(b"\n") } else { Ok(()) });
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => STDOUT_CLOSED.store(true, Ordering::Relaxed),
        Err(e) => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            STDOUT_FAILED.store(true, Ordering::Relaxed);
            stderr(format_args!("error: writing to stdout: {e}"));
        }
    }
}

/// Write a line to stderr, ignoring a closed stderr (what `errln!` calls).
pub(crate) fn stderr(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Whether some output to stdout was lost for a reason other than a closed pipe.
pub(crate) fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// `println!` that survives a closed stdout.
macro_rules! outln {
    () => { $crate::cli::out::stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!($($arg)*), true) };
}

/// `print!` that survives a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::stdout(format_args!($($arg)*), false) };
}

/// `eprintln!` that survives a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::out::stderr(format_args!($($arg)*)) };
}

pub(crate) use {errln, out, outln};
