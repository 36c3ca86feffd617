//! `termtrail ls`: one line per recording, from the index alone (the header,
//! and the seal or segment index at the end of the file), or fully verified
//! with `--verify`.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use unicode_width::UnicodeWidthStr;

use serde_json::{Value, json};
use termtrail_format::cast::Header;
use termtrail_format::event::Micros;
use termtrail_format::index::IndexError;
use termtrail_format::index::load_index;
use termtrail_format::plain::CastError;
use termtrail_format::plain::CastReader;
use termtrail_format::reader::ReadError;
use termtrail_format::reader::{FileKind, ReadOptions, Signature, Status, read_path, sniff_path};
use termtrail_format::seal::EndReason;
use termtrail_format::sign::Keyring;
use termtrail_format::text::visible;

use crate::pin::KeyCheck;

use crate::select::{MetaFilter, NotRecording, Window};

/// Why a recording could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Reading the file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Neither a termtrail recording nor an asciicast file (or a `.cast`
    /// compressed with zstd), said as every subcommand says it.
    #[error("{}", .0.message())]
    NotARecording(NotRecording),
    /// An asciicast file whose header does not read.
    #[error("not a valid asciicast file: {0}")]
    NotCast(CastError),
    /// An asciicast file with a bad line.
    #[error("asciicast file: {0}")]
    Cast(CastError),
    /// A recording whose header and index do not read.
    #[error("not a readable recording: {0}")]
    Index(IndexError),
    /// The verifying reader could not read the recording.
    #[error("{0}")]
    Read(#[from] ReadError),
    /// An object of a store could not be read.
    #[error("{0}")]
    Fetch(#[from] termtrail_store::StoreError),
}

/// What is known of a recording's integrity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Has a seal (not verified: `ls` without `--verify`).
    Sealed,
    /// No seal (cut short: its recorder stopped); not verified.
    Unsealed,
    /// No seal yet: a running recorder (this pid, when known) holds the
    /// file's writer lock and is writing it (verified as far as written
    /// with `--verify`).
    Recording(Option<u32>),
    /// Verified: every chunk and the seal.
    Intact,
    /// Verified as far as written; no seal.
    VerifiedUnsealed,
    /// Verification found damage.
    Tampered(String),
    /// A plain asciicast file: nothing to verify.
    Plain,
}

impl State {
    /// The short word shown in the table.
    pub fn word(&self) -> &'static str {
        match self {
            State::Sealed => "sealed",
            State::Unsealed => "unsealed",
            State::Recording(_) => "recording",
            State::Intact => "verified",
            State::VerifiedUnsealed => "verified-unsealed",
            State::Tampered(_) => "TAMPERED",
            State::Plain => "plain",
        }
    }
}

/// One recording.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where it is: a path or an `s3://` URL.
    pub name: String,
    /// Its header.
    pub header: Box<Header>,
    /// File size in bytes.
    pub size: u64,
    /// Duration (the seal's, or as far as indexed / read).
    pub duration: Micros,
    /// Why it ended (from the seal).
    pub end: Option<EndReason>,
    /// Integrity.
    pub state: State,
    /// Signature: None unsigned, Some(valid?) — validity known only when
    /// verified (Some(true) without `--verify` means "carries a signature").
    pub signed: Option<bool>,
    /// The signing key's id (docs/format.md §9.2): with `--verify`, the key
    /// whose signature verified (or, for a bad signature or an unsealed
    /// file, the key the header names); without, the key the header names.
    pub key_id: Option<String>,
    /// With `--verify` and pinned keys (`--key`, `--keyring`): the key
    /// check (docs/format.md §9.3); None otherwise.
    pub key_check: Option<KeyCheck>,
}

