//! `termtrail grep`: regular expressions over what appeared on the terminal
//! (or, with `--input`, over what was typed), across many recordings.
//!
//! Two passes per file. The first reads the recording through the verifying
//! reader (only events of verified chunks arrive), turns output into text —
//! escape sequences removed, cursor movements and CR/LF as line breaks
//! ([`Stripper`]) — and runs the regex over logical lines, keeping for every
//! byte of text the time of the event that wrote it. So a match is found
//! even when its text was split across events or had colour codes between
//! its letters, and its time is when its last byte was written. Only files
//! with hits get the second pass: a terminal emulator brought to each hit's
//! time (from cached keyframes when there are some, else reading forward)
//! gives the screen row the text was on, and `-C` rows around it.
//!
//! Memory is flat: text is searched in blocks of [`BLOCK`] bytes and only an
//! unfinished line is carried over; the emulator holds one screen.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use regex::bytes::{Regex, RegexBuilder};
use termtrail_format::cast::Header;
use termtrail_format::chain::ChunkRecord;
use termtrail_format::event::{Event, EventData, Micros, TermSize};
use termtrail_format::index::{SegmentText, load_index};
use termtrail_format::pipeline::Flow;
use termtrail_format::plain::CastReader;
use termtrail_format::reader::{ContentCheck, ReadOptions, ReadSink, Status, read_path};

use crate::seek::{Cursor, SeekError, Seeker};
use crate::term::Emulator;

/// Text searched at once (complete lines; a partial line waits for more).
pub const BLOCK: usize = 256 << 10;
/// A line longer than this is cut (searched in pieces).
pub const MAX_LINE: usize = 1 << 20;

/// A compiled search pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    re: Regex,
    /// Literals every match starts with (one of them), when there is such
    /// a finite set of non-empty ones: what the prefilter looks for.
    prefixes: Option<Vec<Vec<u8>>>,
    /// Case-insensitive (`-i`).
    fold: bool,
}

/// How to read the pattern.
#[derive(Debug, Clone, Copy, Default)]
pub struct PatternOptions {
    /// `-i`: case-insensitive.
    pub ignore_case: bool,
    /// `-w`: only whole words.
    pub word: bool,
    /// `-F`: a literal string, not a regex.
    pub fixed: bool,
}

impl Pattern {
    /// Compiles `patterns` (any of them matches); the error is one line.
    pub fn new(patterns: &[String], o: PatternOptions) -> Result<Pattern, String> {
        let alternatives: Vec<String> = patterns
            .iter()
            .map(|p| if o.fixed { regex::escape(p) } else { p.clone() })
            .collect();
        let pattern = patterns.join(" | ");
        let mut p = match alternatives.as_slice() {
            [one] => one.clone(),
            many => many
                .iter()
                .map(|a| format!("(?:{a})"))
                .collect::<Vec<_>>()
                .join("|"),
        };
        if o.word {
            p = format!(r"\b{{start-half}}(?:{p})\b{{end-half}}");
        }
        let re = RegexBuilder::new(&p)
            .case_insensitive(o.ignore_case)
            .multi_line(true)
            .build()
            .map_err(|e| {
                let msg = e.to_string();
                // The syntax error's last line says what is wrong; the lines
                // before it draw a caret under the pattern.
                let last = msg
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let last = last.trim().trim_start_matches("error: ");
                format!("invalid regex {pattern:?}: {last}")
            })?;
        Ok(Pattern {
            re,
            prefixes: prefixes(&p, o.ignore_case),
            fold: o.ignore_case,
        })
    }

    /// Matches in `line` (byte ranges).
    pub fn find_all(&self, line: &[u8]) -> Vec<(usize, usize)> {
        self.re
            .find_iter(line)
            .map(|m| (m.start(), m.end()))
            .collect()
    }
}

/// The literals one of which starts every match of `pattern`, when they are
/// a finite set of non-empty byte strings (None otherwise: then nothing can
/// be skipped).
fn prefixes(pattern: &str, ignore_case: bool) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(ignore_case)
        .multi_line(true)
        .build()
        .parse(pattern)
        .ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// Which lines of a recording's output can hold a match, judged from the
/// event lines as stored, before any unescaping or stripping (most of a
/// search's work): a match holds every byte of one of the pattern's prefix
/// literals, so a line of output holding none of the bytes picked from them
/// (one per literal, the rarest in the recording's first chunk) has none.
///
/// Lines here are what a line feed ends: the stripper ends any escape
/// sequence or string at a line feed, so a line can be read alone, from a
/// known state. The picked bytes are printable ASCII other than the space
/// (which cursor movement also writes): JSON leaves them as they are,
/// unless written as `\u00XX`, which is looked for as well. A line counts
/// as holding a byte when its stored text does anywhere: in an escape
/// sequence, an input event between its output events, or the JSON around
/// them — more lines are read than need be, never fewer.
#[derive(Debug)]
struct Prefilter {
    /// The bytes (one to three).
    bytes: Vec<u8>,
    /// `\u00` followed by the high hex digit of a picked byte: where a
    /// JSON encoder escaped one (checked no further: rare).
    escaped: Vec<memchr::memmem::Finder<'static>>,
}

impl Prefilter {
    /// The prefilter for `pattern`, picking bytes by their counts in
    /// `sample`; None when the pattern has no usable literals, or its bytes
    /// are too common for skipping lines to pay.
    fn new(pattern: &Pattern, sample: &[u8]) -> Option<Prefilter> {
        Prefilter::with_limit(pattern, sample, sample.len() / 64)
    }

    /// [`Prefilter::new`], refusing bytes that occur more than `limit`
    /// times in `sample`.
    fn with_limit(pattern: &Pattern, sample: &[u8], limit: usize) -> Option<Prefilter> {
        let lits = pattern.prefixes.as_ref()?;
        let mut count = [0usize; 256];
        for &b in sample {
            count[usize::from(b)] += 1;
        }
        let folded = |b: u8| {
            if pattern.fold && b.is_ascii_alphabetic() {
                count[usize::from(b.to_ascii_lowercase())]
                    + count[usize::from(b.to_ascii_uppercase())]
            } else {
                count[usize::from(b)]
            }
        };
        let class = |b: u8| {
            if pattern.fold {
                b.to_ascii_lowercase()
            } else {
                b
            }
        };
        let mut bytes = Vec::new();
        // Best: one byte (with -i, either case of it) in every literal —
        // the rarest of those; case variants of one word all share one.
        let mut shared: Vec<u8> = lits[0]
            .iter()
            .copied()
            .filter(u8::is_ascii_graphic)
            .map(class)
            .filter(|&c| lits.iter().all(|l| l.iter().any(|&b| class(b) == c)))
            .collect();
        shared.sort_unstable_by_key(|&c| (folded(c), c));
        if let Some(&c) = shared.first() {
            bytes.push(c);
        } else {
            // Else the rarest of each literal.
            for lit in lits {
                let b = lit
                    .iter()
                    .copied()
                    .filter(u8::is_ascii_graphic)
                    .min_by_key(|&b| folded(b))?;
                bytes.push(class(b));
            }
        }
        if bytes.iter().any(|&b| folded(b) > limit) {
            return None;
        }
        if pattern.fold {
            bytes = bytes
                .iter()
                .flat_map(|b| [b.to_ascii_lowercase(), b.to_ascii_uppercase()])
                .collect();
        }
        bytes.sort_unstable();
        bytes.dedup();
        if bytes.len() > 3 {
            return None;
        }
        let mut highs: Vec<u8> = bytes
            .iter()
            .map(|b| b"0123456789abcdef"[usize::from(b >> 4)])
            .collect();
        highs.dedup();
        let escaped = highs
            .into_iter()
            .map(|h| memchr::memmem::Finder::new(&[b'\\', b'u', b'0', b'0', h]).into_owned())
            .collect();
        Some(Prefilter { bytes, escaped })
    }

    /// Calls `hot` with every place in `text` that holds a picked byte (in
    /// no particular order).
    fn scan(&self, text: &[u8], hot: &mut dyn FnMut(usize)) {
        match *self.bytes.as_slice() {
            [a] => memchr::memchr_iter(a, text).for_each(&mut *hot),
            [a, b] => memchr::memchr2_iter(a, b, text).for_each(&mut *hot),
            [a, b, c] => memchr::memchr3_iter(a, b, c, text).for_each(&mut *hot),
            _ => hot(0),
        }
        for f in &self.escaped {
            f.find_iter(text).for_each(&mut *hot);
        }
    }
}

