//! The process exit status: every code termtrail exits with, named once.
//!
//! | code  | name                  | meaning, by subcommand |
//! | ----- | --------------------- | ---------------------- |
//! | 0     | [`Exit::SUCCESS`]     | done: recordings intact and sealed (`verify`, `ls --verify`, `export`), a hit (`grep`), sealed or already sealed (`recover`), nothing left in the spool (`upload`, `serve`, `proxy`), a detach (`attach`) |
//! | 1     | [`Exit::TAMPERED`]    | a recording or an audit log (`verify --audit`) does not verify: `verify`, `ls --verify`, `export` (refused, or forced), `recover` (left untouched), `play` (playback stopped at the damage), `snapshot` (a moment after the damage); `verify --store`: a journal problem |
//! | 1     | [`Exit::NO_MATCH`]    | `grep`: no hit |
//! | 1     | [`Exit::TAKEN_OVER`]  | `attach`: another client took the shell over |
//! | 1     | [`Exit::DENIED`]      | `policy check`: the policy denies the request (0: it allows it) |
//! | 2     | [`Exit::ERROR`]       | every subcommand: an error (a file could not be read or is not a recording, a malformed policy or schema, the host refused or could not be reached, `recover` of a recording a running recorder still writes, …) and usage errors (clap exits with 2 itself; an output file that exists without `--overwrite`, `rec` without a terminal and without `--headless`) |
//! | 2     | [`Exit::NOT_UPLOADED`]| `upload`, `rec`, `serve`, `proxy` with an S3 store: recordings are still in the local spool |
//! | 3     | [`Exit::UNSEALED`]    | `verify`: intact but unsealed (truncated, or the recorder crashed); `verify --audit`: intact up to a torn last line |
//! | 125   | [`Exit::REC_FAILED`]  | `rec`: termtrail itself failed (the file keeps every chunk written so far) |
//! | other | [`Exit::of_child`]    | `rec`, `attach`, `exec`: the recorded command's, the remote shell's or the remote command's own status (`rec`: 128+N when killed by signal N; `exec`: 124 when the host stopped the command at `--timeout`) |
//!
//! `verify` over several files exits with the worst verdict (see
//! `termtrail_player::verify::Verdict::worst`); the codes above order the
//! same way, so combining two statuses is [`Ord::max`].

use std::process::ExitCode;

/// A process exit status (see the module's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exit(u8);

impl Exit {
    /// Done, nothing to report.
    pub const SUCCESS: Exit = Exit(0);
    /// A recording does not verify.
    pub const TAMPERED: Exit = Exit(1);
    /// `grep` found no hit.
    pub const NO_MATCH: Exit = Exit(1);
    /// `attach`: another client took the shell over.
    pub const TAKEN_OVER: Exit = Exit(1);
    /// `policy check`: the policy denies the request.
    pub const DENIED: Exit = Exit(1);
    /// An error (or a usage error).
    pub const ERROR: Exit = Exit(2);
    /// Recordings are still in the spool of an S3 store.
    pub const NOT_UPLOADED: Exit = Exit(2);
    /// `verify`: intact but unsealed.
    pub const UNSEALED: Exit = Exit(3);
    /// `rec`: termtrail itself failed while recording.
    pub const REC_FAILED: Exit = Exit(125);

    /// Passes on the exit status of a command termtrail ran (its low byte).
    pub fn of_child(code: i32) -> Exit {
        Exit(u8::try_from(code & 0xff).unwrap_or(255))
    }

    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self.0
    }

    /// The status for a `verify` verdict.
    pub fn of_verdict(verdict: termtrail_player::verify::Verdict) -> Exit {
        Exit(verdict.exit_code() as u8)
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;
    use termtrail_player::verify::Verdict;

    #[test]
    fn verdicts_map_to_the_documented_codes() {
        assert_eq!(Exit::of_verdict(Verdict::Intact), Exit::SUCCESS);
        assert_eq!(Exit::of_verdict(Verdict::Tampered), Exit::TAMPERED);
        assert_eq!(Exit::of_verdict(Verdict::Error), Exit::ERROR);
        assert_eq!(Exit::of_verdict(Verdict::Unsealed), Exit::UNSEALED);
    }

    #[test]
    fn a_child_status_keeps_its_low_byte() {
        assert_eq!(Exit::of_child(0), Exit::SUCCESS);
        assert_eq!(Exit::of_child(3), Exit::UNSEALED);
        assert_eq!(Exit::of_child(256 + 4), Exit(4));
        assert_eq!(Exit::of_child(-1), Exit(255));
    }
}
