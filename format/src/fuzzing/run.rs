//! Running a target without a fuzzer: replaying a corpus, and the seeded
//! randomized mode — inputs made by stacking random mutations on corpus
//! inputs (bit flips, interesting numbers, cuts, splices, JSON and frame
//! tokens), for a number of iterations or seconds. No coverage guidance:
//! it needs nothing but a stable toolchain, so CI can run it.
//!
//! Environment: `TERMTRAIL_FUZZ_ITERS` (iterations per target),
//! `TERMTRAIL_FUZZ_SECS` (seconds per target; with both, whichever ends
//! first), `TERMTRAIL_FUZZ_SEED` (the seed; printed, so a run can be
//! repeated), `TERMTRAIL_FUZZ_FINDINGS` (where failing inputs are saved;
//! default `fuzz-findings/` in the system's temporary directory).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest input the mutator makes (1 MiB).
pub const MAX_INPUT: usize = 1 << 20;

/// xorshift64*: small, fast and reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A position in `0..=len`, biased towards the ends of short runs.
    fn at(&mut self, len: usize) -> usize {
        self.below(len + 1)
    }
}

/// Byte strings worth inserting: JSON and asciicast syntax, numbers at the
/// edges, zstd and skippable-frame magics, record and seal prefixes.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\\u0000",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"#",
    b" ",
    b"\t",
    b"\x0c",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e308",
    b"-0.0",
    b"1e-7",
    b"18446744073709551616",
    b"4294967296",
    b"65536",
    b"0.000001",
    b"999999999999.999999",
    b"\"o\"",
    b"\"i\"",
    b"\"b\"",
    b"\"m\"",
    b"\"r\"",
    b"\"x\"",
    b"\"80x24\"",
    b"\"efbfbd\"",
    b"\xff",
    b"\xc3",
    b"\xef\xbf\xbd",
    b"\xf0\x9f",
    b"\x28\xb5\x2f\xfd",
    b"\x5d\x2a\x4d\x18",
    b"\x5c\x2a\x4d\x18",
    b"\x50\x2a\x4d\x18",
    b"#tt ",
    b"{\"version\":3,\"term\":{\"cols\":1,\"rows\":1}}\n",
    b"{\"version\":2,\"width\":1,\"height\":1}\n",
];

/// Little-endian numbers worth writing over 1, 2, 4 or 8 bytes.
const NUMBERS: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x3f_ffff,
    0x7fff_ffff,
    0xffff_ffff,
    64 << 20,
    (64 << 20) + 1,
    u64::MAX,
];

/// One input made from `input` by 1–8 stacked mutations; `corpus` gives
/// the material for splices.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        mutate_once(rng, &mut out, corpus);
    }
    out.truncate(MAX_INPUT);
    out
}

