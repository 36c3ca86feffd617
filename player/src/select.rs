//! Which recordings a command reads: files found under the paths given
//! (directories walked; `termtrail_format::reader::sniff_path` says what
//! kind of file each is), and the filters on them — metadata ([`MetaFilter`]) and a time window ([`Window`], from
//! `--since` / `--until` values read by [`parse_when`]). grep, ls and the
//! reading of S3 prefixes all select through here.

use std::io;
use std::path::{Path, PathBuf};

use termtrail_format::cast::Header;
use termtrail_format::event::Micros;

/// Expands `paths` into the files to search: files as given, directories
/// walked recursively (names starting with `.` skipped, symbolic links to
/// directories not followed), in name order. Paths that cannot be read are
/// returned as errors.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, io::Error)>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk_dir(p, &mut files, &mut errors),
            Ok(_) => files.push(p.clone()),
            Err(e) => errors.push((p.clone(), e)),
        }
    }
    (files, errors)
}

fn walk_dir(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<(PathBuf, io::Error)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push((dir.to_path_buf(), e));
            return;
        }
    };
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    for p in names {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let Ok(lm) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if lm.is_dir() && p.file_name().is_some_and(|n| n == "journal") {
            // A store's journal of seals (JSON entries), not recordings.
            continue;
        }
        if lm.is_dir() {
            walk_dir(&p, files, errors);
        } else if lm.is_file() || (lm.file_type().is_symlink() && p.is_file()) {
            files.push(p);
        }
    }
}

/// Metadata filters; all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct MetaFilter {
    /// Runtime session id (exact).
    pub session: Option<String>,
    /// Shell id (exact).
    pub shell: Option<String>,
    /// Who opened it (exact).
    pub principal: Option<String>,
    /// A part of the title (case-insensitive).
    pub title: Option<String>,
}

impl MetaFilter {
    /// Whether `header` passes.
    pub fn accepts(&self, header: &Header) -> bool {
        let meta = header.termtrail.as_ref();
        let field = |f: fn(&termtrail_format::cast::RecordingMeta) -> Option<&String>| {
            meta.and_then(f).map(String::as_str)
        };
        let exact = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| got == Some(w))
        };
        exact(&self.session, field(|m| m.session.as_ref()))
            && exact(&self.shell, field(|m| m.shell.as_ref()))
            && exact(&self.principal, field(|m| m.principal.as_ref()))
            && self.title.as_deref().is_none_or(|w| {
                header
                    .title
                    .as_deref()
                    .is_some_and(|t| t.to_lowercase().contains(&w.to_lowercase()))
            })
    }

    /// Whether any filter is set.
    pub fn is_empty(&self) -> bool {
        self.session.is_none()
            && self.shell.is_none()
            && self.principal.is_none()
            && self.title.is_none()
    }
}

/// A time window `[since, until)` in Unix seconds; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// From this time on.
    pub since: Option<i64>,
    /// Before this time.
    pub until: Option<i64>,
}

impl Window {
    /// Whether neither end is set (every time is inside).
    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Whether the moment `t` into the recording `header` starts is inside
    /// (a recording without a start time is outside any window but an
    /// open one).
    pub fn holds(&self, header: &Header, t: Micros) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(start) = header.timestamp else {
            return false; // no wall-clock time: cannot be placed in a window
        };
        let at = start as i64 + (t / 1_000_000) as i64;
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }

    /// Whether nothing of the recording `header` starts can be inside: it
    /// starts at or after `until`, or has no start time and the window is
    /// not open.
    pub fn excludes_start(&self, header: &Header) -> bool {
        match (self.until, header.timestamp) {
            (Some(u), Some(start)) => start as i64 >= u,
            (Some(_) | None, None) => !self.is_open(),
            (None, Some(_)) => false,
        }
    }

    /// Whether a recording that started at `start` (Unix seconds) and
    /// lasted `duration` ended before `since`, with a second's slack for
    /// the duration's rounding.
    pub fn ended_before(&self, start: u64, duration: Micros) -> bool {
        self.since
            .is_some_and(|since| (start + duration / 1_000_000 + 1) < since.max(0) as u64)
    }

    /// Whether a recording that started at `start` (Unix seconds; None:
    /// unknown) and lasted `duration` overlaps the window.
    pub fn overlaps(&self, start: Option<u64>, duration: Micros) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(start) = start else {
            return false;
        };
        let start = start as i64;
        let end = start + (duration / 1_000_000) as i64;
        self.since.is_none_or(|s| end >= s) && self.until.is_none_or(|u| start < u)
    }
}

