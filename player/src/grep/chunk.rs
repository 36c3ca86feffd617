//! One chunk searched on its own, on a decoding thread: what a line feed
//! ends can be read alone (the stripper starts afresh after every line
//! feed), so a chunk's lines from its first line feed to its last are
//! searched where the chunk was decompressed, and only the text before the
//! first line feed (which goes on a line of the chunks before) and after
//! the last (which goes on in the chunks after) is left to the one thread
//! that reads chunks in order ([`ChunkFound`]).

use std::cell::RefCell;
use std::ops::Range;
use std::sync::{Arc, LazyLock, OnceLock};

use memchr::memmem;

use termtrail_format::event::{Micros, TermSize};
use termtrail_format::pipeline::Flow;
use termtrail_format::scan::{self, ChunkClock, Timed};

use super::literal::LiteralFilter;
use super::pattern::{Pattern, Prefilter};
use super::search::{LineHit, LineSearch};

/// Part of a wanted event's JSON string content: its time and where it is
/// in the chunk's lines.
pub(super) type Piece = (Micros, Range<usize>);

/// What one chunk's own lines hold.
#[derive(Debug, Default)]
pub(super) struct ChunkFound {
    /// Every resize, in order.
    pub sizes: Vec<(Micros, TermSize)>,
    /// The wanted text up to and including the chunk's first line feed (all
    /// of it when there is none).
    pub head: Vec<Piece>,
    /// Whether the chunk holds a line feed (else `hits` and `tail` are
    /// empty).
    pub line_feed: bool,
    /// Hits in the lines after the first line feed, up to the last.
    pub hits: Vec<LineHit>,
    /// The wanted text after the last line feed.
    pub tail: Vec<Piece>,
}

/// Which of a chunk's lines are searched.
#[derive(Debug)]
pub(super) enum Filter {
    /// Those holding a piece of a literal every match holds.
    Literal(LiteralFilter),
    /// Those holding picked bytes of the literals matches start with.
    Bytes(Prefilter),
    /// Every line.
    Every,
}

impl Filter {
    /// The best filter for `pattern`, judged on `sample` (a chunk's lines).
    fn new(pattern: &Pattern, sample: &[u8]) -> Filter {
        if let Some(f) = LiteralFilter::new(pattern, sample) {
            return Filter::Literal(f);
        }
        Prefilter::new(pattern, sample).map_or(Filter::Every, Filter::Bytes)
    }
}

/// What every decoding thread shares: the pattern and the filter, made
/// from the first chunk any thread gets (any chunk does: a filter only
/// ever reads more lines than need be, never fewer).
pub(super) struct ChunkSearch {
    pattern: Pattern,
    /// Input events (`--input`) rather than output.
    input: bool,
    filter: OnceLock<Filter>,
}

impl ChunkSearch {
    pub(super) fn new(pattern: &Pattern, input: bool) -> Arc<ChunkSearch> {
        Arc::new(ChunkSearch {
            pattern: pattern.clone(),
            input,
            filter: OnceLock::new(),
        })
    }

    /// A search with the filter given.
    #[cfg(test)]
    pub(super) fn with_filter(pattern: &Pattern, input: bool, filter: Filter) -> ChunkSearch {
        ChunkSearch {
            pattern: pattern.clone(),
            input,
            filter: OnceLock::from(filter),
        }
    }

