//! A chunk's events as grep's second pass reads them: one buffer of output
//! bytes and a table of (time, kind, range), decoded straight from the
//! stored event lines — no allocation per event.
//!
//! The lines termtrail writes (`[interval, "o", "…"]`, resizes, input and
//! markers, with JSON escapes) are decoded here; a chunk holding anything
//! else (a `b` line, a time or code a JSON parser would read differently,
//! an escape JSON does not allow, …) is read by the full
//! reader instead (as [`SegmentText::push_events`] reads it) and
//! converted, so the events are the same either way — and content that is
//! not valid asciicast is an error either way.

use termtrail_format::cast::{EventAssembler, LineError, parse_line};
use termtrail_format::event::{Event, EventData, Micros, TermSize};
use termtrail_format::index::{IndexError, SegmentText};
use termtrail_format::scan;

/// The events of one chunk.
#[derive(Debug)]
pub(super) struct ChunkEvents {
    /// Every output event's bytes, one after the other.
    data: Buf,
    events: Vec<Ev>,
}

/// Output bytes: as text when every output event's are UTF-8 (always, but
/// for output recorded from invalid UTF-8), so screens take them as they
/// are.
#[derive(Debug)]
enum Buf {
    Text(String),
    Bytes(Vec<u8>),
}

impl Buf {
    fn bytes(&self) -> &[u8] {
        match self {
            Buf::Text(s) => s.as_bytes(),
            Buf::Bytes(b) => b,
        }
    }
}

/// One event: its time, and what it is (output: a range of `data`).
#[derive(Debug, Clone, Copy)]
struct Ev {
    time: Micros,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Output {
        start: usize,
        end: usize,
    },
    Resize(TermSize),
    /// Input, markers, exits, others: they change no screen.
    Other,
}

/// What an event does to a screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Data<'a> {
    /// Output bytes (need not be UTF-8).
    Output(&'a [u8]),
    /// A resize.
    Resize(TermSize),
    /// Anything else (changes no screen).
    Other,
}

impl ChunkEvents {
    /// Hashes chunk `k` of `text` against its record and, when it verifies,
    /// reads its events (absolute times). Ok(None) when the content does not
    /// verify; an error when verified content is not valid asciicast.
    pub(super) fn read(text: &SegmentText, k: usize) -> Result<Option<ChunkEvents>, IndexError> {
        let Some(lines) = text.checked_lines(k) else {
            return Ok(None);
        };
        let first = text.record(k).first;
        if let Some(events) = ChunkEvents::decode(first, lines) {
            return Ok(Some(events));
        }
        let events = full(first, lines).map_err(|e| IndexError::Invalid(e.0))?;
        Ok(Some(ChunkEvents::from_events(events)))
    }

    /// The events of `lines` (a chunk's event lines, the first at `first`)
    /// when every line is one this decoder reads exactly as
    /// [`SegmentText::push_events`] does; None otherwise.
    fn decode(first: Micros, lines: &[u8]) -> Option<ChunkEvents> {
        let (mut data, mut events) = (Vec::with_capacity(lines.len()), Vec::new());
        let mut t = first;
        // Line by line, each read up to its line feed (no line feed is
        // looked for apart: none is in a line's head, none unescaped in its
        // string, and its tail is checked up to it).
        let mut rest = lines;
        while !rest.is_empty() {
            let h = scan::head(rest)?;
            // What `cast::parse_line` reads by its scanner (else by a JSON
            // parser: left to it).
            let head = &rest[..h.data];
            if !h.exact_time || memchr::memchr2(0x0c, b'\n', head).is_some() {
                return None;
            }
            if !events.is_empty() {
                t += h.interval;
            }
            let start = data.len();
            let end = h.data + string(&rest[h.data..], &mut data)?;
            // `]`, blanks, then the line feed (or the end).
            let tail = rest[end..].strip_prefix(b"]")?;
            let blanks = tail
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r'))
                .unwrap_or(tail.len());
            rest = match &tail[blanks..] {
                [] => &[],
                [b'\n', next @ ..] => next,
                _ => return None,
            };
            let kind = match h.code {
                // UTF-8: checked below, for the whole chunk at once.
                b"o" => Kind::Output {
                    start,
                    end: data.len(),
                },
                b"r" => {
                    let size = std::str::from_utf8(&data[start..])
                        .ok()
                        .and_then(TermSize::parse)?;
                    data.truncate(start);
                    Kind::Resize(size)
                }
                b"i" | b"m" => {
                    std::str::from_utf8(&data[start..]).ok()?;
                    data.truncate(start);
                    Kind::Other
                }
                // `b` lines fold into the event before; exits and other
                // codes are rare: the full reader takes the chunk.
                _ => return None,
            };
            events.push(Ev { time: t, kind });
        }
        // Each event's string is UTF-8 (as a JSON parser requires) exactly
        // when they all are and each starts and ends on a character.
        let text = String::from_utf8(data).ok()?;
        let whole = |i| text.is_char_boundary(i);
        if !events.iter().all(|e| match e.kind {
            Kind::Output { start, end } => whole(start) && whole(end),
            _ => true,
        }) {
            return None;
        }
        Some(ChunkEvents {
            data: Buf::Text(text),
            events,
        })
    }

