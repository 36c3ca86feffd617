//! Seeking through keyframes shows exactly the screen that replaying from
//! the start shows, at any time, for output that exercises the emulator's
//! state (both screens, scroll regions, saved cursors, charsets, pens, escape
//! sequences split across events, resizes).
#![allow(missing_docs)]

use std::path::Path;

use termtrail_format::cast::Header;
use termtrail_format::event::{Event, EventData, TermSize};
use termtrail_format::seal::EndReason;
use termtrail_format::writer::{ChainWriter, WriterOptions};
use termtrail_player::seek::Seeker;
use termtrail_player::term::Emulator;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.next() as usize % xs.len()]
    }
}

/// Pieces that keep what is on the screen (mostly text).
const COMMON: &[&str] = &[
    "plain text ",
    "more words here ",
    "\r\n",
    "\r\n",
    "\x1b[1;31mred\x1b[0m",
    "\x1b[38;2;10;200;30mrgb\x1b[49m",
    "\x1b7",
    "\x1b8",
    "\x1b(0lqqk\x1b(B",
    "\x1b[12;40H",
    "\x1b[K",
    "\x1b[3L",
    "\x1b[2M",
    "wide \u{4e16}\u{754c} ",
    "\x1b[7minverse\x1b[27m",
    "\x1b[?25l",
    "\x1b[?25h",
    "\x1b[4h",
    "\x1b[4l",
    "\x1bM",
    "\t|",
    "\x1b[",
    "3",
    "2m",
];

/// Pieces that change a lot of state at once: rare.
const RARE: &[&str] = &[
    "\x1b[?1049h",
    "\x1b[?1049l",
    "\x1b[5;20r",
    "\x1b[r",
    "\x1b[H",
    "\x1b[2J",
];

fn events(seed: u64, n: usize) -> Vec<Event> {
    let mut rng = Lcg(seed);
    let mut out = Vec::new();
    let mut t = 0;
    for i in 0..n {
        t += rng.next() % 50_000;
        if i % 97 == 96 {
            let size = TermSize {
                cols: 40 + (rng.next() % 80) as u16,
                rows: 10 + (rng.next() % 30) as u16,
            };
            out.push(Event::new(t, EventData::Resize(size)));
            continue;
        }
        if i % 501 == 500 {
            out.push(Event::new(t, EventData::Marker(format!("mark {i}"))));
            continue;
        }
        let mut s = String::new();
        for _ in 0..(1 + rng.next() % 12) {
            let piece = if rng.next().is_multiple_of(300) {
                rng.pick(RARE)
            } else {
                rng.pick(COMMON)
            };
            s.push_str(piece);
        }
        out.push(Event::new(t, EventData::Output(s.into_bytes())));
    }
    out
}

fn write(path: &Path, events: &[Event], segment_bytes: usize) {
    let file = std::fs::File::create(path).unwrap();
    let opts = WriterOptions::default()
        .chunk_bytes(8 << 10)
        .segment_bytes(segment_bytes)
        .sync(false);
    let mut w = ChainWriter::new(
        file,
        Header::new(TermSize {
            cols: 100,
            rows: 30,
        }),
        opts,
        None,
    )
    .unwrap();
    for e in events {
        w.push(e).unwrap();
    }
    w.seal(EndReason::Exited { code: 0 }).unwrap();
}

/// What [`check`] saw of the keyframes.
struct Keyframes {
    /// How many segments hold a keyframe.
    segments: usize,
    /// Keyframes that follow another in the same segment (inside it, not at
    /// its start).
    inside: usize,
}

