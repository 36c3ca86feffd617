//! The conformance vectors (docs/format.md §7.5): the committed files are
//! exactly what the generator writes today, and the library reader gives
//! each the verdict its JSON states (verifying only, and decoding events).
//! `tests/e2e/vectors.rs` runs them through `termtrail verify --json`.

#[allow(dead_code)]
#[path = "../examples/vectors/cases.rs"]
mod cases;
#[allow(dead_code)]
#[path = "../examples/vectors/cases_tail.rs"]
mod cases_tail;
#[allow(dead_code)]
#[path = "../examples/vectors/forge.rs"]
mod forge;
#[allow(dead_code)]
#[path = "../examples/vectors/verdict.rs"]
mod verdict;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

#[test]
fn committed_vectors_are_what_the_generator_writes() {
    let dir = dir();
    let mut expected = BTreeSet::new();
    for c in cases::cases() {
        let file = format!("{}.cast.zst", c.name);
        let json = verdict::json(&file, c.check, c.description, &c.expect);
        let stored = std::fs::read(dir.join(&file))
            .unwrap_or_else(|e| panic!("{file}: {e} (regenerate: cargo run -p termtrail-format --example vectors -- format/tests/vectors)"));
        assert!(stored == c.bytes, "{file} differs from a fresh generation");
        let stored_json = std::fs::read_to_string(dir.join(format!("{}.json", c.name))).unwrap();
        assert_eq!(stored_json, json, "{}.json", c.name);
        expected.insert(file);
        expected.insert(format!("{}.json", c.name));
    }
    let found: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        found, expected,
        "files in tests/vectors that no case writes, or missing"
    );
}

#[test]
fn every_vector_gets_its_verdict_from_the_reader() {
    let n = verdicts_hold(&dir());
    assert!(n >= 100, "only {n} vectors");
}

/// Files where a verifier written from docs/format.md alone (never reading
/// this code) and `termtrail verify` once disagreed, each settled by a
/// change to the spec or the code (small-order and non-canonical keys,
/// `-0` and out-of-range integers, JSON nesting / number / surrogate
/// limits, duplicate unknown seal members, which intervals V18 sums, a
/// segment followed by another frame's magic without its index frame).
/// Same JSON as the vectors; kept beside them, not generated.
#[test]
fn the_independent_verifiers_findings_get_the_settled_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/independent");
    let n = verdicts_hold(&dir);
    assert!(n >= 12, "only {n} files");
}

/// Checks every `NAME.json` in `dir` against the reader's verdict on its
/// file, verifying only and decoding events; the number checked.
fn verdicts_hold(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let file = dir.join(v["file"].as_str().unwrap());
        for events in [false, true] {
            let got = verdict::of_file(&file, events);
            let got = serde_json::json!({
                "exit_code": got.exit_code,
                "verdict": got.verdict,
                "first_bad_chunk": got.first_bad_chunk,
                "reason": got.reason,
            });
            for k in ["exit_code", "verdict", "first_bad_chunk", "reason"] {
                assert_eq!(got[k], v[k], "{}: {k} (events {events})", path.display());
            }
        }
        n += 1;
    }
    n
}