/// Turns terminal output into searchable text: escape sequences (CSI, OSC,
/// DCS, charset designations) are dropped; what moves the cursor to another
/// place (CR, LF, cursor positioning, erase display, scrolling, restore
/// cursor) becomes a line break; "cursor forward n" becomes n spaces; a
/// backspace takes back the character before it. State carries over between
/// calls, so a sequence split across events is still removed.
#[derive(Debug, Default)]
pub struct Stripper {
    state: State,
    /// First numeric parameter of the CSI being read.
    param: u32,
    param_done: bool,
    len: usize,
    /// The shortest the output was during the last feed (backspaces take
    /// back text): what the feed wrote starts there.
    low: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum State {
    #[default]
    Ground,
    Esc,
    Csi,
    /// OSC, DCS, APC, PM, SOS: until BEL or ST.
    Str,
    StrEsc,
    /// One more byte (ESC ( B, ESC # 8, …).
    Skip1,
}

const MAX_CSI: usize = 64;

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// How many bytes at the start of `s` are not control characters (checked
/// 16 at a time: the compiler turns the block test into vector code).
fn printable_run(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(block) = s.get(i..i + 16) {
        if block.iter().fold(false, |m, &b| m | is_control(b)) {
            break;
        }
        i += 16;
    }
    s[i..]
        .iter()
        .position(|&b| is_control(b))
        .map_or(s.len(), |p| i + p)
}

/// Bytes that end a run of plain text in escaped JSON string content.
static JSON_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\\' as usize] = true;
    t[b'"' as usize] = true;
    t[0x7f] = true;
    t
};

/// How many bytes at the start of `s` (escaped JSON string content) are
/// plain text: up to a backslash, a quote or DEL. Runs between colour codes
/// are mostly a few bytes, so the first 16 are looked up one by one (a call
/// to memchr costs more than that); longer runs go to memchr.
fn json_text_run(s: &[u8]) -> usize {
    let head = s.len().min(16);
    if let Some(p) = s[..head].iter().position(|&b| JSON_SPECIAL[usize::from(b)]) {
        return p;
    }
    head + memchr::memchr3(b'\\', b'"', 0x7f, &s[head..]).unwrap_or(s.len() - head)
}

/// A complete CSI sequence's parameters and final byte at the start of `s`
/// (after `ESC [`): (first numeric parameter, final byte, length). None when
/// it is not all there, or holds anything the state machine must see.
fn whole_csi(s: &[u8], json: bool) -> Option<(u32, u8, usize)> {
    // Find the final byte first: most sequences are colours (`m`) or
    // erasures (`K`), whose parameters nobody needs.
    let mut j = 0;
    let fin = loop {
        let &c = s.get(j)?;
        match c {
            // Inside JSON text a backslash starts an escape (not a final
            // byte) and a quote ends the string.
            b'\\' | b'"' if json => return None,
            0x20..=0x3f => {}
            0x40..=0x7e => break c,
            // Controls go to the state machine.
            _ => return None,
        }
        j += 1;
        if j >= MAX_CSI {
            return None;
        }
    };
    let param = if matches!(fin, b'C' | b'a') {
        s[..j]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .fold(0u32, |p, &c| {
                p.saturating_mul(10).saturating_add(u32::from(c - b'0'))
            })
    } else {
        0
    };
    Some((param, fin, j + 1))
}

fn line_break(out: &mut Vec<u8>) {
    if out.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
}

impl Stripper {
    /// Appends the text in `bytes` to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.low = out.len();
        let n = bytes.len();
        let mut i = 0;
        while i < n {
            if self.state != State::Ground {
                let b = bytes[i];
                i += 1;
                self.byte(b, out);
                continue;
            }
            // Copy the run of printable bytes at once.
            let run = printable_run(&bytes[i..]);
            out.extend_from_slice(&bytes[i..i + run]);
            i += run;
            if i == n {
                break;
            }
            // A whole CSI sequence in view (colours, mostly): read it here.
            if bytes[i] == 0x1b
                && bytes.get(i + 1) == Some(&b'[')
                && let Some((param, fin, len)) = whole_csi(&bytes[i + 2..], false)
            {
                self.param = param;
                self.csi(fin, out);
                i += 2 + len;
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.byte(b, out);
        }
    }

    /// Like [`Stripper::feed`], for text still escaped as the content of a
    /// JSON string (as event lines store it): unescaping and stripping in one
    /// pass, without an intermediate copy. The text ends at an unescaped
    /// quote (the string's end) or a bad escape; returns where.
    pub fn feed_json(&mut self, s: &[u8], out: &mut Vec<u8>) -> usize {
        self.low = out.len();
        let n = s.len();
        let mut i = 0;
        while i < n {
            if self.state == State::Ground {
                // JSON escapes every control character but DEL.
                let run = json_text_run(&s[i..]);
                if run < 32 {
                    // Short runs (between colour codes): copied in line;
                    // memcpy's call costs more than such a copy.
                    out.extend(s[i..i + run].iter().copied());
                } else {
                    out.extend_from_slice(&s[i..i + run]);
                }
                i += run;
                if i == n {
                    break;
                }
                // The commonest escape by far: a whole CSI sequence
                // (colours) written by a JSON encoder as `\u001b[`.
                if s[i + 1..].starts_with(b"u001b[")
                    && s[i] == b'\\'
                    && let Some((param, fin, csi_len)) = whole_csi(&s[i + 7..], true)
                {
                    self.param = param;
                    self.csi(fin, out);
                    i += 7 + csi_len;
                    continue;
                }
            }
            if s[i] == b'"' {
                return i;
            }
            let (used, bytes, len) = if s[i] == b'\\' {
                match json_escape(&s[i..]) {
                    Some(x) => x,
                    None => return i,
                }
            } else {
                (1, [s[i], 0, 0, 0], 1)
            };
            i += used;
            if bytes[0] == 0x1b
                && self.state == State::Ground
                && s.get(i) == Some(&b'[')
                && let Some((param, fin, csi_len)) = whole_csi(&s[i + 1..], true)
            {
                self.param = param;
                self.csi(fin, out);
                i += 1 + csi_len;
                continue;
            }
            for &b in &bytes[..len] {
                if self.state == State::Ground && !is_control(b) {
                    out.push(b);
                } else {
                    self.byte(b, out);
                }
            }
        }
        n
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        // CAN and SUB abort any sequence.
        if matches!(b, 0x18 | 0x1a) && self.state != State::Ground {
            self.state = State::Ground;
            return;
        }
        // A line feed ends the line whatever is being read, and ends that
        // too: each line starts from a known state, so a search can skip
        // whole lines without reading them (see `Prefilter`).
        if b == b'\n' {
            self.state = State::Ground;
            line_break(out);
            return;
        }
        match self.state {
            State::Ground => match b {
                0x1b => self.state = State::Esc,
                b'\r' | 0x0b | 0x0c => line_break(out),
                b'\t' => out.push(b'\t'),
                0x08 => {
                    backspace(out);
                    self.low = self.low.min(out.len());
                }
                _ => {} // other controls draw nothing
            },
            State::Esc => self.escape(b, out),
            State::Csi => match b {
                b'0'..=b'9' if !self.param_done => {
                    self.param = self
                        .param
                        .saturating_mul(10)
                        .saturating_add(u32::from(b - b'0'));
                    self.len += 1;
                }
                0x1b => self.state = State::Esc,
                0x40..=0x7e => {
                    self.state = State::Ground;
                    self.csi(b, out);
                }
                0x20..=0x3f => {
                    if !b.is_ascii_digit() {
                        self.param_done = true;
                    }
                    self.len += 1;
                    if self.len > MAX_CSI {
                        self.state = State::Ground;
                    }
                }
                _ => {} // C0 controls inside a CSI are executed: nothing to show
            },
            State::Str => match b {
                0x07 => self.state = State::Ground,
                0x1b => self.state = State::StrEsc,
                _ => {}
            },
            State::StrEsc => {
                if b == b'\\' {
                    self.state = State::Ground;
                } else {
                    self.escape(b, out);
                }
            }
            State::Skip1 => self.state = State::Ground,
        }
    }

