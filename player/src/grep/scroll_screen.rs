//! A text-only screen for output that only writes and scrolls: what the
//! emulator (avt) shows for such output, found at memchr-like speed, for
//! grep's screen lines.
//!
//! Screen lines need the text of a few rows after a window of output (or
//! after reading on from the previous hit). Most recorded output — command
//! output, logs, colour listings — is printable text, carriage returns,
//! line feeds, colour codes and "erase to end of line": for that, avt's
//! visible text and cursor row follow from a few rules (print with
//! autowrap, return, line feed with scrolling, erase). [`ScrollScreen`]
//! applies exactly those rules and refuses everything else: the first
//! character or sequence outside them (a cursor movement, a tab, a wide or
//! combining character, a mode, a resize, …) makes [`ScrollScreen::feed`]
//! return false, and the caller then emulates the same output with avt from
//! where it started. So a screen line is the same whichever was used; a
//! randomised test holds the two to the same rows and cursor row.
//!
//! What avt keeps beyond the text (colours, wrap flags, modes) changes no
//! visible text for the output accepted here, so it is not kept.

use unicode_width::UnicodeWidthChar;

/// The visible text of a terminal fed output of the kind described in the
/// module documentation, and where its cursor is.
#[derive(Debug, Clone)]
pub struct ScrollScreen {
    cols: usize,
    rows: usize,
    /// `rows` rows of `cols` cells, row `top` shown first (a ring: a
    /// scroll moves `top` on and blanks the row that becomes the bottom).
    cells: Vec<char>,
    /// For each row of `cells` (as stored, not as shown): every cell from
    /// this column on is blank (so erasing and scrolling fill no more than
    /// was written).
    ends: Vec<usize>,
    top: usize,
    /// Cursor column: `cols` after the last column was written (the next
    /// character wraps first), as in avt.
    col: usize,
    row: usize,
    /// An escape sequence begun and not finished by the last feed.
    esc: Esc,
}

/// Where an escape sequence is, between feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    /// After ESC.
    Start,
    /// In a CSI: the parameter bytes so far are digits and `;` only;
    /// `num` is the one number read (None once a separator came).
    Csi {
        num: Option<u32>,
    },
}

impl ScrollScreen {
    /// A blank screen of `cols` × `rows` (each at least 1), cursor home.
    pub fn new(cols: usize, rows: usize) -> ScrollScreen {
        let (cols, rows) = (cols.max(1), rows.max(1));
        ScrollScreen {
            cols,
            rows,
            cells: vec![' '; cols * rows],
            ends: vec![0; rows],
            top: 0,
            col: 0,
            row: 0,
            esc: Esc::None,
        }
    }

