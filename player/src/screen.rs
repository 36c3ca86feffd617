//! The terminal screen model (vt100), and the one place where termtrail's
//! `TermSize { cols, rows }` is converted to vt100's `(rows, cols)`.

use std::num::NonZeroU16;

use termtrail_format::event::TermSize;
use vt100::capture::{BasicFormattedCaptureRange, BasicFormattedCaptureState, RowContents};

/// vt100's argument order is rows, cols; asciicast's is cols × rows.
/// Sizes are bounded first ([`crate::term::replay_size`]).
fn dims(size: TermSize) -> (NonZeroU16, NonZeroU16) {
    let size = crate::term::replay_size(size);
    let one = NonZeroU16::MIN;
    (
        NonZeroU16::new(size.rows).unwrap_or(one),
        NonZeroU16::new(size.cols).unwrap_or(one),
    )
}

/// Collects rows as they scroll off the top of the primary screen.
#[derive(Default)]
pub struct ScrolledRows {
    buf: String,
    state: BasicFormattedCaptureState,
}

impl vt100::Callbacks for ScrolledRows {
    fn on_scroll(&mut self, row: RowContents<'_>, alternate_screen: bool) {
        // Full-screen programs redraw on the alternate screen; their scrolled
        // rows are not part of the transcript.
        if !alternate_screen {
            let _ = row.write_formatted_basic(&mut self.buf, &mut self.state);
        }
    }
}

/// A terminal that yields a plain-text transcript: every row that scrolled
/// off the screen, then the final screen.
///
/// Time and memory are linear in the output: transcript text is handed out
/// as soon as rows scroll off — a line that wraps over many rows in pieces
/// of [`PARTIAL_FLUSH`] bytes, holding back only its trailing blanks (which
/// a line's end trims) — and each byte gathered is looked at once.
pub struct TranscriptTerminal {
    parser: vt100::Parser<ScrolledRows>,
    /// How much of the gathered rows is known to hold no `\n`.
    scanned: usize,
    /// Trailing blanks of a line handed out in part, held back until the
    /// line goes on (kept) or ends (trimmed).
    blanks: String,
    /// Empty lines held back until a line with text follows: the
    /// transcript ends at its last line with text, as asciinema 3's
    /// `convert -f txt` does (a screen scrolled clear by newlines or
    /// `clear` at the end adds no blank lines).
    empty_lines: usize,
    /// Part of a line was handed out and its end is still to come.
    open_line: bool,
}

/// Rows of an unfinished (wrapping) line gathered beyond this many bytes
/// are handed out without waiting for the line's end.
pub const PARTIAL_FLUSH: usize = 1 << 20;

impl TranscriptTerminal {
    /// A terminal of the given size with no scrollback (rows are streamed
    /// out); a size beyond [`crate::term::MAX_REPLAY_SIZE`] is clamped.
    pub fn new(size: TermSize) -> TranscriptTerminal {
        let (rows, cols) = dims(size);
        TranscriptTerminal {
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, ScrolledRows::default()),
            scanned: 0,
            blanks: String::new(),
            empty_lines: 0,
            open_line: false,
        }
    }

    /// Feeds output bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        // vt100 drops U+FFFD, while real terminals show it for bytes that are
        // not UTF-8. Stand in a private-use character and map it back.
        if memchr_fffd(bytes) {
            let text = String::from_utf8_lossy(bytes).replace('\u{FFFD}', STAND_IN);
            self.parser.process(text.as_bytes());
        } else {
            self.parser.process(bytes);
        }
    }

    /// Resizes (clamped like [`TranscriptTerminal::new`]).
    ///
    /// A taller screen gets its new rows at the bottom, as in asciinema 3:
    /// vt100 pulls rows back from scrollback on growing, and with none kept
    /// here it would insert blank rows above the text instead (blank lines
    /// `asciinema convert -f txt` does not have); they are deleted again.
    pub fn resize(&mut self, size: TermSize) {
        let (rows, cols) = dims(size);
        let (before, _) = self.parser.screen().cursor_position();
        self.parser.set_size(rows, cols);
        let screen = self.parser.screen();
        let (after, col) = screen.cursor_position();
        if after > before && !screen.alternate_screen() {
            let pulled = after - before;
            let fix = format!("\x1b[H\x1b[{pulled}M\x1b[{};{}H", before + 1, col + 1);
            self.parser.process(fix.as_bytes());
        }
    }

    /// Takes the transcript text gathered so far (plain text, one `\n` per
    /// line, trailing blanks trimmed): the complete lines, and the part of a
    /// long unfinished line beyond [`PARTIAL_FLUSH`] bytes.
    pub fn take_lines(&mut self) -> String {
        let buf = &mut self.parser.callbacks_mut().buf;
        let end = match buf[self.scanned..].rfind('\n') {
            Some(i) => self.scanned + i + 1,
            None if buf.len() >= PARTIAL_FLUSH => buf.len(),
            None => {
                self.scanned = buf.len();
                return String::new();
            }
        };
        let done: String = buf.drain(..end).collect();
        self.scanned = buf.len();
        self.plain(&done, false)
    }

    /// Finishes: the remaining scrolled text plus the final screen, with
    /// trailing empty lines removed.
    pub fn finish(mut self) -> String {
        let (screen, cb) = self.parser.screen_and_callbacks_mut();
        let mut buf = std::mem::take(&mut cb.buf);
        let _ = screen.write_contents_formatted_basic(
            &mut buf,
            BasicFormattedCaptureRange::Full(&mut cb.state),
        );
        let mut text = self.plain(&buf, true);
        while text.ends_with("\n\n") {
            text.pop();
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if text == "\n" { String::new() } else { text }
    }

    /// Formatted rows → plain lines with trailing blanks trimmed; unless
    /// `last`, the blanks ending an unfinished last line are held back.
    fn plain(&mut self, formatted: &str, last: bool) -> String {
        let mut plain = std::mem::take(&mut self.blanks);
        plain.extend(vt100::capture::basic_formatted_to_plain(formatted));
        let plain = if plain.contains(STAND_IN) {
            plain.replace(STAND_IN, "\u{FFFD}")
        } else {
            plain
        };
        let mut out = String::with_capacity(plain.len());
        for line in plain.split_inclusive('\n') {
            match line.strip_suffix('\n') {
                Some(body) => {
                    let body = body.trim_end();
                    if body.is_empty() && !self.open_line {
                        self.empty_lines += 1;
                        continue;
                    }
                    self.put_held(&mut out);
                    out.push_str(body);
                    out.push('\n');
                    self.open_line = false;
                }
                None => {
                    let kept = line.trim_end();
                    if !kept.is_empty() {
                        self.put_held(&mut out);
                        out.push_str(kept);
                        self.open_line = true;
                    }
                    if !last {
                        self.blanks = line[kept.len()..].to_string();
                    }
                }
            }
        }
        out
    }

    /// The empty lines held back, now that text follows them.
    fn put_held(&mut self, out: &mut String) {
        for _ in 0..std::mem::take(&mut self.empty_lines) {
            out.push('\n');
        }
    }

    /// Hands out the empty lines held back (before a line that is not the
    /// recording's, such as export's UNVERIFIED banner).
    pub fn take_held_lines(&mut self) -> String {
        let mut out = String::new();
        self.put_held(&mut out);
        out
    }
}