    /// The same events, from the full reader's.
    fn from_events(events: Vec<Event>) -> ChunkEvents {
        let (mut data, mut utf8) = (Vec::new(), true);
        let events = events
            .into_iter()
            .map(|e| {
                let kind = match e.data {
                    EventData::Output(b) => {
                        utf8 &= std::str::from_utf8(&b).is_ok();
                        let start = data.len();
                        data.extend_from_slice(&b);
                        Kind::Output {
                            start,
                            end: data.len(),
                        }
                    }
                    EventData::Resize(size) => Kind::Resize(size),
                    _ => Kind::Other,
                };
                Ev { time: e.time, kind }
            })
            .collect();
        let data = match String::from_utf8(data) {
            Ok(text) if utf8 => Buf::Text(text),
            Ok(text) => Buf::Bytes(text.into_bytes()),
            Err(e) => Buf::Bytes(e.into_bytes()),
        };
        ChunkEvents { data, events }
    }

    /// The number of events.
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    /// Event `i`'s time.
    pub(super) fn time(&self, i: usize) -> Micros {
        self.events[i].time
    }

    /// What event `i` does.
    pub(super) fn data(&self, i: usize) -> Data<'_> {
        match self.events[i].kind {
            Kind::Output { start, end } => Data::Output(&self.data.bytes()[start..end]),
            Kind::Resize(size) => Data::Resize(size),
            Kind::Other => Data::Other,
        }
    }

    /// Output event `i`'s text, when it is UTF-8 (None for other events).
    pub(super) fn text(&self, i: usize) -> Option<&str> {
        match (&self.data, self.events[i].kind) {
            (Buf::Text(s), Kind::Output { start, end }) => Some(&s[start..end]),
            _ => None,
        }
    }

    /// Bytes of output event `i` writes (0 for other events).
    pub(super) fn out_len(&self, i: usize) -> usize {
        match self.events[i].kind {
            Kind::Output { start, end } => end - start,
            _ => 0,
        }
    }

    /// The number of events at or before `t` (events are in time order).
    pub(super) fn count_until(&self, t: Micros) -> usize {
        self.events.partition_point(|e| e.time <= t)
    }
}

/// The events of `lines` (a chunk's event lines, the first at `first`) by
/// the full reader, as [`SegmentText::push_events`] reads them.
fn full(first: Micros, lines: &[u8]) -> Result<Vec<Event>, LineError> {
    let mut asm = EventAssembler::new();
    let mut out = Vec::new();
    let mut t = first;
    for (n, line) in lines.split_inclusive(|&b| b == b'\n').enumerate() {
        let l = parse_line(line)?;
        if n > 0 {
            t += l.time;
        }
        asm.push(t, &l.code, l.data, &mut out)?;
    }
    asm.finish(&mut out);
    Ok(out)
}