    /// Applies `text` as avt would; false at the first character or
    /// sequence this screen does not model (its state is then of no use).
    pub fn feed(&mut self, text: &str) -> bool {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if self.esc != Esc::None {
                if !self.escape(b) {
                    return false;
                }
                i += 1;
                continue;
            }
            match b {
                0x20..=0x7e => {
                    // A run of printable ASCII.
                    let end = bytes[i..]
                        .iter()
                        .position(|c| !(0x20..=0x7e).contains(c))
                        .map_or(bytes.len(), |n| i + n);
                    self.print_ascii(&bytes[i..end]);
                    i = end;
                    continue;
                }
                b'\r' => self.col = 0,
                b'\n' => self.line_feed(),
                0x1b => match self.whole_csi(&bytes[i..]) {
                    Some(Some(n)) => {
                        i += n;
                        continue;
                    }
                    Some(None) => return false,
                    // Not all here (or not a CSI): byte by byte.
                    None => self.esc = Esc::Start,
                },
                0x80.. => {
                    let Some(ch) = text[i..].chars().next() else {
                        return false;
                    };
                    if !narrow(ch) {
                        return false;
                    }
                    self.print(ch);
                    i += ch.len_utf8();
                    continue;
                }
                _ => return false,
            }
            i += 1;
        }
        true
    }

    /// The CSI at the start of `s` (which starts with ESC) when it is all
    /// in `s` and its parameters are digits and `;`: applied as
    /// [`ScrollScreen::escape`] would byte by byte, Some(Some(its length))
    /// when modelled, Some(None) when not; None for anything else (read
    /// byte by byte).
    fn whole_csi(&mut self, s: &[u8]) -> Option<Option<usize>> {
        let params = s.strip_prefix(b"\x1b[")?;
        let n = params
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b';'))?;
        let len = 2 + n + 1;
        match params[n] {
            b'm' => Some(Some(len)),
            b'K' if !params[..n].contains(&b';') => {
                let mode = params[..n].iter().fold(0u32, |v, &d| {
                    v.saturating_mul(10).saturating_add(u32::from(d - b'0'))
                });
                if mode > 2 {
                    return Some(None);
                }
                self.erase_in_line(mode);
                Some(Some(len))
            }
            _ => Some(None),
        }
    }

    /// One byte of an escape sequence; false when it is not one modelled:
    /// only SGR (`ESC [ … m`, colours: no text changes) and EL (`ESC [ K`,
    /// `ESC [ 0/1/2 K`).
    fn escape(&mut self, b: u8) -> bool {
        match (self.esc, b) {
            (Esc::Start, b'[') => self.esc = Esc::Csi { num: Some(0) },
            (Esc::Csi { num }, b'0'..=b'9') => {
                let num = num.map(|n| n.saturating_mul(10).saturating_add(u32::from(b - b'0')));
                self.esc = Esc::Csi { num };
            }
            (Esc::Csi { .. }, b';') => self.esc = Esc::Csi { num: None },
            (Esc::Csi { .. }, b'm') => self.esc = Esc::None,
            (Esc::Csi { num: Some(n) }, b'K') if n <= 2 => {
                self.esc = Esc::None;
                self.erase_in_line(n);
            }
            _ => return false,
        }
        true
    }

    /// Prints one single-width character at the cursor: when the last
    /// column was written, wraps to the next row first (scrolling at the
    /// bottom).
    fn print(&mut self, ch: char) {
        if self.col >= self.cols {
            self.line_feed();
            self.col = 0;
        }
        let at = self.index(self.row) + self.col;
        self.cells[at] = ch;
        self.col += 1;
        self.wrote(self.row, self.col);
    }

    /// Cells of shown row `row` up to column `end` may have been written.
    fn wrote(&mut self, row: usize, end: usize) {
        let stored = (self.top + row) % self.rows;
        self.ends[stored] = self.ends[stored].max(end);
    }

    /// [`ScrollScreen::print`] for each of `run`'s bytes (printable ASCII),
    /// a row's worth at a time.
    fn print_ascii(&mut self, mut run: &[u8]) {
        while !run.is_empty() {
            if self.col >= self.cols {
                self.line_feed();
                self.col = 0;
            }
            let n = run.len().min(self.cols - self.col);
            let at = self.index(self.row) + self.col;
            for (cell, &b) in self.cells[at..at + n].iter_mut().zip(&run[..n]) {
                *cell = char::from(b);
            }
            self.col += n;
            self.wrote(self.row, self.col);
            run = &run[n..];
        }
    }

    /// Down a row, scrolling at the bottom. Moving down (not scrolling)
    /// leaves the last column's "wrap next" state, as in avt.
    fn line_feed(&mut self) {
        if self.row + 1 < self.rows {
            self.row += 1;
            self.col = self.col.min(self.cols - 1);
        } else {
            let at = self.index(0);
            let end = std::mem::take(&mut self.ends[self.top]);
            self.cells[at..at + end].fill(' ');
            self.top = (self.top + 1) % self.rows;
        }
    }

    /// EL: 0 from the cursor to the end of the row, 1 from its start to the
    /// cursor (inclusive), 2 the whole row.
    fn erase_in_line(&mut self, mode: u32) {
        let at = self.index(self.row);
        let stored = (self.top + self.row) % self.rows;
        let written = self.ends[stored];
        let range = match mode {
            0 => self.col.min(written)..written,
            1 => 0..(self.col + 1).min(written),
            _ => 0..written,
        };
        self.cells[at + range.start..at + range.end].fill(' ');
        if mode != 1 {
            self.ends[stored] = range.start;
        }
    }

    fn index(&self, row: usize) -> usize {
        (self.top + row) % self.rows * self.cols
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `r` as text, trailing blanks trimmed ("" past the last), as
    /// [`crate::term::Emulator::line`] gives it.
    pub fn line(&self, r: usize) -> String {
        if r >= self.rows {
            return String::new();
        }
        let row = &self.cells[self.index(r)..][..self.ends[(self.top + r) % self.rows]];
        // What `str::trim_end` leaves.
        let end = row
            .iter()
            .rposition(|c| !c.is_whitespace())
            .map_or(0, |i| i + 1);
        row[..end].iter().collect()
    }

    /// The cursor's row.
    pub fn cursor_row(&self) -> usize {
        self.row
    }
}