    /// The chunk's wanted text, every piece of it, for a search that looks
    /// at every line in order on the reading thread (`-v`, `-A`, `-B`);
    /// its resizes go to `sizes`.
    pub(super) fn pieces(
        &self,
        first: Micros,
        lines: &[u8],
        sizes: &mut Vec<(Micros, TermSize)>,
    ) -> Vec<Piece> {
        let want: &[u8] = if self.input { b"i" } else { b"o" };
        let mut clock = ChunkClock::new(first);
        let mut events = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let rest = &lines[i..];
            let end = i + memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            if let Some(line) = event_line(&mut clock, rest, sizes)
                && line.code == want
            {
                events.push((line.time, i + line.data..end));
            }
            i = end + 1;
        }
        events
    }

    /// Searches the chunk whose first event is at `first`.
    pub(super) fn chunk(&self, first: Micros, lines: &[u8]) -> ChunkFound {
        let filter = self
            .filter
            .get_or_init(|| Filter::new(&self.pattern, lines));
        let mut found = ChunkFound::default();
        // The wanted events, and every line end in their strings when
        // lines are picked by their bytes, else only the first and the
        // last.
        let events = self.pieces(first, lines, &mut found.sizes);
        let mut ends: Vec<usize> = Vec::new();
        let (first_end, last_end) = if let Filter::Bytes(_) = filter {
            for (_, r) in &events {
                scan::escaped_line_feeds(&lines[r.clone()], |e| ends.push(r.start + e));
            }
            (ends.first().copied(), ends.last().copied())
        } else {
            let in_event = |f: fn(&[u8]) -> Option<usize>, r: &Range<usize>| {
                f(&lines[r.clone()]).map(|e| r.start + e)
            };
            (
                events
                    .iter()
                    .find_map(|(_, r)| in_event(first_line_feed, r)),
                events
                    .iter()
                    .rev()
                    .find_map(|(_, r)| in_event(last_line_feed, r)),
            )
        };
        let (Some(first_end), Some(last_end)) = (first_end, last_end) else {
            found.head = events;
            return found;
        };
        found.line_feed = true;
        found.head = clip(&events, 0..first_end);
        found.tail = clip(&events, last_end..lines.len());
        let mut hits = Vec::new();
        let mut keep = |h: LineHit| {
            hits.push(h);
            Flow::Continue
        };
        let mut search = LineSearch::with_buffer(&self.pattern, take_buffer());
        match filter {
            Filter::Every => {
                // Every line between, as the events wrote them.
                for (time, range) in clip(&events, first_end..last_end) {
                    search.push_json(time, &lines[range], &mut keep);
                }
            }
            Filter::Literal(f) => {
                search_marked(
                    f,
                    &events,
                    lines,
                    first_end..last_end,
                    &mut search,
                    &mut keep,
                );
            }
            Filter::Bytes(pre) => search_hot(pre, &events, lines, &ends, &mut search, &mut keep),
        }
        search.finish(&mut keep);
        give_buffer(search.into_buffer());
        found.hits = hits;
        found
    }
}

/// Searches the lines between the first and last of `ends` (every line end
/// in the wanted `events`) that hold the prefilter's bytes.
fn search_hot(
    pre: &Prefilter,
    events: &[Piece],
    lines: &[u8],
    ends: &[usize],
    search: &mut LineSearch,
    keep: &mut dyn FnMut(LineHit) -> Flow,
) {
    let n = ends.len() - 1;
    if n == 0 {
        return;
    }
    let (first_end, last_end) = (ends[0], ends[n]);
    // Line k (0 ≤ k < n) is lines[ends[k]..ends[k + 1]]; the prefilter
    // numbers lines from the start of what it is given.
    let text = &lines[first_end..last_end];
    let rel: Vec<usize> = ends[1..n].iter().map(|e| e - first_end).collect();
    let mut hot = vec![false; n];
    pre.mark_lines(text, &rel, &mut hot);
    let mut k = 0;
    let mut fresh = true;
    for (time, range) in events {
        let mut at = range.start.max(first_end);
        let stop_at = range.end.min(last_end);
        while at < stop_at {
            while k + 1 < n && ends[k + 1] <= at {
                k += 1;
                fresh = true;
            }
            let stop = ends[k + 1].min(stop_at);
            if hot[k] {
                if fresh {
                    search.restart_line();
                }
                fresh = false;
                search.push_json(*time, &lines[at..stop], keep);
            }
            at = stop;
        }
    }
}

/// Searches the lines of `lines[within]` (from a line end to a line end)
/// that `filter` marks.
fn search_marked(
    filter: &LiteralFilter,
    events: &[Piece],
    lines: &[u8],
    within: Range<usize>,
    search: &mut LineSearch,
    keep: &mut dyn FnMut(LineHit) -> Flow,
) {
    let mut marks = Vec::new();
    filter.marks(&lines[within.clone()], &mut marks);
    marks.sort_unstable();
    // Lines before `done` have been searched; `e` is the first event that
    // can hold the next mark.
    let (mut done, mut e) = (within.start, 0);
    for m in marks {
        let p = within.start + m;
        if p < done {
            continue;
        }
        e += events[e..].partition_point(|(_, r)| r.end <= p);
        let Some((_, r)) = events.get(e) else {
            break;
        };
        // Not in a wanted event's string: its text is not searched.
        if r.start > p {
            continue;
        }
        let line = line_around(events, e, lines, p, &within);
        search.restart_line();
        let from = events.partition_point(|(_, r)| r.end <= line.start);
        for (time, r) in &events[from..] {
            if r.start >= line.end {
                break;
            }
            let (s, t) = (r.start.max(line.start), r.end.min(line.end));
            if s < t {
                search.push_json(*time, &lines[s..t], keep);
            }
        }
        done = line.end;
    }
}