/// A `--since` / `--until` value that is not a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad time {0:?}: use a date (2026-11-20), a date and time (2026-11-20T14:30:00Z), or a time ago (90m, 36h, 7d, 2w)"
)]
pub struct WhenError(pub String);

/// Parses a `--since`/`--until` value into Unix seconds: `2026-11-20`,
/// `2026-11-20T14:30:00Z` (or `+hh:mm`), `2026-11-20 14:30`, or a time ago
/// (`90m`, `36h`, `7d`, `2w`), or `now`.
pub fn parse_when(s: &str, now: i64) -> Result<i64, WhenError> {
    let bad = || WhenError(s.to_string());
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(unit) = s.chars().last().filter(|c| "smhdw".contains(*c))
        && let Ok(n) = s[..s.len() - 1].parse::<i64>()
        && n >= 0
    {
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => 7 * 86_400,
        };
        return n.checked_mul(mult).map(|d| now - d).ok_or_else(bad);
    }
    let (date, rest) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 {
        return Err(bad());
    }
    let num = |x: &str, lo: i64, hi: i64| {
        x.parse::<i64>()
            .ok()
            .filter(|v| (lo..=hi).contains(v) && !x.starts_with('+'))
            .ok_or_else(bad)
    };
    let (y, mo, day) = (num(d[0], 1970, 9999)?, num(d[1], 1, 12)?, num(d[2], 1, 31)?);
    let mut secs = termtrail_format::civil::days_from_civil(y, mo, day) * 86_400;
    if let Some(rest) = rest {
        let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
            (c, 0)
        } else if let Some(i) = rest.rfind(['+', '-']) {
            let o = &rest[i + 1..];
            let (oh, om) = o.split_once(':').unwrap_or((o, "0"));
            let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
            (
                &rest[..i],
                sign * (num(oh, 0, 23)? * 3600 + num(om, 0, 59)? * 60),
            )
        } else {
            (rest, 0)
        };
        let c: Vec<&str> = clock.split(':').collect();
        if !(2..=3).contains(&c.len()) {
            return Err(bad());
        }
        let sec = c
            .get(2)
            .map_or(Ok(0), |x| num(x.split('.').next().unwrap_or(x), 0, 60))?;
        secs += num(c[0], 0, 23)? * 3600 + num(c[1], 0, 59)? * 60 + sec - offset;
    }
    Ok(secs)
}

/// What is said of a file that is not a recording.
pub const NOT_A_RECORDING: &str =
    "not a recording (neither a termtrail .cast.zst nor an asciicast file)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_parses() {
        let now = 1_800_000_000;
        assert_eq!(parse_when("2026-11-20", now), Ok(1_795_132_800));
        assert_eq!(
            parse_when("2026-11-20T14:30:00Z", now),
            Ok(1_795_132_800 + 52_200)
        );
        assert_eq!(
            parse_when("2026-11-20T14:30:00+01:00", now),
            Ok(1_795_132_800 + 48_600)
        );
        assert_eq!(
            parse_when("2026-11-20 14:30", now),
            Ok(1_795_132_800 + 52_200)
        );
        assert_eq!(parse_when("7d", now), Ok(now - 7 * 86_400));
        assert_eq!(parse_when("90m", now), Ok(now - 5400));
        assert_eq!(parse_when("now", now), Ok(now));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-20T25:00",
            "7y",
            "-5d",
        ] {
            assert!(parse_when(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_hold_moments_and_overlap_recordings() {
        let mut header = Header::new(termtrail_format::event::TermSize::DEFAULT);
        header.timestamp = Some(1_000);
        let w = Window {
            since: Some(1_010),
            until: Some(1_020),
        };
        assert!(!w.holds(&header, 9_999_999) && w.holds(&header, 10_000_000));
        assert!(!w.holds(&header, 20_000_000));
        assert!(!w.excludes_start(&header));
        assert!(w.overlaps(Some(1_000), 10_000_000) && !w.overlaps(Some(1_000), 9_000_000));
        assert!(w.ended_before(1_000, 8_000_000) && !w.ended_before(1_000, 9_000_000));
        assert!(!w.overlaps(None, 0) && Window::default().overlaps(None, 0));
        header.timestamp = None;
        assert!(w.excludes_start(&header) && !Window::default().excludes_start(&header));
    }
}
