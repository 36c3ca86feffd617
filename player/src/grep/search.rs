//! Line search: text as events write it, stripped, cut into logical lines
//! and searched in blocks, each byte keeping the time of the event that
//! wrote it.

use termtrail_format::event::Micros;
use termtrail_format::pipeline::Flow;

use super::pattern::Pattern;
use super::strip::{Stripper, line_break};

/// Text searched at once (complete lines; a partial line waits for more).
pub const BLOCK: usize = 256 << 10;
/// A line longer than this is cut (searched in pieces).
pub const MAX_LINE: usize = 1 << 20;

/// A line with matches, as found by the first pass.
#[derive(Debug, Clone, PartialEq)]
pub struct LineHit {
    /// When the first match's last byte was written (µs from the start).
    pub time: Micros,
    /// When the line's first and last bytes were written: the events its
    /// text came from lie between.
    pub written: (Micros, Micros),
    /// The logical line (escape sequences removed).
    pub line: String,
    /// Byte ranges of the matches in `line`.
    pub matches: Vec<(usize, usize)>,
}

/// Searches text as it is written, line by line.
pub struct LineSearch<'a> {
    pub(super) pattern: &'a Pattern,
    strip: Stripper,
    buf: Vec<u8>,
    /// (offset in `buf` where an event's text starts, its time), offsets
    /// ascending.
    times: Vec<(usize, Micros)>,
}

impl<'a> LineSearch<'a> {
    /// A search for `pattern`.
    pub fn new(pattern: &'a Pattern) -> LineSearch<'a> {
        LineSearch {
            pattern,
            strip: Stripper::default(),
            buf: Vec::with_capacity(BLOCK + 4096),
            times: Vec::new(),
        }
    }

    /// Adds what one event wrote; `hit` gets every line with matches and
    /// says whether to go on. Stop when stopped.
    pub fn push(
        &mut self,
        time: Micros,
        bytes: &[u8],
        hit: &mut dyn FnMut(LineHit) -> Flow,
    ) -> Flow {
        self.strip.feed(bytes, &mut self.buf);
        self.pushed(self.strip.low, time, hit)
    }

    /// Like [`LineSearch::push`], for an event's data as stored: the content
    /// of a JSON string (see [`Stripper::feed_json`]).
    /// Returns whether to go on, and where the string ended.
    pub fn push_json(
        &mut self,
        time: Micros,
        escaped: &[u8],
        hit: &mut dyn FnMut(LineHit) -> Flow,
    ) -> (Flow, usize) {
        let used = self.strip.feed_json(escaped, &mut self.buf);
        (self.pushed(self.strip.low, time, hit), used)
    }

    fn pushed(&mut self, start: usize, time: Micros, hit: &mut dyn FnMut(LineHit) -> Flow) -> Flow {
        let len = self.buf.len();
        let at = start.min(len);
        // A backspace may have taken back text of earlier events.
        while self.times.last().is_some_and(|&(o, _)| o > at) {
            self.times.pop();
        }
        if (len > at && self.times.last().is_none_or(|&(_, t)| t != time)) || self.times.is_empty()
        {
            self.times.push((at, time));
        }
        if self.buf.len() >= BLOCK {
            return self.search(false, hit);
        }
        Flow::Continue
    }

    /// Goes on after output that was skipped, which ended with a line feed:
    /// the line ends, and the stripper starts afresh (as it does after any
    /// line feed).
    pub fn restart_line(&mut self) {
        self.strip = Stripper::default();
        line_break(&mut self.buf);
    }

    /// Searches the lines complete so far (what a block does when full).
    pub fn flush(&mut self, hit: &mut dyn FnMut(LineHit) -> Flow) -> Flow {
        self.search(false, hit)
    }

    /// Searches what is left (the last line need not be finished).
    pub fn finish(&mut self, hit: &mut dyn FnMut(LineHit) -> Flow) -> Flow {
        self.search(true, hit)
    }

    fn time_at(&self, offset: usize) -> Micros {
        let i = self.times.partition_point(|&(o, _)| o <= offset);
        self.times.get(i.saturating_sub(1)).map_or(0, |t| t.1)
    }

    fn search(&mut self, last: bool, hit: &mut dyn FnMut(LineHit) -> Flow) -> Flow {
        let end = if last {
            self.buf.len()
        } else {
            match memchr::memrchr(b'\n', &self.buf) {
                Some(i) => i + 1,
                None if self.buf.len() >= MAX_LINE => self.buf.len(),
                None => return Flow::Continue,
            }
        };
        let mut flow = Flow::Continue;
        let mut pos = 0;
        let hay = &self.buf[..end];
        // One pass over the whole block finds candidate places; the lines
        // around each are then searched on their own, so that no match spans
        // a line break and every match in a line is reported.
        while pos < end && flow == Flow::Continue {
            let Some(m) = self.pattern.re.find_at(hay, pos) else {
                break;
            };
            let first = memchr::memrchr(b'\n', &hay[..m.start()]).map_or(0, |i| i + 1);
            // The line holding the match's last byte ends the candidate run.
            let from = if m.end() > m.start() {
                m.end() - 1
            } else {
                m.start()
            };
            let last_end = memchr::memchr(b'\n', &hay[from.min(end)..]).map_or(end, |i| from + i);
            let mut ls = first;
            while ls <= last_end && flow == Flow::Continue {
                let le = memchr::memchr(b'\n', &hay[ls..last_end]).map_or(last_end, |i| ls + i);
                let line = &hay[ls..le];
                let matches = self.pattern.find_all(line);
                if let Some(&(s, e)) = matches.first() {
                    let time = self.time_at(ls + e.max(s + 1) - 1);
                    let written = (self.time_at(ls), self.time_at(le.max(ls + 1) - 1));
                    flow = hit(to_text(line, &matches, time, written));
                }
                ls = le + 1;
            }
            pos = last_end + 1;
        }
        // Keep the unsearched tail and the time of the event it starts in.
        let carry_time = self.time_at(end);
        self.buf.drain(..end);
        let keep = self.times.partition_point(|&(o, _)| o < end);
        self.times.drain(..keep);
        for t in &mut self.times {
            t.0 -= end;
        }
        if self.times.first().is_none_or(|&(o, _)| o > 0) {
            self.times.insert(0, (0, carry_time));
        }
        flow
    }
}

/// The line as text with match ranges mapped into it (invalid UTF-8 shows as
/// U+FFFD, which moves offsets).
fn to_text(
    line: &[u8],
    matches: &[(usize, usize)],
    time: Micros,
    written: (Micros, Micros),
) -> LineHit {
    let mut text = String::with_capacity(line.len());
    let mut out = Vec::with_capacity(matches.len());
    let mut at = 0;
    for &(s, e) in matches {
        text.push_str(&String::from_utf8_lossy(&line[at..s]));
        let ts = text.len();
        text.push_str(&String::from_utf8_lossy(&line[s..e]));
        out.push((ts, text.len()));
        at = e;
    }
    text.push_str(&String::from_utf8_lossy(&line[at..]));
    LineHit {
        time,
        written,
        line: text,
        matches: out,
    }
}

#[cfg(test)]
mod tests {
    use super::super::pattern::PatternOptions;
    use super::*;