    fn escape(&mut self, b: u8, out: &mut Vec<u8>) {
        self.state = State::Ground;
        match b {
            b'[' => {
                self.state = State::Csi;
                self.param = 0;
                self.param_done = false;
                self.len = 0;
            }
            b']' | b'P' | b'_' | b'^' | b'X' => self.state = State::Str,
            b'(' | b')' | b'*' | b'+' | b'-' | b'.' | b'/' | b'#' | b' ' | b'%' => {
                self.state = State::Skip1
            }
            b'8' | b'D' | b'E' | b'M' | b'c' => line_break(out),
            0x1b => self.state = State::Esc,
            _ => {}
        }
    }

    fn csi(&mut self, fin: u8, out: &mut Vec<u8>) {
        let n = self.param.clamp(1, 256) as usize;
        match fin {
            b'C' | b'a' => out.extend(std::iter::repeat_n(b' ', n)),
            b'I' => out.push(b'\t'),
            b'A' | b'B' | b'D' | b'E' | b'F' | b'G' | b'H' | b'J' | b'L' | b'M' | b'S' | b'T'
            | b'Z' | b'd' | b'e' | b'f' | b'r' | b'u' | b'`' => line_break(out),
            _ => {} // SGR, erase in line, modes, …: no text
        }
    }
}

fn backspace(out: &mut Vec<u8>) {
    match out.last() {
        None | Some(b'\n') => {}
        Some(_) => {
            // Take back one UTF-8 character.
            while let Some(b) = out.pop() {
                if b & 0xc0 != 0x80 {
                    break;
                }
            }
        }
    }
}

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
    pattern: &'a Pattern,
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
    /// returns false to stop. Returns false when stopped.
    pub fn push(
        &mut self,
        time: Micros,
        bytes: &[u8],
        hit: &mut dyn FnMut(LineHit) -> bool,
    ) -> bool {
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
        hit: &mut dyn FnMut(LineHit) -> bool,
    ) -> (bool, usize) {
        let used = self.strip.feed_json(escaped, &mut self.buf);
        (self.pushed(self.strip.low, time, hit), used)
    }

    fn pushed(&mut self, start: usize, time: Micros, hit: &mut dyn FnMut(LineHit) -> bool) -> bool {
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
        true
    }

    /// Goes on after output that was skipped, which ended with a line feed:
    /// the line ends, and the stripper starts afresh (as it does after any
    /// line feed).
    pub fn restart_line(&mut self) {
        self.strip = Stripper::default();
        line_break(&mut self.buf);
    }

    /// Searches the lines complete so far (what a block does when full).
    pub fn flush(&mut self, hit: &mut dyn FnMut(LineHit) -> bool) -> bool {
        self.search(false, hit)
    }

    /// Searches what is left (the last line need not be finished).
    pub fn finish(&mut self, hit: &mut dyn FnMut(LineHit) -> bool) -> bool {
        self.search(true, hit)
    }

    fn time_at(&self, offset: usize) -> Micros {
        let i = self.times.partition_point(|&(o, _)| o <= offset);
        self.times.get(i.saturating_sub(1)).map_or(0, |t| t.1)
    }

    fn search(&mut self, last: bool, hit: &mut dyn FnMut(LineHit) -> bool) -> bool {
        let end = if last {
            self.buf.len()
        } else {
            match memchr::memrchr(b'\n', &self.buf) {
                Some(i) => i + 1,
                None if self.buf.len() >= MAX_LINE => self.buf.len(),
                None => return true,
            }
        };
        let mut go_on = true;
        let mut pos = 0;
        let hay = &self.buf[..end];
        // One pass over the whole block finds candidate places; the lines
        // around each are then searched on their own, so that no match spans
        // a line break and every match in a line is reported.
        while pos < end && go_on {
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
            while ls <= last_end && go_on {
                let le = memchr::memchr(b'\n', &hay[ls..last_end]).map_or(last_end, |i| ls + i);
                let line = &hay[ls..le];
                let matches = self.pattern.find_all(line);
                if let Some(&(s, e)) = matches.first() {
                    let time = self.time_at(ls + e.max(s + 1) - 1);
                    let written = (self.time_at(ls), self.time_at(le.max(ls + 1) - 1));
                    go_on = hit(to_text(line, &matches, time, written));
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
        go_on
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

/// The screen row a hit was on.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenLine {
    /// Whether the screen was rebuilt exactly (see [`SCREEN_WINDOW`]).
    pub exact: bool,
    /// Row number, 0 at the top.
    pub row: usize,
    /// The row's text.
    pub line: String,
    /// Up to `context` rows above it.
    pub before: Vec<String>,
    /// Up to `context` rows below it.
    pub after: Vec<String>,
}

/// One hit.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The matching line and when it was written.
    pub found: LineHit,
    /// Where it was on the screen at that time (None: not on the screen any
    /// more, or screen lines were not asked for).
    pub screen: Option<ScreenLine>,
}

/// What is known about a searched recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every chunk verified and the seal is valid.
    Intact,
    /// Verified as far as it goes, not sealed (still being written, or cut).
    Unsealed,
    /// A plain asciicast file: nothing to verify.
    Plain,
}

/// The result of searching one file.
#[derive(Debug)]
pub enum FileResult {
    /// Searched.
    Searched {
        /// The header.
        header: Box<Header>,
        /// Verification state.
        verdict: Verdict,
        /// The hits (all of them, or the first `max_count`).
        hits: Vec<Hit>,
        /// Damage found: hits are only from before it.
        damage: Option<String>,
    },
    /// Left out by a metadata or time filter.
    Filtered,
    /// Not searched: not a recording, unreadable.
    Failed(String),
}

/// Which recordings to search, and how.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    /// Search typed input (`i` events) instead of output.
    pub input: bool,
    /// Stop a file after this many matching lines.
    pub max_count: Option<u64>,
    /// Find screen lines (the second pass).
    pub screen: bool,
    /// Rows of screen context around a hit.
    pub context: usize,
    /// Only hits at or after this Unix time (seconds).
    pub since: Option<i64>,
    /// Only hits before this Unix time.
    pub until: Option<i64>,
    /// Metadata filters.
    pub filter: MetaFilter,
    /// Decoding threads per file.
    pub threads: usize,
    /// Keyframe cache directory (read only).
    pub cache: Option<PathBuf>,
    /// How chunk content is verified: [`ContentCheck::SealedFrames`] takes
    /// a sealed file's segments on the seal's frame hashes and hashes the
    /// chunks hits come from in the second pass.
    pub content: ContentCheck,
}

/// Metadata filters; all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct MetaFilter {
    /// Runtime session id (exact).
    pub session: Option<String>,
    /// Shell id (exact).
    pub shell: Option<String>,
    /// Who opened it (exact).
    pub principal: Option<String>,
    /// A part of the title (case-insensitive).
    pub title: Option<String>,
}

impl MetaFilter {
    /// Whether `header` passes.
    pub fn accepts(&self, header: &Header) -> bool {
        let meta = header.termtrail.as_ref();
        let field = |f: fn(&termtrail_format::cast::RecordingMeta) -> Option<&String>| {
            meta.and_then(f).map(String::as_str)
        };
        let exact = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| got == Some(w))
        };
        exact(&self.session, field(|m| m.session.as_ref()))
            && exact(&self.shell, field(|m| m.shell.as_ref()))
            && exact(&self.principal, field(|m| m.principal.as_ref()))
            && self.title.as_deref().is_none_or(|w| {
                header
                    .title
                    .as_deref()
                    .is_some_and(|t| t.to_lowercase().contains(&w.to_lowercase()))
            })
    }

    /// Whether any filter is set.
    pub fn is_empty(&self) -> bool {
        self.session.is_none()
            && self.shell.is_none()
            && self.principal.is_none()
            && self.title.is_none()
    }
}

fn in_window(opts: &SearchOptions, header: &Header, t: Micros) -> bool {
    if opts.since.is_none() && opts.until.is_none() {
        return true;
    }
    let Some(start) = header.timestamp else {
        return false; // no wall-clock time: cannot be placed in a window
    };
    let at = start as i64 + (t / 1_000_000) as i64;
    opts.since.is_none_or(|s| at >= s) && opts.until.is_none_or(|u| at < u)
}

