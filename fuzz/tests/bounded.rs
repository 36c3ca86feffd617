//! Every committed corpus and regression input of every target, replayed
//! under the counting allocator: none may make more than 64 MiB live at
//! once (`termtrail_fuzz::ALLOC_LIMIT`). One test, so no other test's
//! allocations count against an input.

use std::path::Path;

use termtrail_format::fuzzing::run::load_dir;
use termtrail_fuzz::{CountingAlloc, bounded, targets};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn every_input_stays_within_the_allocation_bound() {
    // The bound works: 65 MiB at once fails it.
    fn greedy(data: &[u8]) {
        let big = vec![1u8; (65 << 20) + data.len()];
        assert_eq!(big.len(), (65 << 20) + data.len());
    }
    let caught = std::panic::catch_unwind(|| bounded("greedy", greedy, b"x"));
    assert!(caught.is_err(), "65 MiB passed the 64 MiB bound");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut total = 0;
    for (name, f) in targets() {
        let mut files = load_dir(&root.join("corpus").join(name));
        for krate in ["format", "recorder"] {
            files.extend(load_dir(
                &root
                    .join("..")
                    .join(krate)
                    .join("tests/fuzz-regressions")
                    .join(name),
            ));
        }
        assert!(!files.is_empty(), "no corpus for {name}");
        for (path, data) in &files {
            eprintln!("{name}: {}", path.display());
            bounded(name, f, data);
        }
        total += files.len();
    }
    assert!(total > 0);
}
