//! Instant seeking: keyframes, and the screen at any time.
//!
//! A keyframe is the emulator's state ([`Emulator::dump`]) at a point between
//! two events: at the start of every segment, and after every
//! [`KEYFRAME_BYTES`] of output inside one. To show time T, the player takes
//! the last keyframe at or before T, reads (and verifies) only that keyframe's
//! segment, skips the events before the keyframe without emulating them, and
//! emulates at most [`KEYFRAME_BYTES`] of output to reach T. Nothing is
//! replayed from the start.
//!
//! Keyframes are derived data: built by one pass over the recording the first
//! time it is seeked, then cached in
//! `$TERMTRAIL_CACHE_DIR` (default `$XDG_CACHE_HOME/termtrail/keyframes`, or
//! `~/.cache/termtrail/keyframes`) under a name derived from the recording's
//! chain (genesis and every segment's closing link), so a recording that
//! changes gets new keyframes and a stale file is never used. The cache file
//! is a zstd stream of JSON lines, documented in `docs/player.md`. Files
//! without a segment index (plain asciinema `.cast`) are replayed from the
//! start instead.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use termtrail_format::cast::Header;
use termtrail_format::event::{Event, EventData, Micros, TermSize};
use termtrail_format::index::{RecordingIndex, load_index};
use termtrail_format::plain::CastReader;

use crate::term::Emulator;

/// Output emulated between two keyframes, at most (inside one segment).
pub const KEYFRAME_BYTES: usize = 256 << 10;

const CACHE_VERSION: u64 = 1;

/// A saved emulator state between two events.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyframe {
    /// Time of the last event before it (0 at the start).
    pub t: Micros,
    /// Segment of the next event.
    pub segment: usize,
    /// Events of that segment already applied.
    pub event: usize,
    /// Terminal size.
    pub size: TermSize,
    /// The emulator's dump.
    pub dump: String,
}

/// Seek failures.
#[derive(Debug, thiserror::Error)]
pub enum SeekError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file could not be indexed or read.
    #[error("{0}")]
    Index(#[from] termtrail_format::index::IndexError),
    /// A plain cast file failed to parse.
    #[error("{0}")]
    Cast(#[from] termtrail_format::plain::CastError),
    /// A segment on the way does not verify.
    #[error(
        "the recording does not verify at {at}: {problem} (run `termtrail verify` for details)"
    )]
    Tampered {
        /// Where.
        at: String,
        /// What.
        problem: String,
    },
}

