//! Every kind of damage is detected, named, and given the right verdict.

mod common;

use common::*;
use termtrail_format::frames::{
    Frame, FrameKind, FrameScanner, SEAL_MAGIC, SEGMENT_INDEX_MAGIC, skippable_frame,
};
use termtrail_format::reader::{ContentCheck, ProblemKind, Report, Status};
use termtrail_format::sign::SecretKey;

fn frames(file: &[u8]) -> Vec<Frame> {
    let mut s = FrameScanner::new(file);
    let mut out = Vec::new();
    while let Some(f) = s.next_frame().unwrap() {
        out.push(f);
    }
    out
}

fn raw(f: &Frame) -> Vec<u8> {
    match f.kind {
        FrameKind::Zstd => f.bytes.clone(),
        FrameKind::Skippable(m) => skippable_frame(m, &f.bytes),
    }
}

fn join(fs: &[Vec<u8>]) -> Vec<u8> {
    fs.concat()
}

fn recording() -> Vec<u8> {
    write(&session(1500), small_opts(), None, true)
}

/// The full verification's verdict — after checking that reading with
/// sealed frame hashes (grep's way) comes to the same verdict and the same
/// first problem.
fn verdict(file: &[u8]) -> Report {
    let full = read(file, 2).0;
    let (by_seal, _) = read_file(file, ContentCheck::SealedFrames);
    assert_eq!(
        (by_seal.status, by_seal.problems.first().map(|p| p.kind)),
        (full.status, full.problems.first().map(|p| p.kind)),
        "reading by the seal's frame hashes disagrees: {:?} / {:?}",
        by_seal.problems,
        full.problems
    );
    full
}

fn assert_tampered(file: &[u8], what: &str) -> Report {
    let r = verdict(file);
    assert_eq!(r.status, Status::Tampered, "{what}: not detected");
    assert!(!r.problems.is_empty());
    r
}

#[test]
fn intact_recording_verifies() {
    let r = verdict(&recording());
    assert_eq!(r.status, Status::Intact, "{:?}", r.problems);
    assert!(r.sealed);
}

#[test]
fn every_flipped_bit_is_detected() {
    let file = recording();
    // Every byte of a small region at the start, of each frame boundary and
    // of the seal, plus a stride through the rest.
    let fs = frames(&file);
    let mut positions: Vec<usize> = (0..64).collect();
    for f in &fs {
        let o = f.offset as usize;
        positions.extend(o.saturating_sub(4)..(o + 16).min(file.len()));
    }
    positions.extend((0..file.len()).step_by(97));
    positions.extend(file.len() - 400..file.len());
    positions.sort_unstable();
    positions.dedup();
    for &pos in &positions {
        for bit in [0, 3, 7] {
            let mut bad = file.clone();
            bad[pos] ^= 1 << bit;
            let r = verdict(&bad);
            assert_eq!(
                r.status,
                Status::Tampered,
                "bit {bit} of byte {pos} of {}: {:?}",
                file.len(),
                r.problems
            );
        }
    }
}

fn edit_segment(file: &[u8], seg: usize, edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let fs = frames(file);
    let mut parts = Vec::new();
    let mut n = 0;
    for f in &fs {
        if f.kind == FrameKind::Zstd {
            if n == seg {
                let mut data = zstd::decode_all(&f.bytes[..]).unwrap();
                edit(&mut data);
                parts.push(zstd::encode_all(&data[..], 3).unwrap());
                n += 1;
                continue;
            }
            n += 1;
        }
        parts.push(raw(f));
    }
    join(&parts)
}

#[test]
fn changed_character_in_event_line_is_named() {
    let file = recording();
    let bad = edit_segment(&file, 2, |data| {
        let at = data.windows(4).position(|w| w == b"line").unwrap();
        data[at] = b'L';
    });
    let r = assert_tampered(&bad, "edited event");
    let p = &r.problems[0];
    assert_eq!(p.kind, ProblemKind::ContentChanged);
    assert_eq!(p.segment, Some(2));
    assert!(p.chunk.is_some() && p.data_offset.is_some());
    assert!(r.chunks > 0 && r.last_verified > 0, "prefix still verified");
}

