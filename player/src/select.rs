//! Which recordings a command reads: files found under the paths given
//! (directories walked; `termtrail_format::reader::sniff_path` says what
//! kind of file each is), and the filters on them — metadata
//! ([`MetaFilter`]) and a time window ([`Window`], from `--since` /
//! `--until` values read by [`crate::time::parse_instant`]). grep, ls and the
//! reading of S3 prefixes all select through here.

use std::io;
use std::path::{Path, PathBuf};

use termtrail_format::cast::Header;
use termtrail_format::event::Micros;

use crate::time::UnixMicros;

/// Expands `paths` into the files to search: files as given, directories
/// walked recursively (names starting with `.` skipped, symbolic links to
/// directories not followed), in name order, taking only files named like
/// recordings ([`named_like_a_recording`]): a README or a picture beside
/// recordings is not one, and is passed over without a word, as ripgrep
/// passes over binary files (a file named like a recording that is not one
/// is still reported). Paths that cannot be read are returned as errors.
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
        } else if (lm.is_file() || (lm.file_type().is_symlink() && p.is_file()))
            && named_like_a_recording(&p)
        {
            files.push(p);
        }
    }
}

/// Whether a file's name says it is a recording: `.cast.zst` (termtrail's
/// recordings, in a store, its S3 spool or anywhere) or `.cast` (asciicast
/// files, which termtrail reads too).
pub fn named_like_a_recording(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .is_some_and(|n| n.ends_with(".cast.zst") || n.ends_with(".cast"))
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

/// A time window in Unix microseconds; either end may be open. Both ends
/// are inclusive, compared to the millisecond (the precision instants are
/// printed with, so a printed time given back as `--until` holds its event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// From this instant on (Unix µs).
    pub since_us: Option<UnixMicros>,
    /// Up to this instant (Unix µs).
    pub until_us: Option<UnixMicros>,
}

/// An instant cut to its millisecond.
fn ms(us: i64) -> i64 {
    us.div_euclid(1000)
}

impl Window {
    /// Whether neither end is set (every time is inside).
    pub fn is_open(&self) -> bool {
        self.since_us.is_none() && self.until_us.is_none()
    }

    /// Whether the instant `at` (Unix µs) is inside.
    pub fn holds_instant(&self, at: UnixMicros) -> bool {
        self.since_us.is_none_or(|s| ms(at) >= ms(s))
            && self.until_us.is_none_or(|u| ms(at) <= ms(u))
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
        self.holds_instant(start as i64 * 1_000_000 + t as i64)
    }

    /// Whether nothing of the recording `header` starts can be inside: it
    /// starts after `until`, or has no start time and the window is not
    /// open.
    pub fn excludes_start(&self, header: &Header) -> bool {
        match (self.until_us, header.timestamp) {
            (Some(u), Some(start)) => ms(start as i64 * 1_000_000) > ms(u),
            (Some(_) | None, None) => !self.is_open(),
            (None, Some(_)) => false,
        }
    }

    /// Whether a recording that started at `start` (Unix seconds) and
    /// lasted `duration` ended before `since`, with a second's slack for
    /// the start's rounding.
    pub fn ended_before(&self, start: u64, duration: Micros) -> bool {
        self.since_us
            .is_some_and(|since| ((start + 1) as i64) * 1_000_000 + (duration as i64) < since)
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
        let start = start as i64 * 1_000_000;
        let end = start + duration as i64;
        self.since_us.is_none_or(|s| ms(end) >= ms(s))
            && self.until_us.is_none_or(|u| ms(start) <= ms(u))
    }

    /// `since` in whole Unix seconds (rounded down), for listings by day.
    pub fn since_secs(&self) -> Option<i64> {
        self.since_us.map(|s| s.div_euclid(1_000_000))
    }
}

/// What is said of a file that is not a recording.
pub const NOT_A_RECORDING: &str =
    "not a recording (neither a termtrail .cast.zst nor an asciicast file)";

/// What is said of an asciicast file compressed with zstd by something
/// other than termtrail (a `.cast` run through `zstd`): no hash chain, and
/// readable once decompressed.
pub const COMPRESSED_CAST: &str = "not a recording: a zstd-compressed asciicast file, not a termtrail one (`zstd -d` it, then `termtrail import` seals it)";

/// Which of the two kinds of file that are not recordings a file is, by
/// its first bytes: what [`NotRecording::message`] says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRecording {
    /// Neither zstd nor `{` first (a README, a picture, an empty file), or
    /// zstd whose first line is not an asciicast header (a compressed
    /// README, compressed JSON).
    Other,
    /// zstd whose first line is an asciicast header without a `termtrail`
    /// block: a plain `.cast` compressed with `zstd`.
    CompressedCast,
}

impl NotRecording {
    /// The one line every subcommand says of such a file (after `FILE: `).
    pub fn message(self) -> &'static str {
        match self {
            NotRecording::Other => NOT_A_RECORDING,
            NotRecording::CompressedCast => COMPRESSED_CAST,
        }
    }
}

/// How much of a zstd file's decompressed start is read to find its first
/// line.
const HEAD_LIMIT: u64 = 64 * 1024;

