//! The fast path of [`super::check_chunk_lines`]: one pass over a chunk's
//! bytes, no allocation, that accepts a chunk only when every line is
//! well-formed (V18–V20's line checks, docs/format.md §2.2 and §3) and
//! otherwise gives up, leaving the verdict and its wording to the slower
//! path that names the fault.
//!
//! It gives up on anything unusual as well as on faults: a code that is not
//! plain printable ASCII, `r`/`x`/`b` data written with escapes, a sum of
//! times past 64 bits. Every chunk it accepts, the slow path accepts with
//! the same span (the randomized test in `super::reference` holds both to
//! a plain implementation of the grammar).
//!
//! Where the time goes: lines are found with memchr; a data string's bytes
//! are checked for C0 controls (and for bytes that are not ASCII, which
//! send it to the UTF-8 check) by one reduction the compiler vectorizes;
//! its quotes and backslashes are found a word at a time, then with
//! memchr2; only escapes (one every few dozen bytes of colourful output)
//! are read byte by byte.

use crate::event::Micros;

use super::LineSpan;

/// Hex digit values; 0xff for other bytes.
const HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// U+FFFD as UTF-8.
const FFFD: &[u8] = "\u{FFFD}".as_bytes();

/// What a string's content held, beyond being valid.
#[derive(Default)]
struct Content {
    /// `\uFFFD` escapes seen.
    fffd_escapes: usize,
    /// Any escape seen.
    escaped: bool,
    /// Some raw byte is not ASCII.
    non_ascii: bool,
}

/// The span of `body`'s lines when every line is well-formed; None when
/// one is not, or when this path does not decide (see the module docs).
pub(super) fn scan(body: &[u8]) -> Option<LineSpan> {
    let mut span = LineSpan { first: 0, span: 0 };
    // The U+FFFD count of the line before, when it is an `o`/`i` line.
    let mut held: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let first = pos == 0;
        // The line without its LF (a line without one is malformed).
        let end = pos + memchr::memchr(b'\n', &body[pos..])?;
        let line = &body[pos..end];
        let (time, next) = time(line)?;
        // `, "` code `", "` data `"]`
        let code_start = next + 3;
        if line.get(next..code_start)? != b", \"" {
            return None;
        }
        let code_len = line[code_start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c))?;
        let code_end = code_start + code_len;
        let data_start = code_end + 4;
        let data_end = line.len().checked_sub(2)?;
        if code_len == 0
            || line.get(code_end..data_start)? != b"\", \""
            || data_start > data_end
            || &line[data_end..] != b"\"]"
        {
            return None;
        }
        let data = &line[data_start..data_end];
        let content = string_content(data)?;
        pos = end + 1;
        if content.non_ascii && std::str::from_utf8(data).is_err() {
            return None;
        }
        if first {
            span.first = time;
        } else {
            span.span = span.span.checked_add(time)?;
        }
        let code = &line[code_start..code_end];
        if code == b"b" {
            let count = held.take()?;
            if time != 0 || content.escaped || tokens(data)? != count {
                return None;
            }
            continue;
        }
        let plain = !content.escaped;
        match code {
            b"r" if !(plain && is_size(data)) => return None,
            b"x" if !(plain && is_status(data)) => return None,
            _ => {}
        }
        held = matches!(code, b"o" | b"i").then(|| {
            let raw = if content.non_ascii {
                memchr::memmem::find_iter(data, FFFD).count()
            } else {
                0
            };
            raw + content.fffd_escapes
        });
    }
    Some(span)
}

/// `[` time at the start of `b`: the time in µs and the offset just past
/// it.
#[inline]
fn time(b: &[u8]) -> Option<(Micros, usize)> {
    if *b.first()? != b'[' {
        return None;
    }
    let mut p = 1;
    let lead = *b.get(p)?;
    let mut whole = Micros::from(lead.wrapping_sub(b'0'));
    if whole > 9 {
        return None;
    }
    p += 1;
    if lead != b'0' {
        while let Some(&c) = b.get(p)
            && c.is_ascii_digit()
        {
            whole = whole.checked_mul(10)?.checked_add(Micros::from(c - b'0'))?;
            p += 1;
        }
    }
    let frac = b.get(p..p + 7)?;
    if frac[0] != b'.' {
        return None;
    }
    let mut us: Micros = 0;
    for &c in &frac[1..] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        us = us * 10 + Micros::from(d);
    }
    Some((whole.checked_mul(1_000_000)?.checked_add(us)?, p + 7))
}

