//! The escape stripper: terminal output (raw, or still escaped as JSON
//! string content) turned into the text a person saw, with cursor
//! movements as line breaks.

use termtrail_format::scan;

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
    pub(super) low: usize,
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

/// Ends the line in `out` (unless it is empty or just ended).
pub(super) fn line_break(out: &mut Vec<u8>) {
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
                match scan::escape(&s[i..]) {
                    Some(e) => (e.used, e.bytes, e.len),
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

    #[test]
    fn a_line_feed_ends_any_sequence_or_string() {
        assert_eq!(strip(&["a\x1b[3\nb"]), "a\nb");
        assert_eq!(strip(&["a\x1b]0;title\nb"]), "a\nb");
        assert_eq!(strip(&["a\x1bP1$r\nb\x1b\\c"]), "a\nbc");
        assert_eq!(strip(&["a\x1b\nb"]), "a\nb");
        assert_eq!(strip(&["a\x1b(\nb"]), "a\nb");
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
}