#[test]
fn changed_record_line_is_detected() {
    let file = recording();
    for (from, to) in [
        (&b"n="[..], &b"n=9"[..]),
        (b"t=", b"t=1"),
        (b"link=", b"link=0"),
    ] {
        let bad = edit_segment(&file, 1, |data| {
            let rec = data.windows(4).position(|w| w == b"#tt ").unwrap();
            let at = rec
                + data[rec..]
                    .windows(from.len())
                    .position(|w| w == from)
                    .unwrap();
            data.splice(at..at + from.len(), to.iter().copied());
        });
        assert_tampered(
            &bad,
            &format!("record edit {}", String::from_utf8_lossy(to)),
        );
    }
}

fn segments_and_index(file: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    // Pairs of (segment, its index frame) joined; last element is the seal.
    let fs = frames(file);
    let mut pairs = Vec::new();
    let mut seal = Vec::new();
    for f in &fs {
        match f.kind {
            FrameKind::Zstd => pairs.push(raw(f)),
            FrameKind::Skippable(SEGMENT_INDEX_MAGIC) => pairs.last_mut().unwrap().extend(raw(f)),
            FrameKind::Skippable(SEAL_MAGIC) => seal = raw(f),
            _ => unreachable!(),
        }
    }
    (pairs, seal)
}

#[test]
fn removed_duplicated_reordered_segments_are_detected() {
    let file = recording();
    let (segs, seal) = segments_and_index(&file);
    assert!(segs.len() >= 4, "need several segments, got {}", segs.len());
    let removed = [&segs[..2], &segs[3..], std::slice::from_ref(&seal)].concat();
    let r = assert_tampered(&join(&removed), "removed");
    assert_eq!(r.problems[0].kind, ProblemKind::Sequence);
    let dup = [&segs[..3], &segs[2..], std::slice::from_ref(&seal)].concat();
    let r = assert_tampered(&join(&dup), "duplicated");
    assert_eq!(r.problems[0].kind, ProblemKind::Sequence);
    let mut swapped = segs.clone();
    swapped.swap(1, 2);
    swapped.push(seal.clone());
    let r = assert_tampered(&join(&swapped), "reordered");
    assert_eq!(r.problems[0].segment, Some(1));
    // Chunks after the damage are reported as intact among themselves.
    assert!(!r.detached.is_empty());
}

#[test]
fn spliced_segment_from_another_recording_is_detected() {
    let a = recording();
    let b = recording(); // same events, different recording id
    let (mut sa, seal) = segments_and_index(&a);
    let (sb, _) = segments_and_index(&b);
    sa[2] = sb[2].clone();
    sa.push(seal);
    let r = assert_tampered(&join(&sa), "spliced");
    assert_eq!(r.problems[0].kind, ProblemKind::LinkMismatch);
}

#[test]
fn cuts_leave_a_verified_prefix() {
    let file = recording();
    let fs = frames(&file);
    let full = verdict(&file);
    for f in fs.iter().filter(|f| f.kind == FrameKind::Zstd) {
        for cut in [f.offset as usize, f.offset as usize + f.len as usize / 2] {
            if cut == 0 {
                continue;
            }
            let r = verdict(&file[..cut]);
            assert_eq!(r.status, Status::Unsealed, "cut at {cut}: {:?}", r.problems);
            assert!(!r.sealed);
            assert!(r.chunks <= full.chunks);
        }
    }
    // A cut just before the seal keeps every chunk.
    let seal_at = fs.last().unwrap().offset as usize;
    let r = verdict(&file[..seal_at]);
    assert_eq!((r.status, r.chunks), (Status::Unsealed, full.chunks));
}

/// A full disk can cut a file anywhere, even inside a frame's magic number
/// or size: every cut is "unsealed, intact up to …", never tampered. Cuts
/// 1–8 bytes into every frame (zstd, index, seal) and in its middle.
#[test]
fn a_cut_inside_any_frame_header_is_unsealed_not_tampered() {
    let file = recording();
    for f in frames(&file) {
        let start = f.offset as usize;
        let end = start + f.len as usize;
        let mut cuts: Vec<usize> = (1..=8).map(|k| start + k).collect();
        cuts.push(start + f.len as usize / 2);
        for cut in cuts.into_iter().filter(|&c| c < end.min(file.len())) {
            let r = verdict(&file[..cut]);
            assert_eq!(
                r.status,
                Status::Unsealed,
                "cut at {cut} ({} bytes into a {:?} frame at {start}): {:?}",
                cut - start,
                f.kind,
                r.problems
            );
        }
    }
}

