//! `termtrail snapshot`: print the screen as it looked at a moment of a
//! recording.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use termtrail_player::seek::{SeekError, Seeker, cache_dir};

use super::args::{StoreArg, parse_moment};
use super::locate::{open_seeker, resolve};
use crate::exit::Exit;
use crate::progress::Progress;

/// Text after `snapshot --help`'s options.
pub const HELP: &str = "\
The screen is rebuilt by a terminal emulator (avt, the one asciinema's players
use) from the nearest keyframe: the first snapshot of a recording builds its
keyframes in one pass and caches them (in $TERMTRAIL_CACHE_DIR, else
$XDG_CACHE_HOME/termtrail, else ~/.cache/termtrail); later ones read one
segment. The segments read are verified: a moment after damage is an error
(exit 1); before it, the screen is shown with a warning. A cache entry is
used only for the very file it was built from (device, inode, size, mtime,
ctime); else keyframes are rebuilt, verifying every segment, so the verdict
is the one --no-cache gives (docs/player.md, \"The keyframe cache\", says
what is verified with and without it). Damage in the header's segment is
verify's TAMPERED (exit 1); a file cut inside its header is verify's
\"intact but UNSEALED\" (exit 3).

A recording may ask for a terminal of up to 65535x65535; screens are rebuilt
at most 2000 columns x 1000 rows (a note on stderr says when a recording was
clamped). Screen cells holding a control or bidi character are shown as
\\u{XXXX}: nothing recorded reaches your terminal raw.

Examples:
  termtrail snapshot session.cast.zst --at 90
  termtrail snapshot session.cast.zst --at 1:02:03.250 --color
  termtrail snapshot @last --at 90s                # the latest recording of the store
  termtrail snapshot 3f2a9c81 --at 14:03:07.25Z    # by id prefix, at a UTC clock time
  termtrail snapshot s.cast.zst --at 2026-11-20T14:03:07.250Z   # grep --json's `at`
  termtrail snapshot demo.cast --at 12.5          # plain asciinema files too";

/// `snapshot` arguments.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// The recording (.cast.zst, or a plain .cast): a path, an s3:// URL, or a name in the store (an id or id prefix, a file name, @last).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArg,
    /// The moment: an offset (90, 90.5, 90s, 1m, 1m30s, 1:30, 1:02:03.250), a UTC clock time on the recording's day (14:03:07.25Z, or 14:03:07.25 when that is past the end as an offset), or an RFC 3339 time (grep --json's `at`).
    #[arg(long, value_name = "T")]
    pub at: String,
    /// Keep colours and attributes (SGR escape sequences).
    #[arg(long)]
    pub color: bool,
    /// Neither read nor write the keyframe cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Runs `snapshot`.
pub fn run(a: SnapshotArgs) -> Result<Exit> {
    let moment = parse_moment(&a.at).map_err(|e| anyhow::anyhow!("--at: {e}"))?;
    let file = resolve(&a.file, &a.store)?;
    super::ensure_recording(&file)?;
    let cache = if a.no_cache { None } else { cache_dir() };
    let mut bar = Progress::new("building keyframes");
    let (found, _fetched) = open_seeker(&file, cache.as_deref(), &mut |done, total| {
        bar.update(done, total)
    })?;
    let seeker = found.map_err(|e| seek_error(&file, e));
    drop(bar);
    let seeker = match seeker {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let at = (moment.resolve(seeker.header().timestamp, seeker.duration()))
        .map_err(|e| e.context("--at"))?;
    let found = seeker.screen_at(at).map(|screen| (screen, seeker));
    let (screen, seeker) = match found {
        Ok(found) => found,
        Err(e) => return seek_error(&file, e),
    };
    warn_about(&seeker, at);
    let mut out = super::stdout::lock();
    out.write_all(screen.render(a.color).as_bytes())?;
    out.flush()?;
    super::clamp_notice();
    Ok(Exit::SUCCESS)
}

/// What a seek error makes of the command: damage is a verdict (exit 1,
/// as `verify`), not a failure to run.
pub(super) fn seek_error(file: &std::path::Path, e: SeekError) -> Result<Exit> {
    match e {
        e @ SeekError::Tampered { .. } => {
            eprintln!(
                "termtrail: {}: {}",
                file.display(),
                termtrail_format::text::visible(&e.to_string())
            );
            Ok(Exit::TAMPERED)
        }
        // verify's verdict and exit code for a file cut inside its header.
        SeekError::Index(e @ termtrail_format::index::IndexError::CutInHeader) => {
            eprintln!("termtrail: {}: {e}", file.display());
            Ok(Exit::UNSEALED)
        }
        e => Err(anyhow::Error::new(e).context(file.display().to_string())),
    }
}

/// Says on stderr when the screen shown is not simply the one at `at`:
/// damage after it, an unsealed recording, or a moment past the end.
fn warn_about(seeker: &Seeker, at: termtrail_format::event::Micros) {
    let clock = termtrail_format::event::format_clock;
    if let Some(damage) = seeker.damage() {
        eprintln!(
            "termtrail: warning: the recording does not verify after {}: {}; showing the verified part before it (run `termtrail verify` for details)",
            clock(seeker.duration()),
            termtrail_format::text::visible(damage)
        );
    } else if !seeker.sealed() && !seeker.is_plain() {
        eprintln!(
            "termtrail: note: the recording is not sealed (cut short or still being written); it is shown up to its last verified event"
        );
    } else if at / 1000 > seeker.duration() / 1000 {
        eprintln!(
            "termtrail: note: {} is past the end of the recording ({}); showing the last screen",
            clock(at),
            clock(seeker.duration())
        );
    }
}
