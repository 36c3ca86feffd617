//! The event lines of a stored chunk, checked as every verifier must
//! (docs/format.md §2.2, §3 and checks V18–V20): the exact line grammar,
//! `r` and `x` data, where a `b` companion may stand and what it must hold;
//! and the chunk's time span, which the reader compares with its record.
//!
//! Strict where the lenient line parser ([`crate::cast::parse_line`], for
//! plain asciicast files) is not: every line this accepts, that one reads
//! the same way.

use crate::event::Micros;

mod fast;
#[cfg(test)]
mod reference;

/// The times of a chunk's lines: the interval of its first line (from the
/// chunk before) and the sum of the intervals of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSpan {
    /// Interval of the first line.
    pub first: Micros,
    /// Sum of the intervals of the lines after the first.
    pub span: Micros,
}

/// What is wrong with a chunk's lines: the line (1-based within the chunk),
/// its byte offset in the chunk, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    /// An event line is malformed.
    #[error("line {line} of the chunk is not a valid event line: {why}")]
    Event {
        /// Line number in the chunk, from 1.
        line: usize,
        /// Byte offset of the line in the chunk.
        at: usize,
        /// Why.
        why: String,
    },
    /// A `b` companion line is misplaced or malformed.
    #[error("line {line} of the chunk is a bad `b` companion: {why}")]
    Companion {
        /// Line number in the chunk, from 1.
        line: usize,
        /// Byte offset of the line in the chunk.
        at: usize,
        /// Why.
        why: String,
    },
}

impl LineFault {
    /// Byte offset of the faulty line in its chunk.
    pub fn at(&self) -> usize {
        match self {
            LineFault::Event { at, .. } | LineFault::Companion { at, .. } => *at,
        }
    }
}

/// One line split into its fields.
struct Fields<'l> {
    time: Micros,
    time_text: &'l [u8],
    code: String,
    /// The data, decoded.
    data: String,
}

/// Checks the event lines of one chunk (each ending in `\n`).
///
/// One fast pass accepts a well-formed chunk; a chunk it does not accept is
/// read again line by line, which names the first fault (or accepts the
/// rare valid chunk the fast pass leaves to it, such as a code written
/// with escapes).
pub fn check_chunk_lines(body: &[u8]) -> Result<LineSpan, LineFault> {
    match fast::scan(body) {
        Some(span) => Ok(span),
        None => check_line_by_line(body),
    }
}

/// [`check_chunk_lines`] without its fast pass: each line split into its
/// fields with serde_json, in order, the first fault named.
fn check_line_by_line(body: &[u8]) -> Result<LineSpan, LineFault> {
    let mut span = LineSpan { first: 0, span: 0 };
    // The previous line, when it is an `o`/`i` event: its data.
    let mut prev_oi: Option<String> = None;
    let mut at = 0;
    // Lines found with memchr: a byte-by-byte split is slow in unoptimised
    // test builds, and lines can be megabytes long.
    let ends = memchr::memchr_iter(b'\n', body).map(|nl| nl + 1);
    let ends = ends.chain((body.last() != Some(&b'\n') && !body.is_empty()).then_some(body.len()));
    let mut start = 0;
    for (i, end) in ends.enumerate() {
        let line = &body[start..end];
        start = end;
        let n = i + 1;
        let event = |why: String| LineFault::Event { line: n, at, why };
        let companion = |why: &str| LineFault::Companion {
            line: n,
            at,
            why: why.to_string(),
        };
        let f = fields(line).map_err(|w| event(w.to_string()))?;
        if i == 0 {
            span.first = f.time;
        } else {
            span.span = span
                .span
                .checked_add(f.time)
                .ok_or_else(|| event("times overflow".into()))?;
        }
        match f.code.as_str() {
            "b" => {
                let held = prev_oi
                    .take()
                    .ok_or_else(|| companion("it does not follow an `o` or `i` line"))?;
                if f.time_text != b"0.000000" {
                    return Err(companion("its interval is not 0.000000"));
                }
                check_companion(&held, &f.data).map_err(companion)?;
            }
            code => {
                match code {
                    "r" if !is_size(&f.data) => {
                        return Err(event("`r` data is not COLSxROWS".into()));
                    }
                    "x" if !is_status(&f.data) => {
                        return Err(event("`x` data is not a decimal exit status".into()));
                    }
                    _ => {}
                }
                prev_oi = matches!(code, "o" | "i").then_some(f.data);
            }
        }
        at += line.len();
    }
    Ok(span)
}

/// `[` time `, ` string `, ` string `]\n`, exactly.
fn fields(line: &[u8]) -> Result<Fields<'_>, &'static str> {
    let rest = line
        .strip_suffix(b"\n")
        .ok_or("no newline")?
        .strip_prefix(b"[")
        .ok_or("does not start with `[`")?;
    let sep = memchr::memmem::find(rest, b", ").ok_or("no `, ` after the time")?;
    let time_text = &rest[..sep];
    let time = time(time_text).ok_or("the time is not S.UUUUUU")?;
    let rest = &rest[sep + 2..];
    let (code, code_len) = string(rest).ok_or("the code is not a JSON string")?;
    if code.is_empty() {
        return Err("empty event code");
    }
    let rest = rest[code_len..]
        .strip_prefix(b", ")
        .ok_or("no `, ` after the code")?;
    let (data, data_len) = string(rest).ok_or("the data is not a JSON string")?;
    if &rest[data_len..] != b"]" {
        return Err("the line does not end with `]` after the data");
    }
    Ok(Fields {
        time,
        time_text,
        code,
        data,
    })
}

