//! Event lines read in place, without building JSON values: the head of a
//! stored line (interval, code, where the data string starts), JSON string
//! content decoded escape by escape, and a chunk's lines timed as they are
//! walked.
//!
//! This is the one scanner of event lines: [`crate::cast::parse_line`]
//! reads every line's head through it (falling back to a full JSON parser
//! for lines it does not read exactly), and search reads stored chunks with
//! it directly — a hot loop (over a gigabyte a second), so nothing here
//! allocates and the small functions are `#[inline]` for callers in other
//! crates.

use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::event::{Micros, TermSize};

/// The head of an event line `[interval, "code", "data…` as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head<'l> {
    /// The time field in microseconds (digits past the sixth decimal are
    /// dropped).
    pub interval: Micros,
    /// The code, as stored between its quotes.
    pub code: &'l [u8],
    /// Offset in the line of the data string's first byte (after its
    /// opening quote).
    pub data: usize,
    /// The time field is a JSON number of at most nine digits before the
    /// point and six after, so `interval` is exactly what a JSON parser's
    /// `(seconds × 10⁶).round()` gives.
    pub exact_time: bool,
}

/// The head of the event line `line` (see [`Head`]); None for anything
/// else (comments, other shapes). Whitespace around the fields is skipped.
#[inline]
pub fn head(line: &[u8]) -> Option<Head<'_>> {
    let rest = line.strip_prefix(b"[")?;
    let comma = memchr::memchr(b',', rest)?;
    let (interval, exact_time) = parse_micros(rest[..comma].trim_ascii())?;
    let after = rest[comma + 1..].trim_ascii_start();
    let after = after.strip_prefix(b"\"")?;
    let q = memchr::memchr(b'"', after)?;
    let code = &after[..q];
    let tail = after[q + 1..].trim_ascii_start().strip_prefix(b",")?;
    let tail = tail.trim_ascii_start().strip_prefix(b"\"")?;
    Some(Head {
        interval,
        code,
        data: line.len() - tail.len(),
        exact_time,
    })
}

/// `1.250000` → 1_250_000 µs, and whether the text is a JSON number this
/// equals exactly once rounded (see [`Head::exact_time`]).
#[inline]
fn parse_micros(s: &[u8]) -> Option<(Micros, bool)> {
    let (whole, frac) = match memchr::memchr(b'.', s) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut us: Micros = 0;
    for &b in whole {
        if !b.is_ascii_digit() {
            return None;
        }
        us = us.checked_mul(10)?.checked_add(Micros::from(b - b'0'))?;
    }
    us = us.checked_mul(1_000_000)?;
    let frac_digits = frac.unwrap_or_default();
    let mut scale = 100_000;
    for &b in frac_digits.iter().take(6) {
        if !b.is_ascii_digit() {
            return None;
        }
        us += Micros::from(b - b'0') * scale;
        scale /= 10;
    }
    let exact = (1..=9).contains(&whole.len())
        && (whole[0] != b'0' || whole.len() == 1)
        && frac.is_none_or(|f| (1..=6).contains(&f.len()));
    Some((us, exact))
}

/// One JSON escape decoded (see [`escape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escape {
    /// Bytes of the input it took.
    pub used: usize,
    /// The character's UTF-8 bytes (`len` of them).
    pub bytes: [u8; 4],
    /// How many of `bytes`.
    pub len: usize,
    /// JSON allows it: false for an unknown escape (read as the character
    /// after the backslash) and a lone surrogate (read as U+FFFD).
    pub json: bool,
}

/// The JSON escape at the start of `s` (which starts with a backslash).
/// None when it is cut short or `\u` is not followed by four hex digits.
#[inline]
pub fn escape(s: &[u8]) -> Option<Escape> {
    let one = |b: u8, json: bool| {
        Some(Escape {
            used: 2,
            bytes: [b, 0, 0, 0],
            len: 1,
            json,
        })
    };
    match *s.get(1)? {
        b'n' => one(b'\n', true),
        b'r' => one(b'\r', true),
        b't' => one(b'\t', true),
        b'b' => one(0x08, true),
        b'f' => one(0x0c, true),
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
            let (c, json) = match char::from_u32(cp) {
                Some(c) => (c, true),
                None => ('\u{fffd}', false),
            };
            let mut bytes = [0u8; 4];
            let len = c.encode_utf8(&mut bytes).len();
            Some(Escape {
                used,
                bytes,
                len,
                json,
            })
        }
        other => one(other, matches!(other, b'"' | b'\\' | b'/')),
    }
}

/// Four hex digits at `s[i..]`.
#[inline]
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

/// A line feed as JSON escapes it.
static LINE_FEED: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\\n"));

/// Calls `end` with the offset just past every escaped line feed (`\n`) in
/// `content`, JSON string content: a backslash escaped by the one before it
/// starts no escape.
#[inline]
pub fn escaped_line_feeds(content: &[u8], mut end: impl FnMut(usize)) {
    for p in LINE_FEED.find_iter(content) {
        let backslashes = content[..=p]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            end(p + 2);
        }
    }
}

