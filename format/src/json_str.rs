//! JSON strings as event lines write them: exactly the bytes
//! `serde_json::to_writer` writes for a `&str` (`"` and `\` escaped, C0
//! controls as `\b \t \n \f \r` or `\u00xx` in lower-case hex, everything
//! else as is), found eight bytes at a time and copied in runs: terminal
//! output is mostly plain text, and this is on every recorder's hot path.

const HEX: &[u8; 16] = b"0123456789abcdef";
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Appends `s` as a JSON string (quotes included) to `buf`.
pub fn write_str(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    // `run`: the first byte not yet copied; `i`: the next byte to look at.
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            let found = special(word);
            if found == 0 {
                i += 8;
                continue;
            }
            // The lowest flagged byte is exact (see `special`).
            i += (found.trailing_zeros() / 8) as usize;
        } else if !needs_escape(bytes[i]) {
            i += 1;
            continue;
        }
        buf.extend_from_slice(&bytes[run..i]);
        escape(buf, bytes[i]);
        i += 1;
        run = i;
    }
    buf.extend_from_slice(&bytes[run..]);
    buf.push(b'"');
}

/// The high bit of every byte of `word` that may need escaping. Each of
/// the three tests (`< 0x20`, `== '"'`, `== '\'`) flags its lowest match
/// exactly (a borrow only ever flags bytes above a real match), so the
/// lowest flag of all is the first byte that does.
fn special(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    (below_space | zero(quote) | zero(backslash)) & HIGHS
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn escape(buf: &mut Vec<u8>, b: u8) {
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0a => b'n',
        0x0c => b'f',
        0x0d => b'r',
        _ => {
            let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
            buf.extend_from_slice(b"\\u00");
            buf.extend_from_slice(&hex);
            return;
        }
    };
    buf.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn serde(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    fn ours(s: &str) -> Vec<u8> {
        let mut buf = b"prefix".to_vec();
        write_str(&mut buf, s);
        buf.split_off(6)
    }

    #[test]
    fn every_byte_value_at_every_position_of_a_word_is_written_as_serde_json_writes_it() {
        for c in (0u32..0x100).filter_map(char::from_u32) {
            for at in 0..20 {
                let mut s = "a".repeat(at);
                s.push(c);
                s.push_str("bcdefghijklmnop");
                assert_eq!(ours(&s), serde(&s), "{c:?} at {at}");
            }
        }
        for s in [
            "",
            "\"",
            "\\\\",
            "\u{1b}[0m",
            "é\u{7f}\u{80}\u{2028}\u{fffd}",
            "\0\0\0\0\0\0\0\0\0",
        ] {
            assert_eq!(ours(s), serde(s), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(s in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f])*") {
            prop_assert_eq!(ours(&s), serde(&s));
        }

        #[test]
        fn terminal_like_output_is_written_as_serde_json_writes_it(
            s in "([a-z ]{0,12}(\u{1b}\\[[0-9;]{1,5}m|\r\n|\t|\"|\\\\|é|漢)?){0,40}"
        ) {
            prop_assert_eq!(ours(&s), serde(&s));
        }
    }
}