/// What kind of file this is, from its first bytes: Some(true) a termtrail
/// recording (zstd frames), Some(false) a plain asciicast file, None
/// neither.
pub fn sniff(path: &Path) -> io::Result<Option<bool>> {
    let mut head = [0u8; 4];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < 4 {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    if n >= 1 && head[0] == b'{' {
        return Ok(Some(false));
    }
    let zstd = n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd];
    let skippable = n == 4 && head[0] & 0xf0 == 0x50 && head[1..] == [0x2a, 0x4d, 0x18];
    Ok((zstd || skippable).then_some(true))
}

/// What is said of a file that is not a recording.
pub const NOT_A_RECORDING: &str =
    "not a recording (neither a termtrail .cast.zst nor an asciicast file)";

/// Searches one file.
pub fn search_file(path: &Path, pattern: &Pattern, opts: &SearchOptions) -> FileResult {
    match search_file_inner(path, pattern, opts, opts.content) {
        Ok(r) => r,
        Err(e) => FileResult::Failed(e),
    }
}

struct Collect<'a, 'p> {
    search: LineSearch<'p>,
    /// Every resize: screens are rebuilt at the right size.
    sizes: Vec<(Micros, TermSize)>,
    opts: &'a SearchOptions,
    path: &'a Path,
    header: Option<Header>,
    filtered: bool,
    hits: Vec<Hit>,
    stopped: bool,
    /// The chunks hits come from are hashed in the second pass (segments
    /// may have been taken on the seal's frame hashes).
    check: bool,
    /// The second pass, once there are hits: it goes along with the first,
    /// taking each segment the reader verified (so a hit's segment is not
    /// decompressed again).
    walker: Option<Walker>,
    /// Hits the walker has done (`hits[..walked]`).
    walked: usize,
    /// The last two segments read, kept until there is a walker.
    recent: Vec<(usize, SegmentText)>,
    /// The walker could not be opened.
    walker_failed: bool,
    /// A hit's chunk did not verify: the file must be read again, hashing
    /// every chunk.
    unverified: bool,
    /// Set from the first chunk (None until then; Some(None): none).
    prefilter: Option<Option<Prefilter>>,
    scratch: Scratch,
}

impl Collect<'_, '_> {
    fn take_event(&mut self, e: &Event) -> bool {
        if let EventData::Resize(size) = e.data {
            self.sizes.push((e.time, size));
        }
        let bytes = match (&e.data, self.opts.input) {
            (EventData::Output(b), false) | (EventData::Input(b), true) => b,
            _ => return true,
        };
        let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
        let go_on = self
            .search
            .push(e.time, bytes, &mut |h| keep(hits, opts, header.as_ref(), h));
        if !go_on {
            self.stopped = true;
        }
        go_on
    }

    fn finish(&mut self) {
        if !self.stopped {
            let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
            self.search
                .finish(&mut |h| keep(hits, opts, header.as_ref(), h));
        }
    }
}

fn keep(hits: &mut Vec<Hit>, opts: &SearchOptions, header: Option<&Header>, h: LineHit) -> bool {
    if header.is_some_and(|hd| in_window(opts, hd, h.time)) {
        hits.push(Hit {
            found: h,
            screen: None,
        });
    }
    opts.max_count.is_none_or(|m| (hits.len() as u64) < m)
}

impl Collect<'_, '_> {
    /// Brings the walker to the hits found since it last went (opening it
    /// for the first hits); sets `unverified` when a hit's chunk does not
    /// verify (or cannot be checked).
    fn walk_new_hits(&mut self) {
        if self.walked == self.hits.len() || !(self.opts.screen || self.check) {
            return;
        }
        if self.walker.is_none() && !self.walker_failed {
            match Walker::open(self.path, self.opts) {
                Ok(mut w) => {
                    for (seg, text) in self.recent.drain(..) {
                        w.offer(seg, text);
                    }
                    self.walker = Some(w);
                }
                Err(_) => self.walker_failed = true,
            }
        }
        let Some(walker) = &mut self.walker else {
            // Without a walker nothing can be checked.
            self.unverified |= self.check;
            return;
        };
        // Resizes only accrue: the walker takes the new ones.
        walker
            .sizes
            .extend_from_slice(&self.sizes[walker.sizes.len()..]);
        let ok = walker
            .walk(&mut self.hits[self.walked..], self.opts, self.check)
            .is_ok();
        self.walked = self.hits.len();
        self.unverified |= !ok;
    }
}

impl Collect<'_, '_> {
    /// Searches one verified chunk's event lines without building events:
    /// each wanted line's JSON string is unescaped straight into the search.
    /// With a prefilter (see [`Prefilter`]), only the lines of output it
    /// finds a picked byte in are read, and the chunk's first and last
    /// (which may go on in the chunks around it): the others cannot hold a
    /// match. Lines are cut at line feeds (JSON `\n`) in the wanted events'
    /// strings; after skipped lines the stripper starts afresh, as it does
    /// after any line feed.
    fn take_lines(&mut self, first: Micros, lines: &[u8]) -> bool {
        if self.prefilter.is_none() {
            self.prefilter = Some(Prefilter::new(self.search.pattern, lines));
        }
        let Some(Some(pre)) = &self.prefilter else {
            return self.take_every_line(first, lines);
        };
        let want: &[u8] = if self.opts.input { b"i" } else { b"o" };
        let s = &mut self.scratch;
        s.events.clear();
        s.line_ends.clear();
        s.hot.clear();
        // The events (resizes taken on the way) and, in the wanted ones'
        // strings, where each line feed ends.
        let mut t: Option<Micros> = None;
        let mut i = 0;
        while i < lines.len() {
            let rest = &lines[i..];
            let end = i + memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            if let Some((time, code, data)) = event_line(rest, first, &mut t, &mut self.sizes)
                && code == want
            {
                let from = i + data;
                s.events.push((time, from..end));
                for p in LINE_FEED.find_iter(&lines[from..end]) {
                    let p = from + p;
                    // A backslash escaped by the one before it is no escape.
                    let backslashes = lines[from..=p]
                        .iter()
                        .rev()
                        .take_while(|&&b| b == b'\\')
                        .count();
                    if backslashes % 2 == 1 {
                        s.line_ends.push(p + 2);
                    }
                }
            }
            i = end + 1;
        }
        // Lines (between line ends) holding a picked byte; the first and the
        // last always.
        let n = s.line_ends.len() + 1;
        s.hot.resize(n, false);
        s.hot[0] = true;
        s.hot[n - 1] = true;
        let (ends, hot) = (&s.line_ends, &mut s.hot);
        pre.scan(lines, &mut |q| {
            hot[ends.partition_point(|&e| e <= q)] = true
        });
        // Feed the hot lines' parts of each event.
        let mut k = 0;
        let mut fresh = false;
        for (time, range) in &s.events {
            let mut at = range.start;
            while at < range.end {
                // The line `at` is in, and where it ends.
                while k + 1 < n && s.line_ends[k] <= at {
                    k += 1;
                    fresh = true;
                }
                let stop = if k + 1 < n {
                    s.line_ends[k].min(range.end)
                } else {
                    range.end
                };
                if s.hot[k] {
                    if fresh {
                        self.search.restart_line();
                    }
                    fresh = false;
                    let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
                    let (go_on, _) = self.search.push_json(*time, &lines[at..stop], &mut |h| {
                        keep(hits, opts, header.as_ref(), h)
                    });
                    if !go_on {
                        self.stopped = true;
                        return false;
                    }
                }
                at = stop;
            }
        }
        true
    }
}

