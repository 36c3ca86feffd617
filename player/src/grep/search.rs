//! Line search: text as events write it, stripped, cut into logical lines
//! and searched in blocks, each byte keeping the time of the event that
//! wrote it.

use std::collections::VecDeque;

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
    /// Byte ranges of the matches in `line` (none with `-v`).
    pub matches: Vec<(usize, usize)>,
    /// The line's number in the recording's text, from 1 (0: not counted;
    /// lines are counted only by [`LineSearch::every_line`]).
    pub number: u64,
    /// Lines of text just before it (`-B`), oldest first.
    pub before: Vec<ContextLine>,
    /// Lines of text just after it (`-A`).
    pub after: Vec<ContextLine>,
}

/// A line of text around a hit (`-A`/`-B`), as the search saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextLine {
    /// When its last byte was written.
    pub time: Micros,
    /// The logical line (escape sequences removed).
    pub line: String,
}

/// Which lines are hits and what is kept around them, when every line is
/// looked at ([`LineSearch::every_line`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EveryLine {
    /// `-v`: lines without a match are the hits.
    pub invert: bool,
    /// `-B`: lines kept before a hit.
    pub before: usize,
    /// `-A`: lines kept after a hit.
    pub after: usize,
}

impl EveryLine {
    /// Whether every line must be looked at (else only those around
    /// matches are).
    pub fn needed(&self) -> bool {
        self.invert || self.before > 0 || self.after > 0
    }
}

/// The state of a search that looks at every line.
struct Lines {
    want: EveryLine,
    /// Lines seen so far.
    number: u64,
    /// The last `want.before` lines that were not hits nor after-context.
    ring: VecDeque<ContextLine>,
    /// A hit waiting for its after-context.
    pending: Option<LineHit>,
}

/// Searches text as it is written, line by line.
pub struct LineSearch<'a> {
    pub(super) pattern: &'a Pattern,
    strip: Stripper,
    buf: Vec<u8>,
    /// (offset in `buf` where an event's text starts, its time), offsets
    /// ascending.
    times: Vec<(usize, Micros)>,
    /// Every line is looked at (`-v`, `-A`, `-B`).
    every: Option<Lines>,
}

