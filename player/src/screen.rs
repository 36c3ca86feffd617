//! The text transcript's terminal ([`TranscriptTerminal`]): asciinema 3's
//! `convert -f txt`, rebuilt on the emulator asciinema 3.2 is built on
//! (avt 0.17, imported as `avt017`), streamed.
//!
//! What asciinema 3.2 does, and so what this does: a terminal of the
//! recording's size keeps **100 lines of scrollback** on its primary screen.
//! Every output event is fed as text, every `r` event resizes it (avt
//! reflows: wrapped rows of one line are rejoined and rewrapped at the new
//! width, so narrowing loses no text); a line pushed out of the 100 lines
//! goes to the transcript. At the end the screen's lines (the active
//! screen's: the alternate screen's when the recording ends in a full-screen
//! program) follow, without their trailing empty lines. The rows of one
//! line (a row is wrapped when output ran past its last column) are joined:
//! every row but the last as it is, the last without its trailing
//! whitespace. Lines that scroll off the alternate screen, and what the
//! alternate screen shows when the program leaves it, are not kept.

use avt017::Line;
use avt017::util::TextUnwrapper;
use termtrail_format::event::TermSize;

/// Lines of scrollback, as in asciinema 3.2's txt encoder: the lines a
/// resize reflows (and a taller screen pulls back) before they are written.
pub const SCROLLBACK: usize = 100;

/// The fewest columns the transcript's terminal has. avt 0.17 cannot put a
/// wide character in a 1-column terminal (it panics, and asciinema 3.2
/// with it, writing no transcript); with 2 every character fits in a row.
pub const MIN_COLS: u16 = 2;

/// avt's size: columns, rows, bounded first ([`crate::term::replay_size`]:
/// up to [`crate::term::MAX_REPLAY_SIZE`]), at least [`MIN_COLS`] × 1.
fn dims(size: TermSize) -> (usize, usize) {
    let size = crate::term::replay_size(size);
    (usize::from(size.cols.max(MIN_COLS)), usize::from(size.rows))
}

/// One row of the screen, for the transcript.
enum Row {
    /// Output ran past its last column: the line goes on in the next row.
    /// Its whole text (trailing blanks are part of the line).
    Wrapped(String),
    /// The line's last row, without its trailing whitespace.
    Last(String),
}

/// avt 0.17 keeps a row's wrap flag to itself; its `TextUnwrapper` (the
/// joiner asciinema uses) tells it: a fresh one hands back a row that is
/// not wrapped at once (trimmed), and keeps one that is (whole).
fn row(line: &Line) -> Row {
    let mut probe = TextUnwrapper::new();
    match probe.push(line) {
        Some(last) => Row::Last(last),
        None => Row::Wrapped(probe.flush().unwrap_or_default()),
    }
}

/// A terminal that yields a plain-text transcript, byte for byte asciinema
/// 3.2's `convert -f txt` (see the module documentation).
///
/// Time and memory are linear in the output and flat: the emulator holds the
/// screen and [`SCROLLBACK`] lines; text is handed out as lines leave the
/// scrollback, a line that wraps on and on row by row (the rows before a
/// line's last keep their blanks, so nothing needs holding back).
pub struct TranscriptTerminal {
    vt: avt017::Vt,
    /// Transcript text ready to be taken.
    out: String,
    /// Rows of a line were handed out and its last row is still to come.
    open: bool,
    /// Those rows held some text (then the line is not an empty one).
    open_text: bool,
}

impl TranscriptTerminal {
    /// A terminal of the given size; a size beyond
    /// [`crate::term::MAX_REPLAY_SIZE`] is clamped.
    pub fn new(size: TermSize) -> TranscriptTerminal {
        let (cols, rows) = dims(size);
        TranscriptTerminal {
            vt: avt017::Vt::builder()
                .size(cols, rows)
                .scrollback_limit(SCROLLBACK)
                .build(),
            out: String::new(),
            open: false,
            open_text: false,
        }
    }

    /// Feeds one output event's text (an invalid byte is U+FFFD, as in
    /// asciinema's reading of the recording's JSON string).
    pub fn feed(&mut self, text: &str) {
        let gone: Vec<Line> = self.vt.feed_str(text).scrollback.collect();
        self.scrolled(&gone);
    }

