//! `termtrail snapshot`: print the screen as it looked at a moment of a
//! recording.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use termtrail_player::seek::{SeekError, Seeker, cache_dir, parse_time};

use super::locate::open_seeker;
use crate::exit::Exit;
use crate::progress::Progress;

/// Text after `snapshot --help`'s options.
pub const HELP: &str = "\
The screen is rebuilt by a terminal emulator (avt, the one asciinema's players
use) from the nearest keyframe: the first snapshot of a recording builds its
keyframes in one pass and caches them (in $TERMTRAIL_CACHE_DIR, else
$XDG_CACHE_HOME/termtrail, else ~/.cache/termtrail); later ones read one
segment. The segments read are verified: a moment after damage is an error
(exit 1); before it, the screen is shown with a warning.

A recording may ask for a terminal of up to 65535x65535; screens are rebuilt
at most 2000 columns x 1000 rows (a note on stderr says when a recording was
clamped). Screen cells holding a control or bidi character are shown as
\\u{XXXX}: nothing recorded reaches your terminal raw.

Examples:
  termtrail snapshot session.cast.zst --at 90
  termtrail snapshot session.cast.zst --at 1:02:03.250 --color
  termtrail snapshot demo.cast --at 12.5          # plain asciinema files too";

/// `snapshot` arguments.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// The recording (.cast.zst, or a plain .cast).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The moment: seconds (90, 90.5), m:s or h:m:s, with optional .ms (1:30, 1:02:03.250).
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
    let at = parse_time(&a.at)?;
    let cache = if a.no_cache { None } else { cache_dir() };
    let mut bar = Progress::new("building keyframes");
    let (found, _fetched) = open_seeker(&a.file, cache.as_deref(), &mut |done, total| {
        bar.update(done, total)
    })?;
    let found = found.and_then(|seeker| Ok((seeker.screen_at(at)?, seeker)));
    drop(bar);
    let (screen, seeker) = match found {
        Ok(found) => found,
        // Damage is a verdict (exit 1, as `verify`), not a failure to run.
        Err(e @ SeekError::Tampered { .. }) => {
            eprintln!(
                "termtrail: {}: {}",
                a.file.display(),
                termtrail_format::text::visible(&e.to_string())
            );
            return Ok(Exit::TAMPERED);
        }
        Err(e) => return Err(anyhow::Error::new(e).context(a.file.display().to_string())),
    };
    warn_about(&seeker, at);
    let mut out = io::stdout().lock();
    out.write_all(screen.render(a.color).as_bytes())?;
    out.flush()?;
    super::clamp_notice();
    Ok(Exit::SUCCESS)
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
    } else if at > seeker.duration() {
        eprintln!(
            "termtrail: note: {} is past the end of the recording ({}); showing the last screen",
            clock(at),
            clock(seeker.duration())
        );
    }
}
