//! UTF-8 handling for terminal bytes: stitching sequences split across reads,
//! and the lossless rule for bytes that are not UTF-8 at all.
//!
//! asciicast stores terminal output as JSON strings, which must be UTF-8.
//! asciinema replaces invalid bytes with U+FFFD and loses them. termtrail
//! writes the same U+FFFD into the `o`/`i` string (so every standard player
//! shows what asciinema would) and follows the event with a `b` event whose
//! data lists, for every U+FFFD in that string in order, the hex of the source
//! bytes it stands for (`efbfbd` for a U+FFFD that was really there). The raw
//! bytes are therefore always recoverable; see `docs/format.md` §3.

/// The replacement character, as written for invalid bytes.
const REPLACEMENT: char = '\u{FFFD}';

/// Splits arbitrary byte reads into runs that end on a character boundary.
///
/// A multi-byte character cut in two by the PTY is kept back (at most three
/// bytes) and emitted whole with the next read, never as two replacement
/// characters. Bytes that can never become valid UTF-8 are passed through
/// unchanged; the encoder deals with them losslessly.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stitcher {
    pending: Vec<u8>,
}

impl Utf8Stitcher {
    /// A stitcher with nothing pending.
    pub fn new() -> Utf8Stitcher {
        Utf8Stitcher::default()
    }

    /// Takes the next read and returns the bytes ready to be emitted (possibly
    /// empty, when the whole read is the start of an unfinished character).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(bytes);
        let keep = incomplete_tail_len(&buf);
        self.pending = buf.split_off(buf.len() - keep);
        buf
    }

    /// Returns whatever is still held back (an unfinished sequence at the end
    /// of the stream), leaving the stitcher empty.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// True when bytes are held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// Length of a trailing *incomplete but so far valid* UTF-8 sequence.
fn incomplete_tail_len(buf: &[u8]) -> usize {
    // Look at the last up-to-3 bytes for a lead byte whose sequence is cut off.
    let n = buf.len();
    for back in 1..=3.min(n) {
        let b = buf[n - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead
        }
        let need = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        if need > back {
            // Check the partial sequence is a valid prefix (rules out e.g.
            // E0 80, which can never complete).
            let part = &buf[n - back..];
            return if valid_prefix(part) { back } else { 0 };
        }
        return 0;
    }
    0
}

fn valid_prefix(part: &[u8]) -> bool {
    match std::str::from_utf8(part) {
        Ok(_) => true,
        Err(e) => e.valid_up_to() == 0 && e.error_len().is_none(),
    }
}

/// Converts raw bytes into the string written to the file, plus the `b`
/// repair data when the bytes were not valid UTF-8 (None when they were).
pub fn encode_lossless(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (std::borrow::Cow::Borrowed(s), None),
        Err(_) => {
            let mut text = String::with_capacity(bytes.len() + 8);
            let mut repair = String::new();
            let mut rest = bytes;
            loop {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        push_valid(&mut text, &mut repair, s);
                        break;
                    }
                    Err(e) => {
                        let (good, bad) = rest.split_at(e.valid_up_to());
                        // SAFETY-free: `good` was just validated.
                        push_valid(
                            &mut text,
                            &mut repair,
                            std::str::from_utf8(good).unwrap_or_default(),
                        );
                        let bad_len = e.error_len().unwrap_or(bad.len());
                        text.push(REPLACEMENT);
                        if !repair.is_empty() {
                            repair.push(' ');
                        }
                        repair.push_str(&hex::encode(&bad[..bad_len]));
                        rest = &bad[bad_len..];
                    }
                }
            }
            (std::borrow::Cow::Owned(text), Some(repair))
        }
    }
}

fn push_valid(text: &mut String, repair: &mut String, s: &str) {
    text.push_str(s);
    for _ in s.matches(REPLACEMENT) {
        if !repair.is_empty() {
            repair.push(' ');
        }
        repair.push_str("efbfbd");
    }
}

/// Rebuilds raw bytes from a string and its `b` repair data. Returns None
/// when the repair data does not fit the string (wrong count, bad hex).
pub fn decode_lossless(text: &str, repair: &str) -> Option<Vec<u8>> {
    let mut tokens = repair.split(' ').filter(|t| !t.is_empty());
    let mut out = Vec::with_capacity(text.len());
    for piece in text.split_inclusive(REPLACEMENT) {
        match piece.strip_suffix(REPLACEMENT) {
            Some(before) => {
                out.extend_from_slice(before.as_bytes());
                let raw = hex::decode(tokens.next()?).ok()?;
                if raw.is_empty() {
                    return None;
                }
                out.extend_from_slice(&raw);
            }
            None => out.extend_from_slice(piece.as_bytes()),
        }
    }
    tokens.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_character_is_stitched() {
        let mut s = Utf8Stitcher::new();
        let e = "é".as_bytes();
        assert_eq!(s.push(&[b'a', e[0]]), b"a");
        assert!(s.has_pending());
        assert_eq!(s.push(&[e[1], b'b']), "éb".as_bytes());
        assert!(s.finish().is_empty());
    }

    #[test]
    fn four_byte_char_split_three_ways() {
        let mut s = Utf8Stitcher::new();
        let c = "𝄞".as_bytes();
        assert_eq!(s.push(&c[..1]), b"");
        assert_eq!(s.push(&c[1..3]), b"");
        assert_eq!(s.push(&c[3..]), c);
    }

    #[test]
    fn invalid_bytes_are_not_held_back() {
        let mut s = Utf8Stitcher::new();
        assert_eq!(s.push(b"x\xff"), b"x\xff");
        assert_eq!(s.push(b"\xe0\x80"), b"\xe0\x80");
    }

    #[test]
    fn lossless_round_trip() {
        let raw = b"ok \xff\xfe \xef\xbf\xbd end\xe2\x82";
        let (text, repair) = encode_lossless(raw);
        assert_eq!(text, "ok \u{FFFD}\u{FFFD} \u{FFFD} end\u{FFFD}");
        let repair = repair.expect("invalid input needs repair data");
        assert_eq!(repair, "ff fe efbfbd e282");
        assert_eq!(decode_lossless(&text, &repair).as_deref(), Some(&raw[..]));
    }

    #[test]
    fn repair_mismatch_is_rejected() {
        assert_eq!(decode_lossless("a\u{FFFD}", ""), None);
        assert_eq!(decode_lossless("a", "ff"), None);
        assert_eq!(decode_lossless("a\u{FFFD}", "zz"), None);
    }
}
