//! Malformed input never panics: every parser and the verifying reader get
//! random bytes and randomly mutated real recordings.
//!
//! (A coverage-guided fuzzer needs a nightly toolchain, which this project's
//! machines do not have; these property tests are the stand-in, run in CI.)

mod common;

use std::io::Cursor;

use common::*;
use proptest::prelude::*;
use termtrail_format::cast::{Header, parse_line};
use termtrail_format::chain::ChunkRecord;
use termtrail_format::index::load_index;
use termtrail_format::plain::CastReader;
use termtrail_format::reader::{ReadOptions, Status, read_recording};
use termtrail_format::seal::decode_seal;

fn mutate(file: &[u8], ops: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut out = file.to_vec();
    for &(op, pos, val) in ops {
        if out.is_empty() {
            break;
        }
        let p = pos % out.len();
        match op % 4 {
            0 => out[p] ^= val | 1,
            1 => out.truncate(p),
            2 => out.insert(p, val),
            _ => {
                out.remove(p);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn line_and_record_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_line(&bytes);
        let _ = ChunkRecord::parse(&bytes);
        let _ = Header::parse(&bytes);
        let _ = decode_seal(&bytes);
        let mut with_prefix = b"#tt chunk=".to_vec();
        with_prefix.extend(&bytes);
        let _ = ChunkRecord::parse(&with_prefix);
    }

    #[test]
    fn plain_reader_never_panics(lines in proptest::collection::vec("[\\[\\]0-9., \"oimrxb#{}a-z:\\\\]{0,40}", 0..20)) {
        let mut text = b"{\"version\": 3, \"term\": {\"cols\": 80, \"rows\": 24}}\n".to_vec();
        for l in &lines {
            text.extend(l.as_bytes());
            text.push(b'\n');
        }
        if let Ok(mut r) = CastReader::new(&text[..]) {
            for _ in 0..100 {
                match r.next_event() {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
    }

    #[test]
    fn mutated_recordings_never_panic_and_never_pass_as_intact(
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
    ) {
        let file = write(&session(300), small_opts(), None, true);
        let bad = mutate(&file, &ops);
        let opts = ReadOptions { claims_sealed: bad.ends_with(b"TTSEALv1"), ..ReadOptions::default() };
        if let Ok(report) = read_recording(&bad[..], &opts, &mut ())
            && bad != file
        {
            prop_assert_ne!(report.status, Status::Intact);
        }
        let _ = load_index(&mut Cursor::new(&bad[..])).map(|idx| {
            for i in 0..idx.segments.len().min(50) {
                let _ = idx.read_segment(&mut Cursor::new(&bad[..]), i);
            }
        });
    }
}
