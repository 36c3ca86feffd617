//! `termtrail play`: replay in a terminal with the original timing, pause,
//! step, seek, jump between markers and change speed.
//!
//! The player never passes recorded bytes to the viewer's terminal. It feeds
//! them to its own emulator ([`Emulator`]) and draws that emulator's screen
//! (changed rows only, at most once per pass of the loop) on the alternate
//! screen, so a recording cannot change the viewer's terminal (title,
//! clipboard via OSC 52, modes, character sets), and seeking is the same
//! operation as playing: restore a keyframe and draw ([`Seeker::cursor_at`]).
//!
//! A recording larger than the viewer's terminal is shown through a window
//! that follows the cursor and that the viewer can pan ([`view`]); the
//! status line says which part is shown.
//!
//! The caller owns the terminal (raw mode, restoring it, signals) and hands
//! the player its input as [`Input`] messages; see `src/main.rs`.

pub mod view;

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use termtrail_format::event::{Event, EventData, Micros, TermSize, format_clock};

use crate::seek::{Cursor, SeekError, Seeker};
use crate::term::Emulator;
use view::{Layout, Pan, View};

/// How far ←/→ seek.
pub const SEEK_STEP: Micros = 5_000_000;
const MIN_SPEED: f64 = 1.0 / 16.0;
const MAX_SPEED: f64 = 64.0;
/// How long the status line stays after a key (or a marker) when it covers
/// the recording.
const STATUS_LINGER: Duration = Duration::from_secs(3);
/// How long the notice that the recording does not fit stays.
const NOTICE_LINGER: Duration = Duration::from_secs(5);
/// With `--loop`, how long the last screen stays before playing again, in
/// recording time.
const LOOP_HOLD: f64 = 1e6;
/// Longest sleep between two looks at the clock (the status line's clock
/// ticks at this rate).
const TICK: Duration = Duration::from_millis(250);

/// What the terminal sends the player.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Bytes typed (keys, decoded by [`keys`]).
    Bytes(Vec<u8>),
    /// The terminal changed size.
    Resize(TermSize),
    /// Stop now (a signal).
    Quit,
}

/// A player command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Space: pause or resume.
    Pause,
    /// `.`: one frame forward while paused.
    Step,
    /// ←: back [`SEEK_STEP`].
    Back,
    /// →: forward [`SEEK_STEP`].
    Forward,
    /// `]`: the next marker.
    NextMarker,
    /// `[`: the previous marker.
    PrevMarker,
    /// `+`: twice as fast.
    Faster,
    /// `-`: half as fast.
    Slower,
    /// ↑ ↓, PgUp PgDn, `<` `>`: move the window on a recording larger
    /// than the terminal.
    Pan(Pan),
    /// `f`: the window follows the cursor again.
    Follow,
    /// `q` or Ctrl-C.
    Quit,
}

