//! Sequential reading and index-based seeking yield the same events, and a
//! seek decodes one segment only.

mod common;

use std::io::Cursor;

use common::*;
use proptest::prelude::*;
use termtrail_format::event::Event;
use termtrail_format::index::load_index;

fn by_segments(file: &[u8]) -> (Vec<Event>, bool) {
    let mut cur = Cursor::new(file);
    let index = load_index(&mut cur).unwrap();
    let mut events = Vec::new();
    for i in 0..index.segments.len() {
        let seg = index.read_segment(&mut cur, i).unwrap();
        assert!(seg.problem.is_none(), "segment {i}: {:?}", seg.problem);
        events.extend(seg.events);
    }
    (events, index.sealed)
}

#[test]
fn sealed_and_unsealed_files_index_the_same_segments() {
    let events = session(3000);
    let sealed = write(&events, small_opts(), None, true);
    let unsealed = write(&events, small_opts(), None, false);
    let (a, was_sealed) = by_segments(&sealed);
    assert!(was_sealed);
    assert_eq!(a, events);
    let (b, was_sealed) = by_segments(&unsealed);
    assert!(!was_sealed);
    assert_eq!(b, events);
    // A cut file: the index is rebuilt by walking headers; the cut segment
    // yields its verified prefix.
    let cut = &unsealed[..unsealed.len() * 2 / 3];
    let mut cur = Cursor::new(cut);
    let index = load_index(&mut cur).unwrap();
    let mut got = Vec::new();
    for i in 0..index.segments.len() {
        got.extend(index.read_segment(&mut cur, i).unwrap().events);
    }
    assert!(!got.is_empty() && events.starts_with(&got), "prefix");
}

#[test]
fn segment_at_finds_the_segment_holding_a_time() {
    let events = session(3000);
    let file = write(&events, small_opts(), None, true);
    let mut cur = Cursor::new(&file[..]);
    let index = load_index(&mut cur).unwrap();
    assert!(index.segments.len() > 5);
    assert!(index.segments.iter().all(|s| s.entry.is_some()), "sealed");
    // The start, the middle and the end, and each segment's first and last
    // event and the moment before its first.
    let mut probes = vec![0, events[1500].time, events.last().unwrap().time];
    for e in index.segments.iter().filter_map(|s| s.entry.as_ref()) {
        probes.extend([e.t0.saturating_sub(1), e.t0, e.t1]);
    }
    for probe in probes {
        let i = index.segment_at(probe).unwrap();
        let seg = index.read_segment(&mut cur, i).unwrap();
        let first = seg.events.first().unwrap().time;
        assert!(
            first <= probe,
            "segment {i} starts at {first}, probe {probe}"
        );
        let next_start = index.segments[i + 1..]
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .find(|e| e.chunks > 0)
            .map(|e| e.t0);
        assert!(
            next_start.is_none_or(|t| t > probe),
            "probe {probe} belongs later than segment {i}"
        );
    }
}

#[test]
fn a_tampered_segment_is_reported_when_read_alone() {
    let events = session(3000);
    let file = write(&events, small_opts(), None, true);
    let mut cur = Cursor::new(&file[..]);
    let index = load_index(&mut cur).unwrap();
    let seg = &index.segments[3];
    // Replace segment 3 by a recompressed, edited copy of the same length class.
    let mut data =
        zstd::decode_all(&file[seg.offset as usize..(seg.offset + seg.length) as usize]).unwrap();
    let at = data.windows(4).position(|w| w == b"line").unwrap();
    data[at] = b'X';
    let recompressed = zstd::encode_all(&data[..], 3).unwrap();
    let mut bad = file[..seg.offset as usize].to_vec();
    bad.extend(&recompressed);
    bad.extend(&file[(seg.offset + seg.length) as usize..]);
    let mut index2 = index.clone();
    index2.segments[3].length = recompressed.len() as u64;
    let got = index2.read_segment(&mut Cursor::new(&bad[..]), 3).unwrap();
    assert!(got.problem.is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn seeking_matches_sequential_reading(n in 1usize..1500, seal in any::<bool>()) {
        let events = session(n);
        let file = write(&events, small_opts(), None, seal);
        let (_, seq) = read(&file, 2);
        let (seg, _) = by_segments(&file);
        prop_assert_eq!(&seq.events, &events);
        prop_assert_eq!(seg, events);
    }
}
