//! How `grep` prints what it found: grep-style lines (with colour on a
//! terminal), file names (`-l`), counts (`-c`), or JSON Lines (`--json`,
//! schema in `docs/player.md`).

use std::io::{self, Write};

use serde_json::{Value, json};
use termtrail_format::cast::Header;
use termtrail_format::event::{Micros, format_clock};
use termtrail_format::text::{json_line, push_visible, visible};

use crate::grep::{ContextLine, FileResult, Hit, Pattern, SearchError, Verdict};

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One line per hit (with screen context).
    Lines,
    /// `-l`: the names of recordings with hits.
    Files,
    /// `-c`: hits per recording.
    Count,
    /// `--json`: JSON Lines.
    Json,
    /// `-q`: nothing.
    Quiet,
}

/// Which time a hit line shows (`--time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeShown {
    /// The offset from the recording's start, `[h:]mm:ss.mmm`.
    Offset,
    /// The wall-clock time, RFC 3339 UTC with milliseconds (the offset
    /// when the recording has no start time).
    Clock,
    /// Both, clock first, separated by a space.
    #[default]
    Both,
}

/// Printing settings.
#[derive(Debug, Clone, Copy)]
pub struct PrintOptions {
    /// What to print.
    pub mode: Mode,
    /// Colour (SGR) in `Lines` mode.
    pub color: bool,
    /// Lines of text were asked for around hits (`-A`/`-B`/`-C`): groups
    /// that do not touch are separated by `--`.
    pub context: bool,
    /// `--screen`: each hit is followed by the screen row it was on (and
    /// its rows of screen context), indented and labelled `screen`.
    pub screen: bool,
    /// `-o`: only the matches, each on its own line.
    pub only_matching: bool,
    /// `--heading`: the recording's name once above its hits (else on
    /// every line).
    pub heading: bool,
    /// Whether the recording's name is printed at all (`--no-filename`
    /// turns it off).
    pub filename: bool,
    /// Which time a hit line shows.
    pub time: TimeShown,
}

/// Totals over a search.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Files looked at.
    pub files: u64,
    /// Files searched (not filtered out, not failed).
    pub searched: u64,
    /// Files with at least one hit.
    pub matched: u64,
    /// Hits.
    pub hits: u64,
    /// Files that failed or were damaged.
    pub errors: u64,
    /// Whether hit lines were printed (a heading or a `--` separator then
    /// goes before the next recording's).
    pub printed: bool,
}

const PATH_COLOR: &str = "\x1b[35m";
const TIME_COLOR: &str = "\x1b[32m";
const MATCH_COLOR: &str = "\x1b[1;31m";
const RESET: &str = "\x1b[0m";

/// Prints one file's result on `out`; damage and failures go to `err`.
/// Adds to `totals`.
pub fn print_result(
    out: &mut dyn Write,
    err: &mut dyn Write,
    name: &str,
    result: &FileResult,
    pattern: &Pattern,
    o: &PrintOptions,
    totals: &mut Totals,
) -> io::Result<()> {
    totals.files += 1;
    // Names come from the store: a session id a client chose is in the key.
    let shown = name.to_string();
    let name = visible(name);
    match result {
        FileResult::Filtered => Ok(()),
        FileResult::Failed(e) => {
            totals.errors += 1;
            if o.mode == Mode::Json {
                let v = json!({"type": "error", "path": shown, "tampered": matches!(e, SearchError::Tampered(_)), "error": e.to_string()});
                writeln!(out, "{}", json_line(&v))?;
            }
            writeln!(err, "termtrail: {name}: {}", visible(&e.to_string()))
        }
        FileResult::Searched {
            header,
            verdict,
            hits,
            damage,
        } => {
            totals.searched += 1;
            totals.hits += hits.len() as u64;
            if !hits.is_empty() {
                totals.matched += 1;
            }
            match o.mode {
                Mode::Quiet => {}
                Mode::Files if !hits.is_empty() => writeln!(out, "{name}")?,
                Mode::Files => {}
                Mode::Count if !hits.is_empty() && o.filename => {
                    writeln!(out, "{name}:{}", hits.len())?
                }
                Mode::Count if !hits.is_empty() => writeln!(out, "{}", hits.len())?,
                Mode::Count => {}
                Mode::Json => {
                    for h in hits {
                        let v = hit_json(&shown, header, verdict, damage.is_some(), h);
                        writeln!(out, "{}", json_line(&v))?;
                    }
                }
                Mode::Lines if !hits.is_empty() => {
                    print_hits(out, &name, header, hits, pattern, o, totals.printed)?;
                    totals.printed = true;
                }
                Mode::Lines => {}
            }
            if let Some(d) = damage {
                totals.errors += 1;
                if o.mode == Mode::Json {
                    let v = json!({"type": "error", "path": shown, "tampered": true, "error": d});
                    writeln!(out, "{}", json_line(&v))?;
                }
                let what = if hits.is_empty() {
                    "no hits in the verified part"
                } else {
                    "hits above are from the verified part only"
                };
                writeln!(err, "termtrail: {name}: {}; {what}", visible(d))?;
            }
            Ok(())
        }
    }
}

