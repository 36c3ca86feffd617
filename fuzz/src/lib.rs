//! termtrail's fuzz targets in one place, with what checks them beyond the
//! targets' own invariants: a counting global allocator that bounds the
//! memory one input may make the code under test allocate.
//!
//! The targets themselves live in the crates whose code they exercise
//! (`termtrail_format::fuzzing`, `termtrail_recorder::fuzzing`); this crate
//! runs them: the randomized runner (`termtrail-fuzz`, stable Rust, no
//! fuzzer) and the AFL++ harness (`termtrail-fuzz-afl`, `--features afl`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use termtrail_format::fuzzing::Target;

/// Most bytes one input of at most 1 MiB may have allocated at once, over
/// what was allocated before it (64 MiB).
pub const ALLOC_LIMIT: usize = 64 << 20;

/// Every target: the format's, then (with the `recorder` feature, on by
/// default) the recorder's.
pub fn targets() -> Vec<Target> {
    let all = termtrail_format::fuzzing::TARGETS.iter();
    #[cfg(feature = "recorder")]
    let all = all.chain(termtrail_recorder::fuzzing::TARGETS);
    all.copied().collect()
}

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    targets().into_iter().find(|(n, _)| *n == name)
}

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes live and their peak. Install
/// it with `#[global_allocator]` in a binary or test; [`bounded`] then
/// checks each input against [`ALLOC_LIMIT`].
pub struct CountingAlloc;

impl CountingAlloc {
    fn grew(size: usize) {
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to the system allocator unchanged; only
// counters are updated beside it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is System's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            Self::grew(new_size);
        }
        p
    }
}

/// Runs `target` on `data` and fails when, with [`CountingAlloc`]
/// installed, the input made more than [`ALLOC_LIMIT`] bytes live at once
/// (without it installed nothing is counted and only the target runs).
pub fn bounded(name: &str, target: fn(&[u8]), data: &[u8]) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    target(data);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    assert!(
        peak <= ALLOC_LIMIT,
        "{name}: an input of {} bytes made {} MiB live at once (limit {} MiB)",
        data.len(),
        peak >> 20,
        ALLOC_LIMIT >> 20
    );
}

/// The peak of bytes live since the last [`bounded`] call began (0 without
/// [`CountingAlloc`]).
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}
