//! `export --format html`: one self-contained page that plays a recording in
//! a browser with asciinema-player, showing the recording's metadata and
//! what verification found.
//!
//! The player's bundle (JavaScript with its WebAssembly inlined, and CSS) is
//! vendored in `player/assets/asciinema-player/` from the npm package and
//! compiled into the binary; `scripts/update-asciinema-player.sh VERSION`
//! updates it. The page loads nothing from the network: the bundle, the
//! recording (asciicast v3, as a JSON string) and the page's own script are
//! all inline.

use std::io::{self, Write};

use termtrail_format::cast::Header;
use termtrail_format::event::{Micros, format_clock};
use termtrail_format::reader::{Report, Signature, Status};
use termtrail_format::text::visible;

/// asciinema-player's bundle.
pub const PLAYER_JS: &str = include_str!("../assets/asciinema-player/asciinema-player.min.js");
/// asciinema-player's stylesheet.
pub const PLAYER_CSS: &str = include_str!("../assets/asciinema-player/asciinema-player.css");
const PLAYER_VERSION_FILE: &str = include_str!("../assets/asciinema-player/VERSION");

/// The vendored player's version line.
pub fn player_version() -> &'static str {
    PLAYER_VERSION_FILE
        .lines()
        .next()
        .unwrap_or("asciinema-player")
}

/// Writes text as the inside of a JSON string that is safe in an HTML
/// `<script>` element: quotes, backslashes and control characters escaped,
/// and `<`, `>`, `&` as `\u003c`… so the text can never close the element.
pub struct JsonString<W: Write> {
    inner: W,
}

impl<W: Write> JsonString<W> {
    /// Escapes into `inner`.
    pub fn new(inner: W) -> JsonString<W> {
        JsonString { inner }
    }