/// What `path` is when it is plainly not a recording ([`NotRecording`]),
/// said the same way by every subcommand; None when it may be one: a plain
/// asciicast file (judged by [`bad_plain_cast`]), zstd whose first line is
/// a termtrail header or mentions one (a damaged recording is damage, not
/// another kind of file), and a file that cannot be told (it does not open,
/// its first frame does not decode): that is for the reader to report, as
/// damage or as the I/O error it is.
pub fn not_recording(path: &Path) -> Option<NotRecording> {
    use std::io::Read;
    use termtrail_format::reader::{FileKind, sniff_path};
    match sniff_path(path) {
        Ok(None) => return Some(NotRecording::Other),
        Ok(Some(FileKind::Chained)) => {}
        _ => return None,
    }
    let f = std::fs::File::open(path).ok()?;
    let mut decoder = zstd::stream::read::Decoder::new(f).ok()?.take(HEAD_LIMIT);
    // The first line only (a header is a few hundred bytes).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        match decoder.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                let from = head.len();
                head.extend_from_slice(&buf[..n]);
                if let Some(i) = head[from..].iter().position(|b| *b == b'\n') {
                    break Some(from + i);
                }
            }
            Err(_) if head.is_empty() => return None,
            Err(_) => break None,
        }
    };
    let line = &head[..end.unwrap_or(head.len())];
    match line.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => return Some(NotRecording::Other),
        None if head.is_empty() => return None,
        None => return Some(NotRecording::Other),
    }
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(line) else {
        // A header cut or damaged: a recording's is damage to report.
        let mentions = line.windows(11).any(|w| w == b"\"termtrail\"");
        return (!mentions).then_some(NotRecording::Other);
    };
    if obj.contains_key("termtrail") {
        return None;
    }
    let cast = obj.get("version").is_some_and(|v| v.is_u64())
        && (obj.contains_key("width") || obj.contains_key("term"));
    Some(if cast {
        NotRecording::CompressedCast
    } else {
        NotRecording::Other
    })
}

/// Whether `path` is plainly not a recording ([`not_recording`]).
pub fn not_a_recording(path: &Path) -> bool {
    not_recording(path).is_some()
}

/// The one line every subcommand says of a local file given as a recording
/// that is none (after `FILE: `): [`NotRecording::message`], or `not a
/// valid asciicast file: WHY` for a plain asciicast file whose header does
/// not read. None when the file may be a recording (see [`not_recording`]).
pub fn not_a_recording_why(path: &Path) -> Option<String> {
    if let Some(kind) = not_recording(path) {
        return Some(kind.message().to_string());
    }
    bad_plain_cast(path).map(|why| format!("not a valid asciicast file: {why}"))
}

/// Why a plain asciicast file (first byte `{`) is not a valid one: its
/// header line does not read (None when it does, or the file is not a
/// plain one). Said by every subcommand as `not a valid asciicast file:
/// WHY`.
pub fn bad_plain_cast(path: &Path) -> Option<String> {
    use termtrail_format::reader::{FileKind, sniff_path};
    if !matches!(sniff_path(path), Ok(Some(FileKind::Plain))) {
        return None;
    }
    let f = std::fs::File::open(path).ok()?;
    termtrail_format::plain::CastReader::new(std::io::BufReader::new(f))
        .err()
        .map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_take_only_files_named_like_recordings() {
        let d = std::env::temp_dir().join(format!("tt-select-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        for f in [
            "a.cast.zst",
            "b.cast",
            "README.md",
            "shot.png",
            "c.cast.zst.partial",
            "sub/d.cast",
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let (files, errors) = collect_files(std::slice::from_ref(&d));
        let names: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(&d).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.cast.zst", "b.cast", "sub/d.cast"]);
        assert!(errors.is_empty());
        // A file named on the command line is taken whatever its name.
        let (files, _) = collect_files(&[d.join("README.md")]);
        assert_eq!(files.len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn files_that_are_not_recordings_are_told_by_their_start() {
        let d = tempfile::tempdir().unwrap();
        let kind = |name: &str, bytes: &[u8], zstd: bool| {
            let p = d.path().join(name);
            let bytes = if zstd {
                zstd::encode_all(bytes, 3).unwrap()
            } else {
                bytes.to_vec()
            };
            std::fs::write(&p, bytes).unwrap();
            not_recording(&p)
        };
        assert_eq!(kind("a", b"README\n", false), Some(NotRecording::Other));
        assert_eq!(kind("b", b"README\n", true), Some(NotRecording::Other));
        assert_eq!(kind("c", b"{\"a\":1}\n", true), Some(NotRecording::Other));
        let v2 = b"{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"x\"]\n";
        assert_eq!(kind("d", v2, true), Some(NotRecording::CompressedCast));
        let v3 = b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n";
        assert_eq!(kind("e", v3, true), Some(NotRecording::CompressedCast));
        // A plain cast is judged by its own reader; a termtrail header,
        // even a damaged one, is a recording's.
        assert_eq!(kind("f", v2, false), None);
        let tt = b"{\"version\":3,\"termtrail\":{\"format\":1}}\n";
        assert_eq!(kind("g", tt, true), None);
        assert_eq!(
            kind("h", b"{\"version\":3,\"termtrail\":{\"form", true),
            None
        );
        assert_eq!(kind("i", b"", true), None);
    }

    #[test]
    fn windows_hold_moments_and_overlap_recordings() {
        let mut header = Header::new(termtrail_format::event::TermSize::DEFAULT);
        header.timestamp = Some(1_000);
        let w = Window {
            since_us: Some(1_010_000_000),
            until_us: Some(1_020_000_000),
        };
        assert!(!w.holds(&header, 9_999_999) && w.holds(&header, 10_000_000));
        assert!(w.holds(&header, 20_000_999) && !w.holds(&header, 20_001_000));
        assert!(!w.excludes_start(&header));
        assert!(w.overlaps(Some(1_000), 10_000_000) && !w.overlaps(Some(1_000), 9_000_000));
        assert!(w.ended_before(1_000, 8_000_000) && !w.ended_before(1_000, 9_000_000));
        assert!(!w.overlaps(None, 0) && Window::default().overlaps(None, 0));
        header.timestamp = None;
        assert!(w.excludes_start(&header) && !Window::default().excludes_start(&header));
    }
}
