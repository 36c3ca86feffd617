//! The command call's encodings: round trips, UTF-8 stitching, negotiation
//! and the exact event stream bytes of one message.

use super::*;

fn round_trip(format: Format, events: &[CommandEvent], cut: usize) -> Vec<CommandEvent> {
    let mut enc = Encoder::new(format);
    let wire: Vec<u8> = events.iter().flat_map(|e| enc.encode(e)).collect();
    let mut dec = Decoder::new(format);
    let mut out = Vec::new();
    for piece in wire.chunks(cut) {
        out.extend(dec.push(piece).unwrap());
    }
    out
}

fn joined(events: &[CommandEvent], stream: OutStream) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Output(s, b) if *s == stream => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn utf8_split_across_chunks_is_stitched_in_both_formats() {
    let euro = "€".as_bytes();
    let events = [
        CommandEvent::Start,
        CommandEvent::Output(OutStream::Stdout, vec![b'a', euro[0]]),
        CommandEvent::Output(OutStream::Stderr, b"err".to_vec()),
        CommandEvent::Output(OutStream::Stdout, euro[1..].to_vec()),
        CommandEvent::Output(OutStream::Stdout, b"b".to_vec()),
        CommandEvent::Stop {
            exit_code: 3,
            timed_out: false,
        },
    ];
    for format in [Format::EventStream, Format::JsonLines] {
        for cut in [1, 7, 4096] {
            let got = round_trip(format, &events, cut);
            assert_eq!(joined(&got, OutStream::Stdout), "a€b".as_bytes());
            assert_eq!(joined(&got, OutStream::Stderr), b"err");
            assert_eq!(got.first(), Some(&CommandEvent::Start));
            assert_eq!(
                got.last(),
                Some(&CommandEvent::Stop {
                    exit_code: 3,
                    timed_out: false
                })
            );
        }
    }
}

#[test]
fn bytes_that_are_not_utf8_are_exact_in_json_lines_and_replaced_in_the_event_stream() {
    let bytes = vec![b'x', 0xff, 0xfe, b'y', 0xe2, 0x82];
    let events = [
        CommandEvent::Output(OutStream::Stdout, bytes.clone()),
        CommandEvent::Stop {
            exit_code: 0,
            timed_out: true,
        },
    ];
    let lines = round_trip(Format::JsonLines, &events, 3);
    assert_eq!(joined(&lines, OutStream::Stdout), bytes);
    let stream = round_trip(Format::EventStream, &events, 3);
    assert_eq!(
        String::from_utf8(joined(&stream, OutStream::Stdout)).unwrap(),
        String::from_utf8_lossy(&bytes)
    );
    assert!(matches!(
        stream.last(),
        Some(CommandEvent::Stop {
            timed_out: true,
            ..
        })
    ));
}

#[test]
fn an_event_stream_message_is_the_services_frame() {
    let wire = Encoder::new(Format::EventStream).encode(&CommandEvent::Start);
    let total = u32::from_be_bytes(wire[0..4].try_into().unwrap()) as usize;
    assert_eq!(total, wire.len());
    let headers_len = u32::from_be_bytes(wire[4..8].try_into().unwrap()) as usize;
    let prelude_crc = u32::from_be_bytes(wire[8..12].try_into().unwrap());
    assert_eq!(prelude_crc, crc32fast_hash(&wire[..8]));
    let message_crc = u32::from_be_bytes(wire[total - 4..].try_into().unwrap());
    assert_eq!(message_crc, crc32fast_hash(&wire[..total - 4]));
    // Header: name length, name, type 7 (string), value length, value.
    let headers = &wire[12..12 + headers_len];
    let mut expected = Vec::new();
    for (name, value) in [
        (":message-type", "event"),
        (":event-type", "chunk"),
        (":content-type", "application/json"),
    ] {
        expected.push(name.len() as u8);
        expected.extend_from_slice(name.as_bytes());
        expected.push(7);
        expected.extend_from_slice(&(value.len() as u16).to_be_bytes());
        expected.extend_from_slice(value.as_bytes());
    }
    assert_eq!(headers, &expected[..]);
    assert_eq!(
        &wire[12 + headers_len..total - 4],
        br#"{"contentStart":{}}"#
    );
}

/// CRC-32 (IEEE), written here so the test does not trust the encoder's.
fn crc32fast_hash(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn exceptions_round_trip_by_member_name() {
    for format in [Format::EventStream, Format::JsonLines] {
        let events = [CommandEvent::Failed(
            Exception::Throttling,
            "too many".into(),
        )];
        assert_eq!(round_trip(format, &events, 5), events);
    }
    assert_eq!(Exception::Throttling.member(), "throttlingException");
    assert_eq!(Exception::RuntimeClient.member(), "runtimeClientError");
    assert_eq!(Exception::for_status(429), Exception::Throttling);
    assert_eq!(Exception::for_status(401), Exception::AccessDenied);
    assert_eq!(Exception::for_status(413), Exception::Validation);
    assert_eq!(Exception::for_status(502), Exception::InternalServer);
}

#[test]
fn a_corrupt_frame_is_an_error_not_a_panic() {
    let mut wire = Encoder::new(Format::EventStream).encode(&CommandEvent::Start);
    let n = wire.len();
    wire[n - 6] ^= 1;
    assert!(Decoder::new(Format::EventStream).push(&wire).is_err());
    assert!(Decoder::new(Format::JsonLines).push(b"[1]\n").is_err());
}

#[test]
fn json_lines_only_when_asked_for() {
    assert_eq!(Format::negotiate(None), Format::EventStream);
    assert_eq!(Format::negotiate(Some("*/*")), Format::EventStream);
    assert_eq!(
        Format::negotiate(Some("application/x-ndjson")),
        Format::JsonLines
    );
    assert_eq!(
        Format::negotiate(Some(
            "application/x-ndjson, application/vnd.amazon.eventstream;q=0.5"
        )),
        Format::JsonLines
    );
    assert_eq!(
        Format::negotiate(Some("application/x-ndjson;q=0.5, */*")),
        Format::EventStream
    );
    assert_eq!(
        Format::negotiate(Some("application/x-ndjson;q=0")),
        Format::EventStream
    );
}