#[test]
fn seal_forgery_removal_and_trailing_data() {
    let file = recording();
    let (segs, seal) = segments_and_index(&file);
    // Forged end reason (same length, hash not recomputed).
    let at = seal.windows(8).position(|w| w == b"\"code\":0").unwrap() + 7;
    let mut forged = seal.clone();
    forged[at] = b'7';
    assert_ne!(forged, seal);
    let mut f = segs.clone();
    f.push(forged);
    let r = assert_tampered(&join(&f), "forged seal");
    assert_eq!(r.problems[0].kind, ProblemKind::SealInvalid);
    // Removed seal: unsealed, not intact.
    assert_eq!(verdict(&join(&segs)).status, Status::Unsealed);
    // Data after the seal, named where it starts: a frame, or bytes that
    // are none.
    for tail in [segs[0].clone(), b"garbage after the seal".to_vec()] {
        let mut extra = file.clone();
        extra.extend(&tail);
        let r = assert_tampered(&extra, "appended");
        assert_eq!(
            r.problems[0].file_offset,
            file.len() as u64,
            "{:?}",
            r.problems
        );
    }
}

#[test]
fn changed_index_entries_are_detected() {
    let file = recording();
    // In a segment index frame.
    let find = |pat: &[u8]| file.windows(pat.len()).position(|w| w == pat).unwrap();
    let at = find(b"\"ulen\":") + 7;
    let mut bad = file.clone();
    bad[at] = if bad[at] == b'1' { b'2' } else { b'1' };
    assert_tampered(&bad, "segment index edit");
    // In the seal's index (the seal is the last frame).
    let last = file.windows(5).rposition(|w| w == b"\"t1\":").unwrap();
    let mut bad = file.clone();
    let at = last + 5;
    bad[at] = if bad[at] == b'1' { b'2' } else { b'1' };
    assert_tampered(&bad, "seal index edit");
}

#[test]
fn signatures_verify_and_forgeries_fail() {
    let key = SecretKey::generate().unwrap();
    let file = write(&session(300), small_opts(), Some(key), true);
    let r = verdict(&file);
    assert_eq!(r.status, Status::Intact);
    assert!(matches!(
        r.signature,
        termtrail_format::reader::Signature::Valid { .. }
    ));
    let sig_at = file.windows(4).rposition(|w| w == b"sig=").unwrap() + 4;
    let mut bad = file.clone();
    bad[sig_at] = if bad[sig_at] == b'a' { b'b' } else { b'a' };
    let r = assert_tampered(&bad, "signature");
    assert_eq!(r.problems[0].kind, ProblemKind::SignatureInvalid);
}

#[test]
fn unsealed_writer_drop_keeps_every_accepted_event() {
    let events = session(200);
    let file = write(&events, small_opts(), None, false);
    let (r, got) = read(&file, 1);
    assert_eq!(r.status, Status::Unsealed);
    assert_eq!(got.events, events);
}

/// Edits segment `seg`'s text and then, as a forger who knows the format
/// would, recomputes everything outside the chunks: the frame, every index
/// entry's offset and hash, and the seal (signed with `key` if given).
fn reseal_after_edit(
    file: &[u8],
    seg: usize,
    key: Option<&SecretKey>,
    edit: impl Fn(&mut Vec<u8>),
) -> Vec<u8> {
    use termtrail_format::seal::{SegmentEntry, decode_seal, encode_seal};
    let fs = frames(file);
    let mut out = Vec::new();
    let mut entries = Vec::new();
    let mut seal = None;
    let (mut n, mut last) = (0, (0u64, 0u64, String::new()));
    for f in &fs {
        match f.kind {
            FrameKind::Zstd => {
                let bytes = if n == seg {
                    let mut data = zstd::decode_all(&f.bytes[..]).unwrap();
                    edit(&mut data);
                    zstd::encode_all(&data[..], 3).unwrap()
                } else {
                    f.bytes.clone()
                };
                let sha = hex::encode(termtrail_format::chain::sha256(&bytes));
                last = (out.len() as u64, bytes.len() as u64, sha);
                out.extend(bytes);
                n += 1;
            }
            FrameKind::Skippable(SEGMENT_INDEX_MAGIC) => {
                let mut e = SegmentEntry::from_payload(&f.bytes).unwrap();
                (e.offset, e.length, e.sha256) = last.clone();
                out.extend(skippable_frame(SEGMENT_INDEX_MAGIC, &e.to_payload()));
                entries.push(e);
            }
            FrameKind::Skippable(SEAL_MAGIC) => seal = Some(decode_seal(&f.bytes).unwrap()),
            FrameKind::Skippable(_) => unreachable!(),
        }
    }
    let mut body = seal.unwrap().body;
    body.segments = entries;
    let mut last_link = [0u8; 32];
    hex::decode_to_slice(&body.last_link, &mut last_link).unwrap();
    out.extend(encode_seal(&body, &last_link, |h| key.map(|k| k.sign(h))));
    out
}