impl<'a> LineSearch<'a> {
    /// A search for `pattern`.
    pub fn new(pattern: &'a Pattern) -> LineSearch<'a> {
        LineSearch {
            pattern,
            strip: Stripper::default(),
            buf: Vec::with_capacity(BLOCK + 4096),
            times: Vec::new(),
            every: None,
        }
    }

    /// A search for `pattern` writing its text into `buf` (emptied): a
    /// buffer taken back with [`LineSearch::into_buffer`] from an earlier
    /// search, so that searching many short texts (one chunk's lines each)
    /// allocates once, not a block each time.
    pub fn with_buffer(pattern: &'a Pattern, mut buf: Vec<u8>) -> LineSearch<'a> {
        buf.clear();
        LineSearch {
            pattern,
            strip: Stripper::default(),
            buf,
            times: Vec::new(),
            every: None,
        }
    }

    /// The text buffer, for [`LineSearch::with_buffer`].
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// A search that looks at every line, in order: with `want.invert` the
    /// lines without a match are the hits, and each hit carries up to
    /// `want.before`/`want.after` lines around it (a line is given once:
    /// after-context ends at the next hit, and is not before-context of
    /// it). Lines are numbered. A hit is handed on once its after-context
    /// is complete (or the text ends).
    pub fn every_line(pattern: &'a Pattern, want: EveryLine) -> LineSearch<'a> {
        let mut s = LineSearch::new(pattern);
        s.every = Some(Lines {
            want,
            number: 0,
            ring: VecDeque::new(),
            pending: None,
        });
        s
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
        time_at(&self.times, offset)
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
        let flow = match &mut self.every {
            Some(every) => every.search(self.pattern, &self.buf[..end], &self.times, last, hit),
            None => self.search_candidates(end, hit),
        };
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

    /// Searches `buf[..end]` around the places the pattern matches.
    fn search_candidates(&self, end: usize, hit: &mut dyn FnMut(LineHit) -> Flow) -> Flow {
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
        flow
    }
}

/// The time of the event that wrote byte `offset` (`times` as in
/// [`LineSearch`]).
fn time_at(times: &[(usize, Micros)], offset: usize) -> Micros {
    let i = times.partition_point(|&(o, _)| o <= offset);
    times.get(i.saturating_sub(1)).map_or(0, |t| t.1)
}

impl Lines {
    /// Looks at every line of `hay` (complete lines, or with `last` the
    /// rest of the text).
    fn search(
        &mut self,
        pattern: &Pattern,
        hay: &[u8],
        times: &[(usize, Micros)],
        last: bool,
        hit: &mut dyn FnMut(LineHit) -> Flow,
    ) -> Flow {
        let mut flow = Flow::Continue;
        let mut ls = 0;
        while ls < hay.len() && flow == Flow::Continue {
            let le = memchr::memchr(b'\n', &hay[ls..]).map_or(hay.len(), |i| ls + i);
            let line = &hay[ls..le];
            self.number += 1;
            let written = (time_at(times, ls), time_at(times, le.max(ls + 1) - 1));
            let matches = pattern.find_all(line);
            if matches.is_empty() == self.want.invert {
                if let Some(p) = self.pending.take() {
                    flow = hit(p);
                    if flow == Flow::Stop {
                        break;
                    }
                }
                let mut h = if self.want.invert {
                    to_text(line, &[], written.1, written)
                } else {
                    let (s, e) = matches[0];
                    to_text(
                        line,
                        &matches,
                        time_at(times, ls + e.max(s + 1) - 1),
                        written,
                    )
                };
                h.number = self.number;
                h.before = self.ring.drain(..).collect();
                if self.want.after == 0 {
                    flow = hit(h);
                } else {
                    self.pending = Some(h);
                }
            } else {
                let c = ContextLine {
                    time: written.1,
                    line: String::from_utf8_lossy(line).into_owned(),
                };
                if let Some(p) = &mut self.pending {
                    p.after.push(c);
                    if p.after.len() >= self.want.after
                        && let Some(p) = self.pending.take()
                    {
                        flow = hit(p);
                    }
                } else if self.want.before > 0 {
                    if self.ring.len() == self.want.before {
                        self.ring.pop_front();
                    }
                    self.ring.push_back(c);
                }
            }
            ls = le + 1;
        }
        if last
            && flow == Flow::Continue
            && let Some(p) = self.pending.take()
        {
            flow = hit(p);
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
        number: 0,
        before: Vec::new(),
        after: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::pattern::PatternOptions;
    use super::*;

    /// What `s` hands on for `events`, searching what is complete after
    /// each event with `flush_each`.
    fn feed(mut s: LineSearch, events: &[(Micros, &str)], flush_each: bool) -> Vec<LineHit> {
        let mut out = Vec::new();
        let mut keep = |h| {
            out.push(h);
            Flow::Continue
        };
        for (t, e) in events {
            s.push(*t, e.as_bytes(), &mut keep);
            if flush_each {
                s.flush(&mut keep);
            }
        }
        s.finish(&mut keep);
        out
    }

    fn hits(pattern: &str, o: PatternOptions, events: &[(Micros, &str)]) -> Vec<LineHit> {
        let p = Pattern::new(&[pattern.to_string()], o).unwrap();
        feed(LineSearch::new(&p), events, false)
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
    fn every_line_gives_context_once_and_inverts() {
        let p = Pattern::new(&["x".to_string()], PatternOptions::default()).unwrap();
        let run = |want: EveryLine, events: &[(Micros, &str)]| {
            feed(LineSearch::every_line(&p, want), events, true)
        };
        let text = |c: &[ContextLine]| c.iter().map(|c| c.line.clone()).collect::<Vec<_>>();
        let ctx = EveryLine {
            invert: false,
            before: 2,
            after: 1,
        };
        let h = run(ctx, &[(1, "a\r\nb\r\nx1\r\nc\r\n"), (2, "x2\r\nd\r\ne")]);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!((h[0].number, h[0].line.as_str()), (3, "x1"));
        assert_eq!(text(&h[0].before), ["a", "b"]);
        assert_eq!(text(&h[0].after), ["c"]);
        // c was after-context: it is not before-context again.
        assert_eq!((h[1].number, h[1].time), (5, 2));
        assert!(h[1].before.is_empty(), "{h:?}");
        assert_eq!(text(&h[1].after), ["d"]);
        let inv = EveryLine {
            invert: true,
            ..EveryLine::default()
        };
        let h = run(inv, &[(1, "a\r\nx\r\n"), (2, "b")]);
        let lines: Vec<_> = h
            .iter()
            .map(|h| (h.line.as_str(), h.time, h.number))
            .collect();
        assert_eq!(lines, [("a", 1, 1), ("b", 2, 3)]);
        assert!(h.iter().all(|h| h.matches.is_empty()));
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