/// Where keyframes are cached (None: no cache).
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("TERMTRAIL_CACHE_DIR") {
        return Some(PathBuf::from(d).join("keyframes"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("termtrail").join("keyframes"))
}

/// Whether the file is a plain (uncompressed) asciicast file.
pub fn is_plain(path: &Path) -> io::Result<bool> {
    let mut first = [0u8; 1];
    let n = File::open(path)?.read(&mut first)?;
    Ok(n == 1 && first[0] == b'{')
}

/// A recording opened for seeking.
pub struct Seeker {
    path: PathBuf,
    inner: Inner,
}

enum Inner {
    Indexed {
        index: Box<RecordingIndex>,
        keyframes: Vec<Keyframe>,
    },
    Plain {
        header: Box<Header>,
    },
}

impl Seeker {
    /// Opens `path`, loading cached keyframes or building them (one pass)
    /// when `cache` allows; `progress` is called with segments done / total
    /// while building.
    pub fn open(
        path: &Path,
        cache: Option<&Path>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Seeker, SeekError> {
        if is_plain(path)? {
            let reader = CastReader::new(BufReader::new(File::open(path)?))?;
            return Ok(Seeker {
                path: path.to_path_buf(),
                inner: Inner::Plain {
                    header: Box::new(reader.header().clone()),
                },
            });
        }
        let mut file = File::open(path)?;
        let index = load_index(&mut file)?;
        let key = cache_key(&index);
        let cached = cache.and_then(|d| load_cache(&d.join(format!("{key}.kf")), &key));
        let keyframes = match cached {
            Some(k) => k,
            None => {
                let k = build_keyframes(&index, &mut file, progress)?;
                if let Some(d) = cache {
                    // A cache that cannot be written only costs speed.
                    let _ = save_cache(d, &key, &k);
                }
                k
            }
        };
        Ok(Seeker {
            path: path.to_path_buf(),
            inner: Inner::Indexed {
                index: Box::new(index),
                keyframes,
            },
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        match &self.inner {
            Inner::Indexed { index, .. } => &index.header,
            Inner::Plain { header } => header,
        }
    }

    /// Duration as far as known (the seal's, or the last indexed segment's).
    pub fn duration(&self) -> Option<Micros> {
        match &self.inner {
            Inner::Indexed { index, .. } => Some(index.duration),
            Inner::Plain { .. } => None,
        }
    }

    /// Whether the recording is sealed (its duration is then known).
    pub fn sealed(&self) -> bool {
        matches!(&self.inner, Inner::Indexed { index, .. } if index.sealed)
    }

    /// The keyframes (empty for plain files).
    pub fn keyframes(&self) -> &[Keyframe] {
        match &self.inner {
            Inner::Indexed { keyframes, .. } => keyframes,
            Inner::Plain { .. } => &[],
        }
    }

    /// The screen after every event at or before `t`.
    pub fn screen_at(&self, t: Micros) -> Result<Emulator, SeekError> {
        match &self.inner {
            Inner::Plain { .. } => {
                let mut reader = CastReader::new(BufReader::new(File::open(&self.path)?))?;
                let mut emu = Emulator::new(reader.header().size());
                while let Some(e) = reader.next_event()? {
                    if e.time > t {
                        break;
                    }
                    emu.apply(&e.data);
                }
                Ok(emu)
            }
            Inner::Indexed { index, keyframes } => {
                let k = keyframes.iter().rev().find(|k| k.t <= t);
                let (mut emu, from) = match k {
                    Some(k) => (Emulator::restore(k.size, &k.dump), (k.segment, k.event)),
                    None => (Emulator::new(index.header.size()), (0, 0)),
                };
                let mut file = File::open(&self.path)?;
                walk(index, &mut file, from, &mut |_, _, e| {
                    if e.time > t {
                        return false;
                    }
                    emu.apply(&e.data);
                    true
                })?;
                Ok(emu)
            }
        }
    }
}

/// Passes the events of an indexed recording to `each` (with their segment
/// and place in it), from event `from.1` of segment `from.0` on, reading and
/// verifying one segment at a time, until `each` returns false. Events before
/// damage are passed; the damage is then the error.
fn walk<R: Read + io::Seek>(
    index: &RecordingIndex,
    file: &mut R,
    from: (usize, usize),
    each: &mut dyn FnMut(usize, usize, &Event) -> bool,
) -> Result<(), SeekError> {
    let mut skip = from.1;
    for segment in from.0..index.segments.len() {
        let seg = index.read_segment(file, segment)?;
        for (i, e) in seg.events.iter().enumerate().skip(skip) {
            if !each(segment, i, e) {
                return Ok(());
            }
        }
        if let Some(problem) = seg.problem {
            return Err(SeekError::Tampered {
                at: format!("segment {segment}"),
                problem,
            });
        }
        skip = 0;
    }
    Ok(())
}

/// Builds keyframes by emulating the whole recording once, segment by
/// segment (each verified on its own): one at the first event of every
/// segment, and one after every [`KEYFRAME_BYTES`] of output inside one.
pub fn build_keyframes<R: Read + io::Seek>(
    index: &RecordingIndex,
    file: &mut R,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Keyframe>, SeekError> {
    let mut emu = Emulator::new(index.header.size());
    let mut out = Vec::new();
    let mut last_t = 0;
    let mut fed = 0usize;
    let mut current = None;
    let total = index.segments.len();
    walk(index, file, (0, 0), &mut |segment, event, e| {
        if current != Some(segment) || fed >= KEYFRAME_BYTES {
            if current != Some(segment) {
                progress(segment, total);
                current = Some(segment);
            }
            fed = 0;
            out.push(Keyframe {
                t: last_t,
                segment,
                event,
                size: emu.size(),
                dump: emu.dump(),
            });
        }
        if let EventData::Output(b) = &e.data {
            fed += b.len();
        }
        emu.apply(&e.data);
        last_t = e.time;
        true
    })?;
    progress(total, total);
    Ok(out)
}

/// The cache file name: binds the recording's chain, so any change to the
/// recording (appended segments, a different file) gives another name.
fn cache_key(index: &RecordingIndex) -> String {
    let mut h = Sha256::new();
    h.update(b"termtrail-keyframes-v1\0");
    h.update(index.genesis);
    h.update(KEYFRAME_BYTES.to_le_bytes());
    for s in &index.segments {
        h.update(s.offset.to_le_bytes());
        h.update(s.length.to_le_bytes());
        if let Some(e) = &s.entry {
            h.update(e.link_out.as_bytes());
            h.update(e.sha256.as_bytes());
        }
    }
    hex::encode(&h.finalize()[..16])
}

fn load_cache(path: &Path, key: &str) -> Option<Vec<Keyframe>> {
    let file = File::open(path).ok()?;
    let mut lines = BufReader::new(zstd::stream::read::Decoder::new(file).ok()?).lines();
    let head: Value = serde_json::from_str(&lines.next()?.ok()?).ok()?;
    if head["version"].as_u64() != Some(CACHE_VERSION) || head["key"].as_str() != Some(key) {
        return None;
    }
    let n = head["keyframes"].as_u64()? as usize;
    let mut out = Vec::with_capacity(n.min(1 << 20));
    for line in lines {
        let v: Value = serde_json::from_str(&line.ok()?).ok()?;
        out.push(Keyframe {
            t: v["t"].as_u64()?,
            segment: v["segment"].as_u64()? as usize,
            event: v["event"].as_u64()? as usize,
            size: TermSize {
                cols: u16::try_from(v["cols"].as_u64()?).ok()?,
                rows: u16::try_from(v["rows"].as_u64()?).ok()?,
            },
            dump: v["dump"].as_str()?.to_string(),
        });
    }
    (out.len() == n).then_some(out)
}

fn save_cache(dir: &Path, key: &str, frames: &[Keyframe]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut enc = zstd::stream::write::Encoder::new(tmp.as_file(), 3)?;
        // Damage to the cache is detected (it is then rebuilt).
        enc.include_checksum(true)?;
        let head = json!({"version": CACHE_VERSION, "key": key, "keyframes": frames.len()});
        writeln!(enc, "{head}")?;
        for k in frames {
            let v = json!({
                "t": k.t, "segment": k.segment, "event": k.event,
                "cols": k.size.cols, "rows": k.size.rows, "dump": k.dump,
            });
            writeln!(enc, "{v}")?;
        }
        enc.finish()?;
    }
    tmp.persist(dir.join(format!("{key}.kf")))
        .map_err(|e| e.error)?;
    Ok(())
}

/// Parses a time: seconds (`90`, `90.5`) or `[[h:]m:]s[.frac]`.
pub fn parse_time(s: &str) -> Result<Micros, String> {
    let bad =
        || format!("bad time {s:?}: use seconds (90, 90.5) or [[h:]m:]s[.ms] (1:30, 1:02:03.250)");
    let s = s.trim();
    let parts: Vec<&str> = s.split(':').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let (last, rest) = parts.split_last().ok_or_else(bad)?;
    let (whole, frac) = match last.split_once('.') {
        Some((w, f)) => (w, f),
        None => (*last, ""),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) || frac.len() > 6 {
        return Err(bad());
    }
    let mut us: u64 = whole.parse::<u64>().map_err(|_| bad())?;
    if !rest.is_empty() && us >= 60 {
        return Err(bad());
    }
    let mut mult = 60;
    for (i, p) in rest.iter().rev().enumerate() {
        if !digits(p) {
            return Err(bad());
        }
        let v: u64 = p.parse().map_err(|_| bad())?;
        if i == 0 && rest.len() == 2 && v >= 60 {
            return Err(bad());
        }
        us = us
            .checked_add(v.checked_mul(mult).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        mult *= 60;
    }
    let frac_us: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().map_err(|_| bad())?
    };
    us.checked_mul(1_000_000)
        .and_then(|v| v.checked_add(frac_us))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("90"), Ok(90_000_000));
        assert_eq!(parse_time("90.5"), Ok(90_500_000));
        assert_eq!(parse_time("1:30"), Ok(90_000_000));
        assert_eq!(parse_time("1:02:03.250"), Ok(3_723_250_000));
        assert_eq!(parse_time("0.000001"), Ok(1));
        for bad in [
            "",
            "x",
            "1:",
            ":1",
            "1:60",
            "1:2:3:4",
            "-1",
            "1.2.3",
            "1.1234567",
            "1:61:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
