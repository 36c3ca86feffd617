//! The second pass: brings a terminal emulator to each hit's time for the
//! screen row it was on, and hashes the chunks hits come from against the
//! chain.

use std::path::Path;

use termtrail_format::event::{EventData, Micros, TermSize};
use termtrail_format::index::SegmentText;
#[cfg(doc)]
use termtrail_format::reader::ContentCheck;

use super::events::{ChunkEvents, Data};
use super::screen_line::{ScreenText, screen_line};
use super::scroll_screen::ScrollScreen;
use super::{Hit, SearchOptions};
use crate::seek::{Cursor, SeekError, Seeker};
use crate::term::Emulator;

/// Output emulated to rebuild a screen when no keyframes are cached (see
/// `docs/player.md`, grep, Screen lines).
pub const SCREEN_WINDOW: usize = crate::seek::KEYFRAME_BYTES;

/// Brings an emulator to each hit's time, in time order.
///
/// With cached keyframes (from `play`/`snapshot`) the screens are exact: the
/// walker jumps from a keyframe when one lies ahead, else reads on. Without,
/// emulating every recording with hits from its start would cost far more
/// than the search itself, so a hit more than [`SCREEN_WINDOW`] bytes of
/// output after the previous one gets a screen rebuilt from a blank terminal
/// (of the size in force) fed a window of the output before it, from its
/// segment and, when needed, the one before: from a carriage return followed
/// by enough line feeds to scroll every older row away when the output only
/// writes and scrolls (see [`ScrollScan`]), else the last [`SCREEN_WINDOW`]
/// bytes. That is exact when the window reaches back to the recording's
/// start, and otherwise right wherever those bytes redrew the screen
/// (scrolling output, a full-screen program's redraws): what the hit's own
/// text wrote is always inside the window. Closer hits read on from the
/// previous one. `docs/player.md` (Screen lines) says where it can be wrong.
pub(super) struct Walker {
    seeker: Seeker,
    /// Resizes seen by the first pass.
    pub(super) sizes: Vec<(Micros, TermSize)>,
    /// Segments read (at most two: the current one and the one before).
    segments: Vec<Loaded>,
    at: Option<WalkState>,
    /// Screen lines are still wanted (false once one could not be built:
    /// they are extras, a failure only leaves them out).
    screens: bool,
    /// Counts changes to the screen (a new one, events applied).
    changes: u64,
    /// The screen's rows as built for the hits so far, while `changes` is
    /// `rows_at` (see [`screen_line`]).
    rows: Vec<Option<String>>,
    rows_at: u64,
}

/// A segment read for the window, and the events of the chunks taken from
/// it so far (a chunk is hashed and parsed only when the window reaches it:
/// a 256 KiB window needs one or two of a segment's ~16 chunks).
struct Loaded {
    seg: usize,
    text: SegmentText,
    events: Vec<Option<ChunkEvents>>,
    /// Chunks whose content verified (a hit's chunk is hashed once).
    checked: Vec<bool>,
}

impl Loaded {
    fn new(seg: usize, text: SegmentText) -> Loaded {
        Loaded {
            seg,
            events: (0..text.chunks()).map(|_| None).collect(),
            checked: vec![false; text.chunks()],
            text,
        }
    }
}

/// A place between events: (segment, chunk, index of the next event).
type Pos = (usize, usize, usize);

struct WalkState {
    emu: Screen,
    pos: Micros,
    exact: bool,
    /// Without keyframes: the next event to apply.
    next: Option<Pos>,
    /// With keyframes (or for a plain file): a cursor reading on.
    cursor: Option<Cursor>,
}

impl Walker {
    pub(super) fn open(path: &Path, opts: &SearchOptions) -> Result<Walker, SeekError> {
        Ok(Walker {
            seeker: Seeker::open_lazy(path, opts.cache.as_deref())?,
            sizes: Vec::new(),
            segments: Vec::new(),
            at: None,
            screens: opts.screen,
            changes: 0,
            rows: Vec::new(),
            rows_at: 0,
        })
    }

    /// Takes segment `seg` as the first pass read and verified it (kept
    /// with the one before it).
    pub(super) fn offer(&mut self, seg: usize, text: SegmentText) {
        self.segments.retain(|l| l.seg + 1 >= seg && l.seg != seg);
        self.segments.push(Loaded::new(seg, text));
    }