/// Decodes the JSON string content at the start of `s` (after its opening
/// quote) onto `out`, as a JSON parser would: the offset just past its
/// closing quote; None for what such a parser would refuse (control
/// characters, escapes JSON does not allow, no closing quote) — but for
/// invalid UTF-8, which the caller checks.
///
/// Recorded output has an escape every few bytes (`\u001b` before every
/// colour): plain bytes are copied eight at a time up to the next quote,
/// backslash or control character, found in the word itself.
fn string(s: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut i = 0;
    loop {
        while let Some(word) = s.get(i..i + 8) {
            let word: [u8; 8] = word.try_into().ok()?;
            let stop = special(u64::from_le_bytes(word));
            // All eight, then drop what is from the stop on.
            out.extend_from_slice(&word);
            if stop != 0 {
                let n = (stop.trailing_zeros() / 8) as usize;
                out.truncate(out.len() - 8 + n);
                i += n;
                break;
            }
            i += 8;
        }
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' if s.get(i..i + 6) == Some(b"\\u001b") => {
                out.push(0x1b);
                i += 6;
            }
            b'\\' => {
                let e = scan::escape(&s[i..]).filter(|e| e.json)?;
                out.extend_from_slice(&e.bytes[..e.len]);
                i += e.used;
            }
            0..0x20 => return None,
            // Fewer than eight bytes left.
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// The high bit of each byte of `w` (little-endian) that is a quote, a
/// backslash or a control character, and of none before the first such
/// byte (bits after it may be set wrongly: only the lowest counts).
fn special(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    // Bytes below 0x20 (and borrows past them, above the first).
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    (zero(quote) | zero(backslash) | control) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &ChunkEvents, b: &ChunkEvents) -> bool {
        a.len() == b.len()
            && (0..a.len())
                .all(|i| (a.time(i), a.data(i), a.text(i)) == (b.time(i), b.data(i), b.text(i)))
    }

    #[test]
    fn decodes_as_the_full_reader_or_leaves_the_chunk_to_it() {
        let lines: [&[u8]; 29] = [
            b"[0.5, \"o\", \"plain text\\r\\n\"]\n",
            b"[0.010000, \"o\", \"\\u001b[01;31mred\\u001b[m \\\"q\\\" \\\\ \\/\"]\n",
            b"[1.25, \"r\", \"100x30\"]\n",
            b"[0.1, \"i\", \"ls\\r\"]\n",
            b"[0.1, \"m\", \"a marker\"]\r\n",
            b"[0.000001, \"o\", \"\xc3\xa9t\xc3\xa9 \\u00e9 \\ud83d\\ude00\"]\n",
            b"[ 2 , \"o\" , \"spaced\" ]\n",
            b"[2, \"o\", \"x\"] \n",
            b"[0.1, \"x\", \"0\"]\n",
            b"[0.1, \"b\", \"\"]\n",
            b"[0.1, \"o\", \"bad \\x escape\"]\n",
            b"[0.1, \"o\", \"lone \\ud83d\"]\n",
            b"[0.1, \"o\", \"raw \x01 control\"]\n",
            b"[0.1, \"o\", \"bad utf8 \xff\"]\n",
            b"[0.1, \"o\", \"unterminated]\n",
            b"[1e2, \"o\", \"exponent\"]\n",
            b"[0.1234567, \"o\", \"seven decimals\"]\n",
            b"[0.1, \"r\", \"wide\"]\n",
            b"# a comment\n",
            b"[0.1, \"o\", 5]\n",
            b"[0.1, \"o\", \"x\", 1]\n",
            b"[0.1, \"o\", \"\"]\n",
            // Halves of Ã© in two events.
            b"[0.1, \"o\", \"\xc3\"]\n",
            b"[0.1, \"o\", \"\xa9\"]\n",
            // A head cut by a line feed; a line without one.
            b"[0.5\n",
            b"[0.1, \"o\", \"end\"]",
            // Longer than a word, escapes and stops at every offset.
            b"[0.1, \"o\", \"0123456789abcdef\\u001b[K012345\\\\\\\"x\\u001B\\u00e9\xc3\xa9\"]\n",
            b"[0.1, \"o\", \"a longer text, then \x7f and \x1f\"]\n",
            b"[0.1, \"o\", \"cut escape at the end \\u001\"]\n",
        ];
        let mut seed = 5u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let (mut fast, mut slow) = (0, 0);
        for _ in 0..3000 {
            let chunk: Vec<u8> = (0..1 + next(6))
                .flat_map(|_| lines[next(lines.len())].to_vec())
                .collect();
            let want = full(7_000, &chunk).map(ChunkEvents::from_events);
            match ChunkEvents::decode(7_000, &chunk) {
                Some(got) => {
                    fast += 1;
                    let want = want.expect("decoded lines are valid asciicast");
                    assert!(same(&got, &want), "{}", String::from_utf8_lossy(&chunk));
                }
                None => slow += 1,
            }
        }
        assert!(fast > 200 && slow > 200, "both ways taken: {fast} / {slow}");
    }
}