/// `0|[1-9][0-9]*` `.` six digits, as microseconds.
fn time(t: &[u8]) -> Option<Micros> {
    let (whole, frac) = t.split_at(t.iter().position(|&b| b == b'.')?);
    let frac = &frac[1..];
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if !digits(whole) || (whole.len() > 1 && whole[0] == b'0') || frac.len() != 6 || !digits(frac) {
        return None;
    }
    let num = |s: &[u8]| {
        s.iter().try_fold(0u64, |n, &b| {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })
    };
    num(whole)?.checked_mul(1_000_000)?.checked_add(num(frac)?)
}

/// The JSON string (RFC 8259) at the very start of `s`, decoded, and its
/// length in `s` (quotes included); None when `s` does not start with a
/// valid one (raw control characters, bad escapes, unpaired surrogates,
/// bytes that are not UTF-8). serde_json decides, compiled optimised even
/// in test builds (lines can be megabytes long).
fn string(s: &[u8]) -> Option<(String, usize)> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut values = serde_json::Deserializer::from_slice(s).into_iter::<String>();
    let value = values.next()?.ok()?;
    Some((value, values.byte_offset()))
}

/// `COLSxROWS`: two decimal numbers 1..=65535 without leading zeros.
fn is_size(s: &str) -> bool {
    let num = |n: &str| {
        !n.is_empty()
            && !n.starts_with('0')
            && n.bytes().all(|b| b.is_ascii_digit())
            && n.parse::<u16>().is_ok()
    };
    s.split_once('x').is_some_and(|(c, r)| num(c) && num(r))
}

/// An exit status: `-?(0|[1-9][0-9]*)` in the 32-bit signed range.
fn is_status(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s.parse::<i32>().is_ok()
}

/// A `b` line's data against the `o`/`i` string before it: one or more
/// tokens separated by single spaces, each an even number (≥ 2) of
/// lowercase hex digits, as many as that string has U+FFFD.
fn check_companion(held: &str, tokens: &str) -> Result<(), &'static str> {
    if tokens.is_empty() {
        return Err("its data is empty");
    }
    let mut count = 0;
    for t in tokens.split(' ') {
        if t.is_empty()
            || t.len() % 2 != 0
            || !t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err("a token is not an even number of lowercase hex digits");
        }
        count += 1;
    }
    if held.matches('\u{FFFD}').count() != count {
        return Err("its token count differs from the U+FFFD count of the line before");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lines: &str) -> Result<LineSpan, LineFault> {
        check_chunk_lines(lines.as_bytes())
    }

    #[test]
    fn written_lines_pass_and_give_their_span() {
        let mut body = Vec::new();
        crate::cast::write_event(
            &mut body,
            1_500,
            &crate::event::EventData::Output(b"a\xffb\xfe \xef\xbf\xbd".to_vec()),
            false,
        );
        crate::cast::write_line(&mut body, 2_000_000, "r", "100x40");
        crate::cast::write_line(&mut body, 1, "x", "-1");
        crate::cast::write_line(&mut body, 0, "m", "\u{1}\"\\ é \u{2028}");
        let s = check_chunk_lines(&body).unwrap();
        assert_eq!(
            s,
            LineSpan {
                first: 1_500,
                span: 2_000_001
            }
        );
    }

    #[test]
    fn malformed_lines_are_named() {
        let event = |l: &str| matches!(check(l), Err(LineFault::Event { .. }));
        for bad in [
            "[1.000000, \"o\", \"x\"]",
            "[1.00000, \"o\", \"x\"]\n",
            "[01.000000, \"o\", \"x\"]\n",
            "[1.000000,\"o\", \"x\"]\n",
            "[1.000000, \"o\",  \"x\"]\n",
            "[1.000000, \"o\", \"x\"] \n",
            "[1.000000, \"\", \"x\"]\n",
            "[1.000000, \"o\", 5]\n",
            "[1.000000, \"o\", \"\t\"]\n",
            "[1.000000, \"o\", \"\\ud800\"]\n",
            "[1.000000, \"o\", \"\\x\"]\n",
            "[1.000000, \"r\", \"80x024\"]\n",
            "[1.000000, \"x\", \"+1\"]\n",
            "#comment\n",
            "\n",
        ] {
            assert!(event(bad), "{bad:?}");
        }
        assert!(check("[1.000000, \"o\", \"\\ud83d\\ude00 \\u00e9\"]\n").is_ok());
    }

    #[test]
    fn companions_stand_only_after_their_event() {
        let comp = |l: &str| matches!(check(l), Err(LineFault::Companion { .. }));
        let o = "[0.100000, \"o\", \"a\u{FFFD}\"]\n";
        assert!(check(&format!("{o}[0.000000, \"b\", \"ff\"]\n")).is_ok());
        for bad in [
            "[0.000000, \"b\", \"ff\"]\n".to_string(),
            format!("{o}[0.000001, \"b\", \"ff\"]\n"),
            format!("{o}[0.000000, \"b\", \"ff ff\"]\n"),
            format!("{o}[0.000000, \"b\", \"FF\"]\n"),
            format!("{o}[0.000000, \"b\", \"f\"]\n"),
            format!("{o}[0.000000, \"b\", \"\"]\n"),
            format!("{o}[0.000000, \"b\", \"ff\"]\n[0.000000, \"b\", \"ff\"]\n"),
            "[0.100000, \"m\", \"\u{FFFD}\"]\n[0.000000, \"b\", \"ff\"]\n".to_string(),
        ] {
            assert!(
                comp(&bad) || matches!(check(&bad), Err(LineFault::Event { .. })),
                "{bad:?}"
            );
        }
    }
}