    /// The second pass over `hits`, in time order. With `check` (segments
    /// may have been taken on the seal's frame hashes, see
    /// [`ContentCheck`]), the chunks each hit's line was written from are
    /// hashed against the chain: an error when one does not verify. With
    /// screen lines wanted, an emulator brought to each hit's time gives
    /// its screen row.
    pub(super) fn walk(
        &mut self,
        hits: &mut [Hit],
        opts: &SearchOptions,
        check: bool,
    ) -> Result<(), SeekError> {
        for hit in hits {
            // The screen first: the chunks it reads are hashed as they are
            // parsed, and verify_span does not hash them again.
            if self.screens {
                match self.screen_at(hit.found.time) {
                    Ok(()) => {
                        if self.rows_at != self.changes {
                            self.rows.clear();
                            self.rows_at = self.changes;
                        }
                        if let Some(s) = &self.at {
                            hit.screen = screen_line(
                                &s.emu,
                                s.exact,
                                &hit.found,
                                opts.context,
                                &mut self.rows,
                            );
                        }
                    }
                    Err(_) => self.screens = false,
                }
            }
            if check {
                self.verify_span(hit.found.written)?;
            }
        }
        Ok(())
    }

    /// The terminal size in force before `t`, as replayed (bounded).
    fn size_before(&self, t: Micros) -> TermSize {
        crate::term::replay_size(
            self.sizes
                .iter()
                .rev()
                .find(|(at, _)| *at < t)
                .map_or_else(|| self.seeker.header().size(), |(_, s)| *s),
        )
    }

    fn load(&mut self, seg: usize) -> Result<usize, SeekError> {
        if let Some(i) = self.segments.iter().position(|l| l.seg == seg) {
            return Ok(i);
        }
        let text = self.seeker.segment_text(seg)?;
        // Keep only a neighbour (the window may need the segment before).
        self.segments.retain(|l| l.seg.abs_diff(seg) == 1);
        self.segments.push(Loaded::new(seg, text));
        Ok(self.segments.len() - 1)
    }

    /// The events of chunk `k` of segment `seg`, hashed and parsed on first
    /// use.
    fn chunk(&mut self, seg: usize, k: usize) -> Result<&ChunkEvents, SeekError> {
        let i = self.load(seg)?;
        let l = &mut self.segments[i];
        let events = match l.events[k].take() {
            Some(events) => events,
            None => {
                let Some(events) = ChunkEvents::read(&l.text, k)? else {
                    return Err(SeekError::Tampered {
                        at: format!("segment {seg}"),
                        problem: format!("chunk {} does not verify", l.text.record(k).seq),
                    });
                };
                l.checked[k] = true;
                events
            }
        };
        Ok(l.events[k].insert(events))
    }

    /// The place right after the last event at or before `t` in `seg`.
    fn place(&mut self, seg: usize, t: Micros) -> Result<Pos, SeekError> {
        let i = self.load(seg)?;
        let text = &self.segments[i].text;
        let n = text.chunks();
        let k = (0..n).rev().find(|&k| text.record(k).first <= t);
        let Some(k) = k.or((n > 0).then_some(0)) else {
            return Err(SeekError::Tampered {
                at: format!("segment {seg}"),
                problem: text.problem.clone().unwrap_or("no chunks".into()),
            });
        };
        if k + 1 == n
            && t > text.record(k).last
            && let Some(problem) = text.problem.clone()
        {
            // What follows the last chunk that chains is damaged.
            return Err(SeekError::Tampered {
                at: format!("segment {seg}"),
                problem,
            });
        }
        let next = self.chunk(seg, k)?.count_until(t);
        Ok((seg, k, next))
    }

