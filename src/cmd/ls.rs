//! `termtrail ls`: recordings with their metadata and verification state.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use termtrail_format::index::IndexError;
use termtrail_format::text::{json_line, visible};
use termtrail_player::list::{Entry, ListError, State, entries, print_short, print_table, sort};

use super::args::{FilterArgs, StoreArg};
use super::locate::targets;
use crate::exit::Exit;
use crate::progress::Progress;

/// Text after `ls --help`'s options.
pub const HELP: &str = "\
One line per recording, sorted by start time, in at most 100 columns: START
(RFC 3339, UTC), DURATION ([h:]mm:ss.mmm), ID (the recording id, shortened
like git's: the fewest hex digits, at least 8, that tell the listed
recordings apart; give it to play, snapshot, export, verify or grep), STATE,
TITLE and NAME (the path relative to the store or the directory listed; cut
in the middle with … when the row would be wider). --long prints every
column at full width: start, duration, source, session and shell ids,
principal, size, end reason, state, signing key id, title, path; --json
prints everything.

Without PATH the store is listed: --store, else $TERMTRAIL_STORE, else the
config file's `store`, else the local store (docs/cli.md, \"Stores\"). A
store with no recordings prints \"no recordings in STORE\" on stderr and
exits 0.
Without --verify only the header and the index at the end of each file are
read (fast on any store): STATE is `sealed` or `unsealed` (and `+signed`),
and KEY the id of the key the header names: claims the file makes. --verify
reads and checks every chunk, the seal and the signature: STATE is then
`verified`, `verified-unsealed` or `TAMPERED` (`+signed` for a valid
signature, `+BAD-SIGNATURE` for one that is not), and KEY the id of the key
that signed. A key id is the first 16 hex digits of SHA-256 of the public
key (`termtrail keygen` prints it); `verify --key` checks it is one you
trust.
A recording a running recorder is still writing (it holds the file's lock,
docs/format.md) shows STATE `recording` instead of `unsealed` or
`verified-unsealed`, and END `live (pid N)`; `unsealed` is one whose recorder
stopped without sealing it (`termtrail recover` seals it).
DURATION is the seal's; for an unsealed recording, the end of its last chunk
that verifies (chain link and SHA-256) in the segment after the last index
entry (that one segment is read), else the last index entry's end: what
verify calls \"verified up to\" when nothing before it is damaged. A file
damaged or cut inside its header gets verify's verdict as its one line on
stderr (`TAMPERED: …`, exit 1; `intact but UNSEALED …, 0 chunks`).
Filters are those of grep; --since/--until select recordings active in the
window.