fn mutate_once(rng: &mut Rng, out: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = out.len();
    match rng.below(11) {
        0 if len > 0 => {
            let i = rng.below(len);
            out[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            out[i] = rng.next_u64() as u8;
        }
        2 => {
            let n = 1 + rng.below(16);
            let at = rng.at(len);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            out.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            out.drain(at..at + n);
        }
        4 => out.truncate(rng.at(len)),
        5 if len > 0 => {
            // Copy a run of the input elsewhere (duplicated lines, chunks).
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(512));
            let run = out[from..from + n].to_vec();
            let at = rng.at(len);
            out.splice(at..at, run);
        }
        6 if !corpus.is_empty() => {
            // Splice: this input's head, another's tail.
            let other = &corpus[rng.below(corpus.len())];
            let cut = rng.at(len);
            let from = rng.at(other.len());
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        7 | 8 => {
            let token = TOKENS[rng.below(TOKENS.len())];
            let at = rng.at(len);
            if rng.below(2) == 0 || at == len {
                out.splice(at..at, token.iter().copied());
            } else {
                let end = (at + token.len()).min(len);
                out.splice(at..end, token.iter().copied());
            }
        }
        9 if len > 0 => {
            let width = [1, 2, 4, 8][rng.below(4)];
            let n = NUMBERS[rng.below(NUMBERS.len())];
            let n = if rng.below(4) == 0 {
                n.wrapping_add(rng.below(3) as u64).wrapping_sub(1)
            } else {
                n
            };
            let at = rng.below(len);
            for (k, b) in n.to_le_bytes()[..width].iter().enumerate() {
                if let Some(slot) = out.get_mut(at + k) {
                    *slot = *b;
                }
            }
        }
        _ if len > 1 => {
            // Swap two runs (reordered chunks, frames).
            let a = rng.below(len);
            let b = rng.below(len);
            let n = 1 + rng.below(len.min(256));
            let (a, b) = (a.min(b), a.max(b));
            if a + n <= b && b + n <= len {
                for k in 0..n {
                    out.swap(a + k, b + k);
                }
            }
        }
        _ => out.push(rng.next_u64() as u8),
    }
}

/// The files of a corpus directory, sorted by name (none when it does not
/// exist).
pub fn load_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file; a failure names the file.
pub fn replay(target: fn(&[u8]), files: &[(PathBuf, Vec<u8>)]) {
    for (path, data) in files {
        if catch_unwind(AssertUnwindSafe(|| target(data))).is_err() {
            panic!("fuzz input {} fails (see the panic above)", path.display());
        }
    }
}

/// How long the randomized mode runs a target.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Iterations at most.
    pub iters: Option<u64>,
    /// Time at most.
    pub time: Option<Duration>,
    /// The seed.
    pub seed: u64,
}

impl Budget {
    /// From the environment (see the module docs), else `iters` iterations
    /// with seed 1: a repeatable run for the test suite.
    pub fn from_env(iters: u64) -> Budget {
        let num = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let time = num("TERMTRAIL_FUZZ_SECS").map(Duration::from_secs);
        let env_iters = num("TERMTRAIL_FUZZ_ITERS");
        Budget {
            iters: match (env_iters, time) {
                (Some(n), _) => Some(n),
                (None, Some(_)) => None,
                (None, None) => Some(iters),
            },
            time,
            seed: num("TERMTRAIL_FUZZ_SEED").unwrap_or(1),
        }
    }
}

/// What a randomized run did.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Inputs run.
    pub execs: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// Where failing inputs are saved.
pub fn findings_dir(target: &str) -> PathBuf {
    std::env::var_os("TERMTRAIL_FUZZ_FINDINGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("fuzz-findings"))
        .join(target)
}

/// The randomized mode: mutations of `corpus` inputs through `target`
/// within `budget`. The first failing input is saved under
/// `findings_dir` and the run fails, naming the file, the seed and the
/// iteration.
pub fn randomized(name: &str, target: fn(&[u8]), corpus: &[Vec<u8>], budget: Budget) -> Stats {
    eprintln!(
        "fuzz {name}: randomized run, seed {} ({:?} iterations, {:?})",
        budget.seed, budget.iters, budget.time
    );
    let mut rng = Rng::new(budget.seed);
    let start = Instant::now();
    let empty = [Vec::new()];
    let seeds = if corpus.is_empty() {
        &empty[..]
    } else {
        corpus
    };
    let mut execs = 0u64;
    while budget.iters.is_none_or(|n| execs < n) && budget.time.is_none_or(|t| start.elapsed() < t)
    {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, seeds);
        execs += 1;
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let dir = findings_dir(name);
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("seed{}-iter{execs}", budget.seed));
            let _ = std::fs::write(&path, &input);
            panic!(
                "fuzz {name}: input {execs} of seed {} fails; saved as {}",
                budget.seed,
                path.display()
            );
        }
    }
    let stats = Stats {
        execs,
        elapsed: start.elapsed(),
    };
    eprintln!(
        "fuzz {name}: {} inputs in {:.1?}",
        stats.execs, stats.elapsed
    );
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_reproducible_from_the_seed() {
        let corpus = vec![
            b"[0.1, \"o\", \"hi\"]\n".to_vec(),
            vec![0x28, 0xb5, 0x2f, 0xfd],
        ];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|i| mutate(&mut rng, &corpus[i % 2], &corpus))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        assert!(run(5).iter().any(|m| m != &corpus[0] && m != &corpus[1]));
    }
}
