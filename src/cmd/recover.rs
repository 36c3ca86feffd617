//! `termtrail recover`: seal recordings a recorder left unsealed as
//! interrupted.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use termtrail_format::recover::{RecoverError, Recovered, seal_interrupted};

use super::args::{StoreArg, secret_key};
use crate::exit::Exit;

/// Text after `recover --help`'s options.
pub const HELP: &str = "\
A recorder that is killed leaves its recording unsealed: every committed
chunk is there and verifies, but there is no seal (verify says `unsealed`).
This seals it in place with the end reason `interrupted`, keeping the hash
chain: complete segments are kept byte for byte; the unfinished last segment
is rewritten as a finished frame holding its verified chunks unchanged; an
unfinished chunk at the very end (events never committed) is left out. A
recording that does not verify is left untouched (exit 1). Spools of an S3
store are sealed this way automatically before they are uploaded.

A recording that a running recorder (rec, serve, proxy) is still writing is
locked (docs/format.md, Live recordings): recover refuses it, naming the
recorder's pid, and leaves it as it is (exit 2). That recorder seals it
when it ends; only if it is killed does the recording need recover.

What is written is noted first in a hidden file beside the recording
(.NAME.recovering): a recover stopped half-way is finished by the next one.
On a full disk (a recorder that failed there) free some space first; the
recording is left as it was when the new end does not fit.

The seal is signed when --sign-key gives the key the recording's header
names (the recorder's own); otherwise it is unsigned, and verify reports
an INVALID signature for a recording that names a key.

A name (an id or id prefix, a file name, @last) is looked up in the store:
--store, else $TERMTRAIL_STORE, else the config file's `store`, else the
local store (docs/cli.md, \"Stores\").

Examples:
  termtrail recover @last
  termtrail recover --store /srv/recordings 3f2a9c81
  termtrail recover ~/.local/share/termtrail/recordings/2026/11/28/local/*/*/*.cast.zst";

/// `recover` arguments.
#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Recordings to seal (sealed ones are left alone): paths, or names in the store (an id or id prefix, a file name, @last).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArg,
    /// The recorder's Ed25519 secret key: a recording whose header names it
    /// gets a signed seal.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub sign_key: Option<PathBuf>,
}

/// Runs `recover`: each file in turn; the worst outcome is the status.
pub fn run(a: RecoverArgs) -> Result<Exit> {
    let key = secret_key(a.sign_key.as_deref())?;
    let mut code = Exit::SUCCESS;
    let files: Vec<PathBuf> = (a.files.iter())
        .map(|f| super::locate::resolve(f, &a.store))
        .collect::<Result<_>>()?;
    for f in &files {
        // Said as every subcommand says it.
        if let Some(why) = termtrail_player::select::not_a_recording_why(f) {
            eprintln!("termtrail: {}: {why}", f.display());
            code = code.max(Exit::ERROR);
            continue;
        }
        match seal_interrupted(
            f,
            "the recorder stopped before sealing; sealed by termtrail recover",
            key.as_ref(),
        ) {
            Ok(Some(r)) => writeln!(
                super::stdout::lock(),
                "{}: sealed as interrupted ({})",
                f.display(),
                describe(&r, key.is_some())
            )?,
            Ok(None) => writeln!(super::stdout::lock(), "{}: already sealed", f.display())?,
            // The message names the file (and the recorder's pid).
            Err(e @ RecoverError::BeingRecorded(_)) => {
                eprintln!("termtrail: {e}");
                code = code.max(Exit::ERROR);
            }
            Err(e @ RecoverError::Tampered(_)) => {
                eprintln!("termtrail: {}: {e}", f.display());
                code = code.max(Exit::TAMPERED);
            }
            Err(e) => {
                eprintln!("termtrail: {}: {e}", f.display());
                code = Exit::ERROR;
            }
        }
    }
    Ok(code)
}

/// What sealing did: chunks, duration, what was left out, the signature.
fn describe(r: &Recovered, have_key: bool) -> String {
    format!(
        "{} chunks, {}{}{}",
        r.chunks,
        termtrail_format::event::format_clock(r.duration),
        if r.dropped > 0 {
            format!("; {} bytes of an unfinished chunk left out", r.dropped)
        } else {
            String::new()
        },
        match (r.signed, have_key) {
            (true, _) => "; signed",
            (false, true) => "; not signed: its header names another key or none",
            (false, false) => "",
        }
    )
}