/// The line holding `p`, a place in the string of wanted event `e`: from
/// the end of the escaped line feed before it (or `within`'s start) to the
/// end of the one after (or `within`'s end).
fn line_around(
    events: &[Piece],
    e: usize,
    lines: &[u8],
    p: usize,
    within: &Range<usize>,
) -> Range<usize> {
    let mut start = within.start;
    for (i, (_, r)) in events[..=e].iter().enumerate().rev() {
        if r.end <= within.start {
            break;
        }
        let to = if i == e { p } else { r.end };
        if let Some(end) = last_line_feed(&lines[r.start..to]) {
            start = start.max(r.start + end);
            break;
        }
    }
    let mut end = within.end;
    for (i, (_, r)) in events.iter().enumerate().skip(e) {
        if r.start >= within.end {
            break;
        }
        // A line feed whose `n` is at `p` ends the line `p` is in.
        let from = if i == e {
            (p - r.start).saturating_sub(1)
        } else {
            0
        };
        if let Some(found) = line_feed_from(&lines[r.clone()], from) {
            end = end.min(r.start + found);
            break;
        }
    }
    start..end
}

thread_local! {
    /// Each decoding thread's search text buffer, kept from one chunk to
    /// the next (a fresh search allocates a 256 KiB block: per chunk, that
    /// cost more than searching it).
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn take_buffer() -> Vec<u8> {
    BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()))
}

fn give_buffer(buf: Vec<u8>) {
    BUFFER.with(|b| *b.borrow_mut() = buf);
}

/// A line feed as JSON escapes it.
static LINE_FEED: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\\n"));
static LINE_FEED_REV: LazyLock<memmem::FinderRev<'static>> =
    LazyLock::new(|| memmem::FinderRev::new(b"\\n"));

/// Whether the backslash at `p` starts an escape (is not itself escaped
/// by the one before it).
fn starts_escape(content: &[u8], p: usize) -> bool {
    content[..=p]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count()
        % 2
        == 1
}

/// Where the first escaped line feed in `content` (JSON string content)
/// ends.
fn first_line_feed(content: &[u8]) -> Option<usize> {
    LINE_FEED
        .find_iter(content)
        .find(|&p| starts_escape(content, p))
        .map(|p| p + 2)
}

/// Where the first escaped line feed in `content` at or after `from`
/// ends.
fn line_feed_from(content: &[u8], from: usize) -> Option<usize> {
    LINE_FEED
        .find_iter(&content[from..])
        .map(|p| from + p)
        .find(|&p| starts_escape(content, p))
        .map(|p| p + 2)
}

/// Where the last escaped line feed in `content` ends.
fn last_line_feed(content: &[u8]) -> Option<usize> {
    LINE_FEED_REV
        .rfind_iter(content)
        .find(|&p| starts_escape(content, p))
        .map(|p| p + 2)
}

/// The parts of `events` inside `within`.
fn clip(events: &[Piece], within: Range<usize>) -> Vec<Piece> {
    events
        .iter()
        .filter_map(|(t, r)| {
            let (s, e) = (r.start.max(within.start), r.end.min(within.end));
            (s < e).then_some((*t, s..e))
        })
        .collect()
}

/// The event line at the start of `rest`, timed by `clock`; a resize's
/// size is kept in `sizes`. None for other lines (comments).
#[inline]
pub(super) fn event_line<'l>(
    clock: &mut ChunkClock,
    rest: &'l [u8],
    sizes: &mut Vec<(Micros, TermSize)>,
) -> Option<Timed<'l>> {
    let line = clock.line(rest)?;
    if line.code == b"r"
        && let Some(size) = scan::resize(&rest[line.data..])
    {
        sizes.push((line.time, size));
    }
    Some(line)
}