    /// The writer underneath.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for JsonString<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for (i, &b) in buf.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                b'&' => b"\\u0026",
                0..=0x1f => {
                    self.inner.write_all(&buf[start..i])?;
                    write!(self.inner, "\\u{b:04x}")?;
                    start = i + 1;
                    continue;
                }
                _ => continue,
            };
            self.inner.write_all(&buf[start..i])?;
            self.inner.write_all(esc)?;
            start = i + 1;
        }
        self.inner.write_all(&buf[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PAGE_CSS: &str = "
body { margin: 0; background: #1b1d22; color: #d6d8dd; font: 15px/1.45 system-ui, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 16px; display: flex; flex-direction: column; gap: 16px; }
#info { order: -1; }
h1 { font-size: 20px; margin: 0 0 8px; }
.verdict { padding: 8px 12px; border-radius: 6px; font-weight: 600; margin-bottom: 10px; }
.verdict.intact { background: #1f4d2c; color: #c9f2d4; }
.verdict.unsealed, .verdict.plain { background: #5a4a12; color: #fbeeb8; }
.verdict.tampered { background: #7a1d1d; color: #ffd9d9; }
table.meta { border-collapse: collapse; font-size: 13px; }
table.meta th { text-align: left; font-weight: 500; color: #9aa0aa; padding: 2px 16px 2px 0; vertical-align: top; }
table.meta td { padding: 2px 0; font-family: ui-monospace, monospace; word-break: break-all; }
footer { font-size: 12px; color: #8a8f98; }
";

/// Writes the page up to the opening quote of the recording's JSON string
/// (the caller then writes the asciicast text through [`JsonString`], then
/// calls [`write_tail`]).
pub fn write_head(out: &mut dyn Write, header: &Header, name: &str) -> io::Result<()> {
    let title = header.title.as_deref().unwrap_or(name);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"termtrail {}\">\n\
         <title>{} — termtrail</title>\n<style>\n{PLAYER_CSS}\n</style>\n<style>{PAGE_CSS}</style>\n\
         </head>\n<body>\n<main>\n<div id=\"player\"></div>\n\
         <script id=\"termtrail-cast\" type=\"application/json\">\"",
        env!("CARGO_PKG_VERSION"),
        escape(&visible(title)),
    )
}

/// What verification found, for the page.
#[derive(Debug, Clone)]
pub enum Verification {
    /// From the verifying reader.
    Report(Box<Report>),
    /// A plain asciicast file: nothing to verify.
    Plain,
}

fn verdict_html(v: &Verification) -> (&'static str, String) {
    let Verification::Report(r) = v else {
        return (
            "plain",
            "Not verified: converted from a plain asciicast file, which has no hash chain.".into(),
        );
    };
    let signature = match &r.signature {
        Signature::Unsigned => String::new(),
        // Anyone can sign a rewritten recording with a key of their own:
        // the page names the key, pinning it is `verify --key`'s job.
        Signature::Valid { key_id } => format!(
            " Seal signed by key {}, not pinned: this page does not know which keys \
             you trust (termtrail verify --key).",
            escape(key_id)
        ),
        Signature::Invalid { key_id } => {
            format!(" The signature for key {} does NOT verify.", escape(key_id))
        }
    };
    match r.status {
        Status::Intact if !matches!(r.signature, Signature::Invalid { .. }) => (
            "intact",
            format!(
                "Verified: every chunk ({}) matches the SHA-256 hash chain, and so does the seal.{signature}",
                r.chunks
            ),
        ),
        Status::Unsealed => (
            "unsealed",
            format!(
                "Verified up to {}, but not sealed: the recording was cut short or was still being written.{signature}",
                format_clock(r.last_verified)
            ),
        ),
        _ => {
            let problem = r
                .problems
                .first()
                .map_or("damage found".to_string(), |p| p.message.clone());
            (
                "tampered",
                format!(
                    "TAMPERED: {}. Verified only up to {}; what follows is shown unverified (exported with --allow-tampered).{signature}",
                    escape(&problem),
                    format_clock(r.last_verified)
                ),
            )
        }
    }
}

/// Closes the recording's string and writes the metadata, the verification
/// result, the player and the script that starts it.
pub fn write_tail(
    out: &mut dyn Write,
    header: &Header,
    name: &str,
    duration: Micros,
    verification: &Verification,
) -> io::Result<()> {
    let (class, verdict) = verdict_html(verification);
    let meta = header.termtrail.as_ref();
    let mut rows: Vec<(&str, String)> = vec![("File", name.to_string())];
    if let Some(m) = meta {
        rows.push(("Recording id", m.id.clone()));
        let opt = |v: &Option<String>| v.clone();
        for (label, value) in [
            ("Source", opt(&m.source)),
            ("Session", opt(&m.session)),
            ("Shell", opt(&m.shell)),
            ("Principal", opt(&m.principal)),
            ("Reason", opt(&m.reason)),
            ("Host", opt(&m.host)),
        ] {
            if let Some(v) = value {
                rows.push((label, v));
            }
        }
    }
    if let Some(ts) = header.timestamp {
        rows.push(("Started (UTC)", crate::hits::rfc3339(ts, 0)));
    }
    rows.push(("Duration", format_clock(duration)));
    let size = header.size();
    let shown = crate::term::replay_size(size);
    rows.push((
        "Terminal",
        if shown == size {
            format!("{}×{}", size.cols, size.rows)
        } else {
            format!(
                "{}×{} (played at {}×{}: larger terminals are clamped)",
                size.cols, size.rows, shown.cols, shown.rows
            )
        },
    ));
    if let Some(c) = &header.command {
        rows.push(("Command", c.clone()));
    }
    if let Verification::Report(r) = verification
        && let Some(end) = &r.end
    {
        rows.push(("Ended", end.to_string()));
    }
    let title = header.title.as_deref().unwrap_or(name);
    write!(
        out,
        "\"</script>\n<section id=\"info\">\n<h1>{}</h1>\n",
        escape(&visible(title))
    )?;
    writeln!(
        out,
        "<div class=\"verdict {class}\" id=\"verdict\" data-verdict=\"{class}\">{verdict}</div>"
    )?;
    writeln!(out, "<table class=\"meta\">")?;
    for (label, value) in rows {
        writeln!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(label),
            escape(&visible(&value))
        )?;
    }
    writeln!(out, "</table>\n</section>")?;
    writeln!(
        out,
        "<footer>Exported by termtrail {} with {}. This page is a copy for viewing: the evidence is the \
         <code>.cast.zst</code> recording — check it with <code>termtrail verify</code>.</footer>\n</main>",
        env!("CARGO_PKG_VERSION"),
        escape(player_version())
    )?;
    writeln!(out, "<script>\n{PLAYER_JS}\n</script>")?;
    let idle = header
        .idle_time_limit
        .filter(|v| v.is_finite() && *v > 0.0)
        .map_or("undefined".to_string(), |v| v.to_string());
    writeln!(
        out,
        "<script>\n\
         const cast = JSON.parse(document.getElementById('termtrail-cast').textContent);\n\
         window.player = AsciinemaPlayer.create({{ data: cast }}, document.getElementById('player'), {{\n  \
         fit: 'width', idleTimeLimit: {idle}, terminalFontFamily: 'ui-monospace, monospace'\n}});\n\
         </script>\n</body>\n</html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recording_cannot_close_its_script_element() {
        let mut w = JsonString::new(Vec::new());
        w.write_all(b"</script><b>\"q\\\"\n\x1b[1m&").unwrap();
        let s = String::from_utf8(w.into_inner()).unwrap();
        assert!(!s.contains('<') && !s.contains('>'), "{s}");
        let back: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(back, "</script><b>\"q\\\"\n\x1b[1m&");
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn the_vendored_player_is_there() {
        assert!(PLAYER_JS.contains("AsciinemaPlayer"));
        assert!(!PLAYER_JS.to_lowercase().contains("</script"));
        assert!(!PLAYER_CSS.to_lowercase().contains("</style"));
        assert!(player_version().starts_with("asciinema-player 3."));
    }
}
