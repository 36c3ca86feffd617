//! The format's fuzz targets and the invariants each checks.

use crate::cast::{CastVersion, Header};
use crate::chain::ChunkRecord;
use crate::event::Event;
use crate::import::import;
use crate::pipeline::Flow;
use crate::plain::{CastReader, CastWriter};
use crate::reader::{
    ContentCheck, ProblemKind, ReadError, ReadOptions, ReadSink, Report, Status, read_path,
    read_recording,
};
use crate::recover::{RecoverError, seal_interrupted};
use crate::scan;
use crate::seal::EndReason;

use super::reference::known_sealed;
use super::{Scratch, reference_key_file, reference_recordings};
use crate::sign::SecretKey;

/// Most events a target keeps from one input (bounds its memory on inputs
/// of many tiny events).
const MAX_EVENTS: usize = 100_000;

/// Reads a plain asciicast file to its end or first error.
fn read_cast(data: &[u8]) -> Option<(Header, CastVersion, Vec<Event>, bool)> {
    let mut r = CastReader::new(data).ok()?;
    let (header, version) = (r.header().clone(), r.version());
    let mut events = Vec::new();
    let complete = loop {
        match r.next_event() {
            Ok(Some(e)) if events.len() < MAX_EVENTS => events.push(e),
            Ok(Some(_)) => return None,
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    Some((header, version, events, complete))
}

/// The asciicast reader (v2/v3), the printer and `import`.
///
/// Invariants: event times never go back; a header printed as v3 reads
/// back the same; events printed (v2 and v3, lossless) read back the same;
/// a file that reads to its end imports into a recording that verifies
/// intact, sealed `imported`, with the same events.
pub fn cast(data: &[u8]) {
    scanner_agrees(data);
    let Some((header, version, events, complete)) = read_cast(data) else {
        return;
    };
    assert!(
        events.windows(2).all(|w| w[0].time <= w[1].time),
        "event times go back"
    );
    let line = header.to_line(CastVersion::V3);
    let again = Header::parse(&line).map(|(h, _)| h);
    assert_eq!(
        again.as_ref(),
        Ok(&header),
        "v3 header round trip ({version:?} input)"
    );
    for out_version in [CastVersion::V2, CastVersion::V3] {
        let mut w = CastWriter::new(Vec::new(), &header, out_version, false).expect("in memory");
        for e in &events {
            w.write(e).expect("in memory");
        }
        let printed = w.finish().expect("in memory");
        let back = read_cast(&printed).map(|(_, _, e, complete)| (e, complete));
        assert_eq!(
            back,
            Some((events.clone(), true)),
            "events printed as {out_version:?} do not read back the same"
        );
    }
    if !complete {
        return;
    }
    let mut sealed = Vec::new();
    import(data, &mut sealed, None).expect("a file that reads imports");
    let mut got = Events::default();
    let report = read_recording(&sealed[..], &ReadOptions::default(), &mut got)
        .expect("an imported recording is a recording");
    assert_eq!(report.status, Status::Intact, "{:?}", report.problems);
    assert_eq!(report.end, Some(EndReason::Imported));
    assert_eq!(got.events, events, "import changed the events");
}

/// Every line the in-place scanner says it times exactly gets the time a
/// JSON parser gives it (search times stored lines with the scanner).
fn scanner_agrees(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        let Some(head) = scan::head(line).filter(|h| h.exact_time) else {
            continue;
        };
        let Ok((serde_json::Value::Number(n), _, _)) =
            serde_json::from_slice::<(serde_json::Value, String, serde_json::Value)>(line)
        else {
            continue;
        };
        if let Some(secs) = n.as_f64() {
            assert_eq!(
                head.interval,
                (secs * 1e6).round() as u64,
                "scanner and JSON parser time {:?} differently",
                String::from_utf8_lossy(line)
            );
        }
    }
}

/// What a sink saw, with the order checks every sink may rely on.
#[derive(Default)]
struct Events {
    header: bool,
    events: Vec<Event>,
    chunks: Vec<u64>,
}

impl ReadSink for Events {
    fn header(&mut self, _: &Header) -> Flow {
        assert!(!self.header, "two headers pushed");
        self.header = true;
        Flow::Continue
    }
    fn event(&mut self, e: &Event) -> Flow {
        assert!(self.header, "an event pushed before the header");
        if self.events.len() < MAX_EVENTS {
            self.events.push(e.clone());
        }
        Flow::Continue
    }
    fn chunk(&mut self, r: &ChunkRecord) -> Flow {
        assert_eq!(
            r.seq,
            self.chunks.len() as u64,
            "chunks pushed out of order"
        );
        self.chunks.push(r.seq);
        Flow::Continue
    }
}

/// What must not depend on how a file is read.
fn verdict(r: &Report) -> impl PartialEq + std::fmt::Debug {
    (
        r.status,
        r.sealed,
        r.chunks,
        r.lines,
        r.last_verified,
        r.end.clone(),
        r.signature.clone(),
        r.problems.first().map(|p| (p.kind, p.chunk, p.file_offset)),
    )
}

fn read_file(path: &std::path::Path, opts: &ReadOptions) -> (Result<Report, ReadError>, Events) {
    let mut sink = Events::default();
    (read_path(path, opts, &mut sink), sink)
}

/// The verifying reader on the bytes as a file, as `verify` reads one.
///
/// Invariants: the status agrees with the problems and the seal; only a
/// reference recording (the seed corpus) reads intact — nothing else can
/// be both changed and intact; a strict prefix of a reference (a cut
/// anywhere) reads unsealed, never tampered; the same verdict with one or
/// two threads, and with the seal's frame hashes standing in for chunk
/// hashing; events only from verified chunks, in order.
pub fn container(data: &[u8]) {
    let Ok(file) = Scratch::with("container.cast.zst", data) else {
        return;
    };
    let one = ReadOptions {
        threads: 1,
        ..ReadOptions::default()
    };
    let (report, sink) = read_file(file.path(), &one);
    let prefix_of = reference_recordings()
        .iter()
        .find(|(_, r)| r.len() > data.len() && r.starts_with(data) && !data.is_empty());
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            assert!(prefix_of.is_none(), "a cut reference is not read: {e}");
            return;
        }
    };
    match report.status {
        Status::Intact => {
            assert!(report.sealed && report.problems.is_empty(), "{report:?}");
            assert!(
                known_sealed(data),
                "changed bytes verify intact: {report:?}"
            );
        }
        Status::Unsealed => assert!(!report.sealed && report.problems.is_empty()),
        Status::Tampered => assert!(!report.problems.is_empty()),
    }
    if let Some((name, _)) = prefix_of {
        assert_eq!(
            report.status,
            Status::Unsealed,
            "reference {name} cut at byte {}: {:?}",
            data.len(),
            report.problems
        );
    }
    assert!(
        sink.events.len() as u64 <= report.lines,
        "more events than verified lines"
    );
    assert_eq!(
        sink.chunks.len() as u64,
        report.chunks,
        "chunks pushed vs counted"
    );
    for other in [
        ReadOptions {
            threads: 2,
            ..one.clone()
        },
        ReadOptions {
            content: ContentCheck::SealedFrames,
            ..one.clone()
        },
    ] {
        let (again, _) = read_file(file.path(), &other);
        let again = again.expect("read once, read again");
        assert_eq!(
            verdict(&again),
            verdict(&report),
            "verdict depends on {other:?}"
        );
    }
    // A stream (no look at the tail first) never finds more than the file.
    if let Ok(streamed) = read_recording(data, &one, &mut ()) {
        assert!(streamed.status != Status::Intact || report.status == Status::Intact);
    }
}