impl Collect<'_, '_> {
    /// [`Collect::take_lines`] without a prefilter: each wanted event's
    /// string is fed whole, and where the string ends (as the stripper
    /// found it) is where the search for the next line starts.
    fn take_every_line(&mut self, first: Micros, lines: &[u8]) -> bool {
        let want: &[u8] = if self.opts.input { b"i" } else { b"o" };
        let mut t: Option<Micros> = None;
        let mut i = 0;
        while i < lines.len() {
            let rest = &lines[i..];
            let mut after = 0;
            if let Some((time, code, data)) = event_line(rest, first, &mut t, &mut self.sizes) {
                after = data;
                if code == want {
                    let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
                    let (go_on, used) = self.search.push_json(time, &rest[data..], &mut |h| {
                        keep(hits, opts, header.as_ref(), h)
                    });
                    if !go_on {
                        self.stopped = true;
                        return false;
                    }
                    after += used;
                }
            }
            i +=
                after + memchr::memchr(b'\n', &rest[after..]).map_or(rest.len() - after, |n| n + 1);
        }
        true
    }
}

/// The event line at the start of `rest`: its time (`t` holds the line
/// before's; the chunk's first line is at `first`), code, and where its
/// data string's content starts. A resize's size is kept in `sizes`. None
/// for other lines (comments).
fn event_line<'l>(
    rest: &'l [u8],
    first: Micros,
    t: &mut Option<Micros>,
    sizes: &mut Vec<(Micros, TermSize)>,
) -> Option<(Micros, &'l [u8], usize)> {
    let (interval, code, data) = event_head(rest)?;
    let time = t.map_or(first, |prev| prev + interval);
    *t = Some(time);
    if code == b"r"
        && let Some(size) = resize_of(&rest[data..])
    {
        sizes.push((time, size));
    }
    Some((time, code, data))
}

/// The size in a resize event's data string (`80x24"…`).
fn resize_of(data: &[u8]) -> Option<TermSize> {
    let end = memchr::memchr(b'"', data)?;
    std::str::from_utf8(&data[..end])
        .ok()
        .and_then(TermSize::parse)
}

/// A line feed as JSON escapes it.
static LINE_FEED: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\\n"));

/// Per-chunk lists [`Collect::take_lines`] reuses.
#[derive(Default)]
struct Scratch {
    /// Wanted events: time, and their string's place (to the line's end).
    events: Vec<(Micros, std::ops::Range<usize>)>,
    /// Where each line feed in them ends.
    line_ends: Vec<usize>,
    /// Per line: whether it is read.
    hot: Vec<bool>,
}

/// The head of an asciicast v3 event line `[interval, "code", "data…`:
/// (interval, code, offset of the data string's first byte). None for
/// anything else.
fn event_head(line: &[u8]) -> Option<(Micros, &[u8], usize)> {
    let rest = line.strip_prefix(b"[")?;
    let comma = memchr::memchr(b',', rest)?;
    let interval = parse_micros(rest[..comma].trim_ascii())?;
    let after = rest[comma + 1..].trim_ascii_start();
    let after = after.strip_prefix(b"\"")?;
    let q = memchr::memchr(b'"', after)?;
    let code = &after[..q];
    let tail = after[q + 1..].trim_ascii_start().strip_prefix(b",")?;
    let tail = tail.trim_ascii_start().strip_prefix(b"\"")?;
    Some((interval, code, line.len() - tail.len()))
}

