//! The format's fuzz targets without a fuzzer: every committed corpus input
//! (`fuzz/corpus/<target>/`) and regression input
//! (`tests/fuzz-regressions/<target>/`) replayed, then a short seeded
//! randomized run per target (longer with `TERMTRAIL_FUZZ_SECS` or
//! `TERMTRAIL_FUZZ_ITERS`; see the README's "Fuzzing").

use std::path::{Path, PathBuf};

use termtrail_format::fuzzing::run::{Budget, load_dir, randomized, replay};
use termtrail_format::fuzzing::{TARGETS, reference_recordings};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = load_dir(&root.join("../fuzz/corpus").join(target));
    files.extend(load_dir(&root.join("tests/fuzz-regressions").join(target)));
    files
}

fn target(name: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a target")
        .1
}

fn run(name: &str) {
    let files = inputs(name);
    assert!(!files.is_empty(), "no corpus for {name}");
    replay(target(name), &files);
    let mut corpus: Vec<Vec<u8>> = files.into_iter().map(|(_, b)| b).collect();
    if name != "cast" {
        corpus.extend(reference_recordings().iter().map(|(_, r)| r.clone()));
    }
    randomized(name, target(name), &corpus, Budget::from_env(200));
}

#[test]
fn cast() {
    run("cast");
}

#[test]
fn container() {
    run("container");
}

#[test]
fn recover() {
    run("recover");
}
