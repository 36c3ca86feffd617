//! The first pass over a recording: its verified chunks' event lines are
//! searched as stored (each chunk's own lines on the decoding threads, see
//! [`ChunkSearch`]; the lines running across chunks here), the resizes
//! kept, and the second pass ([`Walker`]) taken along for the hits.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use termtrail_format::cast::Header;
use termtrail_format::chain::ChunkRecord;
use termtrail_format::event::{Event, EventData, Micros, TermSize};
use termtrail_format::index::{SegmentText, load_index};
use termtrail_format::pipeline::Flow;
use termtrail_format::plain::CastReader;
use termtrail_format::reader::{
    ChunkOutput, ChunkWork, ContentCheck, FileKind, ReadOptions, ReadSink, Status, read_path,
    sniff_path,
};

use super::chunk::{ChunkFound, ChunkSearch, Piece};
use super::pattern::Pattern;
use super::search::{LineHit, LineSearch};
use super::walker::Walker;
use super::{FileResult, Hit, SearchError, SearchOptions, Verdict};

/// The first pass over one file, fed by the verifying reader (as a
/// [`ReadSink`]) or, for a plain asciicast file, event by event.
struct Collect<'a, 'p> {
    search: LineSearch<'p>,
    /// Every resize: screens are rebuilt at the right size.
    sizes: Vec<(Micros, TermSize)>,
    opts: &'a SearchOptions,
    path: &'a Path,
    header: Option<Header>,
    filtered: bool,
    hits: Vec<Hit>,
    stopped: bool,
    /// The chunks hits come from are hashed in the second pass (segments
    /// may have been taken on the seal's frame hashes).
    check: bool,
    /// The second pass, once there are hits: it goes along with the first,
    /// taking each segment the reader verified (so a hit's segment is not
    /// decompressed again).
    walker: Option<Walker>,
    /// Hits the walker has done (`hits[..walked]`).
    walked: usize,
    /// The last two segments read, kept until there is a walker.
    recent: Vec<(usize, SegmentText)>,
    /// The walker could not be opened.
    walker_failed: bool,
    /// A hit's chunk did not verify: the file must be read again, hashing
    /// every chunk.
    unverified: bool,
    /// Each chunk's own lines are searched by this, on the decoding
    /// threads.
    chunks: Arc<ChunkSearch>,
}

impl Collect<'_, '_> {
    fn take_event(&mut self, e: &Event) -> Flow {
        if let EventData::Resize(size) = e.data {
            self.sizes.push((e.time, size));
        }
        let bytes = match (&e.data, self.opts.input) {
            (EventData::Output(b), false) | (EventData::Input(b), true) => b,
            _ => return Flow::Continue,
        };
        let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
        let flow = self
            .search
            .push(e.time, bytes, &mut |h| keep(hits, opts, header.as_ref(), h));
        if flow == Flow::Stop {
            self.stopped = true;
        }
        flow
    }

    fn finish(&mut self) {
        if !self.stopped {
            let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
            self.search
                .finish(&mut |h| keep(hits, opts, header.as_ref(), h));
        }
    }
}

/// Keeps `h` when it is inside the time window; stops at `max_count`.
fn keep(hits: &mut Vec<Hit>, opts: &SearchOptions, header: Option<&Header>, h: LineHit) -> Flow {
    if header.is_some_and(|hd| opts.window().holds(hd, h.time)) {
        hits.push(Hit {
            found: h,
            screen: None,
        });
    }
    if opts.max_count.is_none_or(|m| (hits.len() as u64) < m) {
        Flow::Continue
    } else {
        Flow::Stop
    }
}

impl Collect<'_, '_> {
    /// Brings the walker to the hits found since it last went (opening it
    /// for the first hits); sets `unverified` when a hit's chunk does not
    /// verify (or cannot be checked).
    fn walk_new_hits(&mut self) {
        if self.walked == self.hits.len() || !(self.opts.screen || self.check) {
            return;
        }
        if self.walker.is_none() && !self.walker_failed {
            match Walker::open(self.path, self.opts) {
                Ok(mut w) => {
                    for (seg, text) in self.recent.drain(..) {
                        w.offer(seg, text);
                    }
                    self.walker = Some(w);
                }
                Err(_) => self.walker_failed = true,
            }
        }
        let Some(walker) = &mut self.walker else {
            // Without a walker nothing can be checked.
            self.unverified |= self.check;
            return;
        };
        // Resizes only accrue: the walker takes the new ones.
        walker
            .sizes
            .extend_from_slice(&self.sizes[walker.sizes.len()..]);
        let ok = walker
            .walk(&mut self.hits[self.walked..], self.opts, self.check)
            .is_ok();
        self.walked = self.hits.len();
        self.unverified |= !ok;
    }
}