/// `1.250000` → 1_250_000 µs.
fn parse_micros(s: &[u8]) -> Option<Micros> {
    let (whole, frac) = match memchr::memchr(b'.', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let mut us: Micros = 0;
    for &b in whole {
        if !b.is_ascii_digit() {
            return None;
        }
        us = us.checked_mul(10)?.checked_add(Micros::from(b - b'0'))?;
    }
    us = us.checked_mul(1_000_000)?;
    let mut scale = 100_000;
    for &b in frac.iter().take(6) {
        if !b.is_ascii_digit() {
            return None;
        }
        us += Micros::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(us)
}

/// The JSON escape at the start of `s` (which starts with a backslash):
/// (bytes of `s` used, the character's UTF-8 bytes, how many). None when
/// malformed.
fn json_escape(s: &[u8]) -> Option<(usize, [u8; 4], usize)> {
    let one = |b: u8| Some((2, [b, 0, 0, 0], 1));
    match *s.get(1)? {
        b'n' => one(b'\n'),
        b'r' => one(b'\r'),
        b't' => one(b'\t'),
        b'b' => one(0x08),
        b'f' => one(0x0c),
        b'u' => {
            let mut cp = hex4(s, 2)?;
            let mut used = 6;
            if (0xd800..0xdc00).contains(&cp)
                && s.get(6..8) == Some(b"\\u")
                && let Some(lo) = hex4(s, 8).filter(|lo| (0xdc00..0xe000).contains(lo))
            {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                used = 12;
            }
            let c = char::from_u32(cp).unwrap_or('\u{fffd}');
            let mut buf = [0u8; 4];
            let len = c.encode_utf8(&mut buf).len();
            Some((used, buf, len))
        }
        other => one(other), // \" \\ \/
    }
}

/// Four hex digits at `s[i..]`.
fn hex4(s: &[u8], i: usize) -> Option<u32> {
    let mut v = 0;
    for &b in s.get(i..i + 4)? {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | u32::from(d);
    }
    Some(v)
}

impl ReadSink for Collect<'_, '_> {
    fn chunk_text(&mut self, record: &ChunkRecord, lines: &[u8]) -> Flow {
        if self.take_lines(record.first, lines) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    fn segment_text(&mut self, segment: u32, text: SegmentText) -> Flow {
        if !(self.opts.screen || self.check) {
            return Flow::Continue;
        }
        let seg = segment as usize;
        match &mut self.walker {
            Some(w) => w.offer(seg, text),
            None => {
                if self.recent.len() == 2 {
                    self.recent.remove(0);
                }
                self.recent.push((seg, text));
            }
        }
        // Hits in the lines completed so far, while their segment is here.
        let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
        if !self
            .search
            .flush(&mut |h| keep(hits, opts, header.as_ref(), h))
        {
            self.stopped = true;
        }
        self.walk_new_hits();
        if self.unverified || self.stopped {
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn header(&mut self, header: &Header) -> Flow {
        if !self.opts.filter.accepts(header) || opts_until_excludes(self.opts, header) {
            self.filtered = true;
            return Flow::Stop;
        }
        self.header = Some(header.clone());
        Flow::Continue
    }
}

fn opts_until_excludes(opts: &SearchOptions, header: &Header) -> bool {
    match (opts.until, header.timestamp) {
        (Some(u), Some(start)) => start as i64 >= u,
        (Some(_) | None, None) => opts.since.is_some() || opts.until.is_some(),
        (None, Some(_)) => false,
    }
}

/// Searches one file, reading chunk content as `content` says: grep takes
/// a sealed file's segments on the seal's frame hashes and hashes the
/// chunks its hits come from (the second pass); when one of those does not
/// verify, the file is read again hashing every chunk, which names the
/// damage and reports only hits before it.
fn search_file_inner(
    path: &Path,
    pattern: &Pattern,
    opts: &SearchOptions,
    content: ContentCheck,
) -> Result<FileResult, String> {
    let kind = sniff(path).map_err(|e| e.to_string())?;
    let mut c = Collect {
        search: LineSearch::new(pattern),
        sizes: Vec::new(),
        opts,
        path,
        header: None,
        filtered: false,
        hits: Vec::new(),
        stopped: false,
        // Plain asciicast files have no chain: nothing to hash.
        check: content == ContentCheck::SealedFrames && kind == Some(true),
        walker: None,
        walked: 0,
        recent: Vec::new(),
        walker_failed: false,
        unverified: false,
        prefilter: None,
        scratch: Scratch::default(),
    };
    let (verdict, damage) = match kind {
        None => return Err(format!("{NOT_A_RECORDING}; skipped")),
        Some(false) => {
            let mut r =
                CastReader::new(BufReader::new(File::open(path).map_err(|e| e.to_string())?))
                    .map_err(|e| format!("not a valid asciicast file: {e}"))?;
            if c.header(r.header()) == Flow::Stop {
                return Ok(FileResult::Filtered);
            }
            while let Some(e) = r.next_event().map_err(|e| format!("asciicast file: {e}"))? {
                if !c.take_event(&e) {
                    break;
                }
            }
            (Verdict::Plain, None)
        }
        Some(true) => {
            if let Some(since) = opts.since
                && let Ok(mut f) = File::open(path)
                && let Ok(index) = load_index(&mut f)
                && index.sealed
                && let Some(start) = index.header.timestamp
                && (start + index.duration / 1_000_000 + 1) < since.max(0) as u64
            {
                return Ok(FileResult::Filtered);
            }
            let ro = ReadOptions {
                threads: opts.threads.max(1),
                // Lines are searched as they are (`chunk_text`).
                events: false,
                content,
                ..ReadOptions::default()
            };
            let report = read_path(path, &ro, &mut c).map_err(|e| e.to_string())?;
            if c.filtered {
                return Ok(FileResult::Filtered);
            }
            let damage = (report.status == Status::Tampered).then(|| {
                let first = report
                    .problems
                    .first()
                    .map_or("damaged", |p| p.message.as_str());
                format!(
                    "TAMPERED: {first} (verified up to {}; run `termtrail verify` for details)",
                    termtrail_format::event::format_clock(report.last_verified)
                )
            });
            let verdict = if report.sealed {
                Verdict::Intact
            } else {
                Verdict::Unsealed
            };
            (verdict, damage)
        }
    };
    c.finish();
    c.walk_new_hits();
    if c.unverified {
        return search_file_inner(path, pattern, opts, ContentCheck::EveryChunk);
    }
    let Some(header) = c.header.take() else {
        return Err("no header".into());
    };
    let hits = c.hits;
    Ok(FileResult::Searched {
        header: Box::new(header),
        verdict,
        hits,
        damage,
    })
}

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
struct Walker {
    seeker: Seeker,
    /// Resizes seen by the first pass.
    sizes: Vec<(Micros, TermSize)>,
    /// Segments read (at most two: the current one and the one before).
    segments: Vec<Loaded>,
    at: Option<WalkState>,
    /// Screen lines are still wanted (false once one could not be built:
    /// they are extras, a failure only leaves them out).
    screens: bool,
}

/// A segment read for the window, and the events of the chunks taken from
/// it so far (a chunk is hashed and parsed only when the window reaches it:
/// a 256 KiB window needs one or two of a segment's ~16 chunks).
struct Loaded {
    seg: usize,
    text: SegmentText,
    events: Vec<Option<Vec<Event>>>,
    /// Chunks whose content verified (a hit's chunk is hashed once).
    checked: Vec<bool>,
}

impl Loaded {
    fn new(seg: usize, text: SegmentText) -> Loaded {
        Loaded {
            seg,
            events: vec![None; text.chunks()],
            checked: vec![false; text.chunks()],
            text,
        }
    }
}

/// A place between events: (segment, chunk, index of the next event).
type Pos = (usize, usize, usize);

struct WalkState {
    emu: Emulator,
    pos: Micros,
    exact: bool,
    /// Without keyframes: the next event to apply.
    next: Option<Pos>,
    /// With keyframes (or for a plain file): a cursor reading on.
    cursor: Option<Cursor>,
}

fn out_len(e: &Event) -> usize {
    match &e.data {
        EventData::Output(b) => b.len(),
        _ => 0,
    }
}

impl Walker {
    fn open(path: &Path, opts: &SearchOptions) -> Result<Walker, SeekError> {
        Ok(Walker {
            seeker: Seeker::open_lazy(path, opts.cache.as_deref())?,
            sizes: Vec::new(),
            segments: Vec::new(),
            at: None,
            screens: opts.screen,
        })
    }

    /// Takes segment `seg` as the first pass read and verified it (kept
    /// with the one before it).
    fn offer(&mut self, seg: usize, text: SegmentText) {
        self.segments.retain(|l| l.seg + 1 >= seg && l.seg != seg);
        self.segments.push(Loaded::new(seg, text));
    }

    /// The second pass over `hits`, in time order. With `check` (segments
    /// may have been taken on the seal's frame hashes, see
    /// [`ContentCheck`]), the chunks each hit's line was written from are
    /// hashed against the chain: an error when one does not verify. With
    /// screen lines wanted, an emulator brought to each hit's time gives
    /// its screen row.
    fn walk(
        &mut self,
        hits: &mut [Hit],
        opts: &SearchOptions,
        check: bool,
    ) -> Result<(), SeekError> {
        for hit in hits {
            if check {
                self.verify_span(hit.found.written)?;
            }
            if self.screens {
                match self.screen_at(hit.found.time) {
                    Ok((emu, exact)) => {
                        hit.screen = screen_line(emu, exact, &hit.found, opts.context)
                    }
                    Err(_) => self.screens = false,
                }
            }
        }
        Ok(())
    }

    fn size_before(&self, t: Micros) -> TermSize {
        self.sizes
            .iter()
            .rev()
            .find(|(at, _)| *at < t)
            .map_or_else(|| self.seeker.header().size(), |(_, s)| *s)
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
    fn chunk(&mut self, seg: usize, k: usize) -> Result<&[Event], SeekError> {
        let i = self.load(seg)?;
        let l = &mut self.segments[i];
        if l.events[k].is_none() {
            let mut events = Vec::new();
            if !l.text.push_events(k, &mut events)? {
                return Err(SeekError::Tampered {
                    at: format!("segment {seg}"),
                    problem: format!("chunk {} does not verify", l.text.record(k).seq),
                });
            }
            l.events[k] = Some(events);
            l.checked[k] = true;
        }
        Ok(l.events[k].as_deref().unwrap_or_default())
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
        let next = self.chunk(seg, k)?.partition_point(|e| e.time <= t);
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

    /// The screen at `t`, and whether it is exact.
    fn screen_at(&mut self, t: Micros) -> Result<(&Emulator, bool), SeekError> {
        match self.seeker.segment_at(t) {
            Some(seg) if self.seeker.keyframes().is_empty() => self.by_window(seg, t)?,
            _ => self.by_cursor(t)?,
        }
        match &self.at {
            Some(s) => Ok((&s.emu, s.exact)),
            None => unreachable!("set above"),
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
                s.emu.apply(&e.data);
            }
            s.pos = t;
            return Ok(());
        }
        let (emu, cursor) = self.seeker.cursor_at(t)?;
        self.at = Some(WalkState {
            emu,
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
                for (k, range) in slices {
                    for e in &self.chunk(seg, k)?[range] {
                        state.emu.apply(&e.data);
                    }
                }
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
                let time = self.chunk(s, k)?[i].time;
                self.size_before(time)
            }
            None => self.size_before(t),
        };
        let mut emu = Emulator::new(size);
        for (s, k, range) in slices.into_iter().rev() {
            for e in &self.chunk(s, k)?[range] {
                emu.apply(&e.data);
            }
        }
        self.at = Some(WalkState {
            emu,
            pos: t,
            exact,
            next: Some(target),
            cursor: None,
        });
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
                    if let EventData::Output(b) = &events[from].data {
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
            for e in &self.chunk(*s, *k)?[range.clone()] {
                match &e.data {
                    EventData::Output(b) if !scan.feed(b) => return Ok(false),
                    EventData::Resize(_) => return Ok(false),
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
            bytes += events[start..end].iter().map(out_len).sum::<usize>();
            if bytes > SCREEN_WINDOW {
                return Ok(None);
            }
            slices.push((k, start..end));
        }
        Ok(Some((slices, bytes)))
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

/// The screen row that shows `found`'s first match, with `context` rows
/// around it: the row showing the matched text with the most of the line's
/// text around it; among equals, the nearest at or above the cursor (where
/// output just went). None when the line is no longer on the screen
/// (scrolled away, overwritten, cleared).
fn screen_line(emu: &Emulator, exact: bool, found: &LineHit, context: usize) -> Option<ScreenLine> {
    let n = emu.rows();
    // Rows are built as they are looked at: usually the cursor's row shows
    // the whole line and no other is needed.
    let mut rows: Vec<Option<String>> = vec![None; n];
    let mut row = |r: usize| -> String { rows[r].get_or_insert_with(|| emu.line(r)).clone() };
    let &(s, e) = found.matches.first()?;
    let line = &found.line;
    let cursor_row = emu.cursor_row().min(n.saturating_sub(1));
    let order = (0..=cursor_row).rev().chain(cursor_row + 1..n);
    // No row can agree on more than the whole line around the match.
    let most = line[..s].chars().count() + line[e..].trim_end().chars().count();
    let mut best: Option<(usize, usize)> = None;
    if e > s {
        for r in order {
            let score = context_score(&row(r), line, s, e);
            if score.is_some_and(|sc| best.is_none_or(|(_, b)| sc > b)) {
                best = score.map(|sc| (r, sc));
            }
            if best.is_some_and(|(_, b)| b >= most) {
                break;
            }
        }
    }
    let (r, _) = best?;
    Some(ScreenLine {
        exact,
        row: r,
        line: row(r),
        before: (r.saturating_sub(context)..r).map(&mut row).collect(),
        after: (r + 1..(r + 1 + context).min(n)).map(&mut row).collect(),
    })
}

/// How well `row` shows `line`'s match `line[s..e]`: the number of
/// characters around an occurrence of the match that agree with the line.
/// The row must be a faithful window of the line — agreeing up to the start
/// of the line or of the row, and up to the end of the line or of the row —
/// so a row holding the same word in other text is not taken for it (None).
fn context_score(row: &str, line: &str, s: usize, e: usize) -> Option<usize> {
    let text = &line[s..e];
    let mut best = None;
    for (p, _) in row.match_indices(text) {
        let (row_before, line_before) = (&row[..p], &line[..s]);
        let (row_after, line_after) = (&row[p + text.len()..], line[e..].trim_end());
        let before = row_before
            .chars()
            .rev()
            .zip(line_before.chars().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let after = row_after
            .chars()
            .zip(line_after.chars())
            .take_while(|(a, b)| a == b)
            .count();
        let whole = |n: usize, x: &str, y: &str| n == x.chars().count() || n == y.chars().count();
        if whole(before, row_before, line_before) && whole(after, row_after, line_after) {
            best = best.max(Some(before + after));
        }
    }
    best
}

/// Expands `paths` into the files to search: files as given, directories
/// walked recursively (names starting with `.` skipped, symbolic links to
/// directories not followed), in name order. Paths that cannot be read are
/// returned as errors.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk_dir(p, &mut files, &mut errors),
            Ok(_) => files.push(p.clone()),
            Err(e) => errors.push((p.clone(), e.to_string())),
        }
    }
    (files, errors)
}

fn walk_dir(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<(PathBuf, String)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push((dir.to_path_buf(), e.to_string()));
            return;
        }
    };
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    for p in names {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let Ok(lm) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if lm.is_dir() && p.file_name().is_some_and(|n| n == "journal") {
            // A store's journal of seals (JSON entries), not recordings.
            continue;
        }
        if lm.is_dir() {
            walk_dir(&p, files, errors);
        } else if lm.is_file() || (lm.file_type().is_symlink() && p.is_file()) {
            files.push(p);
        }
    }
}

/// Searches `files` (local files or S3 objects) on `jobs` threads, handing each file's result to `done`
/// as soon as it is complete (in completion order). `done` returns false to
/// stop the search.
pub fn search_all(
    files: &[crate::remote::Target],
    pattern: &Pattern,
    opts: &SearchOptions,
    jobs: usize,
    done: &mut dyn FnMut(&str, FileResult) -> bool,
) {
    let stop = AtomicBool::new(false);
    let jobs = jobs.max(1);
    let (tx, rx) = mpsc::sync_channel::<(usize, FileResult)>(jobs * 2);
    // An S3 object is fetched into a temporary file first: four fetchers
    // keep up to `jobs` objects ready ahead of the searchers, so
    // downloading and searching overlap. Local files need no fetching.
    let fetchers = if crate::remote::Target::any_remote(files) {
        4
    } else {
        1
    };
    crate::remote::fetch_ahead(files, fetchers, jobs, |ready| {
        std::thread::scope(|s| {
            for _ in 0..jobs.min(files.len().max(1)) {
                let tx = tx.clone();
                let stop = &stop;
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let got = ready.lock().ok().and_then(|r| r.recv().ok());
                        let Some((i, local)) = got else { break };
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // A fetched copy is deleted when `_copy` goes.
                        let r = match local {
                            Ok((path, _copy)) => search_file(&path, pattern, opts),
                            Err(e) => FileResult::Failed(e),
                        };
                        if tx.send((i, r)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (i, r) in rx.iter() {
                if !done(&files[i].name(), r) {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        });
    });
}

/// Parses a `--since`/`--until` value into Unix seconds: `2026-11-20`,
/// `2026-11-20T14:30:00Z` (or `+hh:mm`), `2026-11-20 14:30`, or a time ago
/// (`90m`, `36h`, `7d`, `2w`), or `now`.
pub fn parse_when(s: &str, now: i64) -> Result<i64, String> {
    let bad = || {
        format!(
            "bad time {s:?}: use a date (2026-11-20), a date and time (2026-11-20T14:30:00Z), or a time ago (90m, 36h, 7d, 2w)"
        )
    };
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(unit) = s.chars().last().filter(|c| "smhdw".contains(*c))
        && let Ok(n) = s[..s.len() - 1].parse::<i64>()
        && n >= 0
    {
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 7 * 86_400,
        };
        return n.checked_mul(mult).map(|d| now - d).ok_or_else(bad);
    }
    let (date, rest) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 {
        return Err(bad());
    }
    let num = |x: &str, lo: i64, hi: i64| {
        x.parse::<i64>()
            .ok()
            .filter(|v| (lo..=hi).contains(v) && !x.starts_with('+'))
            .ok_or_else(bad)
    };
    let (y, mo, day) = (num(d[0], 1970, 9999)?, num(d[1], 1, 12)?, num(d[2], 1, 31)?);
    let mut secs = days_from_civil(y, mo, day) * 86_400;
    if let Some(rest) = rest {
        let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
            (c, 0)
        } else if let Some(i) = rest.rfind(['+', '-']) {
            let o = &rest[i + 1..];
            let (oh, om) = o.split_once(':').unwrap_or((o, "0"));
            let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
            (
                &rest[..i],
                sign * (num(oh, 0, 23)? * 3600 + num(om, 0, 59)? * 60),
            )
        } else {
            (rest, 0)
        };
        let c: Vec<&str> = clock.split(':').collect();
        if !(2..=3).contains(&c.len()) {
            return Err(bad());
        }
        let sec = c
            .get(2)
            .map_or(Ok(0), |x| num(x.split('.').next().unwrap_or(x), 0, 60))?;
        secs += num(c[0], 0, 23)? * 3600 + num(c[1], 0, 59)? * 60 + sec - offset;
    }
    Ok(secs)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(parts: &[&str]) -> String {
        let mut s = Stripper::default();
        let mut out = Vec::new();
        for p in parts {
            s.feed(p.as_bytes(), &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escape_sequences_are_removed_and_movements_break_lines() {
        assert_eq!(
            strip(&["\x1b[31mAcc\x1b[0mess\x1b[1mDenied\x1b[m"]),
            "AccessDenied"
        );
        assert_eq!(
            strip(&["Acc\x1b[3", "1mess", "Den\x1b", "[0mied"]),
            "AccessDenied"
        );
        assert_eq!(strip(&["a\r\nb\rc\n\nd"]), "a\nb\nc\nd");
        assert_eq!(strip(&["a\x1b[5;1Hb\x1b[2Jc"]), "a\nb\nc");
        assert_eq!(strip(&["a\x1b[3Cb"]), "a   b");
        assert_eq!(
            strip(&["\x1b]0;title\x07x\x1b]8;;http://e\x1b\\link\x1b]8;;\x1b\\"]),
            "xlink"
        );
        assert_eq!(strip(&["\x1bP+q\x1b\\z\x1b(0q\x1b(B"]), "zq");
        assert_eq!(strip(&["abc\x08\x08Xy"]), "aXy");
        assert_eq!(strip(&["caf\u{e9}\x08e"]), "cafe");
        assert_eq!(strip(&["\x1b[?1049h\x1b[?25lvim"]), "vim");
        // An unterminated CSI does not swallow what follows forever.
        let long = format!("\x1b[{}text", "1;".repeat(100));
        assert!(strip(&[&long]).ends_with("text"));
    }

    #[test]
    fn stripping_json_escaped_text_equals_stripping_the_text() {
        // Random mixes of text, controls and sequences, split anywhere.
        let pieces = [
            "plain ",
            "caf\u{e9} ",
            "\u{1F600}",
            "\x1b[1;31m",
            "\x1b[0m",
            "\r\n",
            "\t",
            "\x08",
            "\x1b]0;t\x07",
            "\x1b(0",
            "q",
            "\x1b[3C",
            "\x1b[12;1H",
            "\"q\"",
            "\\",
            "/",
            "\x7f",
            "\x1b[",
            "4",
            "2m",
            "\x1bP1$r\x1b\\",
            "\x1b[?25l",
        ];
        let mut seed = 1u64;
        for _ in 0..300 {
            let mut events = Vec::new();
            for _ in 0..6 {
                let mut e = String::new();
                for _ in 0..8 {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    e.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
                }
                events.push(e);
            }
            let (mut a, mut b) = (Stripper::default(), Stripper::default());
            let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
            for e in &events {
                a.feed(e.as_bytes(), &mut out_a);
                let json = serde_json::to_string(e).unwrap();
                b.feed_json(&json.as_bytes()[1..json.len() - 1], &mut out_b);
            }
            assert_eq!(
                String::from_utf8_lossy(&out_a),
                String::from_utf8_lossy(&out_b),
                "{events:?}"
            );
        }
    }

    /// The hits in `chunks` (event lines as stored, each chunk's first
    /// event at the time given), read line by line or with the prefilter.
    fn chunk_hits(
        pattern: &Pattern,
        input: bool,
        chunks: &[(Micros, Vec<u8>)],
        prefilter: bool,
    ) -> Vec<LineHit> {
        let opts = SearchOptions {
            input,
            ..SearchOptions::default()
        };
        let path = Path::new("test");
        let mut c = Collect {
            search: LineSearch::new(pattern),
            sizes: Vec::new(),
            opts: &opts,
            path,
            header: Some(Header::new(TermSize::DEFAULT)),
            filtered: false,
            hits: Vec::new(),
            stopped: false,
            check: false,
            walker: None,
            walked: 0,
            recent: Vec::new(),
            walker_failed: false,
            unverified: false,
            prefilter: Some(None),
            scratch: Scratch::default(),
        };
        if prefilter {
            let pre = Prefilter::with_limit(pattern, &chunks[0].1, usize::MAX);
            assert!(
                pre.is_some(),
                "the pattern gives the prefilter something: {:?}",
                pattern.prefixes
            );
            c.prefilter = Some(pre);
        }
        for (first, lines) in chunks {
            assert!(c.take_lines(*first, lines));
        }
        c.finish();
        c.hits.into_iter().map(|h| h.found).collect()
    }

    #[test]
    fn skipping_lines_without_the_picked_bytes_finds_every_hit() {
        // Output that splits, colours and hides the word in every way the
        // prefilter must not miss (or wrongly find): colour codes between
        // its letters, lines across events and chunks, OSC strings holding
        // it (never text) and left open up to a line feed, backspaces,
        // letters escaped as \u00XX, input events holding it.
        let pieces = [
            "Acc",
            "ess",
            "Den",
            "ied",
            "AccessDenied",
            "x",
            " ",
            "\x1b[1;31m",
            "\x1b[0m",
            "\r\n",
            "\n",
            "\r",
            "\x1b]0;AccessDenied\x07",
            "\x1b]0;Acc",
            "\x1b[",
            "2C",
            "\x08",
            "\x08\x08",
            "\x1b[5;1H",
            "\\",
            "\"",
            "/",
            "\u{e9}",
            "\x1bP1$r",
            "\x1b\\",
        ];
        let patterns = [
            ("AccessDenied", PatternOptions::default()),
            (
                "accessdenied",
                PatternOptions {
                    ignore_case: true,
                    ..PatternOptions::default()
                },
            ),
            (
                "Den",
                PatternOptions {
                    word: true,
                    ..PatternOptions::default()
                },
            ),
            ("ss.*ie", PatternOptions::default()),
        ];
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let mut found = 0;
        for round in 0..400 {
            let mut lines: Vec<Vec<u8>> = Vec::new();
            for _ in 0..30 {
                let mut e = String::new();
                for _ in 0..1 + next(10) {
                    e.push_str(pieces[next(pieces.len())]);
                }
                let mut json = serde_json::to_string(&e).unwrap();
                if next(4) == 0 {
                    // A letter escaped as a JSON encoder may.
                    json = json.replacen('D', "\\u0044", 1).replacen('e', "\\u0065", 1);
                }
                let code = match next(10) {
                    0 => "i",
                    1 => "r",
                    _ => "o",
                };
                let json = if code == "r" {
                    "\"80x24\"".to_string()
                } else {
                    json
                };
                lines.push(format!("[0.001, \"{code}\", {json}]\n").into_bytes());
            }
            // Chunks cut at random lines.
            let mut chunks = Vec::new();
            let mut at = 0;
            while at < lines.len() {
                let n = 1 + next(8);
                let end = (at + n).min(lines.len());
                // Each event is 1 ms after the one before; a chunk's first
                // event's time is given absolutely.
                chunks.push((1000 * (at as Micros + 1), lines[at..end].concat()));
                at = end;
            }
            let (pattern, o) = patterns[round % patterns.len()];
            let p = Pattern::new(&[pattern.to_string()], o).unwrap();
            for input in [false, true] {
                let all = chunk_hits(&p, input, &chunks, false);
                let skipping = chunk_hits(&p, input, &chunks, true);
                assert_eq!(skipping, all, "{pattern} (input: {input}) in {chunks:?}");
                found += all.len();
            }
        }
        assert!(found > 200, "the rounds hold hits: {found}");
    }

    #[test]
    fn a_line_feed_ends_any_sequence_or_string() {
        assert_eq!(strip(&["a\x1b[3\nb"]), "a\nb");
        assert_eq!(strip(&["a\x1b]0;title\nb"]), "a\nb");
        assert_eq!(strip(&["a\x1bP1$r\nb\x1b\\c"]), "a\nbc");
        assert_eq!(strip(&["a\x1b\nb"]), "a\nb");
        assert_eq!(strip(&["a\x1b(\nb"]), "a\nb");
    }

    fn hits(pattern: &str, o: PatternOptions, events: &[(Micros, &str)]) -> Vec<LineHit> {
        let p = Pattern::new(&[pattern.to_string()], o).unwrap();
        let mut s = LineSearch::new(&p);
        let mut out = Vec::new();
        for (t, e) in events {
            s.push(*t, e.as_bytes(), &mut |h| {
                out.push(h);
                true
            });
        }
        s.finish(&mut |h| {
            out.push(h);
            true
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
        let e = Pattern::new(&["a(b".into()], PatternOptions::default()).unwrap_err();
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

    #[test]
    fn text_runs_end_at_the_first_backslash_quote_or_del() {
        let slow = |s: &[u8]| {
            s.iter()
                .position(|&b| b == b'\\' || b == b'"' || b == 0x7f)
                .unwrap_or(s.len())
        };
        let mut seed = 7u64;
        for len in 0..60 {
            for _ in 0..200 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        match (seed >> 33) % 40 {
                            0 => b'\\',
                            1 => b'"',
                            2 => 0x7f,
                            // Neighbours of the special bytes, and high bytes.
                            3 => 0x5b,
                            4 => 0x80,
                            5 => 0xdc,
                            6 => 0x21,
                            7 => 0x7e,
                            r => b'a' + r as u8 % 26,
                        }
                    })
                    .collect();
                assert_eq!(json_text_run(&s), slow(&s), "{s:?}");
            }
        }
    }

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

    #[test]
    fn when_parses() {
        let now = 1_800_000_000;
        assert_eq!(parse_when("2026-11-20", now), Ok(1_795_132_800));
        assert_eq!(
            parse_when("2026-11-20T14:30:00Z", now),
            Ok(1_795_132_800 + 52_200)
        );
        assert_eq!(
            parse_when("2026-11-20T14:30:00+01:00", now),
            Ok(1_795_132_800 + 48_600)
        );
        assert_eq!(
            parse_when("2026-11-20 14:30", now),
            Ok(1_795_132_800 + 52_200)
        );
        assert_eq!(parse_when("7d", now), Ok(now - 7 * 86_400));
        assert_eq!(parse_when("90m", now), Ok(now - 5400));
        assert_eq!(parse_when("now", now), Ok(now));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-20T25:00",
            "7y",
            "-5d",
        ] {
            assert!(parse_when(bad, now).is_err(), "{bad}");
        }
    }
}