/// The size in a resize event's data string content (`80x24"…`).
#[inline]
pub fn resize(content: &[u8]) -> Option<TermSize> {
    let end = memchr::memchr(b'"', content)?;
    std::str::from_utf8(&content[..end])
        .ok()
        .and_then(TermSize::parse)
}

/// An event line of a chunk, timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed<'l> {
    /// Absolute time (µs from the recording's start).
    pub time: Micros,
    /// The code, as stored.
    pub code: &'l [u8],
    /// Offset in the line of the data string's first byte.
    pub data: usize,
}

/// Times a chunk's event lines as they are walked: the first at the time
/// its chunk record gives, each next one its interval later.
#[derive(Debug, Clone, Copy)]
pub struct ChunkClock {
    first: Micros,
    last: Option<Micros>,
}

impl ChunkClock {
    /// A clock for a chunk whose first event is at `first`.
    #[inline]
    pub fn new(first: Micros) -> ChunkClock {
        ChunkClock { first, last: None }
    }

    /// The event line at the start of `line`, timed; None for other lines
    /// (comments), which take no time.
    #[inline]
    pub fn line<'l>(&mut self, line: &'l [u8]) -> Option<Timed<'l>> {
        let h = head(line)?;
        let time = self.last.map_or(self.first, |prev| prev + h.interval);
        self.last = Some(time);
        Some(Timed {
            time,
            code: h.code,
            data: h.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_of_event_lines() {
        let h = head(b"[0.001500, \"o\", \"hi\\r\\n\"]\n").unwrap();
        assert_eq!((h.interval, h.code, h.data), (1_500, &b"o"[..], 17));
        assert!(h.exact_time);
        let h = head(b"[ 12 ,\"r\",\"80x24\"]").unwrap();
        assert_eq!((h.interval, h.code), (12_000_000, &b"r"[..]));
        assert_eq!(&b"[ 12 ,\"r\",\"80x24\"]"[h.data..], b"80x24\"]");
        // Past six decimals the digits are dropped, and the time is not
        // what a JSON parser rounds it to.
        let h = head(b"[1.0000019, \"o\", \"\"]").unwrap();
        assert_eq!(h.interval, 1_000_001);
        assert!(!h.exact_time);
        for inexact in [
            &b"[01.5, \"o\", \"\"]"[..],
            b"[1., \"o\", \"\"]",
            b"[.5, \"o\", \"\"]",
        ] {
            assert!(!head(inexact).unwrap().exact_time);
        }
        for other in [
            &b"# a comment"[..],
            b"[1e3, \"o\", \"x\"]",
            b"[-1, \"o\", \"x\"]",
            b"[1, \"o\", 5]",
            b"[1, \"o\"]",
            b"",
        ] {
            assert_eq!(head(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn escapes_decode_as_json_does() {
        let e = escape(b"\\u00e9").unwrap();
        assert_eq!(
            (&e.bytes[..e.len], e.used, e.json),
            ("é".as_bytes(), 6, true)
        );
        let e = escape(b"\\ud83d\\ude00x").unwrap();
        assert_eq!((&e.bytes[..e.len], e.used), ("😀".as_bytes(), 12));
        let e = escape(b"\\ud83dx").unwrap();
        assert_eq!((&e.bytes[..e.len], e.json), ("\u{fffd}".as_bytes(), false));
        assert!(!escape(b"\\x").unwrap().json);
        assert!(escape(b"\\/").unwrap().json);
        assert_eq!(escape(b"\\u12"), None);
        assert_eq!(escape(b"\\"), None);
    }

    #[test]
    fn line_feeds_are_found_unless_their_backslash_is_escaped() {
        let mut ends = Vec::new();
        escaped_line_feeds(br#"a\nb\\nc\\\nd"#, |e| ends.push(e));
        assert_eq!(ends, [3, 12]);
    }

    #[test]
    fn a_chunk_is_timed_from_its_first_event() {
        let mut clock = ChunkClock::new(5_000_000);
        let lines: [&[u8]; 4] = [
            b"[0.500000, \"o\", \"a\"]",
            b"# not an event",
            b"[0.250000, \"r\", \"100x30\"]",
            b"[1.000000, \"i\", \"b\"]",
        ];
        let timed: Vec<_> = lines.iter().map(|l| clock.line(l)).collect();
        assert_eq!(timed[0].unwrap().time, 5_000_000);
        assert_eq!(timed[1], None);
        let r = timed[2].unwrap();
        assert_eq!((r.time, r.code), (5_250_000, &b"r"[..]));
        assert_eq!(
            resize(&lines[2][r.data..]),
            Some(TermSize {
                cols: 100,
                rows: 30
            })
        );
        assert_eq!(timed[3].unwrap().time, 6_250_000);
    }
}
