//! `termtrail __supervise` (hidden): the supervisor `serve` runs each
//! one-shot command under; the work is [`termtrail_recorder::supervise`]'s.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use termtrail_recorder::supervise::{CANNOT_START, supervise};

use crate::exit::Exit;

/// `__supervise` arguments (given by the host, not by people).
#[derive(Args, Debug)]
pub struct SuperviseArgs {
    /// Kill the command's whole tree after this many seconds at the latest.
    #[arg(value_name = "SECS")]
    pub backstop: u64,
    /// The command, run by `sh -c`.
    #[arg(value_name = "CMD")]
    pub command: String,
}

/// Runs the command; exits with its status once it and every process it
/// started have exited (127 when it could not be started, with why on
/// stderr: the command's stderr).
pub fn run(a: SuperviseArgs) -> Result<Exit> {
    match supervise(&a.command, Duration::from_secs(a.backstop)) {
        Ok(code) => Ok(Exit::of_child(code)),
        Err(e) => {
            eprintln!("termtrail: {e}");
            Ok(Exit::of_child(CANNOT_START))
        }
    }
}