/// Characters avt draws one column wide and this screen takes: from
/// U+00A0 on (no controls), one column wide by the `unicode-width` avt
/// uses (letters, signs, dashes, box drawing, U+FFFD, which invalid UTF-8
/// becomes; no wide characters, no combining marks or other zero-width
/// ones, no soft hyphen).
fn narrow(ch: char) -> bool {
    ch >= '\u{a0}' && ch != '\u{ad}' && ch.width() == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::Emulator;
    use termtrail_format::event::{EventData, TermSize};

    /// Feeds `parts` to both; when the model takes them all, the rows and
    /// the cursor row must agree with avt's. Returns whether it took them.
    fn agree(cols: u16, rows: u16, parts: &[String]) -> bool {
        let mut emu = Emulator::new(TermSize { cols, rows });
        let mut fast = ScrollScreen::new(usize::from(cols), usize::from(rows));
        let mut took = true;
        for p in parts {
            emu.apply(&EventData::Output(p.as_bytes().to_vec()));
            took &= fast.feed(p);
        }
        if took {
            assert_eq!(fast.rows(), emu.rows());
            for r in 0..emu.rows() {
                assert_eq!(
                    fast.line(r),
                    emu.line(r),
                    "row {r} of {cols}x{rows} after {parts:?}"
                );
            }
            assert_eq!(
                fast.cursor_row(),
                emu.cursor_row(),
                "cursor row after {parts:?}"
            );
        }
        took
    }

    #[test]
    fn agrees_with_avt_on_text_returns_feeds_colours_and_erases() {
        let pieces = [
            "a",
            "bc",
            "hello world",
            "0123456789",
            " ",
            "  ",
            "\r",
            "\n",
            "\r\n",
            "\r\n\r\n",
            "\x1b[0m",
            "\x1b[01;34m",
            "\x1b[38;5;196m",
            "\x1b[m",
            "\x1b[K",
            "\x1b[0K",
            "\x1b[1K",
            "\x1b[2K",
            "\x1b[",
            "01;3",
            "1m",
            "\x1b",
            "[K",
            "é",
            "ő",
            "\u{a0}",
            "\u{fffd}",
            "ÿŁ",
            "—",
            "─├│",
            "αδ",
            "∅",
            "\u{2028}",
        ];
        let mut seed = 11u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let mut taken = 0;
        for round in 0..3000 {
            let (cols, rows) = [(1, 1), (3, 2), (5, 3), (8, 4), (20, 5), (80, 24)][round % 6];
            let mut parts = Vec::new();
            for _ in 0..1 + next(12) {
                let mut s = String::new();
                for _ in 0..1 + next(8) {
                    s.push_str(pieces[next(pieces.len())]);
                }
                parts.push(s);
            }
            taken += usize::from(agree(cols, rows, &parts));
        }
        assert!(taken > 600, "most rounds are modelled: {taken}");
    }

    #[test]
    fn refuses_what_it_does_not_model() {
        for bad in [
            "\t",
            "\x08",
            "\x07",
            "\x1b[5A",
            "\x1b[2J",
            "\x1b[?25l",
            "\x1b]0;title\x07",
            "\x1b(0",
            "\x1b7",
            "\x1b[3K",
            "\x1b[1;2K",
            "\x1b[>4m",
            "\x1b[38:5:1m",
            "漢",
            "e\u{301}",
            "\u{200b}",
            "\u{ad}",
            "\u{85}",
            "\x7f",
        ] {
            let mut s = ScrollScreen::new(80, 24);
            assert!(!s.feed(&format!("text {bad} more")), "{bad:?}");
        }
    }

    #[test]
    fn scrolls_and_wraps_like_the_emulator() {
        // Long lines wrapping at the bottom row, then erases after a wrap.
        let long = "x".repeat(23);
        let parts: Vec<String> = (0..9)
            .map(|i| format!("{i}{long}\r\n"))
            .chain([
                "abcdefghij".into(),
                "\x1b[1K".into(),
                "\r\n12345".into(),
                "\x1b[K".into(),
            ])
            .collect();
        assert!(agree(10, 4, &parts));
        // A line feed after the last column was written: moving down ends
        // the "wrap next" state, scrolling does not.
        for (cols, rows) in [(3, 2), (3, 3)] {
            assert!(agree(cols, rows, &["abc\n x".into(), "hello world".into()]));
        }
    }
}