/// Reads what `ls` shows about `path`; `verify` reads and checks everything,
/// and then checks the signer against `keys` when some are pinned.
pub fn entry(path: &Path, verify: bool, keys: Option<&Keyring>) -> Result<Entry, ListError> {
    let size = std::fs::metadata(path)?.len();
    let kind = sniff_path(path)?;
    if kind.is_none() {
        return Err(ListError::NotARecording(crate::select::NotRecording::Other));
    }
    if kind == Some(FileKind::Plain) {
        let file = File::open(path)?;
        let mut r = CastReader::new(BufReader::new(file)).map_err(ListError::NotCast)?;
        let header = Box::new(r.header().clone());
        let mut duration = 0;
        while let Some(e) = r.next_event().map_err(ListError::Cast)? {
            duration = e.time;
        }
        return Ok(Entry {
            name: path.display().to_string(),
            header,
            size,
            duration,
            end: None,
            state: State::Plain,
            signed: None,
            key_id: None,
            key_check: None,
        });
    }
    let mut file = File::open(path)?;
    let mut e = match from_index(&mut file, path.display().to_string(), size) {
        Ok(e) => e,
        // Said as every subcommand says it (compressed JSON, a compressed
        // .cast); told only when the index does not read.
        Err(ListError::Index(e)) => {
            return Err(match crate::select::not_recording(path) {
                Some(not) => ListError::NotARecording(not),
                None => ListError::Index(e),
            });
        }
        Err(e) => return Err(e),
    };
    if verify {
        verify_into(&mut e, path, keys)?;
    }
    if matches!(e.state, State::Unsealed | State::VerifiedUnsealed)
        && let Some(live) = termtrail_format::recover::live::writer_of(path)
    {
        e.state = State::Recording(live.pid);
    }
    Ok(e)
}

/// What the header and index say (no verification).
fn from_index<R: std::io::Read + std::io::Seek>(
    r: &mut R,
    name: String,
    size: u64,
) -> Result<Entry, ListError> {
    let index = load_index(r).map_err(ListError::Index)?;
    let duration = readable_duration(&index, r);
    let key = index.header.termtrail.as_ref().and_then(|m| m.key.as_ref());
    Ok(Entry {
        name,
        signed: key.map(|_| true),
        key_id: key.map(|k| k.id.clone()),
        key_check: None,
        header: Box::new(index.header),
        size,
        duration,
        end: index.end,
        state: if index.sealed {
            State::Sealed
        } else {
            State::Unsealed
        },
    })
}

/// The duration as far as the recording reads: the seal's; for an unsealed
/// one, the end time of its last chunk that verifies (links and content) in
/// a trailing segment without an index entry (the one segment read), else
/// the last index entry's end time.
fn readable_duration<R: std::io::Read + std::io::Seek>(
    index: &termtrail_format::index::RecordingIndex,
    r: &mut R,
) -> termtrail_format::event::Micros {
    let last = index.segments.len().saturating_sub(1);
    if index.sealed || index.segments.get(last).is_none_or(|s| s.entry.is_some()) {
        return index.duration;
    }
    let Ok(text) = index.read_segment_text(r, last) else {
        return index.duration;
    };
    let verified = (0..text.chunks()).take_while(|&k| text.verify(k)).last();
    verified.map_or(index.duration, |k| index.duration.max(text.record(k).last))
}

/// Reads `path` fully through the verifying reader into `e`.
fn verify_into(e: &mut Entry, path: &Path, keys: Option<&Keyring>) -> Result<(), ListError> {
    {
        let opts = ReadOptions {
            events: false,
            ..ReadOptions::default()
        };
        let report = read_path(path, &opts, &mut ())?;
        if keys.is_some_and(|k| !k.is_empty()) {
            e.key_check = Some(crate::pin::check(&report, keys).check);
        }
        e.state = match report.status {
            Status::Intact => State::Intact,
            Status::Unsealed => State::VerifiedUnsealed,
            Status::Tampered => State::Tampered(
                report
                    .problems
                    .first()
                    .map_or_else(|| "damaged".to_string(), |p| p.message.clone()),
            ),
        };
        (e.signed, e.key_id) = match report.signature {
            // Unsealed (or damaged before the seal): the key the header
            // names, if any; nothing is signed yet.
            Signature::Unsigned => (None, e.key_id.take()),
            Signature::Valid { key_id } => (Some(true), Some(key_id)),
            Signature::Invalid { key_id } => (Some(false), Some(key_id)),
        };
        if report.status != Status::Intact {
            e.duration = report.last_verified;
        }
        e.end = report.end.or(e.end.take().filter(|_| report.sealed));
    }
    Ok(())
}