Text from recordings (titles, ids, principals, end reasons, paths) is printed with
terminal controls made visible: ESC as ^[, other C0 controls as ^X, C1
controls and bidi overrides as \\u{XXXX} (docs/player.md, \"Recorded text on
your terminal\"); --json keeps the exact text, with those characters escaped.

With --key or --keyring (and --verify), the signer is checked against those
keys as `verify` does (docs/format.md §9.3): STATE gets `+pinned`, or
`+NOT-PINNED` for a recording signed by another key or not signed at all.

Exit status: 0; 1 if --verify found a tampered recording (or, with keys, one
that is NOT-PINNED); 2 if a file (or a key file) could not be read.

Examples:
  termtrail ls                                  # the local store
  termtrail ls --store s3://audit-recordings/prod --since yesterday
  termtrail ls --long @last
  termtrail ls --since 7d --principal alice
  termtrail ls --verify ./recordings
  termtrail ls --verify --keyring /etc/termtrail/keys --since 7d
  termtrail ls --json | jq -r 'select(.end == \"idle timeout\") | .path'";

/// `ls` arguments.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Recordings or directories: paths, s3:// URLs, or names in the store (an id or id prefix, a file name, @last); default: the whole store.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArg,
    /// Every column, full width: source, session, shell, principal, size, end, key, the full path.
    #[arg(short = 'l', long)]
    pub long: bool,
    /// Read and verify every recording fully (chain, seal, signature).
    #[arg(long)]
    pub verify: bool,
    /// JSON Lines: one object per recording (schema in docs/player.md).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// With --verify: pin this public key (repeatable), as `verify --key`;
    /// a recording not signed by a pinned key is NOT-PINNED (exit 1).
    #[arg(long, value_name = "PUBKEY", requires = "verify")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub key: Vec<PathBuf>,
    /// With --verify: pin every `*.pub` key in this directory, as `verify
    /// --keyring`.
    #[arg(long, value_name = "DIR", requires = "verify")]
    #[arg(help_heading = super::headings::SIGNING)]
    pub keyring: Vec<PathBuf>,
    /// Recordings read at once (default: one per CPU; 16 for S3 objects
    /// without --verify, where each read waits on a few ranged GETs).
    #[arg(short = 'j', long, value_name = "N")]
    #[arg(help_heading = super::headings::GENERAL)]
    pub threads: Option<usize>,
}

/// Runs `ls`.
pub fn run(a: LsArgs) -> Result<Exit> {
    let filters = a.filter.filters()?;
    let keys = super::verify::pinned_keys(&a.key, &a.keyring)?;
    let found = targets(&a.paths, &a.store, filters.window.since_secs())?;
    if found.note_if_empty() {
        return Ok(Exit::SUCCESS);
    }
    let root = found.root.clone();
    let (files, missing) = found.found;
    let mut errors = missing.len();
    let mut damaged = 0;
    for (p, e) in &missing {
        eprintln!("termtrail: {}: {}", visible(p), visible(&e.to_string()));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Reading an object's header and index is a few small ranged GETs:
    // waiting, not computing, so more at once than there are CPUs.
    let remote = termtrail_player::remote::Target::any_remote(&files);
    let jobs = a.threads.unwrap_or(if remote && !a.verify {
        cpus.max(16)
    } else {
        cpus
    });
    let mut bar = Progress::new(if a.verify { "verifying" } else { "reading" });
    let mut list: Vec<Entry> = Vec::new();
    // In slices, so the progress bar moves.
    for (i, slice) in files.chunks(64).enumerate() {
        for (path, r) in slice
            .iter()
            .zip(entries(slice, a.verify, keys.as_ref(), jobs))
        {
            match r {
                Ok(e) if e.selected(&filters.meta, &filters.window) => list.push(e),
                Ok(_) => {}
                Err(e) => {
                    // Damage before the first chunk, or a file cut inside
                    // its header, is said as verify says it (its verdict
                    // line; exit 1 for TAMPERED, as a TAMPERED row).
                    let text = match &e {
                        ListError::Index(i @ IndexError::Damaged(_)) => {
                            damaged += 1;
                            i.to_string()
                        }
                        ListError::Index(i @ IndexError::CutInHeader) => i.to_string(),
                        e => {
                            errors += 1;
                            e.to_string()
                        }
                    };
                    bar.suspend(|| {
                        eprintln!("termtrail: {}: {}", visible(&path.name()), visible(&text))
                    });
                }
            }
        }
        bar.update((i * 64 + slice.len()).min(files.len()), files.len());
    }
    drop(bar);
    sort(&mut list);
    let mut out = super::stdout::lock();
    if a.json {
        for e in &list {
            writeln!(out, "{}", json_line(&e.to_json()))?;
        }
    } else if a.long && !list.is_empty() {
        print_table(&mut out, &list)?;
    } else if !list.is_empty() {
        print_short(&mut out, &list, root.as_deref(), table_width())?;
    }
    out.flush()?;
    let tampered = damaged > 0
        || list.iter().any(|e| {
            matches!(e.state, State::Tampered(_)) || e.signed == Some(false) || e.pin_failed()
        });
    Ok(if errors > 0 {
        Exit::ERROR
    } else if tampered {
        Exit::TAMPERED
    } else {
        Exit::SUCCESS
    })
}

/// The width `ls`'s table is fitted to: `COLUMNS` when set to a number,
/// else the terminal's width when stdout is one, else
/// [`termtrail_player::list::SHORT_WIDTH`].
fn table_width() -> usize {
    use std::io::IsTerminal;
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return n;
    }
    if std::io::stdout().is_terminal()
        && let Some(size) = termtrail_recorder::tty::terminal_size()
    {
        return usize::from(size.cols);
    }
    termtrail_player::list::SHORT_WIDTH
}
