//! A second, deliberately plain reading of docs/format.md §2.2 and §3
//! (rule 4) — byte by byte, its own JSON string decoder, no serde_json, no
//! shortcuts — and the randomized test that holds [`super::check_chunk_lines`]
//! and its fast pass to it over generated and mutated chunks.

use super::{LineFault, LineSpan, check_chunk_lines, fast};

/// Which rule a line breaks first, and the line (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// The line grammar, `r`/`x` data, or the 64-bit sum of times (V18).
    Form(usize),
    /// A `b` line's place or content (V19).
    Companion(usize),
}

/// The reference verdict on a chunk's lines.
fn reference(body: &[u8]) -> Result<LineSpan, Broken> {
    let mut span = LineSpan { first: 0, span: 0 };
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    for (i, &c) in body.iter().enumerate() {
        if c == b'\n' {
            lines.push(&body[start..=i]);
            start = i + 1;
        }
    }
    if start < body.len() {
        lines.push(&body[start..]);
    }
    // The decoded data of the line before, when it is an `o`/`i` line.
    let mut before: Option<String> = None;
    for (i, line) in lines.into_iter().enumerate() {
        let n = i + 1;
        let (time, code, data) = line_fields(line).ok_or(Broken::Form(n))?;
        if i == 0 {
            span.first = time;
        } else {
            span.span = span.span.checked_add(time).ok_or(Broken::Form(n))?;
        }
        if code == "b" {
            let Some(held) = before.take() else {
                return Err(Broken::Companion(n));
            };
            if time != 0 || !companion_ok(&held, &data) {
                return Err(Broken::Companion(n));
            }
            continue;
        }
        if (code == "r" && !size_ok(&data)) || (code == "x" && !status_ok(&data)) {
            return Err(Broken::Form(n));
        }
        before = (code == "o" || code == "i").then_some(data);
    }
    Ok(span)
}

/// `"[" time ", " string ", " string "]" LF`: the time (µs), the code (not
/// empty) and the data, decoded.
fn line_fields(line: &[u8]) -> Option<(u64, String, String)> {
    let mut i = 0;
    let expect = |i: &mut usize, s: &[u8]| {
        let ok = line.len() >= *i + s.len() && &line[*i..*i + s.len()] == s;
        *i += s.len();
        ok
    };
    if !expect(&mut i, b"[") {
        return None;
    }
    // time = ( "0" / %x31-39 *DIGIT ) "." 6DIGIT
    let whole_start = i;
    while i < line.len() && line[i].is_ascii_digit() {
        i += 1;
    }
    let whole = &line[whole_start..i];
    if whole.is_empty() || (whole[0] == b'0' && whole.len() > 1) || !expect(&mut i, b".") {
        return None;
    }
    let frac = line.get(i..i + 6)?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    i += 6;
    let mut value: u128 = 0;
    for &d in whole.iter().chain(frac) {
        value = value * 10 + u128::from(d - b'0');
        if value > u128::from(u64::MAX) {
            return None;
        }
    }
    if !expect(&mut i, b", ") {
        return None;
    }
    let (code, used) = json_string(&line[i..])?;
    i += used;
    if code.is_empty() || !expect(&mut i, b", ") {
        return None;
    }
    let (data, used) = json_string(&line[i..])?;
    i += used;
    if !expect(&mut i, b"]\n") || i != line.len() {
        return None;
    }
    Some((u64::try_from(value).ok()?, code, data))
}