/// Checks seeking against replaying for a recording of `n` events in
/// segments of `segment_bytes`.
fn check(seed: u64, n: usize, segment_bytes: usize) -> Keyframes {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.cast.zst");
    let evs = events(seed, n);
    write(&path, &evs, segment_bytes);
    let cache = dir.path().join("cache");
    let seeker = Seeker::open(&path, Some(&cache), &mut |_, _| {}).unwrap();
    let inside = seeker
        .keyframes()
        .windows(2)
        .filter(|w| w[0].segment == w[1].segment)
        .count();
    let mut segments: Vec<_> = seeker.keyframes().iter().map(|k| k.segment).collect();
    segments.dedup();
    assert!(seeker.keyframes().len() > 3, "too few keyframes to test");
    // The cached keyframes are the same as the built ones.
    let again = Seeker::open(&path, Some(&cache), &mut |_, _| panic!("rebuilt")).unwrap();
    assert_eq!(again.keyframes(), seeker.keyframes());
    let markers: Vec<_> = evs
        .iter()
        .filter_map(|e| match &e.data {
            EventData::Marker(m) => Some((e.time, m.clone())),
            _ => None,
        })
        .collect();
    assert!(!markers.is_empty());
    assert_eq!(seeker.markers(), markers.as_slice());
    assert_eq!(again.markers(), markers.as_slice());
    assert_eq!(again.duration(), evs.last().unwrap().time);

    let end = evs.last().unwrap().time;
    let mut times: Vec<u64> = (0..40).map(|i| end * i / 39).collect();
    // Exactly at keyframe times too (events sharing the time come after).
    times.extend(seeker.keyframes().iter().map(|k| k.t));
    // And just after them, where a keyframe's own mistakes still show.
    for k in seeker.keyframes() {
        if let Some(e) = evs.iter().find(|e| e.time > k.t) {
            times.push(e.time);
        }
    }
    times.sort();
    let mut full = Emulator::new(TermSize {
        cols: 100,
        rows: 30,
    });
    let mut next = 0;
    for t in times {
        while next < evs.len() && evs[next].time <= t {
            full.apply(&evs[next].data);
            next += 1;
        }
        let seeked = seeker.screen_at(t).unwrap();
        assert_eq!(seeked.size(), full.size(), "size at {t}");
        assert_eq!(seeked.render(true), full.render(true), "screen at {t}");
        assert_eq!(seeked.dump(), full.dump(), "state at {t}");
    }
    // A cursor continues with exactly the events after the time.
    for t in [0, end / 3, seeker.keyframes()[2].t, end] {
        let (_, mut cursor) = seeker.cursor_at(t).unwrap();
        let mut rest = Vec::new();
        while let Some(e) = cursor.next().unwrap() {
            rest.push(e);
        }
        let expected: Vec<_> = evs.iter().filter(|e| e.time > t).cloned().collect();
        assert_eq!(rest, expected, "events after {t}");
    }
    Keyframes {
        segments: segments.len(),
        inside,
    }
}

#[test]
fn seeking_equals_replaying_from_the_start_across_segments() {
    let k = check(1, 15000, 64 << 10);
    assert!(k.segments > 3, "keyframes in only {} segments", k.segments);
}

#[test]
fn seeking_equals_replaying_from_the_start_inside_big_segments() {
    // Large segments: keyframes inside segments (every 256 KiB of output).
    let k = check(2, 60000, 4 << 20);
    assert!(k.inside > 3, "only {} keyframes inside segments", k.inside);
}

#[test]
fn a_damaged_cache_file_is_rebuilt_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.cast.zst");
    let evs = events(3, 3000);
    write(&path, &evs, 64 << 10);
    let cache = dir.path().join("cache");
    let first = Seeker::open(&path, Some(&cache), &mut |_, _| {}).unwrap();
    // The first open wrote the cache...
    let files: Vec<_> = std::fs::read_dir(&cache)
        .expect("a keyframe cache was written")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert!(!files.is_empty(), "no keyframe cache was written");
    // ...and a second open uses it (builds nothing).
    let mut built = false;
    Seeker::open(&path, Some(&cache), &mut |_, _| built = true).unwrap();
    assert!(!built, "the cache written was not used");
    for p in &files {
        let mut bytes = std::fs::read(p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(p, bytes).unwrap();
    }
    let mut rebuilt = false;
    let second = Seeker::open(&path, Some(&cache), &mut |_, _| rebuilt = true).unwrap();
    assert!(rebuilt, "a damaged cache was used");
    assert_eq!(first.keyframes(), second.keyframes());
}
