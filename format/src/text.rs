//! Text taken from a recording, a log or a client, made safe to show: the
//! one place that decides which characters could act on a reviewer's
//! terminal or reorder what they read, for human output ([`visible`]) and
//! for JSON ([`json_line`]).
//!
//! Controls shown visible: C0 controls (except TAB) and DEL in caret
//! notation, as `cat -v` shows them (`ESC` → `^[`, `BEL` → `^G`, DEL →
//! `^?`); C1 controls (U+0080–U+009F) and the Unicode bidirectional
//! formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E,
//! U+2066–U+2069) as `\u{XXXX}`. Everything else, TAB included, is kept.

use std::borrow::Cow;
use std::io;

/// Whether `c` is shown escaped by [`visible`] (and `\uXXXX`-escaped in
/// [`json_line`]).
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\0'..='\x08' | '\x0a'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}'
        | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with terminal controls and bidirectional formatting characters
/// made visible (see the module documentation); borrowed when there are
/// none.
///
/// ```
/// use termtrail_format::text::visible;
/// assert_eq!(visible("a\x1b]0;pwned\x07b"), "a^[]0;pwned^Gb");
/// assert_eq!(visible("\u{9b}2J \u{202e}abc"), "\\u{009b}2J \\u{202e}abc");
/// assert_eq!(visible("tab\tand é"), "tab\tand é");
/// ```
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_visible(&mut out, text);
    Cow::Owned(out)
}

/// Like [`visible`], but line feeds are kept: for multi-line text
/// (transcripts, screens) printed as lines.
///
/// ```
/// use termtrail_format::text::visible_lines;
/// assert_eq!(visible_lines("a\x1b[2J\nb\r\n"), "a^[[2J\nb^M\n");
/// ```
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        push_visible(&mut out, line);
    }
    Cow::Owned(out)
}

/// Appends `text` to `out` the way [`visible`] shows it.
pub fn push_visible(out: &mut String, text: &str) {
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if c == '\x7f' {
            out.push_str("^?");
        } else if (c as u32) < 0x20 {
            out.push('^');
            out.push(char::from(c as u8 + 0x40));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
}

/// Writes strings the way `serde_json` does, but with C1 controls and
/// bidirectional formatting characters also escaped as `\uXXXX` (JSON
/// allows them raw; a terminal showing the JSON would act on them). The
/// value read back is unchanged.
struct SafeFormatter;

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| is_unsafe(c)) {
            writer.write_all(&rest.as_bytes()[..i])?;
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// `value` as one line of JSON, every character [`is_unsafe`] flags
/// escaped as `\uXXXX` (serde_json escapes only C0 controls itself).
///
/// ```
/// let v = serde_json::json!({"title": "\u{9d}52;c;eA==\u{9c}\u{202e}"});
/// let line = termtrail_format::text::json_line(&v);
/// assert_eq!(line, r#"{"title":"\u009d52;c;eA==\u009c\u202e"}"#);
/// assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), v);
/// ```
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, SafeFormatter);
    // Serializing into memory fails only for types whose Serialize fails
    // (none of ours: maps with string keys, no custom impls that error).
    if value.serialize(&mut ser).is_err() {
        return "null".to_string();
    }
    // serde_json writes UTF-8 only.
    String::from_utf8(buf).unwrap_or_default()
}

/// A writer for JSON text (asciicast lines, JSON Lines) that also escapes
/// DEL, the C1 controls and bidi characters [`is_unsafe`] flags as `\uXXXX`,
/// as [`json_line`] does: the value each string decodes to is unchanged,
/// but the text is safe to print on a terminal. Such characters in JSON
/// text only ever occur inside strings (the syntax is ASCII). C0 controls
/// must already be escaped (every JSON encoder does).
pub struct JsonEscaper<W: io::Write> {
    inner: W,
    /// The start of a UTF-8 sequence cut by the end of a write.
    pending: Vec<u8>,
}

impl<W: io::Write> JsonEscaper<W> {
    /// Escapes into `inner`.
    pub fn new(inner: W) -> JsonEscaper<W> {
        JsonEscaper {
            inner,
            pending: Vec::new(),
        }
    }

    /// The writer underneath (anything pending is written first).
    pub fn into_inner(mut self) -> io::Result<W> {
        let pending = std::mem::take(&mut self.pending);
        self.inner.write_all(&pending)?;
        Ok(self.inner)
    }
}

impl<W: io::Write> io::Write for JsonEscaper<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let joined;
        let bytes = if self.pending.is_empty() {
            buf
        } else {
            let mut v = std::mem::take(&mut self.pending);
            v.extend_from_slice(buf);
            joined = v;
            &joined[..]
        };
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            // Every character flagged beyond C0 is DEL or 2 or 3 bytes: C1
            // (C2 80–9F), U+061C (D8 9C), U+200E… (E2 80/81 xx).
            let len = match bytes[i] {
                0x7f => 1,
                0xc2 | 0xd8 => 2,
                0xe2 => 3,
                _ => {
                    i += 1;
                    continue;
                }
            };
            if i + len > bytes.len() {
                self.pending = bytes[i..].to_vec();
                break;
            }
            let c = std::str::from_utf8(&bytes[i..i + len])
                .ok()
                .and_then(|s| s.chars().next());
            if let Some(c) = c.filter(|&c| is_unsafe(c)) {
                self.inner.write_all(&bytes[start..i])?;
                write!(self.inner, "\\u{:04x}", c as u32)?;
                start = i + len;
            }
            i += len;
        }
        let end = bytes.len() - self.pending.len();
        self.inner.write_all(&bytes[start..end.max(start)])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unsafe_class_is_escaped() {
        assert_eq!(visible("\x00\x1b\x7f\x0a\x0d"), "^@^[^?^J^M");
        assert_eq!(
            visible("\u{85}\u{90}\u{9c}\u{9d}"),
            "\\u{0085}\\u{0090}\\u{009c}\\u{009d}"
        );
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let shown = visible(&c.to_string()).into_owned();
            assert_eq!(shown, format!("\\u{{{:04x}}}", c as u32));
        }
        assert!(matches!(visible("plain é ✓\t"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escapes_c0_c1_and_bidi_and_reads_back() {
        let s = "a\x1b[2J\u{9b}2J\u{90}q\u{2066}x\u{2069}\"\\";
        let line = json_line(&serde_json::json!([s]));
        assert!(line.is_ascii(), "{line}");
        assert!(!line.contains('\x1b'));
        let back: Vec<String> = serde_json::from_str(&line).unwrap();
        assert_eq!(back[0], s);
    }

    #[test]
    fn the_json_escaper_escapes_across_writes_and_keeps_the_value() {
        use std::io::Write as _;
        let text = format!(
            "{}\n",
            serde_json::json!(["a\u{9b}2J é \u{202e}x\u{2069} \u{61c} ✓ \u{2028}\x7f"])
        );
        for cut in 0..text.len() {
            let mut w = JsonEscaper::new(Vec::new());
            w.write_all(&text.as_bytes()[..cut]).unwrap();
            w.write_all(&text.as_bytes()[cut..]).unwrap();
            let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
            assert!(!out.trim_end().chars().any(is_unsafe), "{out}");
            assert!(
                out.contains("\\u009b2J é \\u202ex\\u2069 \\u061c ✓"),
                "{out}"
            );
            let a: serde_json::Value = serde_json::from_str(&out).unwrap();
            let b: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(a, b);
        }
    }
}
