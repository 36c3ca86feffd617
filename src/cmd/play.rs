//! `termtrail play`: replay a recording in this terminal, with the terminal
//! set-up it needs (raw mode, the alternate screen, keys and signals as
//! player input).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use clap::Args;
use termtrail_player::play::{Input, Outcome, PlayOptions, control};
use termtrail_player::seek::{SeekError, cache_dir};
use termtrail_recorder::tty;

use super::args::{BadValue, StoreArg, parse_moment};
use super::locate::{open_seeker, resolve};
use crate::exit::Exit;
use crate::progress::Progress;

/// Text after `play --help`'s options.
pub const HELP: &str = "\
Keys:
  space      pause / resume (at the end: play again)
  .          one frame forward (pauses)
  ← →        back / forward 5 seconds (instant, from keyframes)
  [ ]        previous / next marker
  + -        twice / half as fast
  ↑ ↓        pan one row up / down      (a recording larger than
  PgUp PgDn  pan one window up / down    your terminal: see below)
  < >        pan half a window left / right
  f          follow the cursor again (after panning)
  q, Ctrl-C  quit

The recording is drawn from a terminal emulator, never passed through: it
cannot change your terminal's title, clipboard or modes, and a screen cell
holding a control or bidi character shows it as \\u{XXXX}. Terminals larger
than 2000x1000 are played at that size (a note on stderr says so at the
end). A status line shows the position and the marker last passed (its
number and label: marker 2/5 \"deploy\"; unlabelled ones, such as rec's
Ctrl+\\ key adds, show only the number); it has its own row when your
terminal is taller than the recording, otherwise it shows while paused and
for a moment after a key or a marker.

A recording larger than your terminal is shown through a window that
follows the cursor (prompts and errors are where the cursor is): the rows
and columns around it, never a squeezed screen. The status line says so for
5 seconds (recording 120x35 > terminal 80x24: shows rows 13-35/35 cols
1-80/120), then names the part shown (rows 13-35/35 cols 1-80/120); when
the recording is taller than your terminal it has a row of its own. The
keys above pan; panning stops the following until f.

Segments are verified as they are played: at damage, playback stops with the
verify error (exit 1), also when --start is past it. The keyframe cache is
used only for the very file it was built from (device, inode, size, mtime,
ctime); else keyframes are rebuilt, verifying every segment, so a changed
file gets the verdict --no-cache gives (docs/player.md, \"The keyframe
cache\"). An unsealed recording plays up to its verified end.
Without a keyboard (stdin not a terminal) playback ends at the end.

Examples:
  termtrail play session.cast.zst
  termtrail play session.cast.zst --start 1:02:03 --speed 2
  termtrail play @last --start 90s                 # the latest recording of the store
  termtrail play 3f2a9c81 --start 14:03:07Z        # by id prefix, at a UTC clock time
  termtrail play demo.cast --idle-time-limit 1     # plain asciinema files too
  termtrail play demo.cast --loop --speed 2        # a kiosk: again and again
  termtrail play talk.cast.zst --pause-on-markers  # a demo: space goes on";

/// `play` arguments.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// The recording (.cast.zst, or a plain .cast v2/v3): a path, an s3:// URL, or a name in the store (an id or id prefix, a file name, @last).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArg,
    /// Playback speed (2 = twice as fast).
    #[arg(long, short, value_name = "X", default_value = "1", value_parser = positive_f64)]
    pub speed: f64,
    /// Shorten pauses longer than this to this: seconds (2) or a duration (1.5s, 500ms); default: the recording's own idle_time_limit, if any.
    #[arg(long, short, value_name = "DURATION", value_parser = positive_secs)]
    pub idle_time_limit: Option<f64>,
    /// Start at this moment: an offset (90.5, 90s, 1m30s, 1:30, 1:02:03.250, as offsets are printed), a UTC clock time (14:03:07.25Z) or an RFC 3339 time (grep --json's `at`).
    #[arg(long, value_name = "T", default_value = "0")]
    pub start: String,
    /// Neither read nor write the keyframe cache.
    #[arg(long)]
    pub no_cache: bool,
    /// At the end, play again from the start (after a second on the last screen), until you quit.
    #[arg(long = "loop", short = 'l')]
    pub looping: bool,
    /// Pause when playback reaches a marker; space resumes, ] jumps to the next one.
    #[arg(long, short = 'm')]
    pub pause_on_markers: bool,
}