/// RFC 8259 §7: the string at the start of `s` decoded, and the bytes it
/// took (quotes included).
fn json_string(s: &[u8]) -> Option<(String, usize)> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    let mut i = 1;
    loop {
        let c = *s.get(i)?;
        match c {
            b'"' => return Some((String::from_utf8(out).ok()?, i + 1)),
            0..=0x1f => return None,
            b'\\' => {
                let e = *s.get(i + 1)?;
                let simple = match e {
                    b'"' => Some(b'"'),
                    b'\\' => Some(b'\\'),
                    b'/' => Some(b'/'),
                    b'b' => Some(8),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'u' => None,
                    _ => return None,
                };
                if let Some(b) = simple {
                    out.push(b);
                    i += 2;
                    continue;
                }
                let unit = |at: usize| -> Option<u32> {
                    let h = s.get(at..at + 4)?;
                    if !h.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
                };
                let u = unit(i + 2)?;
                let cp = if (0xd800..0xdc00).contains(&u) {
                    if s.get(i + 6..i + 8)? != b"\\u" {
                        return None;
                    }
                    let low = unit(i + 8)?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return None;
                    }
                    i += 12;
                    0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00)
                } else if (0xdc00..0xe000).contains(&u) {
                    return None;
                } else {
                    i += 6;
                    u
                };
                let mut buf = [0; 4];
                out.extend_from_slice(char::from_u32(cp)?.encode_utf8(&mut buf).as_bytes());
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// `[1-9][0-9]*x[1-9][0-9]*`, each at most 65535.
fn size_ok(d: &str) -> bool {
    let Some((c, r)) = d.split_once('x') else {
        return false;
    };
    let num = |n: &str| {
        n.chars().all(|c| c.is_ascii_digit())
            && !n.is_empty()
            && !n.starts_with('0')
            && n.len() <= 5
            && n.parse::<u32>().is_ok_and(|v| v <= 65535)
    };
    num(c) && num(r)
}

/// `-?(0|[1-9][0-9]*)` from -2^31 to 2^31-1.
fn status_ok(d: &str) -> bool {
    let digits = d.strip_prefix('-').unwrap_or(d);
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || digits.len() > 11
    {
        return false;
    }
    let v: i64 = d.parse().unwrap_or(i64::MAX);
    (-(1i64 << 31)..(1i64 << 31)).contains(&v)
}

/// Tokens of an even number (≥ 2) of lowercase hex digits, single spaces
/// between, one per U+FFFD of the line before.
fn companion_ok(held: &str, data: &str) -> bool {
    let tokens: Vec<&str> = data.split(' ').collect();
    let ok = tokens.iter().all(|t| {
        t.len() >= 2 && t.len() % 2 == 0 && t.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    });
    ok && tokens.len() == held.chars().filter(|&c| c == '\u{FFFD}').count()
}

/// xorshift64*: the same sequence on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T: ?Sized>(&mut self, from: &[&'a T]) -> &'a T {
        from[self.below(from.len())]
    }
}

/// Pieces of string content, valid and not.
const CONTENT: &[&str] = &[
    "a",
    "hello world ",
    "0123456789abcdef",
    " ",
    "\\n",
    "\\r\\n",
    "\\u001b[01;34m",
    "\\u001B",
    "\\t",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b",
    "\\f",
    "é",
    "\u{FFFD}",
    "\\ufffd",
    "\\uFFFD",
    "😀",
    "\\ud83d\\ude00",
    "\\u00e9",
    "\\u0000",
    "\u{7f}",
    "x",
    "ff",
    "ab cd",
    "80x24",
    "-1",
    "0",
];

/// Pieces that make a line malformed (most of the time).
const BAD: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\\x",
    b"\\u12",
    b"\\ud800",
    b"\\udc00",
    b"\\ud800\\u0041",
    b"\t",
    b"\n",
    b"\x00",
    b"\x1f",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
    b"\\u00g1",
    b"\\u0g01",
    b"\\u00",
];

const TIMES: &[&str] = &[
    "0.000000",
    "0.000001",
    "1.250000",
    "12.000000",
    "18446744073709.551615",
    "18446744073709.551616",
    "9223372036854.775807",
    "01.000000",
    "1.00000",
    "1.0000000",
    ".500000",
    "1.",
    "1e3",
    "-1.000000",
];

const CODES: &[&str] = &[
    "o", "o", "o", "i", "b", "b", "r", "x", "m", "zz", "\\u006f", "\\u0062", "", "é", "\\\"",
];

