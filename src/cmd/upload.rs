//! `termtrail upload`: upload the recordings left in the local spool of an
//! S3 store, and say what is still there.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use termtrail_store::{Location, RecordingOptions};

use super::args::{ProtectArgs, StoreArg, parse_duration, secret_key};
use crate::exit::Exit;

/// Text after `upload --help`'s options.
pub const HELP: &str = "\
Recordings for an S3 store are written to a local spool and streamed to the
bucket as they grow. A recording whose upload did not finish (S3 was down when
it ended, or the recorder was killed) stays in the spool; every recorder run
with the same store picks such spools up, and this command does it on demand:
it uploads every spool no running recorder holds, deletes each once S3 has the
whole object, and reports what is left.

The spool is $TERMTRAIL_SPOOL_DIR, else $XDG_STATE_HOME/termtrail/spool, else
~/.local/state/termtrail/spool, then BUCKET/PREFIX.

A spool a running recorder is still writing (rec, serve or proxy hold its
lock, docs/format.md) is not taken over: one line names it and the recorder's
pid; that recorder uploads it itself. It does not count as left.

Exit status: 0 when nothing is left, 2 otherwise.

Examples:
  termtrail upload --store s3://audit-recordings/prod
  termtrail upload --store s3://audit-recordings/prod --wait 10m";

/// `upload` arguments.
#[derive(Args, Debug)]
pub struct UploadArgs {
    /// The store (s3://BUCKET/PREFIX: a local store needs no upload).
    #[command(flatten)]
    pub store: StoreArg,
    /// Give up after this long (what is left stays in the spool).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub wait: Duration,
    /// The recorder's Ed25519 secret key: spools left unsealed whose header
    /// names it get a signed seal (others an unsigned one).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub sign_key: Option<PathBuf>,
    #[command(flatten)]
    pub protect: ProtectArgs,
}

/// Runs `upload`.
pub fn run(a: UploadArgs) -> Result<Exit> {
    use termtrail_store::destination::{DEFAULT_UPLOAD_INTERVAL, Destination};
    let store = a.store.location()?;
    if !store.uploads() {
        bail!(
            "upload needs an S3 store (--store s3://BUCKET/PREFIX); a local store needs no upload"
        );
    }
    let key = secret_key(a.sign_key.as_deref())?;
    let dest = Destination::open(
        &store,
        &RecordingOptions {
            upload_interval: DEFAULT_UPLOAD_INTERVAL,
            strict: false,
            protection: a.protect.protection()?,
            sign_key: key,
        },
    )?;
    live_spools(&store);
    let status = dest.flush(a.wait);
    let mut out = super::stdout::lock();
    for url in &status.uploaded {
        writeln!(out, "uploaded {url}")?;
    }
    Ok(report_pending(&status))
}

/// Names each spool of `store` that a running recorder still writes (it
/// is not taken over: that recorder uploads it).
fn live_spools(store: &Location) {
    let Location::S3 { bucket, prefix } = store else {
        return;
    };
    let Some(dir) = termtrail_store::s3::spool_dir(bucket, prefix) else {
        return;
    };
    let mut stack = vec![dir];
    let mut live = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".cast.zst")
                && let Some(w) = termtrail_format::recover::live::writer_of(&p)
            {
                live.push(w);
            }
        }
    }
    live.sort_by(|a, b| a.path.cmp(&b.path));
    for w in live {
        eprintln!("termtrail: {w}; not taken over (its recorder uploads it when it ends)");
    }
}

/// Says what is still in the spool after waiting for uploads; the exit
/// status: [`Exit::NOT_UPLOADED`] when something is.
pub fn report_pending(status: &termtrail_store::UploadStatus) -> Exit {
    for p in &status.pending {
        let why = status
            .errors
            .get(p)
            .map_or("not done in time", String::as_str);
        eprintln!("termtrail: still in the spool: {} ({why})", p.display());
    }
    if status.pending.is_empty() {
        Exit::SUCCESS
    } else {
        Exit::NOT_UPLOADED
    }
}
