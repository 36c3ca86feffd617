//! Standard output as every subcommand writes it: a write that fails says
//! `writing to stdout: WHY` (one wording, whichever subcommand wrote), and
//! keeps its kind, so a closed pipe (`termtrail ls | head -1`) still ends
//! the command quietly while a full disk (`> /dev/full`) is an error
//! (`main` tells them apart with [`failure`]).

use std::fmt;
use std::io::{self, Write};

/// What a failed write to stdout says: `writing to stdout: WHY`.
#[derive(Debug)]
struct WritingStdout(String);

impl fmt::Display for WritingStdout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "writing to stdout: {}", self.0)
    }
}

impl std::error::Error for WritingStdout {}

/// `e`, a failed write to stdout, said as one: its kind kept, its text
/// `writing to stdout: WHY` (without Rust's `(os error N)`).
pub fn failed(e: io::Error) -> io::Error {
    if is_stdout(&e) {
        return e;
    }
    let why = super::outfile::io_text(&e);
    io::Error::new(e.kind(), WritingStdout(why))
}

/// Whether `e` is a write to stdout that failed ([`failed`]).
fn is_stdout(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WritingStdout>())
}

/// The failed write to stdout somewhere in `e`'s chain of causes, if any:
/// what `main` says alone, whatever context was put around it.
pub fn failure(e: &anyhow::Error) -> Option<&io::Error> {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .find(|io| is_stdout(io))
}

/// Locked standard output whose errors are [`failed`]'s.
pub struct Stdout(io::StdoutLock<'static>);

/// Locks standard output for writing.
pub fn lock() -> Stdout {
    Stdout(io::stdout().lock())
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(failed)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).map_err(failed)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_writes_say_stdout_and_keep_their_kind() {
        let e = failed(io::Error::from_raw_os_error(28));
        assert_eq!(e.to_string(), "writing to stdout: No space left on device");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        let e = failed(failed(io::Error::from(io::ErrorKind::BrokenPipe)));
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        let wrapped = anyhow::Error::new(e).context("cannot export x");
        assert!(failure(&wrapped).is_some());
        assert!(failure(&anyhow::anyhow!("other")).is_none());
    }
}