    /// Resizes (clamped like [`TranscriptTerminal::new`]).
    pub fn resize(&mut self, size: TermSize) {
        let (cols, rows) = dims(size);
        let gone: Vec<Line> = self.vt.resize(cols, rows).scrollback.collect();
        self.scrolled(&gone);
    }

    /// Lines that left the scrollback, into the transcript.
    fn scrolled(&mut self, lines: &[Line]) {
        for line in lines {
            match row(line) {
                Row::Wrapped(text) => {
                    self.out.push_str(&text);
                    self.open = true;
                    self.open_text |= !text.is_empty();
                }
                Row::Last(text) => {
                    self.out.push_str(&text);
                    self.out.push('\n');
                    self.open = false;
                    self.open_text = false;
                }
            }
        }
    }

    /// Takes the transcript text gathered so far (plain text, one `\n` per
    /// line; a line still going on ends without one).
    pub fn take_lines(&mut self) -> String {
        std::mem::take(&mut self.out)
    }

    /// Ends a line handed out in part, so that what is written next (such
    /// as export's UNVERIFIED banner, which is not the recording's) starts
    /// on a line of its own; the rest of that line follows as a line.
    pub fn break_line(&mut self) {
        if self.open {
            self.out.push('\n');
            self.open = false;
            self.open_text = false;
        }
    }