/// Decodes typed bytes into commands (unknown keys are ignored).
pub fn keys(bytes: &[u8]) -> Vec<Key> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let key = match bytes[i] {
            b' ' => Some(Key::Pause),
            b'.' => Some(Key::Step),
            b']' => Some(Key::NextMarker),
            b'[' => Some(Key::PrevMarker),
            b'+' | b'=' => Some(Key::Faster),
            b'-' | b'_' => Some(Key::Slower),
            b'q' | b'Q' | 0x03 => Some(Key::Quit),
            b'<' => Some(Key::Pan(Pan::Left)),
            b'>' => Some(Key::Pan(Pan::Right)),
            b'f' | b'F' => Some(Key::Follow),
            // Arrows: ESC [ C / ESC O C (application cursor mode); pages:
            // ESC [ 5 ~ / ESC [ 6 ~.
            0x1b if i + 2 < bytes.len() && matches!(bytes[i + 1], b'[' | b'O') => {
                i += 2;
                match bytes[i] {
                    b'C' => Some(Key::Forward),
                    b'D' => Some(Key::Back),
                    b'A' => Some(Key::Pan(Pan::Up)),
                    b'B' => Some(Key::Pan(Pan::Down)),
                    page @ (b'5' | b'6') if bytes.get(i + 1) == Some(&b'~') => {
                        i += 1;
                        Some(Key::Pan(if page == b'5' {
                            Pan::PageUp
                        } else {
                            Pan::PageDown
                        }))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        out.extend(key);
        i += 1;
    }
    out
}

/// Playback settings.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// Speed factor (1 = original timing).
    pub speed: f64,
    /// Pauses longer than this are shortened to it (None: original pauses).
    pub idle_time_limit: Option<Micros>,
    /// Where to start.
    pub start: Micros,
    /// Quit at the end instead of waiting there (when no keyboard is
    /// attached, for example).
    pub exit_at_end: bool,
    /// At the end, play again from the start (until the viewer quits).
    pub looping: bool,
    /// Pause when playback reaches a marker (space resumes).
    pub pause_on_markers: bool,
}

/// How playback ended.
#[derive(Debug)]
pub enum Outcome {
    /// The viewer quit (or a signal stopped the player).
    Quit,
    /// Playback reached the end and `exit_at_end` was set.
    End,
    /// The recording stopped verifying; the player stopped there.
    Damaged(String),
}

/// Terminal control sequences the player writes.
pub mod control {
    /// Switch to the alternate screen, clear it, hide the cursor.
    pub const ENTER: &str = "\x1b[?1049h\x1b[H\x1b[2J\x1b[?25l";
    /// Reset attributes, show the cursor, back to the main screen.
    pub const LEAVE: &str = "\x1b[0m\x1b[?25h\x1b[?1049l";
}

/// Plays `seeker`'s recording on `out`, a terminal of `size`, taking commands
/// from `input` until the viewer quits (or, with `exit_at_end`, until the
/// end). The caller enters raw mode before and writes [`control::LEAVE`]
/// after, on every path.
pub fn play(
    seeker: &Seeker,
    opts: &PlayOptions,
    size: TermSize,
    input: &Receiver<Input>,
    out: &mut dyn Write,
) -> Result<Outcome, PlayError> {
    let mut p = Player::new(seeker, opts, size)?;
    out.write_all(control::ENTER.as_bytes())?;
    let mut last_tick = Instant::now();
    loop {
        let now = Instant::now();
        if !p.paused {
            p.progress += now.duration_since(last_tick).as_secs_f64() * 1e6 * p.speed;
        }
        last_tick = now;
        p.advance()?;
        if p.at_end() && !p.paused {
            if p.looping() {
                // The last screen stays for LOOP_HOLD, then the next pass.
                if p.progress >= LOOP_HOLD {
                    p.seek(0)?;
                    p.pass += 1;
                    continue;
                }
                p.draw(out)?;
                let hold = ((LOOP_HOLD - p.progress) / p.speed / 1e6).max(0.0);
                let wait = Duration::from_secs_f64(hold).min(TICK);
                match input.recv_timeout(wait) {
                    Ok(msg) => {
                        if let Some(outcome) = p.input(msg, out)? {
                            return Ok(outcome);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
                }
                continue;
            }
            p.paused = true;
            if opts.exit_at_end {
                p.draw(out)?;
                return Ok(match p.damage.take() {
                    Some(d) => Outcome::Damaged(d),
                    None => Outcome::End,
                });
            }
        }
        p.draw(out)?;
        let wait = p.wait().min(TICK);
        let msg = match input.recv_timeout(wait) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            // Nobody sends input any more: keep playing.
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(wait);
                continue;
            }
        };
        // Time passed while waiting counts before the key acts.
        let now = Instant::now();
        if !p.paused {
            p.progress += now.duration_since(last_tick).as_secs_f64() * 1e6 * p.speed;
            p.advance()?;
        }
        last_tick = now;
        if let Some(outcome) = p.input(msg, out)? {
            return Ok(outcome);
        }
    }
}

/// Playback failures (damage is an [`Outcome`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// Reading the recording failed.
    #[error(transparent)]
    Seek(#[from] SeekError),
    /// Writing to the terminal failed.
    #[error("writing to the terminal: {0}")]
    Io(#[from] io::Error),
}

struct Player<'a> {
    seeker: &'a Seeker,
    emu: Emulator,
    cursor: Cursor,
    /// The next event, read ahead (None at the end).
    next: Option<Event>,
    /// Time of the last event applied (or of the seek target).
    last: Micros,
    /// Playback time since `last`, in microseconds of (idle-limited)
    /// recording time.
    progress: f64,
    paused: bool,
    speed: f64,
    idle_limit: Option<Micros>,
    term: TermSize,
    /// Rows as drawn on the terminal (None: must be drawn).
    drawn: Vec<Option<String>>,
    status_drawn: Option<String>,
    status_until: Option<Instant>,
    /// Where the recording stops verifying, once reached.
    damage: Option<String>,
    /// The part of the recording's screen shown.
    view: View,
    /// Until when the notice that the recording does not fit shows.
    notice_until: Option<Instant>,
    looping: bool,
    pause_on_markers: bool,
    /// Which pass this is (`--loop`), from 1.
    pass: u32,
}

impl<'a> Player<'a> {
    fn new(
        seeker: &'a Seeker,
        opts: &PlayOptions,
        term: TermSize,
    ) -> Result<Player<'a>, PlayError> {
        let start = opts.start.min(seeker.duration());
        let (emu, cursor) = seeker.cursor_at(start)?;
        let mut p = Player {
            seeker,
            emu,
            cursor,
            next: None,
            last: start,
            progress: 0.0,
            paused: false,
            speed: opts.speed.clamp(MIN_SPEED, MAX_SPEED),
            idle_limit: opts.idle_time_limit,
            term,
            drawn: Vec::new(),
            status_drawn: None,
            status_until: None,
            damage: None,
            view: View::default(),
            notice_until: None,
            looping: opts.looping,
            pause_on_markers: opts.pause_on_markers,
            pass: 1,
        };
        p.read_next();
        p.show_notice();
        Ok(p)
    }

    /// Shows the notice for a while when the recording does not fit.
    fn show_notice(&mut self) {
        let screen = self.emu.size();
        if View::cropped(screen, Layout::new(screen, self.term)) {
            self.notice_until = Some(Instant::now() + NOTICE_LINGER);
        }
    }

    /// Whether the end leads to another pass.
    fn looping(&self) -> bool {
        self.looping && self.damage.is_none() && self.seeker.duration() > 0
    }

    /// Acts on one message; Some when playback ends.
    fn input(&mut self, msg: Input, out: &mut dyn Write) -> Result<Option<Outcome>, PlayError> {
        match msg {
            Input::Quit => return Ok(Some(self.quit())),
            Input::Resize(s) => self.resize(s),
            Input::Bytes(b) => {
                for key in keys(&b) {
                    if key == Key::Quit {
                        self.draw(out)?;
                        return Ok(Some(self.quit()));
                    }
                    self.key(key)?;
                }
            }
        }
        Ok(None)
    }

    fn read_next(&mut self) {
        self.next = match self.cursor.next() {
            Ok(e) => e,
            Err(e) => {
                self.damage = Some(e.to_string());
                None
            }
        };
    }

    fn at_end(&self) -> bool {
        self.next.is_none()
    }

    /// The (idle-limited) wait from `last` to the next event.
    fn gap(&self) -> Option<f64> {
        let e = self.next.as_ref()?;
        let gap = e.time.saturating_sub(self.last);
        Some(self.idle_limit.map_or(gap, |l| gap.min(l)) as f64)
    }

    /// Applies every event that is due; a marker shows the status line
    /// (and, with `pause_on_markers`, pauses there).
    fn advance(&mut self) -> Result<(), PlayError> {
        while let Some(gap) = self.gap() {
            if self.progress < gap {
                break;
            }
            self.progress -= gap;
            let marker = self
                .next
                .as_ref()
                .is_some_and(|e| matches!(e.data, EventData::Marker(_)));
            self.apply_next();
            if marker && !self.paused {
                self.status_until = Some(Instant::now() + STATUS_LINGER);
                if self.pause_on_markers {
                    self.paused = true;
                    self.progress = 0.0;
                    break;
                }
            }
        }
        // At the end, time counts only towards the next pass.
        if self.at_end() && (!self.looping() || self.paused) {
            self.progress = 0.0;
        }
        Ok(())
    }

    fn apply_next(&mut self) {
        if let Some(e) = self.next.take() {
            self.emu.apply(&e.data);
            self.last = e.time;
            self.read_next();
            if matches!(e.data, EventData::Resize(_)) {
                // The recording may not fit any more: say so again.
                self.show_notice();
            }
        }
    }

    /// Wall time until the next event is due.
    fn wait(&self) -> Duration {
        match self.gap() {
            Some(gap) if !self.paused => {
                Duration::from_secs_f64(((gap - self.progress).max(0.0) / self.speed) / 1e6)
            }
            _ => TICK,
        }
    }

    /// The playhead in recording time.
    fn position(&self) -> Micros {
        match &self.next {
            Some(e) => (self.last + self.progress as Micros).min(e.time),
            None => self.last,
        }
    }

    fn seek(&mut self, to: Micros) -> Result<(), PlayError> {
        let to = to.min(self.seeker.duration());
        let (emu, cursor) = match self.seeker.cursor_at(to) {
            Ok(found) => found,
            Err(e @ SeekError::Tampered { .. }) => {
                self.damage = Some(e.to_string());
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.emu = emu;
        self.cursor = cursor;
        self.last = to;
        self.progress = 0.0;
        self.damage = None;
        self.read_next();
        self.drawn.clear();
        Ok(())
    }

    fn key(&mut self, key: Key) -> Result<(), PlayError> {
        self.status_until = Some(Instant::now() + STATUS_LINGER);
        let pos = self.position();
        match key {
            Key::Pause => {
                if self.at_end() && self.damage.is_none() {
                    // Space at the end plays again from the start.
                    self.seek(0)?;
                    self.paused = false;
                } else {
                    self.paused = !self.paused;
                }
            }
            Key::Step => {
                self.paused = true;
                // One frame: up to and including the next event that changes
                // the screen.
                while let Some(e) = &self.next {
                    let visible = matches!(e.data, EventData::Output(_) | EventData::Resize(_));
                    self.apply_next();
                    self.progress = 0.0;
                    if visible {
                        break;
                    }
                }
            }
            Key::Back => self.seek(pos.saturating_sub(SEEK_STEP))?,
            Key::Forward => self.seek(pos.saturating_add(SEEK_STEP))?,
            Key::NextMarker => {
                if let Some((t, _)) = self.seeker.markers().iter().find(|(t, _)| *t > pos) {
                    self.seek(*t)?;
                }
            }
            Key::PrevMarker => {
                let before = self.seeker.markers().iter().rev().find(|(t, _)| *t < pos);
                if let Some((t, _)) = before {
                    self.seek(*t)?;
                }
            }
            Key::Faster => self.speed = (self.speed * 2.0).min(MAX_SPEED),
            Key::Slower => self.speed = (self.speed / 2.0).max(MIN_SPEED),
            Key::Pan(pan) => {
                let screen = self.emu.size();
                self.view.pan(pan, screen, Layout::new(screen, self.term));
            }
            Key::Follow => self.view.follow = true,
            Key::Quit => {}
        }
        Ok(())
    }

    fn resize(&mut self, size: TermSize) {
        self.term = size;
        self.drawn.clear();
        self.status_drawn = None;
        self.show_notice();
    }

    fn quit(&mut self) -> Outcome {
        match self.damage.take() {
            Some(d) => Outcome::Damaged(d),
            None => Outcome::Quit,
        }
    }

    fn status_visible(&self, own_row: bool) -> bool {
        own_row
            || self.paused
            || self.damage.is_some()
            || self.status_until.is_some_and(|u| Instant::now() < u)
            || self.notice_until.is_some_and(|u| Instant::now() < u)
    }

    /// The notice that the recording does not fit, while it shows.
    fn notice(&self, layout: Layout) -> Option<String> {
        if self.notice_until.is_none_or(|u| Instant::now() >= u) {
            return None;
        }
        let screen = self.emu.size();
        View::cropped(screen, layout).then(|| {
            format!(
                " recording {}x{} > terminal {}x{}: shows {}  \u{2191}\u{2193} PgUp PgDn < > pan  f follow cursor",
                screen.cols,
                screen.rows,
                self.term.cols,
                self.term.rows,
                self.view.describe(screen, layout)
            )
        })
    }

    /// The latest marker at or before `pos`: "marker 1/2 \"label\"", or
    /// "marker 2/2" when it has no label.
    fn marker_label(&self, pos: Micros) -> Option<String> {
        let markers = self.seeker.markers();
        let i = markers.iter().rposition(|(t, _)| *t <= pos)?;
        let mut s = format!("marker {}/{}", i + 1, markers.len());
        let label = &markers[i].1;
        if !label.is_empty() {
            // A label is recorded text: shown quoted, controls visible.
            let label = termtrail_format::text::visible(label);
            s.push_str(&format!(" \"{label}\""));
        }
        Some(s)
    }

    fn status(&self, layout: Layout) -> String {
        if let Some(notice) = self.notice(layout) {
            return notice;
        }
        let pos = self.position();
        let state = if self.damage.is_some() {
            "stopped"
        } else if self.at_end() {
            "end"
        } else if self.paused {
            "paused"
        } else {
            "playing"
        };
        let mut s = format!(
            " {state} {} / {}  speed {}",
            format_clock(pos),
            format_clock(self.seeker.duration()),
            speed_label(self.speed)
        );
        if self.looping {
            s.push_str(&format!("  loop #{}", self.pass));
        }
        let screen = self.emu.size();
        let cropped = View::cropped(screen, layout);
        if cropped {
            s.push_str(&format!("  {}", self.view.describe(screen, layout)));
        }
        if let Some(marker) = self.marker_label(pos) {
            s.push_str(&format!("  {marker}"));
        }
        if let Some(d) = &self.damage {
            let d = termtrail_format::text::visible(d);
            s.push_str(&format!("  TAMPERED: {d}"));
        } else if self.at_end() && !self.seeker.sealed() && !self.seeker.is_plain() {
            s.push_str("  (not sealed: the verified part ends here)");
        }
        s.push_str("  | space pause  . step  \u{2190}/\u{2192} 5s  [/] marker  +/- speed");
        if cropped {
            s.push_str("  \u{2191}\u{2193}/</> pan  f follow");
        }
        s.push_str("  q quit");
        s
    }

    /// Draws what changed: rows of the screen, the status line, the cursor.
    fn draw(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let size = self.emu.size();
        let layout = Layout::new(size, self.term);
        self.view.place(size, layout, self.emu.cursor_cell());
        let (rows, cols, own_row) = (layout.rows, layout.cols, layout.own_status_row);
        let (top, left) = (self.view.top, self.view.left);
        let term_rows = usize::from(self.term.rows.max(1));
        let mut buf = String::new();
        if self.drawn.is_empty() {
            buf.push_str("\x1b[0m\x1b[H\x1b[2J");
            self.drawn = vec![None; term_rows];
            self.status_drawn = None;
        }
        let screen = self.emu.colored_window(left, cols);
        let show_status = self.status_visible(own_row);
        let status_row = term_rows - 1;
        for row in 0..term_rows {
            let text = if show_status && row == status_row {
                continue;
            } else if row < rows {
                screen.get(top + row).cloned().unwrap_or_default()
            } else {
                String::new()
            };
            if self.drawn[row].as_ref() != Some(&text) {
                buf.push_str(&format!("\x1b[{};1H{text}\x1b[0m\x1b[K", row + 1));
                self.drawn[row] = Some(text);
            }
        }
        if show_status {
            let line: String = self.status(layout).chars().take(cols).collect();
            if self.status_drawn.as_ref() != Some(&line) {
                let color = if self.damage.is_some() { "41;97" } else { "7" };
                buf.push_str(&format!(
                    "\x1b[{};1H\x1b[0;{color}m{line}\x1b[K\x1b[0m",
                    status_row + 1
                ));
                self.status_drawn = Some(line);
                // The row under the status line must be redrawn when it goes.
                self.drawn[status_row] = None;
            }
        } else {
            self.status_drawn = None;
        }
        // The cursor, where the window shows it.
        let cursor = self
            .emu
            .cursor()
            .and_then(|(col, row)| Some((col.checked_sub(left)?, row.checked_sub(top)?)));
        match cursor {
            Some((col, row)) if row < rows && col < cols && !(show_status && row == status_row) => {
                buf.push_str(&format!("\x1b[{};{}H\x1b[?25h", row + 1, col + 1));
            }
            _ => buf.push_str("\x1b[?25l"),
        }
        out.write_all(buf.as_bytes())?;
        out.flush()
    }
}

fn speed_label(speed: f64) -> String {
    if speed >= 1.0 {
        format!("{speed}x")
    } else {
        format!("1/{}x", (1.0 / speed).round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode() {
        assert_eq!(
            keys(b" .q\x1b[C\x1b[D\x1bOC][+-\x03x"),
            vec![
                Key::Pause,
                Key::Step,
                Key::Quit,
                Key::Forward,
                Key::Back,
                Key::Forward,
                Key::NextMarker,
                Key::PrevMarker,
                Key::Faster,
                Key::Slower,
                Key::Quit
            ]
        );
        assert_eq!(keys(b"\x1b"), vec![]);
        assert_eq!(keys(b"\x1b[Z"), vec![]);
        assert_eq!(
            keys(b"\x1b[A\x1bOB\x1b[5~\x1b[6~<>f\x1b[5"),
            vec![
                Key::Pan(Pan::Up),
                Key::Pan(Pan::Down),
                Key::Pan(Pan::PageUp),
                Key::Pan(Pan::PageDown),
                Key::Pan(Pan::Left),
                Key::Pan(Pan::Right),
                Key::Follow
            ]
        );
    }

    /// A plain cast in a directory of its own, opened.
    fn seeker(cast: &str) -> (tempfile::TempDir, Seeker) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.cast");
        std::fs::write(&path, cast).unwrap();
        let seeker = Seeker::open(&path, None, &mut |_, _| {}).unwrap();
        (dir, seeker)
    }

    const MARKED: &str = r#"{"version": 3, "term": {"cols": 20, "rows": 4}}
[0.0, "o", "a"]
[1.0, "m", "one"]
[0.0, "o", "b"]
[1.0, "m", ""]
[1.0, "o", "c"]
"#;

    fn options(looping: bool, pause_on_markers: bool) -> PlayOptions {
        PlayOptions {
            speed: 1.0,
            idle_time_limit: None,
            start: 0,
            exit_at_end: false,
            looping,
            pause_on_markers,
        }
    }

    const TERM: TermSize = TermSize { cols: 20, rows: 10 };

    #[test]
    fn playback_pauses_at_each_marker_and_names_it() {
        let (_dir, seeker) = seeker(MARKED);
        let mut p = Player::new(&seeker, &options(false, true), TERM).unwrap();
        p.progress = 10e6;
        p.advance().unwrap();
        assert!(p.paused);
        assert_eq!(p.position(), 1_000_000);
        assert_eq!(p.emu.line(0), "a");
        assert_eq!(p.marker_label(p.position()).unwrap(), "marker 1/2 \"one\"");
        // Paused: what is due at the marker's instant is drawn, no more.
        p.advance().unwrap();
        assert_eq!((p.emu.line(0).as_str(), p.position()), ("ab", 1_000_000));
        p.paused = false;
        p.progress = 10e6;
        p.advance().unwrap();
        assert!(p.paused);
        assert_eq!(p.position(), 2_000_000);
        assert_eq!(p.marker_label(p.position()).unwrap(), "marker 2/2");
        p.paused = false;
        p.progress = 10e6;
        p.advance().unwrap();
        assert!(!p.paused && p.at_end());
        assert_eq!(p.emu.line(0), "abc");
    }

    #[test]
    fn without_pause_on_markers_playback_runs_through_and_loops_only_when_asked() {
        let (_dir, seeker) = seeker(MARKED);
        let mut p = Player::new(&seeker, &options(false, false), TERM).unwrap();
        p.progress = 10e6;
        p.advance().unwrap();
        assert!(!p.paused && p.at_end());
        assert!(!p.looping());
        assert_eq!(p.progress, 0.0, "time does not count at the end");
        let mut p = Player::new(&seeker, &options(true, false), TERM).unwrap();
        p.progress = 10e6;
        p.advance().unwrap();
        assert!(p.looping() && p.at_end());
        assert!(p.progress > 0.0, "time counts towards the next pass");
    }

    #[test]
    fn speeds_read_well() {
        assert_eq!(speed_label(1.0), "1x");
        assert_eq!(speed_label(2.0), "2x");
        assert_eq!(speed_label(0.25), "1/4x");
    }
}
