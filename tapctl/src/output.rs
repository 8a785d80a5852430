//! tapctl's output: results on stdout, messages on stderr. A write that
//! fails (a full disk, a closed pipe) ends tapctl with its exit code 1,
//! never with a panic.

use crate::failure::{Exit, Failure, Result};
use std::io::{self, Write};

/// Writes `text` to stdout, flushed, so a failure is seen here.
pub fn out(text: &str) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(write_failure)
}

/// `text` and a newline on stdout.
pub fn outln(text: &str) -> Result<()> {
    out(&format!("{text}\n"))
}

fn write_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // The reader stopped reading (`tapctl list | head -1`): as a program
        // killed by SIGPIPE, say nothing, but do not claim success.
        Failure::quiet(Exit::Internal)
    } else {
        Failure::new(Exit::Internal, format!("cannot write the output: {e}"))
    }
}

/// A line on stderr. If even that fails there is nowhere left to say so.
pub fn message(text: &str) {
    let _ = writeln!(io::stderr(), "{text}");
}

/// A prompt on stderr, without a newline.
pub fn prompt(text: &str) {
    let mut stderr = io::stderr();
    let _ = write!(stderr, "{text}").and_then(|()| stderr.flush());
}
