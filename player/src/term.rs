//! The terminal emulator behind `snapshot`, seeking and grep's screen lines:
//! asciinema's `avt`, the same emulator that renders our files in asciinema's
//! players, so a snapshot shows what the browser player shows. Its `dump()`
//! (both screen buffers, cursor, modes, unfinished escape sequences) is what a
//! keyframe stores (see [`crate::seek`]).
//!
//! Sizes: asciicast and [`TermSize`] order columns, rows; so does avt (0.19
//! here, 0.17 for the text export in [`crate::screen`]).

use std::fmt::Write as _;

use termtrail_format::event::{EventData, TermSize};
use termtrail_format::text::{is_unsafe, push_visible, visible};

/// A terminal screen driven by recorded events.
pub struct Emulator {
    vt: avt::Terminal,
}

impl Emulator {
    /// A blank terminal of `size` (a zero dimension counts as 1).
    pub fn new(size: TermSize) -> Emulator {
        let (cols, rows) = dims(size);
        Emulator {
            vt: avt::Terminal::new(cols, rows).unwrap_or_else(|_| {
                avt::Terminal::new(80, 24).expect("80x24 is a valid terminal size")
            }),
        }
    }

    /// A terminal restored from a [`Emulator::dump`] taken at `size`.
    pub fn restore(size: TermSize, dump: &str) -> Emulator {
        let mut e = Emulator::new(size);
        e.vt.feed(dump);
        e
    }

    /// Applies one event: output is drawn (invalid UTF-8 shows as U+FFFD, as
    /// in every terminal), a resize resizes; other events change nothing.
    pub fn apply(&mut self, data: &EventData) {
        match data {
            EventData::Output(bytes) => self.feed(bytes),
            EventData::Resize(size) => {
                let (cols, rows) = dims(*size);
                self.vt.resize(cols, rows);
            }
            _ => {}
        }
    }

    /// Draws output bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.vt.feed(s),
            Err(_) => self.vt.feed(String::from_utf8_lossy(bytes).as_ref()),
        }
    }

    /// Escape sequences that recreate this state in a terminal of the same
    /// size (scrollback excepted).
    pub fn dump(&self) -> String {
        self.vt.dump()
    }

    /// Current size.
    pub fn size(&self) -> TermSize {
        let (cols, rows) = self.vt.size();
        TermSize {
            cols: cols.min(u16::MAX as usize) as u16,
            rows: rows.min(u16::MAX as usize) as u16,
        }
    }

    /// The visible rows as text, trailing blanks trimmed.
    pub fn lines(&self) -> Vec<String> {
        self.vt
            .screen()
            .visible_lines()
            .map(|l| l.text().trim_end().to_string())
            .collect()
    }

    /// The screen as text, one line per row (trailing blank rows dropped);
    /// with `color`, SGR sequences reproduce colours and attributes. Text
    /// from the recording is shown through [`termtrail_format::text`]: a
    /// cell holding a control or bidi character never reaches the viewer's
    /// terminal raw.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        if color {
            for line in self.vt.screen().visible_lines() {
                render_colored(line, &mut out);
                out.push('\n');
            }
            return out;
        }
        let lines = self.lines();
        let used = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(0, |i| i + 1);
        for line in &lines[..used] {
            out.push_str(&visible(line));
            out.push('\n');
        }
        out
    }
}

impl Emulator {
    /// Each visible row with SGR colours, at most `max_cols` columns wide
    /// (no newline; trailing default blanks dropped; controls and bidi
    /// characters in cells made visible, as in [`Emulator::render`]).
    pub fn colored_rows(&self, max_cols: usize) -> Vec<String> {
        self.colored_window(0, max_cols)
    }

    /// Each visible row with SGR colours, as [`Emulator::colored_rows`],
    /// but only columns `first_col..first_col + width`: what `play` shows
    /// of a screen wider than the viewer's terminal. The right half of a
    /// wide character cut by the left edge shows as a blank, so every
    /// character stays in its column.
    pub fn colored_window(&self, first_col: usize, width: usize) -> Vec<String> {
        self.vt
            .screen()
            .visible_lines()
            .map(|line| {
                let mut s = String::new();
                render_cells(line, first_col, width, &mut s);
                s
            })
            .collect()
    }