/// `recover` (sealing an interrupted recording in place), then the reader.
///
/// Invariants: a file that is sealed or tampered is left byte for byte as
/// it was; one that is sealed by recover then reads intact, sealed
/// `interrupted`, with every chunk that verified before.
pub fn recover(data: &[u8]) {
    let Ok(file) = Scratch::with("recover.cast.zst", data) else {
        return;
    };
    let opts = ReadOptions {
        threads: 1,
        ..ReadOptions::default()
    };
    let before = read_file(file.path(), &opts).0.ok();
    // The references' key: a signed reference gets a signed seal, as its
    // own recorder would give it.
    let Ok(key) = Scratch::with("recover.key", reference_key_file().as_bytes()) else {
        return;
    };
    let key = SecretKey::load(key.path()).expect("the reference key loads");
    let outcome = seal_interrupted(file.path(), "fuzz", Some(&key));
    let after = std::fs::read(file.path()).expect("the scratch file is there");
    match outcome {
        Ok(None) | Err(RecoverError::Tampered(_)) | Err(RecoverError::Unreadable(_)) => {
            assert!(
                after == data,
                "recover changed a file it did not seal: {outcome:?}"
            );
        }
        Err(RecoverError::Io(e)) => panic!("recover: I/O error on a scratch file: {e}"),
        Err(RecoverError::BeingRecorded(b)) => panic!("recover: no one writes a scratch file: {b}"),
        Ok(Some(rec)) => {
            let before = before.expect("recover sealed a file the reader could not read");
            assert_eq!(before.status, Status::Unsealed);
            let (report, _) = read_file(file.path(), &opts);
            let report = report.expect("a recovered file is a recording");
            // A header naming another key than the one given: the seal is
            // unsigned, and said to be (documented in `recover`).
            let other_key =
                !rec.signed && matches!(report.signature, crate::reader::Signature::Invalid { .. });
            if other_key {
                assert!(
                    report
                        .problems
                        .iter()
                        .all(|p| p.kind == ProblemKind::SignatureInvalid)
                );
            } else {
                assert_eq!(report.status, Status::Intact, "{:?}", report.problems);
            }
            assert_eq!(
                report.end,
                Some(EndReason::Interrupted {
                    detail: "fuzz".into()
                })
            );
            assert_eq!(report.chunks, rec.chunks);
            assert!(
                report.chunks >= before.chunks,
                "recover lost verified chunks"
            );
            if !other_key {
                assert!(seal_interrupted(file.path(), "again", None).is_ok_and(|r| r.is_none()));
            }
        }
    }
}
