//! Entry points for fuzzing this crate's parsers of untrusted bytes — not
//! part of the API (hidden from the docs; `fuzz/` and the replay tests call
//! them).
//!
//! Each target takes arbitrary bytes, runs them through the code a real
//! command runs on a file it was handed, and checks invariants beyond "no
//! panic" with `assert!`: a panic is a finding, whoever raises it. The
//! targets:
//!
//! - `cast`: the asciicast v2/v3 line parser and reader (`import`,
//!   `play`/`export` of `.cast` files), the printer's round trip and
//!   `import` → verify.
//! - `container`: the verifying reader on the bytes as a file (`verify`):
//!   frames, records, seal, index; a verdict that agrees with itself across
//!   thread counts and content checks, no forged "intact", a cut never
//!   called tampered.
//! - `recover`: `recover`'s sealing of an interrupted file, then the
//!   reader on what it wrote.
//!
//! `run` holds what runs a target without a fuzzer: corpus replay and
//! the seeded randomized mode (mutations of corpus inputs).

mod reference;
pub mod run;
mod targets;

pub use reference::{reference_key_file, reference_recordings};
pub use targets::{cast, container, recover};

/// Makes what the targets make once (the reference recordings, the set of
/// known sealed inputs), for a fuzzer that forks after start-up.
pub fn warm_up() {
    reference::known_sealed(b"");
}

/// A target: a name and the function that checks one input.
pub type Target = (&'static str, fn(&[u8]));

/// This crate's targets.
pub const TARGETS: &[Target] = &[
    ("cast", cast),
    ("container", container),
    ("recover", recover),
];

/// A file holding fuzz input, under the system's temporary directory,
/// removed when dropped: the targets hand bytes to the code under test as
/// a file, as the commands do. One per process and thread.
pub struct Scratch {
    path: std::path::PathBuf,
}

impl Scratch {
    /// Writes `data` to this thread's scratch file (suffix `name`).
    pub fn with(name: &str, data: &[u8]) -> std::io::Result<Scratch> {
        let thread = format!("{:?}", std::thread::current().id())
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>();
        let dir = std::env::temp_dir().join("termtrail-fuzz");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}-{thread}-{name}", std::process::id()));
        std::fs::write(&path, data)?;
        Ok(Scratch { path })
    }

    /// The file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