/// One recording's hits as lines: `NAME:TIME:LINE` (`NAME-TIME-LINE` for
/// lines of context), or under a heading.
fn print_hits(
    out: &mut dyn Write,
    name: &str,
    header: &Header,
    hits: &[Hit],
    pattern: &Pattern,
    o: &PrintOptions,
    printed_before: bool,
) -> io::Result<()> {
    let paint = |color: &str, s: &str| {
        if o.color {
            format!("{color}{s}{RESET}")
        } else {
            s.to_string()
        }
    };
    if o.heading && o.filename {
        if printed_before {
            writeln!(out)?;
        }
        writeln!(out, "{}", paint(PATH_COLOR, name))?;
    }
    let label = (o.filename && !o.heading).then(|| paint(PATH_COLOR, name));
    let prefix = |sep: char, t: Micros| {
        let stamp = paint(TIME_COLOR, &time_stamp(header.timestamp, t, o.time));
        match &label {
            Some(l) => format!("{l}{sep}{stamp}{sep}"),
            None => format!("{stamp}{sep}"),
        }
    };
    // The last line number printed: groups that do not touch it get `--`.
    let mut last: Option<u64> = None;
    for h in hits {
        let f = &h.found;
        let first = f.number.saturating_sub(f.before.len() as u64);
        let touches = last.is_some_and(|l| f.number > 0 && first <= l + 1);
        if o.context && (last.is_some() || (printed_before && !o.heading)) && !touches {
            writeln!(out, "--")?;
        }
        for c in &f.before {
            writeln!(out, "{}{}", prefix('-', c.time), visible(&c.line))?;
        }
        if o.only_matching {
            for &(s, e) in &f.matches {
                let m = f.line.get(s..e).unwrap_or("");
                let shown = if o.color {
                    format!("{MATCH_COLOR}{}{RESET}", visible(m))
                } else {
                    visible(m).into_owned()
                };
                writeln!(out, "{}{shown}", prefix(':', f.time))?;
            }
        } else {
            let line = highlight(&f.line, &f.matches, o.color);
            writeln!(out, "{}{line}", prefix(':', f.time))?;
        }
        if o.screen
            && let Some(s) = &h.screen
        {
            for row in &s.before {
                writeln!(out, "  screen- {}", visible(row))?;
            }
            let matches = pattern.find_all(s.line.as_bytes());
            writeln!(out, "  screen: {}", highlight(&s.line, &matches, o.color))?;
            for row in &s.after {
                writeln!(out, "  screen- {}", visible(row))?;
            }
        }
        for c in &f.after {
            writeln!(out, "{}{}", prefix('-', c.time), visible(&c.line))?;
        }
        last = Some(f.number + f.after.len() as u64);
    }
    Ok(())
}

/// The time a hit line shows, for a recording that started at `start`.
fn time_stamp(start: Option<u64>, t: Micros, shown: TimeShown) -> String {
    match (shown, start) {
        (TimeShown::Offset, _) | (_, None) => format_clock(t),
        (TimeShown::Clock, Some(s)) => rfc3339(s, t),
        (TimeShown::Both, Some(s)) => format!("{} {}", rfc3339(s, t), format_clock(t)),
    }
}