    /// Hashes every chunk that may hold events written from `t0` to `t1`
    /// against its record (chained from the segment's index entry): an
    /// error when one does not verify or is missing.
    fn verify_span(&mut self, (t0, t1): (Micros, Micros)) -> Result<(), SeekError> {
        for seg in self.seeker.segments_between(t0, t1) {
            let i = self.load(seg)?;
            let text = &self.segments[i].text;
            let wanted: Vec<usize> = (0..text.chunks())
                .filter(|&k| text.record(k).first <= t1 && text.record(k).last >= t0)
                .collect();
            let short = text.problem.clone().filter(|_| {
                // The chain stops early: unless the chunks that do chain
                // reach past t1, what is needed may be in the rest.
                text.chunks() == 0 || text.record(text.chunks() - 1).last < t1
            });
            if let Some(problem) = short {
                return Err(SeekError::Tampered {
                    at: format!("segment {seg}"),
                    problem,
                });
            }
            let l = &mut self.segments[i];
            for k in wanted {
                if !l.checked[k] {
                    if !l.text.verify(k) {
                        return Err(SeekError::Tampered {
                            at: format!("segment {seg}"),
                            problem: format!("chunk {} does not verify", l.text.record(k).seq),
                        });
                    }
                    l.checked[k] = true;
                }
            }
        }
        Ok(())
    }

    /// Brings the screen (`at`) to `t`.
    fn screen_at(&mut self, t: Micros) -> Result<(), SeekError> {
        match self.seeker.segment_at(t) {
            Some(seg) if self.seeker.keyframes().is_empty() => self.by_window(seg, t),
            _ => self.by_cursor(t),
        }
    }

    /// Exact: from keyframes, or (plain files) from the start.
    fn by_cursor(&mut self, t: Micros) -> Result<(), SeekError> {
        if let Some(s) = &mut self.at
            && let Some(cursor) = &mut s.cursor
            && t >= s.pos
            && !self
                .seeker
                .keyframes()
                .iter()
                .any(|k| k.t > s.pos && k.t <= t)
        {
            while let Some(e) = cursor.next_if(|e| e.time <= t)? {
                s.emu.full_mut().apply(&e.data);
                self.changes += 1;
            }
            s.pos = t;
            return Ok(());
        }
        let (emu, cursor) = self.seeker.cursor_at(t)?;
        self.changes += 1;
        self.at = Some(WalkState {
            emu: Screen::Full(Box::new(emu)),
            pos: t,
            exact: true,
            next: None,
            cursor: Some(cursor),
        });
        Ok(())
    }

    fn by_window(&mut self, seg: usize, t: Micros) -> Result<(), SeekError> {
        let target = self.place(seg, t)?;
        // The window: when what came before is plain scrolling output, from
        // a carriage return (where the column is known) followed by enough
        // line feeds to scroll every older row off the screen — every row
        // then shows text written inside it, as it would after the whole
        // recording; else SCREEN_WINDOW bytes of output.
        let rows = usize::from(self.size_before(t).rows.max(1));
        let feeds = 2 * rows + 2;
        // Read on when the previous hit is in this segment and close: up to
        // READ_ON bytes always, further while that is less to emulate than a
        // small window (an exact screen stays exact reading on).
        let mut small = None;
        let prev = self.at.as_ref().and_then(|s| s.next.map(|n| (n, s.exact)));
        if let Some((from, exact)) = prev
            && from.0 == seg
            && from <= target
            && let Some((slices, bytes)) = self.forward(from, target)?
        {
            let read_on = exact || bytes <= READ_ON || {
                let window = self.walk_back(seg, target, feeds)?;
                let shorter =
                    window.synced && window.bytes < bytes && self.scrolls_only(&window.slices)?;
                small = shorter.then_some(window);
                !shorter
            };
            if read_on {
                let mut state = self
                    .at
                    .take()
                    .unwrap_or_else(|| unreachable!("checked above"));
                let slices = slices.into_iter().map(|(k, range)| (seg, k, range));
                self.feed(&mut state.emu, slices)?;
                state.pos = t;
                state.next = Some(target);
                self.at = Some(state);
                return Ok(());
            }
        }
        let Window { slices, exact, .. } = match small {
            Some(window) => window,
            None => {
                let window = self.walk_back(seg, target, feeds)?;
                if window.synced && !self.scrolls_only(&window.slices)? {
                    self.walk_back(seg, target, usize::MAX)?
                } else {
                    window
                }
            }
        };
        let first = slices
            .iter()
            .rev()
            .find(|(_, _, r)| !r.is_empty())
            .map(|&(s, k, ref r)| (s, k, r.start));
        let size = match first {
            Some((s, k, i)) => {
                let time = self.chunk(s, k)?.time(i);
                self.size_before(time)
            }
            None => self.size_before(t),
        };
        let mut emu = Screen::fast(size);
        self.feed(&mut emu, slices.into_iter().rev())?;
        self.changes += 1;
        self.at = Some(WalkState {
            emu,
            pos: t,
            exact,
            next: Some(target),
            cursor: None,
        });
        Ok(())
    }