    /// Visible row `r` as text, trailing blanks trimmed ("" past the last).
    pub fn line(&self, r: usize) -> String {
        self.vt
            .screen()
            .visible_lines()
            .nth(r)
            .map_or_else(String::new, |l| l.text().trim_end().to_string())
    }

    /// The number of visible rows.
    pub fn rows(&self) -> usize {
        self.vt.size().1
    }

    /// The cursor's row, visible or not.
    pub fn cursor_row(&self) -> usize {
        self.vt.cursor().row
    }

    /// Where the cursor is (column, row), visible or not (the column is at
    /// most the last column).
    pub fn cursor_cell(&self) -> (usize, usize) {
        let c = self.vt.cursor();
        let cols = self.vt.size().0;
        (c.col.min(cols.saturating_sub(1)), c.row)
    }

    /// Where the cursor is (column, row), when it is visible.
    pub fn cursor(&self) -> Option<(usize, usize)> {
        let c = self.vt.cursor();
        c.visible.then_some((c.col, c.row))
    }
}

/// The largest terminal replayed: a recording may ask for any size up to
/// 65535×65535 (the format and the protocol allow it), but an emulator
/// holds every cell in memory (65535×65535 is over 4 billion cells). Sizes
/// beyond this are replayed clamped to it (docs/player.md, "Terminal
/// size"): 2,000 columns and 1,000 rows hold every size `serve` and
/// `proxy` record by default (`--max-terminal-size 1000x1000`) with twice
/// the columns to spare, more than any real screen shows (`rec` records
/// the local terminal's size), and cost at most ~64 MiB per screen buffer
/// in avt.
pub const MAX_REPLAY_SIZE: TermSize = TermSize {
    cols: 2000,
    rows: 1000,
};

/// The largest size a recording asked for beyond [`MAX_REPLAY_SIZE`] in
/// this process (0 when none): what the commands' notice reports.
static CLAMPED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `size` as replayed: each dimension at least 1 and at most
/// [`MAX_REPLAY_SIZE`]'s. Every emulator (avt 0.19 here, avt 0.17 in
/// [`crate::screen`]) and the HTML export size their screens through this;
/// a clamp is remembered for [`clamped_notice`].
pub fn replay_size(size: TermSize) -> TermSize {
    let out = TermSize {
        cols: size.cols.clamp(1, MAX_REPLAY_SIZE.cols),
        rows: size.rows.clamp(1, MAX_REPLAY_SIZE.rows),
    };
    if size.cols > MAX_REPLAY_SIZE.cols || size.rows > MAX_REPLAY_SIZE.rows {
        let packed = (u32::from(size.cols) << 16) | u32::from(size.rows);
        CLAMPED.fetch_max(packed, std::sync::atomic::Ordering::Relaxed);
    }
    out
}

/// When a recording read by this process asked for a terminal larger than
/// [`MAX_REPLAY_SIZE`]: a one-line notice saying so, for stderr.
pub fn clamped_notice() -> Option<String> {
    let packed = CLAMPED.load(std::sync::atomic::Ordering::Relaxed);
    (packed != 0).then(|| {
        format!(
            "note: a recording asked for a {}x{} terminal; it is replayed clamped to at most {}x{} (columns x rows): rows and columns beyond are not shown",
            packed >> 16,
            packed & 0xffff,
            MAX_REPLAY_SIZE.cols,
            MAX_REPLAY_SIZE.rows
        )
    })
}

fn dims(size: TermSize) -> (usize, usize) {
    let size = replay_size(size);
    (usize::from(size.cols), usize::from(size.rows))
}

fn render_colored(line: &avt::Line, out: &mut String) {
    render_cells(line, 0, usize::MAX, out);
}