/// `line` as printed: recorded text with controls and bidi characters made
/// visible ([`termtrail_format::text`]); with `color`, the matches (byte
/// ranges of `line`) highlighted.
fn highlight(line: &str, matches: &[(usize, usize)], color: bool) -> String {
    if !color {
        return visible(line).into_owned();
    }
    let mut s = String::with_capacity(line.len() + 16 * matches.len());
    let mut at = 0;
    for &(a, b) in matches {
        let (Some(pre), Some(m)) = (line.get(at..a), line.get(a..b)) else {
            return visible(line).into_owned();
        };
        push_visible(&mut s, pre);
        s.push_str(MATCH_COLOR);
        push_visible(&mut s, m);
        s.push_str(RESET);
        at = b;
    }
    push_visible(&mut s, line.get(at..).unwrap_or(""));
    s
}

/// RFC 3339 UTC time of Unix seconds plus microseconds.
pub fn rfc3339(start: u64, t: Micros) -> String {
    crate::time::format_instant(start as i64 * 1_000_000 + t as i64)
}

fn hit_json(path: &str, header: &Header, verdict: &Verdict, tampered: bool, h: &Hit) -> Value {
    let meta = header.termtrail.as_ref();
    let verified = match (tampered, verdict) {
        (true, _) => "tampered",
        (false, Verdict::Intact) => "intact",
        (false, Verdict::Unsealed) => "unsealed",
        (false, Verdict::Plain) => "plain",
    };
    let line = &h.found.line;
    let matches: Vec<Value> = h
        .found
        .matches
        .iter()
        .map(|&(s, e)| json!({"start": s, "end": e, "text": line.get(s..e).unwrap_or("")}))
        .collect();
    let context = |lines: &[ContextLine]| -> Vec<Value> {
        lines
            .iter()
            .map(|c| json!({"time": c.time as f64 / 1e6, "line": c.line}))
            .collect()
    };
    let mut v = json!({
        "type": "match",
        "path": path,
        "time": h.found.time as f64 / 1e6,
        "clock": format_clock(h.found.time),
        "at": header.timestamp.map(|s| rfc3339(s, h.found.time)),
        "line": line,
        "matches": matches,
        "screen": h.screen.as_ref().map(|s| json!({
            "row": s.row, "line": s.line, "before": s.before, "after": s.after, "exact": s.exact,
        })),
        "recording": {
            "id": meta.map(|m| m.id.as_str()),
            "source": meta.and_then(|m| m.source.as_deref()),
            "session": meta.and_then(|m| m.session.as_deref()),
            "shell": meta.and_then(|m| m.shell.as_deref()),
            "principal": meta.and_then(|m| m.principal.as_deref()),
            "title": header.title.as_deref(),
            "start": header.timestamp,
            "verified": verified,
        },
    });
    // Extensions: only when asked for (-v, -A, -B count lines).
    if h.found.number > 0 {
        v["line_number"] = json!(h.found.number);
        v["before"] = json!(context(&h.found.before));
        v["after"] = json!(context(&h.found.after));
    }
    v
}

/// The closing summary line of `--json`.
pub fn summary_json(t: &Totals, elapsed_ms: u128) -> Value {
    json!({
        "type": "summary",
        "files": t.files,
        "searched": t.searched,
        "matched": t.matched,
        "hits": t.hits,
        "errors": t.errors,
        "elapsed_ms": elapsed_ms as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_highlights() {
        assert_eq!(format_clock(7), "00:00.000");
        assert_eq!(
            rfc3339(1_795_132_800, 1_500_000),
            "2026-11-20T00:00:01.500Z"
        );
        assert_eq!(
            highlight("a xx b", &[(2, 4)], true),
            "a \x1b[1;31mxx\x1b[0m b"
        );
        assert_eq!(highlight("a xx b", &[(2, 4)], false), "a xx b");
        assert_eq!(
            highlight("\u{9b}2J x\x1bx", &[(5, 8)], true),
            "\\u{009b}2J \x1b[1;31mx^[x\x1b[0m"
        );
        assert_eq!(highlight("\u{202e}ab", &[], false), "\\u{202e}ab");
        assert_eq!(format_clock(62_500_123), "01:02.500");
        assert_eq!(format_clock(3_723_004_000), "1:02:03.004");
        assert_eq!(time_stamp(None, 1_500_000, TimeShown::Both), "00:01.500");
        assert_eq!(
            time_stamp(Some(1_795_132_800), 1_500_000, TimeShown::Both),
            "2026-11-20T00:00:01.500Z 00:01.500"
        );
    }
}