    fn hits(pattern: &str, o: PatternOptions, events: &[(Micros, &str)]) -> Vec<LineHit> {
        let p = Pattern::new(&[pattern.to_string()], o).unwrap();
        let mut s = LineSearch::new(&p);
        let mut out = Vec::new();
        for (t, e) in events {
            s.push(*t, e.as_bytes(), &mut |h| {
                out.push(h);
                Flow::Continue
            });
        }
        s.finish(&mut |h| {
            out.push(h);
            Flow::Continue
        });
        out
    }

    #[test]
    fn matches_across_events_report_the_time_of_their_last_byte() {
        let h = hits(
            "AccessDenied",
            PatternOptions::default(),
            &[
                (1, "$ aws s3 ls\r\nerror: Acc"),
                (2, "\x1b[1mess"),
                (3, "Den"),
                (4, "ied\r\n$ "),
            ],
        );
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].line, "error: AccessDenied");
        assert_eq!(h[0].time, 4);
        assert_eq!(h[0].matches, vec![(7, 19)]);
    }

    #[test]
    fn matches_stay_inside_lines_and_every_line_is_reported() {
        let o = PatternOptions::default();
        // \s would span the line break at block level.
        let h = hits(r"a\s+b", o, &[(1, "xa\r\nb a  b\r\n")]);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].line, "b a  b");
        let h = hits("^ok$", o, &[(1, "ok\r\nnot ok\r\nok")]);
        assert_eq!(
            h.iter().map(|h| h.line.as_str()).collect::<Vec<_>>(),
            ["ok", "ok"]
        );
        let h = hits("x", o, &[(1, "x1 x2\nx3\n")]);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].matches.len(), 2);
    }

    #[test]
    fn flags() {
        let i = PatternOptions {
            ignore_case: true,
            ..Default::default()
        };
        assert_eq!(hits("accessdenied", i, &[(1, "AccessDenied")]).len(), 1);
        let w = PatternOptions {
            word: true,
            ..Default::default()
        };
        assert_eq!(hits("deny", w, &[(1, "denying\n")]).len(), 0);
        assert_eq!(hits("deny", w, &[(1, "x deny.\n")]).len(), 1);
        let f = PatternOptions {
            fixed: true,
            ..Default::default()
        };
        assert_eq!(hits("a.b(", f, &[(1, "axb(\n")]).len(), 0);
        assert_eq!(hits("a.b(", f, &[(1, "a.b(\n")]).len(), 1);
        let e = Pattern::new(&["a(b".into()], PatternOptions::default())
            .unwrap_err()
            .to_string();
        let two = Pattern::new(&["x+".into(), "y.".into()], f).unwrap();
        assert_eq!(two.find_all(b"x+ yy y."), vec![(0, 2), (6, 8)]);
        assert!(!e.contains('\n') && e.contains("unclosed group"), "{e}");
    }

    #[test]
    fn long_output_is_searched_in_blocks_with_times_kept() {
        let mut events = Vec::new();
        let filler = "some ordinary output line here\r\n".repeat(300);
        for i in 0..200 {
            events.push((i as Micros, filler.clone()));
        }
        events.push((500, "the needle is here\r\n".to_string()));
        events.push((600, filler.clone()));
        events.push((700, "another nee".to_string()));
        events.push((800, "dle\r\n".to_string()));
        let ev: Vec<(Micros, &str)> = events.iter().map(|(t, s)| (*t, s.as_str())).collect();
        let h = hits("needle", PatternOptions::default(), &ev);
        assert_eq!(h.iter().map(|h| h.time).collect::<Vec<_>>(), [500, 800]);
    }
}