    /// Finishes: the text not yet taken, then the screen's lines (scrollback
    /// included) without the empty lines that end them.
    pub fn finish(mut self) -> String {
        let mut text = std::mem::take(&mut self.out);
        // The screen's lines; an empty one is held back until a line with
        // text follows.
        let mut empty = 0;
        let mut line = String::new();
        let mut open_text = self.open_text;
        let mut open = self.open;
        for l in self.vt.lines() {
            let (part, last) = match row(l) {
                Row::Wrapped(part) => (part, false),
                Row::Last(part) => (part, true),
            };
            line.push_str(&part);
            open = !last;
            if open {
                continue;
            }
            if line.is_empty() && !open_text {
                empty += 1;
            } else {
                text.extend(std::iter::repeat_n('\n', empty));
                empty = 0;
                text.push_str(&line);
                text.push('\n');
            }
            line.clear();
            open_text = false;
        }
        // A line still wrapping at the very end is a line of its own, blanks
        // and all (asciinema's `TextUnwrapper::flush`).
        if open && (open_text || !line.is_empty()) {
            text.extend(std::iter::repeat_n('\n', empty));
            text.push_str(&line);
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(size: TermSize, events: &[Result<&str, TermSize>]) -> String {
        let mut t = TranscriptTerminal::new(size);
        let mut text = String::new();
        for e in events {
            match e {
                Ok(s) => t.feed(s),
                Err(size) => t.resize(*size),
            }
            text.push_str(&t.take_lines());
        }
        text + &t.finish()
    }

    fn size(cols: u16, rows: u16) -> TermSize {
        TermSize { cols, rows }
    }

    #[test]
    fn transcript_keeps_scrolled_and_visible_rows() {
        let mut t = TranscriptTerminal::new(size(20, 3));
        let mut lines = String::new();
        for i in 0..SCROLLBACK + 3 {
            t.feed(&format!("\x1b[31m{i}\x1b[0m  \r\n"));
            lines.push_str(&t.take_lines());
        }
        // Rows leave the screen into the scrollback; the transcript gets
        // them when they leave that.
        assert_eq!(lines, "0\n");
        t.feed("\x1b[1mlast  ");
        let want: String = (1..SCROLLBACK + 3).map(|i| format!("{i}\n")).collect();
        assert_eq!(t.finish(), want + "last\n");
    }

    #[test]
    fn empty_lines_count_only_before_text_at_the_end() {
        let text = transcript(size(20, 3), &[Ok("a\r\n\r\n\r\nb\r\n\r\n\r\n\r\n\r\n\r\n")]);
        assert_eq!(text, "a\n\n\nb\n");
        // Empty lines already written (they left the scrollback) stay.
        let many = "\r\n".repeat(SCROLLBACK + 10);
        let text = transcript(size(20, 3), &[Ok(&format!("a{many}"))]);
        let gone = SCROLLBACK + 10 + 1 - 3 - SCROLLBACK;
        assert_eq!(text, format!("a{}", "\n".repeat(gone)));
    }

    #[test]
    fn a_narrower_screen_keeps_the_whole_line() {
        // The independent check's case: a 36-column line, then 10 columns.
        let line = "0123456789abcdefghijklmnopqrstuvwxyz";
        let text = transcript(size(40, 5), &[Ok(line), Ok("\r\n"), Err(size(10, 5))]);
        assert_eq!(text, format!("{line}\n"));
        // And wider again, with output in between.
        let text = transcript(
            size(40, 3),
            &[
                Ok(line),
                Ok("\r\n"),
                Err(size(10, 3)),
                Ok("next\r\n"),
                Err(size(80, 3)),
            ],
        );
        assert_eq!(text, format!("{line}\nnext\n"));
    }

    #[test]
    fn a_taller_screen_adds_rows_below_the_text() {
        let text = transcript(
            size(10, 3),
            &[
                Ok("one\r\ntwo\r\nthree\r\nfour\r\n"),
                Err(size(10, 6)),
                Ok("five\r\n"),
            ],
        );
        assert_eq!(text, "one\ntwo\nthree\nfour\nfive\n");
    }

    #[test]
    fn wide_characters_in_one_column_do_not_abort() {
        // asciinema 3.2 panics on both (avt 0.17); here the terminal has
        // two columns (本 wraps; without autowrap 語 takes the last place).
        let text = transcript(size(1, 3), &[Ok("日本\x1b[?7l語\r\n")]);
        assert_eq!(text, "日語\n");
        let text = transcript(size(4, 3), &[Ok("日本語\r\n"), Err(size(1, 3))]);
        assert_eq!(text, "日本語\n");
    }

    #[test]
    fn carriage_return_overwrites_like_a_terminal() {
        let text = transcript(size(20, 5), &[Ok("progress 10%\rprogress 100%\r\n")]);
        assert_eq!(text, "progress 100%\n");
    }

    #[test]
    fn wide_characters_that_wrap_stay_one_line() {
        // 7 columns take three two-column characters; the fourth wraps.
        let text = transcript(size(7, 3), &[Ok("日本語です\r\nok\r\n")]);
        assert_eq!(text, "日本語 です\nok\n");
    }

    #[test]
    fn the_alternate_screen_is_not_kept_unless_the_recording_ends_there() {
        let vim = "\x1b[?1049h\x1b[Hfile text\r\n~\r\n\x1b[?1049l";
        let text = transcript(size(20, 4), &[Ok("$ vim\r\n"), Ok(vim), Ok("$ exit\r\n")]);
        assert_eq!(text, "$ vim\n$ exit\n");
        let text = transcript(size(20, 4), &[Ok("$ vim\r\n\x1b[?1049h\x1b[Hfile text")]);
        assert_eq!(text, "file text\n");
    }

    #[test]
    fn a_long_wrapping_line_is_handed_out_row_by_row() {
        let mut t = TranscriptTerminal::new(size(10, 2));
        let mut text = String::new();
        let row = "abcd  \x1b[31mef\x1b[0m  ";
        let rows = 4 * SCROLLBACK;
        for _ in 0..rows {
            t.feed(row);
            text.push_str(&t.take_lines());
        }
        // All but the screen and the scrollback are out already.
        assert_eq!(text, "abcd  ef  ".repeat(rows - SCROLLBACK - 2));
        t.feed("end   \r\nnext\r\n");
        text.push_str(&t.take_lines());
        text.push_str(&t.finish());
        let plain = "abcd  ef  ".repeat(rows);
        assert_eq!(text, format!("{plain}end\nnext\n"));
    }

    #[test]
    fn a_line_handed_out_in_part_can_be_broken_for_a_banner() {
        let mut t = TranscriptTerminal::new(size(4, 1));
        t.feed(&"abcd".repeat(SCROLLBACK + 3));
        let mut text = t.take_lines();
        assert_eq!(text, "abcd".repeat(2));
        t.break_line();
        text.push_str(&t.take_lines());
        text.push_str("BANNER\n");
        t.break_line();
        t.feed("\r\n");
        text.push_str(&t.take_lines());
        text.push_str(&t.finish());
        let rest = "abcd".repeat(SCROLLBACK + 1);
        assert_eq!(text, format!("abcdabcd\nBANNER\n{rest}\n"));
    }

    /// A small generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn number(&mut self) -> usize {
            [0, 1, 2, 3, 7, 80, 1000, 65535, 99999][self.below(9)]
        }

        /// Output: text of every width (combining marks too), line ends,
        /// CSI sequences with any final byte and numbers up to beyond
        /// 65535, modes, the alternate screen, C1 controls, OSC and DCS
        /// strings, resets.
        fn output(&mut self) -> String {
            let mut out = String::new();
            for _ in 0..1 + self.below(8) {
                match self.below(12) {
                    0..=2 => {
                        let words = [
                            "abc de",
                            "日本語",
                            "e\u{301}",
                            "😀x",
                            "\u{FFFD}",
                            "\t",
                            "  ",
                        ];
                        out.push_str(words[self.below(words.len())]);
                    }
                    3 => out.push_str(&"\r\n".repeat(1 + self.below(120))),
                    4 | 5 => {
                        let fin = b"@ABCDEFGHIJKLMPSTXZ`abdefghlmnqrsu"[self.below(34)];
                        out.push_str(&format!(
                            "\x1b[{};{}{}",
                            self.number(),
                            self.number(),
                            char::from(fin)
                        ));
                    }
                    6 => {
                        let mode = [1, 4, 6, 7, 20, 25, 47, 1047, 1048, 1049][self.below(10)];
                        let set = if self.below(2) == 0 { 'h' } else { 'l' };
                        out.push_str(&format!("\x1b[?{mode}{set}"));
                    }
                    7 => out.push_str(
                        ["\u{9b}2J", "\u{9b}5A", "\u{90}q\u{9c}", "\u{9d}0;t\u{9c}"][self.below(4)],
                    ),
                    8 => out.push_str(
                        ["\x1b]0;title\x07", "\x1bP1$r\x1b\\", "\x1bc", "\x1b[!p"][self.below(4)],
                    ),
                    9 => out.push_str(
                        [
                            "\x1bM", "\x1bD", "\x1bE", "\x1b7", "\x1b8", "\x1b#8", "\x1b(0",
                            "\x1b(B", "\x0e", "\x0f",
                        ][self.below(10)],
                    ),
                    10 => out.push_str(&"0123456789".repeat(1 + self.below(30))),
                    _ => out.push_str(["\r", "\n", "\x08", "\x1b", "\x1b["][self.below(5)]),
                }
            }
            out
        }
    }