impl Collect<'_, '_> {
    /// Takes one verified chunk's search (see [`ChunkFound`]): its text up
    /// to the first line feed ends the line the chunks before left open,
    /// the hits in its own lines follow, and its text after the last line
    /// feed starts the next line.
    fn take_found(&mut self, found: ChunkFound, lines: &[u8]) -> Flow {
        self.sizes.extend_from_slice(&found.sizes);
        let flow = self.take_pieces(&found.head, lines);
        if flow == Flow::Stop || !found.line_feed {
            return flow;
        }
        let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
        let mut keep_hit = |h| keep(hits, opts, header.as_ref(), h);
        let mut flow = self.search.flush(&mut keep_hit);
        for h in found.hits {
            if flow == Flow::Stop {
                break;
            }
            flow = keep_hit(h);
        }
        if flow == Flow::Stop {
            self.stopped = true;
            return Flow::Stop;
        }
        self.search.restart_line();
        self.take_pieces(&found.tail, lines)
    }

    /// Feeds pieces of wanted events' strings to the search.
    fn take_pieces(&mut self, pieces: &[Piece], lines: &[u8]) -> Flow {
        for (time, range) in pieces {
            let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
            let (flow, _) = self
                .search
                .push_json(*time, &lines[range.clone()], &mut |h| {
                    keep(hits, opts, header.as_ref(), h)
                });
            if flow == Flow::Stop {
                self.stopped = true;
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

impl ReadSink for Collect<'_, '_> {
    fn chunk_text(&mut self, record: &ChunkRecord, lines: &[u8]) -> Flow {
        if self.opts.lines.needed() {
            // Every line, in order, here.
            let pieces = self.chunks.pieces(record.first, lines, &mut self.sizes);
            return self.take_pieces(&pieces, lines);
        }
        let found = self.chunks.chunk(record.first, lines);
        self.take_found(found, lines)
    }

    fn chunk_worked(&mut self, record: &ChunkRecord, lines: &[u8], work: ChunkOutput) -> Flow {
        match work.downcast::<ChunkFound>() {
            Ok(found) => self.take_found(*found, lines),
            // Not this search's work (cannot happen): search here.
            Err(_) => self.chunk_text(record, lines),
        }
    }

    fn segment_text(&mut self, segment: u32, text: SegmentText) -> Flow {
        if !(self.opts.screen || self.check) {
            return Flow::Continue;
        }
        let seg = segment as usize;
        match &mut self.walker {
            Some(w) => w.offer(seg, text),
            None => {
                if self.recent.len() == 2 {
                    self.recent.remove(0);
                }
                self.recent.push((seg, text));
            }
        }
        // Hits in the lines completed so far, while their segment is here.
        let (hits, opts, header) = (&mut self.hits, self.opts, &self.header);
        if self
            .search
            .flush(&mut |h| keep(hits, opts, header.as_ref(), h))
            == Flow::Stop
        {
            self.stopped = true;
        }
        self.walk_new_hits();
        if self.unverified || self.stopped {
            return Flow::Stop;
        }
        Flow::Continue
    }

    fn header(&mut self, header: &Header) -> Flow {
        if !self.opts.filter.accepts(header) || self.opts.window().excludes_start(header) {
            self.filtered = true;
            return Flow::Stop;
        }
        self.header = Some(header.clone());
        Flow::Continue
    }
}

/// Searches one file, reading chunk content as `content` says: grep takes
/// a sealed file's segments on the seal's frame hashes and hashes the
/// chunks its hits come from (the second pass); when one of those does not
/// verify, the file is read again hashing every chunk, which names the
/// damage and reports only hits before it.
pub(super) fn search_file(
    path: &Path,
    pattern: &Pattern,
    opts: &SearchOptions,
    content: ContentCheck,
) -> Result<FileResult, SearchError> {
    let kind = sniff_path(path)?;
    let mut c = Collect {
        search: if opts.lines.needed() {
            LineSearch::every_line(pattern, opts.lines)
        } else {
            LineSearch::new(pattern)
        },
        sizes: Vec::new(),
        opts,
        path,
        header: None,
        filtered: false,
        hits: Vec::new(),
        stopped: false,
        // Plain asciicast files have no chain: nothing to hash.
        check: content == ContentCheck::SealedFrames && kind == Some(FileKind::Chained),
        walker: None,
        walked: 0,
        recent: Vec::new(),
        walker_failed: false,
        unverified: false,
        chunks: ChunkSearch::new(pattern, opts.input),
    };
    let (verdict, damage) = match kind {
        None => {
            return Err(SearchError::NotARecording(
                crate::select::NotRecording::Other,
            ));
        }
        Some(FileKind::Plain) => {
            let mut r =
                CastReader::new(BufReader::new(File::open(path)?)).map_err(SearchError::NotCast)?;
            if c.header(r.header()) == Flow::Stop {
                return Ok(FileResult::Filtered);
            }
            while let Some(e) = r.next_event().map_err(SearchError::Cast)? {
                if c.take_event(&e) == Flow::Stop {
                    break;
                }
            }
            (Verdict::Plain, None)
        }
        Some(FileKind::Chained) => {
            if opts.since_us.is_some()
                && let Ok(mut f) = File::open(path)
                && let Ok(index) = load_index(&mut f)
                && index.sealed
                && let Some(start) = index.header.timestamp
                && opts.window().ended_before(start, index.duration)
            {
                return Ok(FileResult::Filtered);
            }
            let work = Arc::clone(&c.chunks);
            let ro = ReadOptions {
                threads: opts.threads.max(1),
                // Lines are searched as they are, each chunk's own on the
                // decoding threads.
                events: false,
                // -v, -A and -B look at every line in order, here.
                chunk_work: (!opts.lines.needed()).then(|| {
                    ChunkWork(Arc::new(move |r: &ChunkRecord, lines: &[u8]| {
                        Box::new(work.chunk(r.first, lines)) as ChunkOutput
                    }))
                }),
                content,
                ..ReadOptions::default()
            };
            let report = match read_path(path, &ro, &mut c) {
                Ok(report) => report,
                // Said as every subcommand says it (a compressed README).
                Err(_) if let Some(not) = crate::select::not_recording(path) => {
                    return Err(SearchError::NotARecording(not));
                }
                Err(e) => return Err(e.into()),
            };
            if c.filtered {
                return Ok(FileResult::Filtered);
            }
            let damage = (report.status == Status::Tampered).then(|| {
                let first = report
                    .problems
                    .first()
                    .map_or("damaged", |p| p.message.as_str());
                format!(
                    "TAMPERED: {first} (verified up to {}; run `termtrail verify` for details)",
                    termtrail_format::event::format_clock(report.last_verified)
                )
            });
            let verdict = if report.sealed {
                Verdict::Intact
            } else {
                Verdict::Unsealed
            };
            (verdict, damage)
        }
    };
    c.finish();
    c.walk_new_hits();
    if c.unverified {
        return search_file(path, pattern, opts, ContentCheck::EveryChunk);
    }
    let Some(header) = c.header.take() else {
        return Err(match crate::select::not_recording(path) {
            Some(not) => SearchError::NotARecording(not),
            // verify's verdict: damage before the first chunk, or a file
            // cut inside its header.
            None => damage.map_or(SearchError::NoHeader, SearchError::Tampered),
        });
    };
    let hits = c.hits;
    Ok(FileResult::Searched {
        header: Box::new(header),
        verdict,
        hits,
        damage,
    })
}

#[cfg(test)]
mod tests {
    use super::super::chunk::Filter;
    use super::super::literal::LiteralFilter;
    use super::super::pattern::{PatternOptions, Prefilter};
    use super::*;

    /// How [`chunk_hits`] picks the lines it reads.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Pick {
        Every,
        Bytes,
        Literal,
    }

    /// The hits in `chunks` (event lines as stored, each chunk's first
    /// event at the time given), read line by line or with a filter.
    fn chunk_hits(
        pattern: &Pattern,
        input: bool,
        chunks: &[(Micros, Vec<u8>)],
        pick: Pick,
    ) -> Vec<LineHit> {
        let opts = SearchOptions {
            input,
            ..SearchOptions::default()
        };
        let sample = &chunks[0].1;
        let filter = match pick {
            Pick::Every => Filter::Every,
            Pick::Bytes => Filter::Bytes(
                Prefilter::with_limit(pattern, sample, usize::MAX)
                    .expect("the pattern gives the prefilter something"),
            ),
            Pick::Literal => Filter::Literal(
                LiteralFilter::from_counts(pattern, sample)
                    .expect("the pattern gives the literal filter something"),
            ),
        };
        let path = Path::new("test");
        let mut c = Collect {
            search: LineSearch::new(pattern),
            sizes: Vec::new(),
            opts: &opts,
            path,
            header: Some(Header::new(TermSize::DEFAULT)),
            filtered: false,
            hits: Vec::new(),
            stopped: false,
            check: false,
            walker: None,
            walked: 0,
            recent: Vec::new(),
            walker_failed: false,
            unverified: false,
            chunks: Arc::new(ChunkSearch::with_filter(pattern, input, filter)),
        };
        for (first, lines) in chunks {
            let found = c.chunks.chunk(*first, lines);
            assert_eq!(c.take_found(found, lines), Flow::Continue);
        }
        c.finish();
        c.hits.into_iter().map(|h| h.found).collect()
    }

    /// `json` (a JSON string) with the letter that is the `n`th byte of
    /// text (not of an escape), if it is one, escaped in `style`: `\u00xx`,
    /// `\u00XX` or, where that means the letter, `\X` (as a lenient reader
    /// takes it).
    fn escape_letter(json: &str, n: usize, style: usize) -> String {
        let b = json.as_bytes();
        let (mut i, mut seen) = (1, 0);
        while i + 1 < b.len() {
            if b[i] == b'\\' {
                i += if b[i + 1] == b'u' { 6 } else { 2 };
                continue;
            }
            if seen == n {
                let c = b[i];
                let escaped = match style {
                    _ if !c.is_ascii_alphabetic() => return json.to_string(),
                    0 => format!("\\u{:04x}", c),
                    1 => format!("\\u{:04X}", c),
                    _ if b"nrtbfu".contains(&c) => return json.to_string(),
                    _ => format!("\\{}", c as char),
                };
                return format!("{}{escaped}{}", &json[..i], &json[i + 1..]);
            }
            seen += 1;
            i += 1;
        }
        json.to_string()
    }

    /// Event texts for the randomized test: random pieces of output, and
    /// the word with what the stripper removes (or what stops a match)
    /// between its letters, maybe in two events.
    fn random_texts(next: &mut dyn FnMut(usize) -> usize) -> Vec<String> {
        // Output that splits, colours and hides the word in every way a
        // filter must not miss (or wrongly find): colour codes between its
        // letters, lines across events and chunks, OSC strings holding it
        // (never text) and left open up to a line feed, backspaces, input
        // events holding it.
        let pieces = [
            "Acc",
            "ess",
            "Den",
            "ied",
            "AccessDenied",
            "x",
            " ",
            "\x1b[1;31m",
            "\x1b[0m",
            "\r\n",
            "\n",
            "\r",
            "\x1b]0;AccessDenied\x07",
            "\x1b]0;Acc",
            "\x1b[",
            "2C",
            "\x08",
            "\x08\x08",
            "\x1b[5;1H",
            "\\",
            "\"",
            "/",
            "\u{e9}",
            "\x1bP1$r",
            "\x1b\\",
            "\x7f",
            "x\x08",
            "Acc\x1b[1C",
            "ss\x1b[31mD",
        ];
        // What goes between the letters of the word.
        let between = [
            "\x7f",
            "\x1b[1m",
            "\x1b[0m",
            "x\x08",
            "yz\x08\x08",
            "\x08",
            "\x1b]0;t\x07",
            "\x1b[1C",
            "\r",
            "\x1b[",
            "\x1bP1$r\x1b\\",
        ];
        let mut texts: Vec<String> = Vec::new();
        while texts.len() < 30 {
            let mut e = String::new();
            for _ in 0..1 + next(6) {
                e.push_str(pieces[next(pieces.len())]);
            }
            if next(2) > 0 {
                texts.push(e);
                continue;
            }
            // The word with what the stripper removes (or what stops a
            // match) between its letters, maybe in two events.
            for (i, c) in "AccessDenied".chars().enumerate() {
                if i > 0 && next(3) == 0 {
                    e.push_str(between[next(between.len())]);
                }
                e.push(c);
            }
            if next(2) == 0 {
                e.push('\n');
            }
            let cut = next(e.len() + 1);
            if next(2) == 0 && e.is_char_boundary(cut) {
                texts.push(e[..cut].to_string());
                texts.push(e[cut..].to_string());
            } else {
                texts.push(e);
            }
        }
        texts
    }

    /// `texts` as stored event lines (letters escaped as `\u00XX` and
    /// backspaces as `\u0008` now and then; some events input or resizes),
    /// with what each event wrote: (code, text).
    fn stored_lines(
        texts: Vec<String>,
        next: &mut dyn FnMut(usize) -> usize,
    ) -> (Vec<Vec<u8>>, Vec<(&'static str, String)>) {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut raw: Vec<(&str, String)> = Vec::new();
        for e in texts {
            let mut json = serde_json::to_string(&e).unwrap();
            if next(3) == 0 {
                // A letter escaped as a JSON encoder may.
                json = escape_letter(&json, next(e.len() + 1), next(3));
            }
            if next(3) == 0 {
                // A backspace as \u0008 rather than \b.
                json = json.replacen("\\b", "\\u0008", 1);
            }
            let code = match next(10) {
                0 => "i",
                1 => "r",
                _ => "o",
            };
            let json = if code == "r" {
                "\"80x24\"".to_string()
            } else {
                json
            };
            lines.push(format!("[0.001, \"{code}\", {json}]\n").into_bytes());
            raw.push((code, e));
        }
        (lines, raw)
    }

    /// The hits of one search of what every wanted event wrote, in order
    /// (each event 1 ms after the one before).
    fn one_search(p: &Pattern, input: bool, raw: &[(&str, String)]) -> Vec<LineHit> {
        let mut one = LineSearch::new(p);
        let mut want = Vec::new();
        let want_code = if input { "i" } else { "o" };
        for (n, (code, e)) in raw.iter().enumerate() {
            if *code == want_code {
                let time = 1000 * (n as Micros + 1);
                one.push(time, e.as_bytes(), &mut |h| {
                    want.push(h);
                    Flow::Continue
                });
            }
        }
        one.finish(&mut |h| {
            want.push(h);
            Flow::Continue
        });
        want
    }

    #[test]
    fn skipping_lines_without_the_picked_bytes_finds_every_hit() {
        let patterns = [
            ("AccessDenied", PatternOptions::default()),
            (
                "accessdenied",
                PatternOptions {
                    ignore_case: true,
                    ..PatternOptions::default()
                },
            ),
            (
                "Den",
                PatternOptions {
                    word: true,
                    ..PatternOptions::default()
                },
            ),
            ("ss.*ie", PatternOptions::default()),
            // Two literals: a needle each.
            ("ccess|ied", PatternOptions::default()),
        ];
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let mut found = 0;
        for round in 0..400 {
            let texts = random_texts(&mut next);
            // What each event wrote, for the search of events one by one.
            let (lines, raw) = stored_lines(texts, &mut next);
            // Chunks cut at random lines.
            let mut chunks = Vec::new();
            let mut at = 0;
            while at < lines.len() {
                let n = 1 + next(8);
                let end = (at + n).min(lines.len());
                // Each event is 1 ms after the one before; a chunk's first
                // event's time is given absolutely.
                chunks.push((1000 * (at as Micros + 1), lines[at..end].concat()));
                at = end;
            }
            let (pattern, o) = patterns[round % patterns.len()];
            let p = Pattern::new(&[pattern.to_string()], o).unwrap();
            for input in [false, true] {
                let all = chunk_hits(&p, input, &chunks, Pick::Every);
                let bytes = chunk_hits(&p, input, &chunks, Pick::Bytes);
                assert_eq!(bytes, all, "{pattern} (input: {input}) in {chunks:?}");
                if !o.ignore_case {
                    let literal = chunk_hits(&p, input, &chunks, Pick::Literal);
                    assert_eq!(literal, all, "{pattern} (input: {input}) in {chunks:?}");
                }
                // The same as searching what every event wrote, in order,
                // in one search: chunks searched apart and joined at their
                // first and last line feeds lose and add nothing.
                let want = one_search(&p, input, &raw);
                assert_eq!(all, want, "{pattern} (input: {input}) in {chunks:?}");
                found += all.len();
            }
        }
        assert!(found > 200, "the rounds hold hits: {found}");
    }
}
