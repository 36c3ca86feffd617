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
}
