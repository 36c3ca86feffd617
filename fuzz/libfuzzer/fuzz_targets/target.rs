//! The libFuzzer harness: the target named by `TERMTRAIL_FUZZ_TARGET`
//! (see `termtrail-fuzz list`), each input under the counting allocator.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use termtrail_fuzz::{CountingAlloc, Target, bounded, target};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn chosen() -> Target {
    static T: OnceLock<Target> = OnceLock::new();
    *T.get_or_init(|| {
        let name = std::env::var("TERMTRAIL_FUZZ_TARGET").unwrap_or_default();
        target(&name).unwrap_or_else(|| {
            eprintln!("set TERMTRAIL_FUZZ_TARGET to a target of `termtrail-fuzz list`");
            std::process::exit(2)
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let (name, f) = chosen();
    bounded(name, f, data);
});