/// What the content of a JSON string (between its quotes) holds, when it
/// is valid but for UTF-8, which is not checked here (`non_ascii` says
/// whether it must be): no raw control character, no raw `"`, every escape
/// valid, surrogates paired.
#[inline]
fn string_content(s: &[u8]) -> Option<Content> {
    // Control characters and bytes that are not ASCII: one reduction over
    // every byte, which the compiler vectorizes.
    let (mut control, mut high) = (0u8, 0u8);
    for &c in s {
        control |= u8::from(c < 0x20);
        high |= c;
    }
    if control != 0 {
        return None;
    }
    let mut content = Content {
        non_ascii: high >= 0x80,
        ..Content::default()
    };
    // Quotes and backslashes: a raw quote ends the string early, a
    // backslash starts an escape.
    let mut p = 0;
    while let Some(i) = quote_or_backslash(&s[p..]) {
        let at = p + i;
        if s[at] == b'"' {
            return None;
        }
        p = escape(s, at, &mut content)?;
    }
    Some(content)
}

/// 0x01 in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([1; 8]);

/// Offset in `s` of its first `"` or `\`. Terminal output has an escape
/// every few dozen bytes, so the next 16 bytes are looked at here, a word
/// at a time, before memchr2 (vectorized, but a call) searches the rest.
#[inline]
fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    // Bit 7 set in the lowest byte of `x` that is zero (and perhaps in
    // higher ones: borrows run upwards only, so the lowest bit is exact).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & (ONES << 7);
    let mut at = 0;
    while at < 16
        && let Some(word) = s.get(at..).and_then(|w| w.first_chunk::<8>())
    {
        let x = u64::from_le_bytes(*word);
        let hits = zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', &s[at..]).map(|i| at + i)
}

/// Bytes that make a two-byte escape after a backslash.
const SIMPLE: [bool; 256] = {
    let mut t = [false; 256];
    let simple = b"\"\\/bfnrt";
    let mut i = 0;
    while i < simple.len() {
        t[simple[i] as usize] = true;
        i += 1;
    }
    t
};

/// The JSON escape at `b[p..]` (a backslash) in string content `b`: the
/// offset just past it. Two tests rather than a `match` on the byte after
/// the backslash: a jump table's indirect jump is mispredicted more often
/// as `\u001b`, `\r` and `\n` alternate (measured: 4 % faster).
#[inline]
fn escape(b: &[u8], p: usize, content: &mut Content) -> Option<usize> {
    content.escaped = true;
    let kind = *b.get(p + 1)?;
    if kind != b'u' {
        return SIMPLE[usize::from(kind)].then_some(p + 2);
    }
    let digits = b.get(p + 2..p + 6)?;
    if digits.starts_with(b"00") {
        // `\u00XX`, how C0 controls are written: never a surrogate nor
        // U+FFFD.
        let low = HEX[usize::from(digits[2])] | HEX[usize::from(digits[3])];
        return (low & 0xf0 == 0).then_some(p + 6);
    }
    match hex4(digits)? {
        0xd800..=0xdbff => {
            let low = b.get(p + 6..p + 12)?;
            (low.starts_with(b"\\u") && (0xdc00..=0xdfff).contains(&hex4(&low[2..])?))
                .then_some(p + 12)
        }
        0xdc00..=0xdfff => None,
        cp => {
            if cp == 0xfffd {
                content.fffd_escapes += 1;
            }
            Some(p + 6)
        }
    }
}

/// Four hex digits.
#[inline]
fn hex4(s: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    let mut bad = 0u8;
    for &c in s {
        let d = HEX[usize::from(c)];
        bad |= d;
        v = v << 4 | u32::from(d & 0xf);
    }
    (bad & 0xf0 == 0).then_some(v)
}

/// A `b` line's data (raw, without escapes): how many tokens, when it is
/// one or more tokens of an even number of lowercase hex digits separated
/// by single spaces.
fn tokens(data: &[u8]) -> Option<usize> {
    let mut count = 0;
    for t in data.split(|&c| c == b' ') {
        if t.is_empty()
            || t.len() % 2 != 0
            || !t.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        count += 1;
    }
    Some(count)
}

/// `COLSxROWS`, each 1..=65535 without leading zeros.
fn is_size(data: &[u8]) -> bool {
    let num = |n: &[u8]| {
        !n.is_empty()
            && n[0] != b'0'
            && n.len() <= 5
            && n.iter().all(u8::is_ascii_digit)
            && n.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0')) <= 65535
    };
    let Some(x) = data.iter().position(|&c| c == b'x') else {
        return false;
    };
    num(&data[..x]) && num(&data[x + 1..])
}

/// `-?(0|[1-9][0-9]*)` within the 32-bit signed range.
fn is_status(data: &[u8]) -> bool {
    let (neg, digits) = match data.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, data),
    };
    if digits.is_empty()
        || digits.len() > 10
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && digits.len() > 1)
    {
        return false;
    }
    let v = digits
        .iter()
        .fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
    if neg { v <= 1 << 31 } else { v < 1 << 31 }
}
