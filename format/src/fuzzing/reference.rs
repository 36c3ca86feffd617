//! Small recordings made the same way every time (fixed id, times and
//! key): the container targets' seed corpus, and what they know to be
//! genuinely sealed — the only inputs that may read as intact.

use std::sync::OnceLock;
use std::time::Duration;

use crate::cast::{Header, RecordingMeta};
use crate::event::{Event, EventData, TermSize};
use crate::frames::{FrameKind, FrameScanner, SEGMENT_INDEX_MAGIC, skippable_frame};
use crate::seal::EndReason;
use crate::seal::SegmentEntry;
use crate::sign::SecretKey;
use crate::writer::{ChainWriter, WriterOptions};

/// The seed of the signing key of the signed references (a test key).
const KEY_SEED: [u8; 32] = [7; 32];

/// The text of a secret key file holding the references' test key (the
/// format `termtrail keygen` writes).
pub fn reference_key_file() -> String {
    format!("termtrail-ed25519-secret {}\n", hex::encode(KEY_SEED))
}

fn key() -> SecretKey {
    let file = super::Scratch::with("key", reference_key_file().as_bytes())
        .expect("the temporary directory is writable");
    SecretKey::load(file.path()).expect("the reference key file loads")
}

fn header(id: u8) -> Header {
    let mut h = Header::new(TermSize { cols: 80, rows: 24 });
    h.timestamp = Some(1_800_000_000);
    h.command = Some("bash".into());
    h.termtrail = Some(RecordingMeta {
        id: format!("{id:02x}").repeat(16),
        source: Some("local".into()),
        ..RecordingMeta::default()
    });
    h
}

/// Every kind of event, spread over several chunks (one per 1.1 s).
fn events() -> Vec<Event> {
    let data = [
        EventData::Output(b"$ ls\r\n".to_vec()),
        EventData::Input(b"ls\r".to_vec()),
        EventData::Output(b"caf\xc3\xa9 \xff\xfe raw \x1b[1mbold\x1b[0m\r\n".to_vec()),
        EventData::Marker("step 1".into()),
        EventData::Resize(TermSize {
            cols: 100,
            rows: 30,
        }),
        EventData::Other {
            code: "z".into(),
            data: "future".into(),
        },
        EventData::Output(
            "\u{fffd} real replacement, \u{202e}bidi\r\n"
                .as_bytes()
                .to_vec(),
        ),
        EventData::Exit(3),
    ];
    data.into_iter()
        .enumerate()
        .map(|(i, d)| Event::new(i as u64 * 1_100_000 + 250, d))
        .collect()
}

/// One recording: `signed`, several segments (`split`), sealed or left
/// unsealed as a crashed recorder leaves it.
fn make(id: u8, signed: bool, split: bool, seal: bool) -> Vec<u8> {
    let mut opts = WriterOptions::default().sync(false);
    if split {
        opts = opts
            .chunk_age(Duration::from_millis(10))
            .segment_age(Duration::from_millis(20));
    }
    let mut out = Vec::new();
    let mut w = ChainWriter::new(&mut out, header(id), opts, signed.then(key))
        .expect("the reference writer starts");
    for e in events() {
        w.push(&e).expect("the reference events are accepted");
    }
    if seal {
        w.seal(EndReason::Exited { code: 3 })
            .expect("the reference recording seals");
    } else {
        drop(w);
    }
    out
}

/// The references, by name: `plain` (one segment), `signed`, `segments`
/// (a segment per event), `unsealed` (a crashed recorder's file: its last
/// segment unfinished). All but `unsealed` are sealed.
pub fn reference_recordings() -> &'static [(&'static str, Vec<u8>)] {
    static REFS: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    REFS.get_or_init(|| {
        vec![
            ("plain", make(1, false, false, true)),
            ("signed", make(2, true, false, true)),
            ("segments", make(3, false, true, true)),
            ("unsealed", make(4, false, true, false)),
        ]
    })
}

/// The inputs allowed to read intact: the references made in this process
/// and the committed container and recover seeds (references made earlier:
/// a seal records when it was made, so they differ from this process's in
/// the seal). A file in those corpus directories is taken to be made by
/// the writer; nothing else may be put there.
pub fn known_sealed(data: &[u8]) -> bool {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let seeds = SEEDS.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        ["container", "recover"]
            .iter()
            .flat_map(|dir| super::run::load_dir(&root.join(dir)))
            .map(|(_, bytes)| bytes)
            .collect()
    });
    let data = canonical_index_frames(data);
    reference_recordings()
        .iter()
        .map(|(_, r)| r)
        .chain(seeds)
        .any(|r| canonical_index_frames(r) == data)
}

/// `data` with every segment index frame's JSON rewritten as the writer
/// writes it: a verifier compares index entries member by member, not as
/// text (`docs/format.md` §5), so their bytes may differ in an intact file.
fn canonical_index_frames(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut frames = FrameScanner::new(data);
    let mut at = 0;
    while let Ok(Some(f)) = frames.next_frame() {
        let entry = (f.kind == FrameKind::Skippable(SEGMENT_INDEX_MAGIC) && f.complete)
            .then(|| SegmentEntry::from_payload(&f.bytes))
            .flatten();
        match entry {
            Some(e) => out.extend(skippable_frame(SEGMENT_INDEX_MAGIC, &e.to_payload())),
            None => out.extend_from_slice(&data[at..at + f.len as usize]),
        }
        at += f.len as usize;
    }
    out.extend_from_slice(&data[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{ReadOptions, Status, read_recording};

    #[test]
    fn references_are_reproducible_and_read_as_made() {
        assert_eq!(make(1, false, false, true), make(1, false, false, true));
        assert_eq!(make(2, true, false, true), make(2, true, false, true));
        for (name, bytes) in reference_recordings() {
            let r = read_recording(&bytes[..], &ReadOptions::default(), &mut ()).unwrap();
            let want = if *name == "unsealed" {
                Status::Unsealed
            } else {
                Status::Intact
            };
            assert_eq!(r.status, want, "{name}: {:?}", r.problems);
            assert!(r.chunks > 1, "{name}");
        }
    }
}
