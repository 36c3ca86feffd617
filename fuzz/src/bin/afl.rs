//! The AFL++ harness: `termtrail-fuzz-afl TARGET`, built with
//! `cargo afl build --features afl` and run under `cargo afl fuzz` (see the
//! README's "Fuzzing"). Each input runs under the counting allocator; a
//! panic (a finding, or more than 64 MiB live) is a crash to AFL.

use termtrail_fuzz::{CountingAlloc, bounded, target};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some((name, f)) = target(&name) else {
        eprintln!("usage: termtrail-fuzz-afl TARGET (see `termtrail-fuzz list`)");
        std::process::exit(2);
    };
    // What the targets make once (reference recordings, keys, runtimes)
    // is made before the fork server starts, not in every child: otherwise
    // AFL sees it as coverage that comes and goes.
    termtrail_format::fuzzing::warm_up();
    f(b"");
    afl::fuzz!(|data: &[u8]| {
        bounded(name, f, data);
    });
}