#[test]
fn sealed_frame_hashes_miss_only_a_change_resealed_by_a_forger() {
    let change = |data: &mut Vec<u8>| {
        let at = data.windows(4).position(|w| w == b"line").unwrap();
        data[at] = b'L';
    };
    // Unsigned: a forger who recomputes the frame, index and seal (but not
    // the chunk's record) gets past the frame hashes; the full check names
    // the chunk. (One who also recomputes records and links gets past both:
    // only a signature or an external copy of the seal stops that.)
    let file = recording();
    let bad = reseal_after_edit(&file, 2, None, change);
    let full = read(&bad, 2).0;
    assert_eq!(full.status, Status::Tampered);
    assert_eq!(full.problems[0].kind, ProblemKind::ContentChanged);
    let (by_seal, got) = read_file(&bad, ContentCheck::SealedFrames);
    assert_eq!(by_seal.status, Status::Intact, "{:?}", by_seal.problems);
    assert_eq!(by_seal.segments_by_seal, by_seal.segments);
    let changed = |e: &termtrail_format::event::Event| match &e.data {
        termtrail_format::event::EventData::Output(b) => b.windows(4).any(|w| w == b"Line"),
        _ => false,
    };
    assert!(got.events.iter().any(changed), "the changed text is read");
    // Signed: the forger cannot sign the new seal.
    let key = SecretKey::generate().unwrap();
    let file = write(&session(1500), small_opts(), Some(key.clone()), true);
    let (intact, _) = read_file(&file, ContentCheck::SealedFrames);
    assert_eq!(intact.status, Status::Intact);
    assert!(intact.segments_by_seal > 2);
    let forger = SecretKey::generate().unwrap();
    let bad = reseal_after_edit(&file, 2, Some(&forger), change);
    let (by_seal, _) = read_file(&bad, ContentCheck::SealedFrames);
    assert_eq!(by_seal.status, Status::Tampered);
    assert_eq!(by_seal.problems[0].kind, ProblemKind::SignatureInvalid);
}

/// Collects the segments a reader hands on after verifying them.
#[derive(Default)]
struct Segments {
    got: Vec<(u32, Vec<termtrail_format::event::Event>)>,
}

impl termtrail_format::reader::ReadSink for Segments {
    fn segment_text(
        &mut self,
        segment: u32,
        text: termtrail_format::index::SegmentText,
    ) -> termtrail_format::pipeline::Flow {
        let mut events = Vec::new();
        for k in 0..text.chunks() {
            assert!(
                text.push_events(k, &mut events).unwrap(),
                "chunk {k} verifies"
            );
        }
        self.got.push((segment, events));
        termtrail_format::pipeline::Flow::Continue
    }
}

#[test]
fn verified_segments_are_handed_on_and_damaged_ones_are_not() {
    use termtrail_format::reader::{ReadOptions, read_recording};
    let events = session(1500);
    let file = write(&events, small_opts(), None, true);
    let read_segments = |file: &[u8]| {
        let mut sink = Segments::default();
        let opts = ReadOptions {
            claims_sealed: true,
            ..ReadOptions::default()
        };
        let r = read_recording(file, &opts, &mut sink).unwrap();
        (r, sink.got)
    };
    let (r, got) = read_segments(&file);
    assert_eq!(r.status, Status::Intact);
    assert_eq!(got.len(), r.segments as usize);
    let numbers: Vec<u32> = got.iter().map(|g| g.0).collect();
    assert_eq!(numbers, (0..r.segments).collect::<Vec<_>>());
    // Together they hold every event, in order.
    let all: Vec<_> = got.into_iter().flat_map(|g| g.1).collect();
    assert_eq!(all, events);
    // Damage in segment 2: segments 0 and 1 only.
    let bad = edit_segment(&file, 2, |data| {
        let at = data.windows(4).position(|w| w == b"line").unwrap();
        data[at] = b'L';
    });
    let (r, got) = read_segments(&bad);
    assert_eq!(r.status, Status::Tampered);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 1]);
}
