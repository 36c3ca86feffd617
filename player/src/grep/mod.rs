//! `termtrail grep`: regular expressions over what appeared on the terminal
//! (or, with `--input`, over what was typed), across many recordings.
//!
//! Two passes per file. The first reads the recording through the verifying
//! reader (only events of verified chunks arrive), turns output into text —
//! escape sequences removed, cursor movements and CR/LF as line breaks
//! ([`Stripper`]) — and runs the regex over logical lines, keeping for every
//! byte of text the time of the event that wrote it. So a match is found
//! even when its text was split across events or had colour codes between
//! its letters, and its time is when its last byte was written. Only files
//! with hits get the second pass: a terminal emulator brought to each hit's
//! time (from cached keyframes when there are some, else reading forward)
//! gives the screen row the text was on, and `-C` rows around it.
//!
//! Memory is flat: text is searched in blocks of [`BLOCK`] bytes and only an
//! unfinished line is carried over; the emulator holds one screen.
//!
//! The modules, in the order a search meets them: [`pattern`] (the regex
//! and the prefilter), `literal` (the filter that picks lines by a piece of
//! a literal), the first pass (`pass`: stored event lines, through
//! `termtrail_format::scan`), [`strip`] (the escape stripper), [`search`]
//! (line search), the second pass (`walker`: screens and hit chunks'
//! hashes, reading chunks' events through `events`) and [`screen_line`]
//! (the row a hit is on). Which files are
//! searched is [`crate::select`]'s; printing hits is [`crate::hits`]'.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use termtrail_format::cast::Header;
use termtrail_format::pipeline::Flow;
use termtrail_format::plain::CastError;
use termtrail_format::reader::{ContentCheck, ReadError};

use crate::select::{MetaFilter, NotRecording, Window};

mod chunk;
mod events;
mod literal;
mod pass;
pub mod pattern;
pub mod screen_line;
mod scroll_screen;
pub mod search;
pub mod strip;
mod walker;

pub use pattern::{Pattern, PatternError, PatternOptions};
pub use screen_line::ScreenLine;
pub use search::{BLOCK, ContextLine, EveryLine, LineHit, LineSearch, MAX_LINE};
pub use strip::Stripper;
pub use walker::SCREEN_WINDOW;

/// One hit.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The matching line and when it was written.
    pub found: LineHit,
    /// Where it was on the screen at that time (None: not on the screen any
    /// more, or screen lines were not asked for).
    pub screen: Option<ScreenLine>,
}

/// What is known about a searched recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every chunk verified and the seal is valid.
    Intact,
    /// Verified as far as it goes, not sealed (still being written, or cut).
    Unsealed,
    /// A plain asciicast file: nothing to verify.
    Plain,
}

/// Why a file was not searched.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// Reading the file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Neither a termtrail recording nor an asciicast file (or a `.cast`
    /// compressed with zstd), said as every subcommand says it.
    #[error("{}; skipped", .0.message())]
    NotARecording(NotRecording),
    /// An asciicast file whose header does not read.
    #[error("not a valid asciicast file: {0}")]
    NotCast(CastError),
    /// An asciicast file with a bad line.
    #[error("asciicast file: {0}")]
    Cast(CastError),
    /// The verifying reader could not read the recording.
    #[error("{0}")]
    Read(#[from] ReadError),
    /// The recording ends before its header line is whole (verify: intact
    /// but UNSEALED, 0 chunks).
    #[error("{}", termtrail_format::index::CUT_IN_HEADER)]
    NoHeader,
    /// The recording is damaged before its header could be read (verify's
    /// TAMPERED line).
    #[error("{0}")]
    Tampered(String),
    /// An object of a store could not be fetched.
    #[error("{0}")]
    Fetch(termtrail_store::StoreError),
}

/// The result of searching one file.
#[derive(Debug)]
pub enum FileResult {
    /// Searched.
    Searched {
        /// The header.
        header: Box<Header>,
        /// Verification state.
        verdict: Verdict,
        /// The hits (all of them, or the first `max_count`).
        hits: Vec<Hit>,
        /// Damage found: hits are only from before it.
        damage: Option<String>,
    },
    /// Left out by a metadata or time filter.
    Filtered,
    /// Not searched: not a recording, unreadable.
    Failed(SearchError),
}

/// Which recordings to search, and how.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    /// Search typed input (`i` events) instead of output.
    pub input: bool,
    /// Stop a file after this many matching lines.
    pub max_count: Option<u64>,
    /// Find screen lines (the second pass).
    pub screen: bool,
    /// Rows of screen context around a hit's screen row.
    pub context: usize,
    /// `-v`, `-A`, `-B`: which lines are hits, and the lines of text kept
    /// around them (every line is then searched, in order).
    pub lines: EveryLine,
    /// Only hits at or after this instant (Unix microseconds; compared to
    /// the millisecond).
    pub since_us: Option<i64>,
    /// Only hits at or before this instant (Unix microseconds; compared to
    /// the millisecond).
    pub until_us: Option<i64>,
    /// Metadata filters.
    pub filter: MetaFilter,
    /// Decoding threads per file.
    pub threads: usize,
    /// Keyframe cache directory (read only).
    pub cache: Option<PathBuf>,
    /// How chunk content is verified: [`ContentCheck::SealedFrames`] takes
    /// a sealed file's segments on the seal's frame hashes and hashes the
    /// chunks hits come from in the second pass.
    pub content: ContentCheck,
}

impl SearchOptions {
    /// The time window `since_us`..=`until_us`.
    pub fn window(&self) -> Window {
        Window {
            since_us: self.since_us,
            until_us: self.until_us,
        }
    }
}

/// Searches one file.
pub fn search_file(path: &Path, pattern: &Pattern, opts: &SearchOptions) -> FileResult {
    match pass::search_file(path, pattern, opts, opts.content) {
        Ok(r) => r,
        Err(e) => FileResult::Failed(e),
    }
}

/// Searches `files` (local files or S3 objects) on `jobs` threads, handing
/// each file's result to `done` as soon as it is complete (in completion
/// order). `done` says whether to go on.
pub fn search_all(
    files: &[crate::remote::Target],
    pattern: &Pattern,
    opts: &SearchOptions,
    jobs: usize,
    done: &mut dyn FnMut(&str, FileResult) -> Flow,
) {
    let stop = AtomicBool::new(false);
    let jobs = jobs.max(1);
    let (tx, rx) = mpsc::sync_channel::<(usize, FileResult)>(jobs * 2);
    // An S3 object is fetched into a temporary file first: four fetchers
    // keep up to `jobs` objects ready ahead of the searchers, so
    // downloading and searching overlap. Local files need no fetching.
    let fetchers = if crate::remote::Target::any_remote(files) {
        4
    } else {
        1
    };
    crate::remote::fetch_ahead(files, fetchers, jobs, |ready| {
        std::thread::scope(|s| {
            for _ in 0..jobs.min(files.len().max(1)) {
                let tx = tx.clone();
                let stop = &stop;
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let got = ready.lock().ok().and_then(|r| r.recv().ok());
                        let Some((i, local)) = got else { break };
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // A fetched copy is deleted when `_copy` goes.
                        let r = match local {
                            Ok((path, _copy)) => search_file(&path, pattern, opts),
                            Err(e) => FileResult::Failed(SearchError::Fetch(e)),
                        };
                        if tx.send((i, r)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (i, r) in rx.iter() {
                if done(&files[i].name(), r) == Flow::Stop {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        });
    });
}