    /// What asciinema 3.2 writes: avt 0.17's own `TextCollector` over the
    /// same terminal, fed the same events.
    fn asciinema(size: TermSize, events: &[Result<String, TermSize>]) -> String {
        let (cols, rows) = dims(size);
        let vt = avt017::Vt::builder()
            .size(cols, rows)
            .scrollback_limit(SCROLLBACK)
            .build();
        let mut collector = avt017::util::TextCollector::new(vt);
        let mut lines = Vec::new();
        for e in events {
            match e {
                Ok(s) => lines.extend(collector.feed_str(s)),
                Err(size) => {
                    let (cols, rows) = dims(*size);
                    lines.extend(collector.resize(cols as u16, rows as u16));
                }
            }
        }
        lines.extend(collector.flush());
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn random_output_and_resizes_give_asciinemas_text_and_never_panic() {
        // `TERMTRAIL_TXT_CASES` runs more (as the e2e test against
        // asciinema 3 itself does).
        let cases = std::env::var("TERMTRAIL_TXT_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000u64);
        for case in 0..cases {
            let mut rng =
                Rng(0x2545_F491_4F6C_DD1D ^ (case + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let size = |rng: &mut Rng| {
                let pick = [1, 2, 3, 7, 40, 80, 300, 2001];
                let (c, r) = (pick[rng.below(8)], pick[rng.below(7)]);
                TermSize { cols: c, rows: r }
            };
            let start = size(&mut rng);
            let events: Vec<Result<String, TermSize>> = (0..1 + rng.below(12))
                .map(|_| {
                    if rng.below(4) == 0 {
                        Err(size(&mut rng))
                    } else {
                        Ok(rng.output())
                    }
                })
                .collect();
            let mut t = TranscriptTerminal::new(start);
            let mut text = String::new();
            for e in &events {
                match e {
                    Ok(s) => t.feed(s),
                    Err(size) => t.resize(*size),
                }
                text.push_str(&t.take_lines());
            }
            text.push_str(&t.finish());
            assert_eq!(
                text,
                asciinema(start, &events),
                "case {case}: {start:?} {events:?}"
            );
        }
    }
}