/// [`entry`] for a local file or an S3 object: an object's header and index
/// come through ranged GETs; with `verify` (or for a plain `.cast`) it is
/// fetched whole.
pub fn entry_of(
    t: &crate::remote::Target,
    verify: bool,
    keys: Option<&Keyring>,
) -> Result<Entry, ListError> {
    use crate::remote::Target;
    match t {
        Target::File(p) => entry(p, verify, keys),
        Target::Object { store, key, size } => {
            if verify || key.ends_with(".cast") {
                let (path, _fetched) = t.local().map_err(ListError::Fetch)?;
                let mut e = entry(&path, verify, keys)?;
                e.name = t.name();
                e.size = *size;
                return Ok(e);
            }
            let mut r = store.open(key, *size, 256 << 10)?;
            match from_index(&mut r, t.name(), *size) {
                // An object that is no recording is said as a local file
                // is (a compressed .cast, compressed JSON): fetched to tell.
                Err(ListError::Index(e)) => {
                    let (path, _fetched) = t.local().map_err(ListError::Fetch)?;
                    Err(match crate::select::not_recording(&path) {
                        Some(not) => ListError::NotARecording(not),
                        None => ListError::Index(e),
                    })
                }
                other => other,
            }
        }
    }
}

impl Entry {
    /// Whether pinned keys were given and this recording fails them
    /// (`key-not-pinned` or `unsigned`).
    pub fn pin_failed(&self) -> bool {
        self.key_check.is_some_and(|c| c.reason_class().is_some())
    }

    /// Start, Unix seconds (None: the header has no timestamp).
    pub fn start(&self) -> Option<u64> {
        self.header.timestamp
    }

    /// Whether the recording passes the metadata filter and overlaps the
    /// time `window`.
    pub fn selected(&self, filter: &MetaFilter, window: &Window) -> bool {
        filter.accepts(&self.header) && window.overlaps(self.start(), self.duration)
    }

    fn meta(&self, f: fn(&termtrail_format::cast::RecordingMeta) -> Option<&String>) -> &str {
        self.header
            .termtrail
            .as_ref()
            .and_then(f)
            .map_or("-", String::as_str)
    }

    /// Whether a running recorder is still writing it (its duration is
    /// not known until it is sealed).
    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Recording(_))
    }

    /// One JSON object: the schema docs/player.md gives for `ls --json`.
    pub fn to_json(&self) -> Value {
        let m = self.header.termtrail.as_ref();
        json!({
            "path": self.name,
            "start": self.start(),
            "started": self.start().map(|s| crate::hits::rfc3339(s, 0)),
            // Still being written: no duration yet (`live` says why).
            "duration": (!self.is_live()).then(|| self.duration as f64 / 1e6),
            "live": self.is_live(),
            "id": m.map(|m| m.id.as_str()),
            "source": m.and_then(|m| m.source.as_deref()),
            "session": m.and_then(|m| m.session.as_deref()),
            "shell": m.and_then(|m| m.shell.as_deref()),
            "principal": m.and_then(|m| m.principal.as_deref()),
            "title": self.header.title.as_deref(),
            "size": self.size,
            "end": self.end.as_ref().map(|e| e.to_string()),
            "state": self.state.word().to_lowercase(),
            "problem": match &self.state { State::Tampered(p) => Some(p.as_str()), _ => None },
            "recorder_pid": match self.state { State::Recording(pid) => pid, _ => None },
            "signed": self.signed,
            "key_id": self.key_id,
            "key_check": self.key_check.map(KeyCheck::token),
        })
    }
}

