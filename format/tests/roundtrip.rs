//! decode(encode(events)) == events, for the container and the plain codecs.

mod common;

use common::*;
use proptest::prelude::*;
use termtrail_format::event::{Event, EventData, TermSize};
use termtrail_format::reader::Status;
use termtrail_format::utf8::Utf8Stitcher;

#[test]
fn session_round_trips_sealed() {
    let events = session(2000);
    let file = write(&events, small_opts(), None, true);
    for threads in [1, 2] {
        let (report, got) = read(&file, threads);
        assert_eq!(report.status, Status::Intact, "{:#?}", report.problems);
        assert!(report.segments > 3, "small segments: {}", report.segments);
        assert_eq!(got.events, events);
    }
}

fn event_strategy() -> impl Strategy<Value = (u64, EventData)> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..300);
    let utf8ish = proptest::collection::vec(
        prop_oneof![
            Just(vec![0xE2, 0x9C, 0x93]),
            Just(vec![0xF0, 0x9D, 0x84, 0x9E]),
            Just(b"\x1b[0m".to_vec()),
            Just(vec![0xFF]),
            Just(vec![0xC3])
        ],
        0..20,
    )
    .prop_map(|v| v.concat());
    let data = prop_oneof![
        bytes.clone().prop_map(EventData::Output),
        utf8ish.prop_map(EventData::Output),
        bytes.prop_map(EventData::Input),
        ".{0,20}".prop_map(EventData::Marker),
        (1u16..500, 1u16..200).prop_map(|(cols, rows)| EventData::Resize(TermSize { cols, rows })),
        any::<i32>().prop_map(EventData::Exit),
        ("[a-z]", ".{0,10}")
            .prop_filter("known codes", |(c, _)| !"oimrxb".contains(c.as_str()))
            .prop_map(|(code, data)| EventData::Other { code, data }),
    ];
    (0u64..3_000_000, data)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn container_round_trip(raw in proptest::collection::vec(event_strategy(), 0..200), seal in any::<bool>()) {
        let mut t = 0;
        let events: Vec<Event> = raw.into_iter().map(|(dt, d)| { t += dt; Event::new(t, d) }).collect();
        let file = write(&events, small_opts(), None, seal);
        let (report, got) = read(&file, 2);
        prop_assert_eq!(report.status, if seal { Status::Intact } else { Status::Unsealed });
        prop_assert_eq!(got.events, events);
    }

    #[test]
    fn stitched_reads_reassemble_exactly(data in proptest::collection::vec(any::<u8>(), 0..2000), cuts in proptest::collection::vec(1usize..40, 1..100)) {
        // Bytes arriving in arbitrary reads, stitched, recorded, read back:
        // the concatenated output equals the input, and no event holds a
        // character split in two.
        let text: Vec<u8> = String::from_utf8_lossy(&data).into_owned().into_bytes();
        let mixed = [text.as_slice(), &data].concat();
        let mut s = Utf8Stitcher::new();
        let mut events = Vec::new();
        let mut pos = 0;
        let mut t = 0;
        for c in cuts.iter().cycle() {
            if pos >= mixed.len() { break; }
            let end = (pos + c).min(mixed.len());
            let ready = s.push(&mixed[pos..end]);
            pos = end;
            if !ready.is_empty() { t += 1000; events.push(Event::new(t, EventData::Output(ready))); }
        }
        let rest = s.finish();
        if !rest.is_empty() { events.push(Event::new(t, EventData::Output(rest))); }
        let file = write(&events, small_opts(), None, true);
        let (_, got) = read(&file, 1);
        let mut joined = Vec::new();
        for e in &got.events {
            if let EventData::Output(b) = &e.data { joined.extend_from_slice(b); }
        }
        prop_assert_eq!(joined, mixed);
        // Valid text never gains a replacement character from a split.
        let valid: Vec<u8> = got.events.iter().take_while(|_| true).flat_map(|e| match &e.data { EventData::Output(b) => b.clone(), _ => vec![] }).collect();
        prop_assert!(valid.starts_with(&text));
    }
}

#[test]
fn idle_segments_close_and_the_file_still_verifies() {
    use termtrail_format::cast::Header;
    use termtrail_format::seal::EndReason;
    use termtrail_format::writer::ChainWriter;
    let mut file = Vec::new();
    let opts = small_opts().segment_idle(Some(std::time::Duration::from_secs(2)));
    let mut w = ChainWriter::new(&mut file, Header::new(TermSize::DEFAULT), opts, None).unwrap();
    let mut events = Vec::new();
    for burst in 0..4u64 {
        for i in 0..5u64 {
            let e = Event::new(
                burst * 10_000_000 + i * 1000,
                EventData::Output(format!("burst {burst} line {i}\r\n").into_bytes()),
            );
            w.push(&e).unwrap();
            events.push(e);
        }
        // Idle: the chunk closes, then the segment closes.
        w.tick(burst * 10_000_000 + 1_500_000).unwrap();
        w.tick(burst * 10_000_000 + 5_000_000).unwrap();
    }
    w.seal(EndReason::Closed).unwrap();
    let (report, got) = read(&file, 2);
    assert_eq!(report.status, Status::Intact, "{:?}", report.problems);
    assert_eq!(report.segments, 4, "one segment per burst");
    assert_eq!(got.events, events);
}

#[test]
fn the_writer_refuses_events_no_recording_may_hold() {
    use termtrail_format::cast::Header;
    use termtrail_format::event::{Event, EventData, TermSize};
    use termtrail_format::writer::{ChainWriter, WriteError, WriterOptions};
    let mut file = Vec::new();
    let mut w = ChainWriter::new(
        &mut file,
        Header::new(TermSize::DEFAULT),
        WriterOptions::default().sync(false),
        None,
    )
    .unwrap();
    for code in ["", "b", "r", "o"] {
        let e = Event::new(
            0,
            EventData::Other {
                code: code.into(),
                data: "x".into(),
            },
        );
        assert!(
            matches!(w.push(&e), Err(WriteError::InvalidEvent(_))),
            "{code:?}"
        );
    }
    // The writer goes on, and what it wrote verifies.
    w.push(&Event::new(
        1,
        EventData::Other {
            code: "zz".into(),
            data: "ok".into(),
        },
    ))
    .unwrap();
    w.seal(termtrail_format::seal::EndReason::Closed).unwrap();
    let r = termtrail_format::reader::read_recording(
        &file[..],
        &termtrail_format::reader::ReadOptions::default(),
        &mut (),
    )
    .unwrap();
    assert_eq!(
        r.status,
        termtrail_format::reader::Status::Intact,
        "{:?}",
        r.problems
    );
}
