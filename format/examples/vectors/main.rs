//! Writes the conformance vectors (docs/format.md §7.5): one small
//! recording per check and truncation class, and beside each `NAME.json`
//! with the verdict a verifier must give. Deterministic (fixed id, times,
//! seal time and test signing seed), so a second run writes the same bytes;
//! every vector's verdict is checked against the library reader as it is
//! written.
//!
//!     cargo run -p termtrail-format --example vectors -- format/tests/vectors

mod cases;
mod cases_tail;
mod forge;
mod verdict;

use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: vectors DIR");
        std::process::exit(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("{}: {e}", dir.display());
        std::process::exit(2);
    }
    let mut wrong = 0;
    let cases = cases::cases();
    for c in &cases {
        let file = format!("{}.cast.zst", c.name);
        let path = dir.join(&file);
        let json = verdict::json(&file, c.check, c.description, &c.expect);
        if let Err(e) = std::fs::write(&path, &c.bytes)
            .and_then(|()| std::fs::write(dir.join(format!("{}.json", c.name)), json))
        {
            eprintln!("{}: {e}", path.display());
            std::process::exit(2);
        }
        for events in [false, true] {
            let got = verdict::of_file(&path, events);
            if got != c.expect {
                wrong += 1;
                eprintln!(
                    "{} (events {events}): expected {:?}, the reader says {got:?}",
                    c.name, c.expect
                );
            }
        }
    }
    let total: usize = cases.iter().map(|c| c.bytes.len()).sum();
    println!(
        "{} vectors, {total} bytes, in {}",
        cases.len(),
        dir.display()
    );
    if wrong > 0 {
        eprintln!("{wrong} verdicts differ from the reader's");
        std::process::exit(1);
    }
}