/// Sorts by start time (recordings without one first), then path.
pub fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| (a.start(), &a.name).cmp(&(b.start(), &b.name)));
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else if v < 10.0 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

fn duration(us: Micros) -> String {
    crate::time::format_offset(us)
}

/// `s` shortened to `max` characters with `…`, controls and bidi
/// characters made visible first (text from the recording); an escape is
/// never cut in two.
fn short(s: &str, max: usize) -> String {
    let shown = visible(s);
    if columns(&shown) <= max {
        return shown.into_owned();
    }
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        let mut one = String::new();
        termtrail_format::text::push_visible(&mut one, c.encode_utf8(&mut [0; 4]));
        let w = columns(&one);
        if n + w > max - 1 {
            break;
        }
        out.push_str(&one);
        n += w;
    }
    out.push('…');
    out
}

/// Prints the table: a header row, then one aligned row per recording.
pub fn print_table(out: &mut dyn Write, entries: &[Entry]) -> io::Result<()> {
    let mut rows = vec![
        [
            "START (UTC)",
            "DURATION",
            "SOURCE",
            "SESSION",
            "SHELL",
            "PRINCIPAL",
            "SIZE",
            "END",
            "STATE",
            "KEY",
            "TITLE",
            "PATH",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for e in entries {
        let start = e
            .start()
            .map_or("-".into(), crate::time::format_instant_secs);
        let state = state_text(e);
        rows.push(vec![
            start,
            // A recording still being written has no duration yet.
            if e.is_live() {
                "live".into()
            } else {
                duration(e.duration)
            },
            visible(e.meta(|m| m.source.as_ref())).into_owned(),
            short(e.meta(|m| m.session.as_ref()), 20),
            short(e.meta(|m| m.shell.as_ref()), 20),
            short(e.meta(|m| m.principal.as_ref()), 16),
            human_size(e.size),
            match (&e.end, &e.state) {
                (Some(r), _) => short(&r.to_string(), 24),
                (None, State::Recording(Some(pid))) => format!("live (pid {pid})"),
                (None, State::Recording(None)) => "live".into(),
                (None, _) => "-".into(),
            },
            state,
            // The id as the file claims it: shortened, controls visible.
            short(e.key_id.as_deref().unwrap_or("-"), 16),
            short(e.header.title.as_deref().unwrap_or("-"), 30),
            visible(&e.name).into_owned(),
        ]);
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| columns(&r[c])).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[c] - columns(cell) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// The width [`print_short`] fits its rows to when output is not a
/// terminal (and `COLUMNS` is not set), in columns.
pub const SHORT_WIDTH: usize = 100;

/// Prints the short table of `ls`, fitted to `width` columns: START,
/// DURATION, ID (shortened like git's, see [`short_ids`]), STATE, TITLE and
/// NAME, the name relative to `root` (the store or directory listed). To
/// fit, TITLE is cut (down to 5 columns); NAME never is, since it is what
/// other subcommands take: a row whose name does not fit is wider.
pub fn print_short(
    out: &mut dyn Write,
    entries: &[Entry],
    root: Option<&str>,
    width: usize,
) -> io::Result<()> {
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e.header.termtrail.as_ref().map_or("-", |m| m.id.as_str()))
        .collect();
    let ids = short_ids(&ids);
    let mut rows = vec![
        ["START (UTC)", "DURATION", "ID", "STATE"]
            .map(String::from)
            .to_vec(),
    ];
    let mut titles = vec!["TITLE".to_string()];
    let mut names = vec!["NAME".to_string()];
    for (e, id) in entries.iter().zip(ids) {
        rows.push(vec![
            e.start()
                .map_or("-".into(), crate::time::format_instant_secs),
            // A recording still being written has no duration yet.
            if e.is_live() {
                "live".into()
            } else {
                duration(e.duration)
            },
            short(&id, 32),
            state_text(e),
        ]);
        titles.push(e.header.title.clone().unwrap_or_else(|| "-".into()));
        let name = root
            .map(|r| r.trim_end_matches('/'))
            .and_then(|r| e.name.strip_prefix(r))
            .and_then(|n| n.strip_prefix('/'))
            .unwrap_or(&e.name);
        names.push(visible(name).into_owned());
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| columns(&r[c])).max().unwrap_or(0))
        .collect();
    // What is left after START, DURATION, ID and STATE goes to NAME
    // first (whole), then to TITLE (at most 30, at least 5).
    let left = width.saturating_sub(widths.iter().map(|w| w + 2).sum());
    let widest = |v: &[String]| v.iter().map(|t| columns(&visible(t))).max().unwrap_or(0);
    let title_w = widest(&titles)
        .min(30)
        .min(left.saturating_sub(widest(&names) + 2))
        .max(5);
    for ((r, title), name) in rows.iter().zip(&titles).zip(&names) {
        let mut line = String::new();
        for (cell, w) in r.iter().zip(&widths) {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - columns(cell) + 2));
        }
        let title = short(title, title_w);
        let pad = title_w.saturating_sub(columns(&title)) + 2;
        line.push_str(&title);
        line.extend(std::iter::repeat_n(' ', pad));
        line.push_str(name);
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// STATE as the tables show it: the state, `+signed` / `+BAD-SIGNATURE`,
/// `+pinned` / `+NOT-PINNED`.
fn state_text(e: &Entry) -> String {
    let mut state = match e.signed {
        Some(true) => format!("{}+signed", e.state.word()),
        Some(false) => format!("{}+BAD-SIGNATURE", e.state.word()),
        None => e.state.word().to_string(),
    };
    match e.key_check {
        Some(KeyCheck::Pinned) => state.push_str("+pinned"),
        _ if e.pin_failed() => state.push_str("+NOT-PINNED"),
        _ => {}
    }
    state
}

/// How many terminal columns `s` takes (a CJK character two).
fn columns(s: &str) -> usize {
    s.width()
}

/// Ids shortened like git's abbreviated hashes: the fewest leading
/// characters, at least 8, that no other id of `ids` shares (an id
/// another one equals is kept whole).
pub fn short_ids(ids: &[&str]) -> Vec<String> {
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    ids.iter()
        .map(|id| {
            let i = sorted.partition_point(|x| x < id);
            let common = |other: Option<&&str>| {
                other.filter(|o| *o != id).map_or(0, |o| {
                    id.bytes()
                        .zip(o.bytes())
                        .take_while(|(a, b)| a == b)
                        .count()
                })
            };
            let after = sorted[i..].iter().find(|o| *o != id);
            let need = common(i.checked_sub(1).and_then(|j| sorted.get(j))).max(common(after)) + 1;
            id.chars().take(need.max(8)).collect()
        })
        .collect()
}

/// Reads `files` on `jobs` threads; results in the order of `files`.
pub fn entries(
    files: &[crate::remote::Target],
    verify: bool,
    keys: Option<&Keyring>,
    jobs: usize,
) -> Vec<Result<Entry, ListError>> {
    crate::remote::par_map(files, jobs, |t| entry_of(t, verify, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_well() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1536), "1.5K");
        assert_eq!(human_size(200 << 20), "200M");
        assert_eq!(duration(3_723_000_000), "1:02:03.000");
        assert_eq!(short("abcdef", 4), "abc…");
        assert_eq!(short("abc", 4), "abc");
        assert_eq!(short("a\u{9b}2J", 4), "a…");
        assert_eq!(short("ab\x1b]", 6), "ab^[]");
        assert_eq!(short("ab\x1b]0;x", 6), "ab^[]…");
        assert_eq!(
            short_ids(&["0123456789ab", "0123456789cd", "fedcba9876543210", "ab"]),
            ["0123456789a", "0123456789c", "fedcba98", "ab"]
        );
    }
}
