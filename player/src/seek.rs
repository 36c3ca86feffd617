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
use termtrail_format::index::{RecordingIndex, SegmentText, load_index};
use termtrail_format::plain::CastReader;
use termtrail_format::reader::{FileKind, sniff_path};
use termtrail_store::{ReadSeek, Store};

use crate::term::Emulator;

/// Output emulated between two keyframes, at most (inside one segment).
pub const KEYFRAME_BYTES: usize = 256 << 10;

const CACHE_VERSION: u64 = 3;

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

/// An index that does not load: damage `verify` calls TAMPERED is that
/// verdict ([`SeekError::Tampered`]), anything else a failure to read.
fn index_error(e: termtrail_format::index::IndexError) -> SeekError {
    use termtrail_format::index::IndexError;
    match e {
        IndexError::Damaged(words) => SeekError::Tampered {
            at: "segment 0".into(),
            problem: format!("segment 0 does not decompress ({words})"),
        },
        e => SeekError::Index(e),
    }
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

/// Where a seeker reads from: a local file, or an object of a store read
/// through ranged reads (only the index and the segments needed are
/// fetched).
#[derive(Clone)]
enum Origin {
    File(PathBuf),
    Object {
        store: std::sync::Arc<dyn Store>,
        key: String,
        size: u64,
    },
}

impl Origin {
    fn open(&self) -> io::Result<Box<dyn ReadSeek>> {
        Ok(match self {
            Origin::File(p) => Box::new(File::open(p)?),
            Origin::Object { store, key, size } => {
                store.open(key, *size, 1 << 20).map_err(io::Error::other)?
            }
        })
    }

    /// What identifies the bytes read: for a file its device, inode, size,
    /// and modification and change times in nanoseconds (any write changes
    /// the change time); for an object its key and size (the store does not
    /// hand out ETags yet). A keyframe cache entry built from other bytes is
    /// not used.
    fn identity(&self) -> io::Result<String> {
        Ok(match self {
            Origin::File(p) => {
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::metadata(p)?;
                format!(
                    "file:{}:{}:{}:{}.{:09}:{}.{:09}",
                    m.dev(),
                    m.ino(),
                    m.size(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec()
                )
            }
            Origin::Object { key, size, .. } => format!("object:{size}:{key}"),
        })
    }

    fn path(&self) -> io::Result<&Path> {
        match self {
            Origin::File(p) => Ok(p),
            Origin::Object { .. } => Err(io::Error::other(
                "a plain asciicast object must be fetched first",
            )),
        }
    }
}

/// A recording opened for seeking.
pub struct Seeker {
    path: Origin,
    inner: Inner,
    markers: Vec<(Micros, String)>,
    duration: Micros,
    damage: Option<String>,
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

/// What one pass over a recording learns.
struct Scan {
    keyframes: Vec<Keyframe>,
    markers: Vec<(Micros, String)>,
    last: Micros,
    /// The largest size the recording asked for beyond
    /// [`crate::term::MAX_REPLAY_SIZE`] (header or resize), when it did:
    /// keyframes hold the clamped size, this lets a cached open still say so.
    oversize: Option<TermSize>,
}

impl Seeker {
    /// Opens `path`, loading cached keyframes or building them (one pass)
    /// when `cache` allows; `progress` is called with segments done / total
    /// while building.
    ///
    /// A recording that is damaged part-way still opens: keyframes and
    /// markers cover the verified part before the damage ([`Seeker::damage`]
    /// says where), and reading past it fails with [`SeekError::Tampered`].
    /// Nothing is cached for it.
    pub fn open(
        path: &Path,
        cache: Option<&Path>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Seeker, SeekError> {
        if sniff_path(path)? == Some(FileKind::Plain) {
            return Seeker::open_plain(path);
        }
        Seeker::open_source(Origin::File(path.to_path_buf()), cache, progress)
    }

    /// [`Seeker::open`] for a recording in a store (a `.cast.zst` object):
    /// the index and then only the segments read are fetched, by ranged
    /// reads.
    pub fn open_object(
        store: std::sync::Arc<dyn Store>,
        key: &str,
        size: u64,
        cache: Option<&Path>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Seeker, SeekError> {
        let source = Origin::Object {
            store,
            key: key.to_string(),
            size,
        };
        Seeker::open_source(source, cache, progress)
    }

    fn open_source(
        source: Origin,
        cache: Option<&Path>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Seeker, SeekError> {
        let identity = source.identity()?;
        let mut file = source.open()?;
        let index = load_index(&mut file).map_err(index_error)?;
        let key = cache_key(&index);
        let cached = cache.and_then(|d| load_cache(&d.join(format!("{key}.kf")), &key, &identity));
        let (scan, damage) = match cached {
            Some(scan) => (scan, None),
            None => {
                let (scan, damage) = scan_indexed(&index, &mut file, progress);
                // The file may have changed while it was read: then the
                // entry is not written (the next open rebuilds it).
                let same = source.identity().is_ok_and(|i| i == identity);
                if let (Some(d), None, true) = (cache, &damage, same) {
                    // A cache that cannot be written only costs speed.
                    let _ = save_cache(d, &key, &identity, &scan);
                }
                (scan, damage)
            }
        };
        if let Some(size) = scan.oversize {
            // Says so (the notice), also when the keyframes came from the cache.
            crate::term::replay_size(size);
        }
        let duration = if damage.is_some() {
            scan.last
        } else {
            index.duration.max(scan.last)
        };
        Ok(Seeker {
            path: source,
            inner: Inner::Indexed {
                index: Box::new(index),
                keyframes: scan.keyframes,
            },
            markers: scan.markers,
            duration,
            damage: damage.map(|e| match e {
                SeekError::Tampered { at, problem } => format!("{problem} ({at})"),
                other => other.to_string(),
            }),
        })
    }

    /// Opens `path` for reading forward (grep's screen lines): cached
    /// keyframes are used when there are some, but none are built, so
    /// [`Seeker::cursor_at`] may read from the start, and markers are not
    /// known.
    pub fn open_lazy(path: &Path, cache: Option<&Path>) -> Result<Seeker, SeekError> {
        if sniff_path(path)? == Some(FileKind::Plain) {
            return Seeker::open_plain(path);
        }
        let identity = Origin::File(path.to_path_buf()).identity()?;
        let mut file = File::open(path)?;
        let index = load_index(&mut file).map_err(index_error)?;
        let key = cache_key(&index);
        let scan = cache.and_then(|d| load_cache(&d.join(format!("{key}.kf")), &key, &identity));
        let (keyframes, markers) =
            scan.map_or((Vec::new(), Vec::new()), |s| (s.keyframes, s.markers));
        Ok(Seeker {
            path: Origin::File(path.to_path_buf()),
            duration: index.duration,
            inner: Inner::Indexed {
                index: Box::new(index),
                keyframes,
            },
            markers,
            damage: None,
        })
    }

    /// A plain asciicast file has no index: one pass finds its duration and
    /// markers; seeking replays from the start.
    fn open_plain(path: &Path) -> Result<Seeker, SeekError> {
        let mut reader = CastReader::new(BufReader::new(File::open(path)?))?;
        let header = Box::new(reader.header().clone());
        let mut markers = Vec::new();
        let mut last = 0;
        while let Some(e) = reader.next_event()? {
            last = e.time;
            if let EventData::Marker(label) = e.data {
                markers.push((e.time, label));
            }
        }
        Ok(Seeker {
            path: Origin::File(path.to_path_buf()),
            inner: Inner::Plain { header },
            markers,
            duration: last,
            damage: None,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        match &self.inner {
            Inner::Indexed { index, .. } => &index.header,
            Inner::Plain { header } => header,
        }
    }

    /// Duration: the seal's, or the time of the last readable event.
    pub fn duration(&self) -> Micros {
        self.duration
    }

    /// Whether the recording is sealed (false for plain asciicast files,
    /// which have no seal).
    pub fn sealed(&self) -> bool {
        matches!(&self.inner, Inner::Indexed { index, .. } if index.sealed)
    }

    /// Whether the file is a plain asciicast file (no chain to verify).
    pub fn is_plain(&self) -> bool {
        matches!(self.inner, Inner::Plain { .. })
    }

    /// Where the recording stops verifying, if it does.
    pub fn damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }

    /// The markers (`m` events) with their times, in order.
    pub fn markers(&self) -> &[(Micros, String)] {
        &self.markers
    }

    /// The keyframes (empty for plain files).
    pub fn keyframes(&self) -> &[Keyframe] {
        match &self.inner {
            Inner::Indexed { keyframes, .. } => keyframes,
            Inner::Plain { .. } => &[],
        }
    }

    /// The segment holding time `t` (None for plain files, which have no
    /// segments).
    pub fn segment_at(&self, t: Micros) -> Option<usize> {
        match &self.inner {
            Inner::Indexed { index, .. } => index.segment_at(t),
            Inner::Plain { .. } => None,
        }
    }

    /// The segments that may hold events from `t0` to `t1` (none for plain
    /// files).
    pub fn segments_between(&self, t0: Micros, t1: Micros) -> Vec<usize> {
        match &self.inner {
            Inner::Indexed { index, .. } => index.segments_between(t0, t1),
            Inner::Plain { .. } => Vec::new(),
        }
    }

    /// A cursor from event `event` of `segment` (plain files: from the
    /// start), read and verified as [`Seeker::cursor_at`]'s.
    pub fn cursor_from(&self, segment: usize, event: usize) -> Result<Cursor, SeekError> {
        Ok(match &self.inner {
            Inner::Plain { .. } => Cursor::plain(CastReader::new(BufReader::new(File::open(
                self.path.path()?,
            )?))?),
            Inner::Indexed { index, .. } => {
                Cursor::indexed(self.path.open()?, index.clone(), (segment, event))
            }
        })
    }

    /// Segment `segment` read for random access (its chunk chain checked,
    /// each chunk hashed when its events are taken). An error for a plain
    /// file, which has no segments.
    pub fn segment_text(&self, segment: usize) -> Result<SegmentText, SeekError> {
        let Inner::Indexed { index, .. } = &self.inner else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a plain asciicast file has no segments",
            )
            .into());
        };
        Ok(index.read_segment_text(&mut self.path.open()?, segment)?)
    }

    /// The screen after every event at or before `t`.
    pub fn screen_at(&self, t: Micros) -> Result<Emulator, SeekError> {
        Ok(self.cursor_at(t)?.0)
    }

    /// The screen after every event at or before `t`, and a cursor over the
    /// events after it.
    pub fn cursor_at(&self, t: Micros) -> Result<(Emulator, Cursor), SeekError> {
        let (mut emu, mut cursor) = match &self.inner {
            Inner::Plain { header } => {
                let reader = CastReader::new(BufReader::new(File::open(self.path.path()?)?))?;
                (Emulator::new(header.size()), Cursor::plain(reader))
            }
            Inner::Indexed { index, keyframes } => {
                let k = keyframes.iter().rev().find(|k| k.t <= t);
                let (emu, from) = match k {
                    Some(k) => (Emulator::restore(k.size, &k.dump), (k.segment, k.event)),
                    None => (Emulator::new(index.header.size()), (0, 0)),
                };
                let cursor = Cursor::indexed(self.path.open()?, index.clone(), from);
                (emu, cursor)
            }
        };
        while let Some(e) = cursor.next_if(|e| e.time <= t)? {
            emu.apply(&e.data);
        }
        Ok((emu, cursor))
    }
}

/// The events of a recording from some point on, read (and for indexed
/// recordings, verified) one segment at a time. After the events before a
/// damaged place, [`Cursor::next`] returns the damage as an error, and then
/// `None`.
pub struct Cursor {
    source: Source,
    peeked: Option<Event>,
}

enum Source {
    Plain(Box<CastReader<BufReader<File>>>),
    Indexed {
        file: Box<dyn ReadSeek>,
        index: Box<RecordingIndex>,
        /// The next segment to read.
        segment: usize,
        /// Events left of the current segment, and its damage.
        events: std::vec::IntoIter<Event>,
        problem: Option<(usize, String)>,
        skip: usize,
    },
    Done,
}

impl Cursor {
    fn plain(reader: CastReader<BufReader<File>>) -> Cursor {
        Cursor {
            source: Source::Plain(Box::new(reader)),
            peeked: None,
        }
    }

    fn indexed(
        file: Box<dyn ReadSeek>,
        index: Box<RecordingIndex>,
        from: (usize, usize),
    ) -> Cursor {
        Cursor {
            source: Source::Indexed {
                file,
                index,
                segment: from.0,
                events: Vec::new().into_iter(),
                problem: None,
                skip: from.1,
            },
            peeked: None,
        }
    }

    /// The next event; None at the end.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<Event>, SeekError> {
        if let Some(e) = self.peeked.take() {
            return Ok(Some(e));
        }
        let result = self.read();
        if result.is_err() {
            self.source = Source::Done;
        }
        result
    }

    /// The next event if `keep` accepts it (otherwise it stays next).
    pub fn next_if(&mut self, keep: impl Fn(&Event) -> bool) -> Result<Option<Event>, SeekError> {
        match self.next()? {
            Some(e) if keep(&e) => Ok(Some(e)),
            Some(e) => {
                self.peeked = Some(e);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn read(&mut self) -> Result<Option<Event>, SeekError> {
        match &mut self.source {
            Source::Done => Ok(None),
            Source::Plain(reader) => Ok(reader.next_event()?),
            Source::Indexed {
                file,
                index,
                segment,
                events,
                problem,
                skip,
            } => loop {
                if let Some(e) = events.next() {
                    return Ok(Some(e));
                }
                if let Some((at, problem)) = problem.take() {
                    return Err(SeekError::Tampered {
                        at: format!("segment {at}"),
                        problem,
                    });
                }
                if *segment >= index.segments.len() {
                    return Ok(None);
                }
                let seg = index.read_segment(file, *segment)?;
                let mut all = seg.events.into_iter();
                if *skip > 0 {
                    all.nth(*skip - 1);
                    *skip = 0;
                }
                *events = all;
                *problem = seg.problem.map(|p| (*segment, p));
                *segment += 1;
            },
        }
    }
}

/// One pass over an indexed recording: keyframes (one at the first event of
/// every segment, and one after every [`KEYFRAME_BYTES`] of output inside
/// one) and markers. Stops at damage, returning what it found before it.
fn scan_indexed<R: Read + io::Seek>(
    index: &RecordingIndex,
    file: &mut R,
    progress: &mut dyn FnMut(usize, usize),
) -> (Scan, Option<SeekError>) {
    let mut emu = Emulator::new(index.header.size());
    let mut scan = Scan {
        keyframes: Vec::new(),
        markers: Vec::new(),
        last: 0,
        oversize: None,
    };
    let asked = |size: TermSize, scan: &mut Scan| {
        if crate::term::replay_size(size) != size && size.cols > 0 && size.rows > 0 {
            let o = scan.oversize.get_or_insert(size);
            o.cols = o.cols.max(size.cols);
            o.rows = o.rows.max(size.rows);
        }
    };
    asked(index.header.size(), &mut scan);
    let mut fed = 0usize;
    let total = index.segments.len();
    for segment in 0..total {
        progress(segment, total);
        let seg = match index.read_segment(file, segment) {
            Ok(seg) => seg,
            Err(e) => return (scan, Some(e.into())),
        };
        for (event, e) in seg.events.iter().enumerate() {
            if event == 0 || fed >= KEYFRAME_BYTES {
                fed = 0;
                scan.keyframes.push(Keyframe {
                    t: scan.last,
                    segment,
                    event,
                    size: emu.size(),
                    dump: emu.dump(),
                });
            }
            match &e.data {
                EventData::Output(b) => fed += b.len(),
                EventData::Marker(label) => scan.markers.push((e.time, label.clone())),
                EventData::Resize(size) => asked(*size, &mut scan),
                _ => {}
            }
            emu.apply(&e.data);
            scan.last = e.time;
        }
        if let Some(problem) = seg.problem {
            let at = format!("segment {segment}");
            return (scan, Some(SeekError::Tampered { at, problem }));
        }
    }
    progress(total, total);
    (scan, None)
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

fn load_cache(path: &Path, key: &str, identity: &str) -> Option<Scan> {
    let file = File::open(path).ok()?;
    let mut lines = BufReader::new(zstd::stream::read::Decoder::new(file).ok()?).lines();
    let head: Value = serde_json::from_str(&lines.next()?.ok()?).ok()?;
    if head["version"].as_u64() != Some(CACHE_VERSION)
        || head["key"].as_str() != Some(key)
        || head["source"].as_str() != Some(identity)
    {
        return None;
    }
    let n = head["keyframes"].as_u64()? as usize;
    let mut markers = Vec::new();
    for m in head["markers"].as_array()? {
        markers.push((m[0].as_u64()?, m[1].as_str()?.to_string()));
    }
    let mut keyframes = Vec::with_capacity(n.min(1 << 20));
    for line in lines {
        let v: Value = serde_json::from_str(&line.ok()?).ok()?;
        keyframes.push(Keyframe {
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
    let oversize = head["oversize"].as_array().and_then(|a| {
        Some(TermSize {
            cols: u16::try_from(a.first()?.as_u64()?).ok()?,
            rows: u16::try_from(a.get(1)?.as_u64()?).ok()?,
        })
    });
    (keyframes.len() == n).then_some(Scan {
        keyframes,
        markers,
        last: head["last"].as_u64()?,
        oversize,
    })
}

fn save_cache(dir: &Path, key: &str, identity: &str, scan: &Scan) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut enc = zstd::stream::write::Encoder::new(tmp.as_file(), 3)?;
        // Damage to the cache is detected (it is then rebuilt).
        enc.include_checksum(true)?;
        let head = json!({
            "version": CACHE_VERSION, "key": key, "source": identity,
            "keyframes": scan.keyframes.len(),
            "last": scan.last, "markers": scan.markers,
            "oversize": scan.oversize.map(|s| [s.cols, s.rows]),
        });
        writeln!(enc, "{head}")?;
        for k in &scan.keyframes {
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
