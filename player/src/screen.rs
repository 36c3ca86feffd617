//! The terminal screen model (vt100), and the one place where termtrail's
//! `TermSize { cols, rows }` is converted to vt100's `(rows, cols)`.

use std::num::NonZeroU16;

use termtrail_format::event::TermSize;
use vt100::capture::{BasicFormattedCaptureRange, BasicFormattedCaptureState, RowContents};

/// vt100's argument order is rows, cols; asciicast's is cols × rows.
fn dims(size: TermSize) -> (NonZeroU16, NonZeroU16) {
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
pub struct TranscriptTerminal {
    parser: vt100::Parser<ScrolledRows>,
}

impl TranscriptTerminal {
    /// A terminal of the given size with no scrollback (rows are streamed out).
    pub fn new(size: TermSize) -> TranscriptTerminal {
        let (rows, cols) = dims(size);
        TranscriptTerminal {
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, ScrolledRows::default()),
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

    /// Resizes.
    pub fn resize(&mut self, size: TermSize) {
        let (rows, cols) = dims(size);
        self.parser.set_size(rows, cols);
    }

    /// Takes the complete transcript lines gathered so far (plain text, one
    /// `\n` per line, trailing blanks trimmed).
    pub fn take_lines(&mut self) -> String {
        let buf = &mut self.parser.callbacks_mut().buf;
        let Some(end) = buf.rfind('\n') else {
            return String::new();
        };
        let done: String = buf.drain(..=end).collect();
        plain_lines(&done)
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
        let mut text = plain_lines(&buf);
        while text.ends_with("\n\n") {
            text.pop();
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if text == "\n" { String::new() } else { text }
    }
}

/// Stands in for U+FFFD inside vt100 (see [`TranscriptTerminal::feed`]).
const STAND_IN: &str = "\u{10FFFD}";

fn memchr_fffd(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| w == [0xEF, 0xBF, 0xBD])
}

fn plain_lines(formatted: &str) -> String {
    let plain: String = vt100::capture::basic_formatted_to_plain(formatted)
        .collect::<String>()
        .replace(STAND_IN, "\u{FFFD}");
    let mut out = String::with_capacity(plain.len());
    for line in plain.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        out.push_str(body.trim_end());
        out.push_str(nl);
    }
    out
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
    fn carriage_return_overwrites_like_a_terminal() {
        let mut t = TranscriptTerminal::new(TermSize { cols: 20, rows: 5 });
        t.feed(b"progress 10%\rprogress 100%\r\n");
        assert_eq!(t.finish(), "progress 100%\n");
    }
}