    /// Applies the events of `slices` (segment, chunk, range), in order, to
    /// `screen`. A [`Screen::Fast`] that meets output it does not model
    /// becomes a [`Screen::Full`] emulator fed everything the fast one was
    /// (so the result is the emulator's either way).
    fn feed(
        &mut self,
        screen: &mut Screen,
        slices: impl IntoIterator<Item = Slice>,
    ) -> Result<(), SeekError> {
        for (s, k, range) in slices {
            if range.is_empty() {
                continue;
            }
            self.changes += 1;
            if let Screen::Fast { model, fed, .. } = screen {
                let events = self.chunk(s, k)?;
                if range.clone().all(|i| fast_apply(model, events, i)) {
                    match fed.last_mut() {
                        Some(last) if (last.0, last.1, last.2.end) == (s, k, range.start) => {
                            last.2.end = range.end;
                        }
                        _ => fed.push((s, k, range)),
                    }
                    continue;
                }
                let Screen::Fast { size, fed, .. } = std::mem::replace(
                    screen,
                    Screen::Fast {
                        model: ScrollScreen::new(1, 1),
                        size: TermSize::DEFAULT,
                        fed: Vec::new(),
                    },
                ) else {
                    unreachable!("matched above")
                };
                let mut emu = Emulator::new(size);
                for (s, k, range) in fed {
                    let events = self.chunk(s, k)?;
                    for i in range {
                        full_apply(&mut emu, events.data(i));
                    }
                }
                *screen = Screen::Full(Box::new(emu));
            }
            let emu = screen.full_mut();
            let events = self.chunk(s, k)?;
            for i in range {
                full_apply(emu, events.data(i));
            }
        }
        Ok(())
    }

    /// Walks back from `target` (this segment, then the one before) until
    /// the output holds a carriage return followed by `feeds` line feeds,
    /// or SCREEN_WINDOW bytes.
    fn walk_back(&mut self, seg: usize, target: Pos, feeds: usize) -> Result<Window, SeekError> {
        let mut slices = Vec::new();
        // Line feeds after the events walked so far, and whether one of
        // them holds a carriage return with `feeds` line feeds after it.
        let (mut bytes, mut lfs, mut synced) = (0, 0, false);
        let full = |bytes: usize, synced: bool| bytes >= SCREEN_WINDOW || synced;
        for s in (seg.saturating_sub(1)..=seg).rev() {
            let last = if s == seg {
                target.1
            } else {
                let i = self.load(s)?;
                match self.segments[i].text.chunks().checked_sub(1) {
                    Some(k) => k,
                    None => break,
                }
            };
            for k in (0..=last).rev() {
                let events = self.chunk(s, k)?;
                let mut from = if (s, k) == (seg, target.1) {
                    target.2
                } else {
                    events.len()
                };
                let end = from;
                while from > 0 && !full(bytes, synced) {
                    from -= 1;
                    if let Data::Output(b) = events.data(from) {
                        bytes += b.len();
                        synced = lfs >= feeds && memchr::memchr(b'\r', b).is_some();
                        lfs += memchr::memchr_iter(b'\n', b).count();
                    }
                }
                slices.push((s, k, from..end));
                if full(bytes, synced) {
                    return Ok(Window {
                        slices,
                        bytes,
                        exact: false,
                        synced: synced && bytes < SCREEN_WINDOW,
                    });
                }
            }
            if s == 0 {
                // Everything from the recording's start is in.
                return Ok(Window {
                    slices,
                    bytes,
                    exact: true,
                    synced: false,
                });
            }
        }
        Ok(Window {
            slices,
            bytes,
            exact: false,
            synced: false,
        })
    }

