//! The recorder's fuzz targets without a fuzzer: every committed corpus
//! input (`fuzz/corpus/<target>/`) and regression input
//! (`tests/fuzz-regressions/<target>/`) replayed, then a short seeded
//! randomized run per target (longer with `TERMTRAIL_FUZZ_SECS` or
//! `TERMTRAIL_FUZZ_ITERS`; see the README's "Fuzzing").

use std::path::{Path, PathBuf};

use termtrail_format::fuzzing::run::{Budget, load_dir, randomized, replay};
use termtrail_recorder::fuzzing::TARGETS;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = load_dir(&root.join("../fuzz/corpus").join(target));
    files.extend(load_dir(&root.join("tests/fuzz-regressions").join(target)));
    files
}

fn run(name: &str) {
    let f = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a target")
        .1;
    let files = inputs(name);
    assert!(!files.is_empty(), "no corpus for {name}");
    replay(f, &files);
    let corpus: Vec<Vec<u8>> = files.into_iter().map(|(_, b)| b).collect();
    randomized(name, f, &corpus, Budget::from_env(300));
}

#[test]
fn ws() {
    run("ws");
}

#[test]
fn policy() {
    run("policy");
}

#[test]
fn auth() {
    run("auth");
}