/// A chunk of a few lines, mostly valid, then perhaps mutated; and whether
/// it is plain: every code printable ASCII without escapes, nothing
/// inserted or mutated (a valid plain chunk is one the fast pass must take).
fn chunk(rng: &mut Rng) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    let mut plain = true;
    for _ in 0..1 + rng.below(5) {
        let code = rng.pick(CODES);
        plain &= code.is_ascii() && !code.contains('\\');
        let time = if rng.below(3) == 0 {
            rng.pick(TIMES).to_string()
        } else {
            format!("{}.{:06}", rng.below(3), rng.below(1_000_000))
        };
        let mut data = Vec::new();
        match code {
            "r" => {
                let sizes = [
                    "80x24",
                    "1x1",
                    "65535x65535",
                    "65536x1",
                    "0x5",
                    "08x24",
                    "80x",
                    "x",
                ];
                data.extend_from_slice(rng.pick(&sizes).as_bytes());
            }
            "x" => {
                let st = [
                    "0",
                    "-0",
                    "1",
                    "-2147483648",
                    "2147483647",
                    "2147483648",
                    "+1",
                    "01",
                ];
                data.extend_from_slice(rng.pick(&st).as_bytes());
            }
            "b" | "\\u0062" => {
                let toks = [
                    "ff", "ff fe", "efbfbd", "FF", "f", "", "ff  fe", " ff", "0a0b0c",
                ];
                data.extend_from_slice(rng.pick(&toks).as_bytes());
            }
            _ => {
                // Long enough to cross several 16-byte blocks.
                for _ in 0..rng.below(40) {
                    data.extend_from_slice(rng.pick(CONTENT).as_bytes());
                }
            }
        }
        if rng.below(8) == 0 {
            plain = false;
            let at = rng.below(data.len() + 1);
            let bad = rng.pick(BAD);
            data.splice(at..at, bad.iter().copied());
        }
        body.extend_from_slice(format!("[{time}, \"{code}\", \"").as_bytes());
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\"]\n");
    }
    let mutation = rng.below(10);
    plain &= mutation > 2;
    match mutation {
        0 if !body.is_empty() => {
            let at = rng.below(body.len());
            body[at] = *rng.pick(&[
                &b'"', &b',', &b' ', &b']', &b'[', &b'\\', &b'.', &b'0', &b'\r',
            ]);
        }
        1 if !body.is_empty() => {
            body.remove(rng.below(body.len()));
        }
        2 => body.truncate(rng.below(body.len() + 1)),
        _ => {}
    }
    (body, plain)
}

#[test]
fn the_fast_and_the_line_by_line_checks_agree_with_the_reference() {
    let mut rng = Rng(0x7e57_c0de_5ca1_ab1e);
    let (mut fast_ok, mut plain_ok, mut ok, mut bad) = (0, 0, 0, 0);
    for _ in 0..30_000 {
        let (body, plain) = chunk(&mut rng);
        let want = reference(&body);
        let got = check_chunk_lines(&body);
        let text = String::from_utf8_lossy(&body);
        match (&want, &got) {
            (Ok(w), Ok(g)) => {
                assert_eq!(w, g, "{text:?}");
                ok += 1;
            }
            (Err(Broken::Form(l)), Err(LineFault::Event { line, .. }))
            | (Err(Broken::Companion(l)), Err(LineFault::Companion { line, .. })) => {
                assert_eq!(l, line, "{text:?}");
                bad += 1;
            }
            _ => panic!("reference {want:?}, checker {got:?}: {text:?}"),
        }
        let fast = fast::scan(&body);
        if let Some(span) = fast {
            assert_eq!(want, Ok(span), "fast pass accepted {text:?}");
            fast_ok += 1;
        }
        if plain && want.is_ok() {
            assert!(fast.is_some(), "fast pass gave up on {text:?}");
            plain_ok += 1;
        }
    }
    // Both verdicts were reached often, and many valid chunks were plain.
    assert!(ok > 3_000 && bad > 3_000, "{ok} valid, {bad} invalid");
    assert!(
        plain_ok > 1_000 && fast_ok >= plain_ok,
        "{plain_ok} plain, {fast_ok}"
    );
}

#[test]
fn the_fast_pass_takes_the_lines_a_recorder_writes() {
    let mut body = Vec::new();
    let out = crate::event::EventData::Output(b"\x1b[1mhi\xff\r\n\xef\xbf\xbd".repeat(50));
    crate::cast::write_event(&mut body, 1_500, &out, false);
    crate::cast::write_line(&mut body, 2_000_000, "r", "100x40");
    crate::cast::write_line(&mut body, 7, "m", "\u{1}\"\\ é \u{2028}");
    crate::cast::write_line(&mut body, 1, "x", "-1");
    let span = LineSpan {
        first: 1_500,
        span: 2_000_008,
    };
    assert_eq!(fast::scan(&body), Some(span));
    assert_eq!(reference(&body), Ok(span));
}