/// Stands in for U+FFFD inside vt100 (see [`TranscriptTerminal::feed`]).
const STAND_IN: &str = "\u{10FFFD}";

fn memchr_fffd(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| w == [0xEF, 0xBF, 0xBD])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_keeps_scrolled_and_visible_rows() {
        let mut t = TranscriptTerminal::new(TermSize { cols: 20, rows: 3 });
        t.feed(b"one\r\n\x1b[31mtwo\x1b[0m\r\nthree\r\nfour\r\n");
        let first = t.take_lines();
        assert_eq!(first, "one\n");
        t.feed(b"\x1b[1mfive  ");
        assert_eq!(t.finish(), "two\nthree\nfour\nfive\n");
    }

    #[test]
    fn empty_lines_count_only_before_text() {
        let mut t = TranscriptTerminal::new(TermSize { cols: 20, rows: 3 });
        t.feed(b"a\r\n\r\n\r\nb\r\n\r\n\r\n\r\n\r\n\r\n");
        let mut text = t.take_lines();
        text.push_str(&t.finish());
        assert_eq!(text, "a\n\n\nb\n");
    }

    #[test]
    fn a_taller_screen_adds_rows_below_the_text() {
        let mut t = TranscriptTerminal::new(TermSize { cols: 10, rows: 3 });
        t.feed(b"one\r\ntwo\r\nthree\r\nfour\r\n");
        t.resize(TermSize { cols: 10, rows: 6 });
        t.feed(b"five\r\n");
        let mut text = t.take_lines();
        text.push_str(&t.finish());
        assert_eq!(text, "one\ntwo\nthree\nfour\nfive\n");
    }

    #[test]
    fn carriage_return_overwrites_like_a_terminal() {
        let mut t = TranscriptTerminal::new(TermSize { cols: 20, rows: 5 });
        t.feed(b"progress 10%\rprogress 100%\r\n");
        assert_eq!(t.finish(), "progress 100%\n");
    }

    #[test]
    fn a_long_wrapping_line_is_handed_out_in_pieces_without_its_trailing_blanks() {
        let mut t = TranscriptTerminal::new(TermSize { cols: 10, rows: 2 });
        let mut text = String::new();
        let row = "abcd  \x1b[31mef\x1b[0m  ";
        for _ in 0..(PARTIAL_FLUSH / 10 + 10) {
            t.feed(row.as_bytes());
            text.push_str(&t.take_lines());
        }
        assert!(!text.is_empty(), "a long line is handed out before it ends");
        assert!(!text.contains('\n'));
        t.feed(b"end   \r\nnext\r\n");
        text.push_str(&t.take_lines());
        text.push_str(&t.finish());
        let plain = "abcd  ef  ".repeat(PARTIAL_FLUSH / 10 + 10);
        assert_eq!(text, format!("{plain}end\nnext\n"));
    }
}