    /// Whether the output in `slices` only writes and scrolls: nothing that
    /// moves the cursor up or to a place, changes the scrolling region or
    /// the screen buffer, saves or restores the cursor, and no resize —
    /// so the line feeds in it scroll everything older off the screen.
    fn scrolls_only(
        &mut self,
        slices: &[(usize, usize, std::ops::Range<usize>)],
    ) -> Result<bool, SeekError> {
        let mut scan = ScrollScan::default();
        for (s, k, range) in slices.iter().rev() {
            let events = self.chunk(*s, *k)?;
            for i in range.clone() {
                match events.data(i) {
                    Data::Output(b) if !scan.feed(b) => return Ok(false),
                    Data::Resize(_) => return Ok(false),
                    _ => {}
                }
            }
        }
        Ok(true)
    }

    /// The events from `from` to `to` (same segment) as (chunk, range)
    /// slices, and the bytes of output they hold, when that is at most
    /// [`SCREEN_WINDOW`].
    #[allow(clippy::type_complexity)]
    fn forward(
        &mut self,
        from: Pos,
        to: Pos,
    ) -> Result<Option<(Vec<(usize, std::ops::Range<usize>)>, usize)>, SeekError> {
        let (seg, mut bytes, mut slices) = (from.0, 0, Vec::new());
        for k in from.1..=to.1 {
            let events = self.chunk(seg, k)?;
            let start = if k == from.1 { from.2 } else { 0 };
            let end = if k == to.1 { to.2 } else { events.len() };
            bytes += (start..end).map(|i| events.out_len(i)).sum::<usize>();
            if bytes > SCREEN_WINDOW {
                return Ok(None);
            }
            slices.push((k, start..end));
        }
        Ok(Some((slices, bytes)))
    }
}

/// Applies event `i` of `events` to the text-only screen as
/// [`Emulator::apply`] would (output as text, invalid UTF-8 as U+FFFD;
/// other events but a resize change nothing); false when it is not
/// modelled (a resize, or see [`ScrollScreen::feed`]).
fn fast_apply(model: &mut ScrollScreen, events: &ChunkEvents, i: usize) -> bool {
    if let Some(text) = events.text(i) {
        return model.feed(text);
    }
    match events.data(i) {
        Data::Output(bytes) => model.feed(&String::from_utf8_lossy(bytes)),
        Data::Resize(_) => false,
        Data::Other => true,
    }
}

/// Applies one event to the emulator (see [`Emulator::apply`]).
fn full_apply(emu: &mut Emulator, data: Data<'_>) {
    match data {
        Data::Output(bytes) => emu.feed(bytes),
        Data::Resize(size) => emu.apply(&EventData::Resize(size)),
        Data::Other => {}
    }
}

/// Events of one chunk: (segment, chunk, range of its events).
type Slice = (usize, usize, std::ops::Range<usize>);

/// The screen a walk holds: avt's, or while the output allows it the
/// text-only [`ScrollScreen`] (tens of times faster on plain scrolling
/// output), which gives the same rows.
enum Screen {
    /// The emulator.
    Full(Box<Emulator>),
    /// The text-only screen, the size it was made at, and the events it was
    /// fed (to replay into the emulator when output it does not model
    /// comes).
    Fast {
        model: ScrollScreen,
        size: TermSize,
        fed: Vec<Slice>,
    },
}

impl Screen {
    /// A blank screen of `size` (as replayed: clamped like the emulator's).
    fn fast(size: TermSize) -> Screen {
        let s = crate::term::replay_size(size);
        Screen::Fast {
            model: ScrollScreen::new(usize::from(s.cols), usize::from(s.rows)),
            size,
            fed: Vec::new(),
        }
    }

    /// The emulator (only called on one).
    fn full_mut(&mut self) -> &mut Emulator {
        match self {
            Screen::Full(emu) => emu,
            Screen::Fast { .. } => unreachable!("keyframe cursors and fallbacks use the emulator"),
        }
    }
}

impl ScreenText for Screen {
    fn rows(&self) -> usize {
        match self {
            Screen::Full(emu) => emu.rows(),
            Screen::Fast { model, .. } => model.rows(),
        }
    }