fn positive_secs(s: &str) -> Result<f64, BadValue> {
    match super::args::parse_duration(s)?.as_secs_f64() {
        v if v > 0.0 => Ok(v),
        _ => Err(BadValue(format!("{s:?} is not a positive duration"))),
    }
}

fn positive_f64(s: &str) -> Result<f64, BadValue> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(BadValue(format!("{s:?} is not a positive number"))),
    }
}

/// Runs `play`.
pub fn run(a: PlayArgs) -> Result<Exit> {
    let moment = parse_moment(&a.start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let file = resolve(&a.file, &a.store)?;
    super::ensure_recording(&file)?;
    if !io::stdout().is_terminal() {
        bail!(
            "play needs a terminal on stdout; for a screen use `termtrail snapshot {} --at T`, for a file `termtrail export`",
            a.file.display()
        );
    }
    let cache = if a.no_cache { None } else { cache_dir() };
    let mut bar = Progress::new("building keyframes");
    let (seeker, _fetched) = open_seeker(&file, cache.as_deref(), &mut |done, total| {
        bar.update(done, total)
    })?;
    drop(bar);
    // Damage found opening it is the verdict snapshot gives (verify's).
    let seeker = match seeker {
        Ok(s) => s,
        Err(e) => return super::snapshot::seek_error(&file, e),
    };
    let start = (moment.resolve(seeker.header().timestamp, seeker.duration()))
        .map_err(|e| e.context("--start"))?;
    let idle = a
        .idle_time_limit
        .or(seeker.header().idle_time_limit)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| (s * 1e6) as u64);

    let (tx, rx) = mpsc::channel();
    let raw = tty::RawMode::enter().context("putting the terminal into raw mode")?;
    if raw.is_some() {
        forward_keys(tx.clone());
    }
    forward_signals(tx)?;
    let opts = PlayOptions {
        speed: a.speed,
        idle_time_limit: idle,
        start,
        exit_at_end: raw.is_none(),
        looping: a.looping,
        // Without a keyboard nothing could resume.
        pause_on_markers: a.pause_on_markers && raw.is_some(),
    };
    let size =
        tty::terminal_size().unwrap_or(termtrail_format::event::TermSize { cols: 80, rows: 24 });
    let outcome = {
        let _screen = LeaveScreenOnDrop;
        termtrail_player::play::play(&seeker, &opts, size, &rx, &mut io::stdout().lock())
    };
    drop(raw);
    super::clamp_notice();
    // Damage met while seeking to the start is the same verdict as damage
    // met while playing (exit 1, as `verify`).
    let outcome = match outcome {
        Err(termtrail_player::play::PlayError::Seek(e @ SeekError::Tampered { .. })) => {
            Ok(Outcome::Damaged(e.to_string()))
        }
        other => other,
    };
    match outcome? {
        Outcome::Quit | Outcome::End => Ok(Exit::SUCCESS),
        Outcome::Damaged(problem) => {
            eprintln!(
                "termtrail: {}: playback stopped: {}",
                file.display(),
                termtrail_format::text::visible(&problem.to_string())
            );
            Ok(Exit::TAMPERED)
        }
    }
}

/// Leaves the alternate screen on every path, unwinding included.
struct LeaveScreenOnDrop;

impl Drop for LeaveScreenOnDrop {
    fn drop(&mut self) {
        let mut out = io::stdout();
        let _ = out.write_all(control::LEAVE.as_bytes());
        let _ = out.flush();
    }
}

/// Sends what is typed to the player, from a thread of its own.
fn forward_keys(keys: mpsc::Sender<Input>) {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 64];
        let mut stdin = io::stdin().lock();
        while let Ok(n @ 1..) = stdin.read(&mut buf) {
            if keys.send(Input::Bytes(buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
}

/// Sends terminal resizes and quit signals to the player, from a thread of
/// its own.
fn forward_signals(tx: mpsc::Sender<Input>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
    let mut signals = signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let msg = match sig {
                SIGWINCH => match tty::terminal_size() {
                    Some(size) => Input::Resize(size),
                    None => continue,
                },
                _ => Input::Quit,
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
    Ok(())
}