/// Columns `first..first + width` of `line`.
fn render_cells(line: &avt::Line, first: usize, width: usize, out: &mut String) {
    // Trailing cells that are blank with the default pen add nothing.
    let cells = line.cells();
    let stop = first.saturating_add(width);
    let end = cells
        .iter()
        .rposition(|c| c.char() != ' ' || !c.pen().is_default())
        .map_or(0, |i| i + 1)
        .min(stop);
    let mut pen: Option<avt::Pen> = None;
    for (col, cell) in cells.iter().enumerate().take(end).skip(first) {
        if cell.width() == 0 {
            if col == first {
                out.push(' '); // a wide character cut by the left edge
            }
            continue; // the second half of a wide character
        }
        if col + usize::from(cell.width()) > stop {
            break; // a wide character that would not fit
        }
        if pen.as_ref() != Some(cell.pen()) {
            sgr(cell.pen(), out);
            pen = Some(*cell.pen());
        }
        if is_unsafe(cell.char()) {
            push_visible(out, cell.char().encode_utf8(&mut [0; 4]));
        } else {
            out.push(cell.char());
        }
    }
    if pen.is_some_and(|p| !p.is_default()) {
        out.push_str("\x1b[0m");
    }
}

fn sgr(pen: &avt::Pen, out: &mut String) {
    out.push_str("\x1b[0");
    let attributes = [
        (pen.is_bold(), ";1"),
        (pen.is_faint(), ";2"),
        (pen.is_italic(), ";3"),
        (pen.is_underline(), ";4"),
        (pen.is_blink(), ";5"),
        (pen.is_inverse(), ";7"),
        (pen.is_strikethrough(), ";9"),
    ];
    for (on, code) in attributes {
        if on {
            out.push_str(code);
        }
    }
    if let Some(c) = pen.foreground() {
        color(c, 38, out);
    }
    if let Some(c) = pen.background() {
        color(c, 48, out);
    }
    out.push('m');
}

fn color(c: avt::Color, base: u8, out: &mut String) {
    match c {
        avt::Color::Indexed(i) => {
            let _ = write!(out, ";{base};5;{i}");
        }
        avt::Color::RGB(rgb) => {
            let _ = write!(out, ";{base};2;{};{};{}", rgb.r, rgb.g, rgb.b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(s: &str) -> EventData {
        EventData::Output(s.as_bytes().to_vec())
    }

    #[test]
    fn renders_text_and_colours() {
        let mut e = Emulator::new(TermSize { cols: 20, rows: 4 });
        e.apply(&out("plain\r\n\x1b[1;31mred\x1b[0m tail"));
        assert_eq!(e.render(false), "plain\nred tail\n");
        let c = e.render(true);
        assert!(c.contains("\x1b[0;1;38;5;1mred\x1b[0m tail"), "{c:?}");
    }

    #[test]
    fn a_window_shows_some_columns_and_keeps_wide_characters_aligned() {
        let mut e = Emulator::new(TermSize { cols: 20, rows: 2 });
        e.apply(&out("0123456789abcdef\r\n\u{4e2d}\u{6587}xy"));
        let plain = |first, width| -> Vec<String> {
            let rows = e.colored_window(first, width);
            rows.iter().map(|r| r.replace("\x1b[0m", "")).collect()
        };
        let w = plain(3, 4);
        assert_eq!(w[0], "3456");
        // 中 fills columns 0-1, 文 2-3: a window from column 1 starts with
        // a blank where 中's right half was.
        let w = plain(1, 5);
        assert_eq!(w[1], " \u{6587}xy");
        assert_eq!(plain(30, 5)[0], "");
        assert_eq!(e.cursor_cell(), (6, 1));
    }

    #[test]
    fn a_dump_restores_both_screens() {
        let size = TermSize { cols: 30, rows: 5 };
        let mut a = Emulator::new(size);
        a.apply(&out(
            "shell line\r\n$ vim\r\n\x1b[?1049h\x1b[Heditor\x1b[3;4Hx",
        ));
        let mut b = Emulator::restore(size, &a.dump());
        assert_eq!(a.render(true), b.render(true));
        let leave = out("\x1b[?1049lback");
        a.apply(&leave);
        b.apply(&leave);
        assert_eq!(a.render(true), b.render(true));
        assert!(b.render(false).starts_with("shell line\n$ vim\nback"));
    }
}