    fn line(&self, r: usize) -> String {
        match self {
            Screen::Full(emu) => emu.line(r),
            Screen::Fast { model, .. } => model.line(r),
        }
    }

    fn cursor_row(&self) -> usize {
        match self {
            Screen::Full(emu) => emu.cursor_row(),
            Screen::Fast { model, .. } => model.cursor_row(),
        }
    }
}

/// Output read on from the previous hit's screen without first looking for
/// a smaller window (a small window after scrolling output holds 2 × rows +
/// 2 lines: rarely less than this).
const READ_ON: usize = 32 << 10;

/// Output before a hit that its screen is rebuilt from
/// ([`Walker::walk_back`]).
struct Window {
    /// The events, as (segment, chunk, range) slices, latest first.
    slices: Vec<(usize, usize, std::ops::Range<usize>)>,
    /// Bytes of output in them.
    bytes: usize,
    /// They reach back to the recording's start.
    exact: bool,
    /// They start at a carriage return followed by the line feeds asked
    /// for (within [`SCREEN_WINDOW`]).
    synced: bool,
}

/// Reads output for [`Walker::scrolls_only`]: false at the first sequence
/// that could leave older text on the screen however many lines scroll.
#[derive(Default)]
struct ScrollScan {
    /// 0: text; 1: after ESC; 2: in a CSI.
    state: u8,
    /// The CSI began with `?` (a private mode), its current number, and
    /// whether a number so far names a mode that matters here.
    private: bool,
    num: u32,
    screen_mode: bool,
}

impl ScrollScan {
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            match (self.state, b) {
                (0, 0x1b) => self.state = 1,
                (0, _) => {}
                (1, b'[') => {
                    self.state = 2;
                    (self.private, self.num, self.screen_mode) = (false, 0, false);
                }
                // Save/restore cursor, reverse index, screen alignment.
                (1, b'7' | b'8' | b'M' | b'#') => return false,
                (1, 0x1b) => {}
                (1, _) => self.state = 0,
                (2, b'?') => self.private = true,
                (2, b'0'..=b'9') => {
                    self.num = self
                        .num
                        .saturating_mul(10)
                        .saturating_add(u32::from(b - b'0'))
                }
                (2, b';') => self.end_param(),
                (2, 0x20..=0x3f) => {}
                (2, fin @ 0x40..=0x7e) => {
                    self.end_param();
                    self.state = 0;
                    // Cursor up or to a place, scrolling region, insert or
                    // delete lines, scroll down, save/restore cursor.
                    let moves = matches!(
                        fin,
                        b'A' | b'F'
                            | b'H'
                            | b'f'
                            | b'd'
                            | b'r'
                            | b'L'
                            | b'M'
                            | b'T'
                            | b'`'
                            | b's'
                            | b'u'
                            | b'^'
                    );
                    if moves || (self.screen_mode && matches!(fin, b'h' | b'l')) {
                        return false;
                    }
                }
                (2, 0x1b) => self.state = 1,
                (2, _) => {}
                _ => self.state = 0,
            }
        }
        true
    }

    /// Private modes that switch the screen buffer (47, 1047, 1049), the
    /// origin (6) or the margins (69); the rest (cursor shown, bracketed
    /// paste, mouse, …) change no text.
    fn end_param(&mut self) {
        if self.private && matches!(self.num, 6 | 47 | 69 | 1047 | 1049) {
            self.screen_mode = true;
        }
        self.num = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scroll_scan_refuses_what_can_leave_older_text_on_screen() {
        let ok = |parts: &[&str]| {
            let mut s = ScrollScan::default();
            parts.iter().all(|p| s.feed(p.as_bytes()))
        };
        assert!(ok(&[
            "\x1b[01;34mdir\x1b[0m\r\n",
            "\x1b[K\x1b[?25l\x1b[?2004h$ ls\r\n"
        ]));
        assert!(ok(&["\x1b[2J\x1b[3C\x1b[G\x1bc text\x08\t"]));
        for bad in [
            &["\x1b[5A"][..],
            &["\x1b[", "12;1H"],
            &["\x1b[?1049h"],
            &["\x1b[?25;1049l"],
            &["\x1b[3;20r"],
            &["\x1b7", "x", "\x1b8"],
            &["\x1bM"],
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
    }
}
