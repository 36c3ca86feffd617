//! `termtrail-fuzz`: runs the fuzz targets on stable Rust, no fuzzer
//! needed — the seeded randomized mode, corpus replay, and writing the
//! generated part of the seed corpus. Every input runs under the counting
//! allocator (at most 64 MiB live per input).
//!
//! ```text
//! termtrail-fuzz list
//! termtrail-fuzz run container --secs 600 --seed 7   # randomized, 10 min
//! termtrail-fuzz run all --iters 5000                 # every target
//! termtrail-fuzz replay cast crash-file dir/          # files or directories
//! termtrail-fuzz seed                                 # (re)write generated seeds
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use termtrail_format::fuzzing::run::{Budget, load_dir, randomized, replay};
use termtrail_format::fuzzing::{Target, reference_recordings};
use termtrail_fuzz::{CountingAlloc, bounded, target, targets};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str = "usage: termtrail-fuzz list
       termtrail-fuzz run TARGET|all [--secs N] [--iters N] [--seed N]
       termtrail-fuzz replay TARGET FILE|DIR...
       termtrail-fuzz seed";

/// The committed seed corpus of a target.
fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}

/// The target's corpus, regression inputs and (container targets) the
/// reference recordings.
fn corpus(name: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = load_dir(&corpus_dir(name));
    for krate in ["format", "recorder"] {
        files.extend(load_dir(
            &root.join(krate).join("tests/fuzz-regressions").join(name),
        ));
    }
    let mut out: Vec<Vec<u8>> = files.into_iter().map(|(_, b)| b).collect();
    if matches!(name, "container" | "recover") {
        out.extend(reference_recordings().iter().map(|(_, r)| r.clone()));
    }
    out
}

/// What the command line or the file system refused.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{USAGE}")]
    Usage,
    #[error("{0} needs a number")]
    NeedsNumber(String),
    #[error("unknown flag {0}")]
    UnknownFlag(String),
    #[error("no target {0} (see `termtrail-fuzz list`)")]
    NoTarget(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CliError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
        move |source| CliError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn parse_flags(args: &[String]) -> Result<Budget, CliError> {
    let mut budget = Budget::from_env(10_000);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| CliError::NeedsNumber(flag.clone()))?;
        match flag.as_str() {
            "--secs" => {
                budget.time = Some(Duration::from_secs(value));
                if !args.iter().any(|a| a == "--iters") {
                    budget.iters = None;
                }
            }
            "--iters" => budget.iters = Some(value),
            "--seed" => budget.seed = value,
            other => return Err(CliError::UnknownFlag(other.to_string())),
        }
    }
    Ok(budget)
}

fn chosen(name: &str) -> Result<Vec<Target>, CliError> {
    if name == "all" {
        return Ok(targets());
    }
    target(name)
        .map(|t| vec![t])
        .ok_or_else(|| CliError::NoTarget(name.to_string()))
}

/// The generated seeds: every reference recording, and cuts of them at
/// frame boundaries and inside frames (what a full disk or a crash leaves).
fn write_seeds() -> Result<(), CliError> {
    for dir in ["container", "recover"] {
        let dir = corpus_dir(dir);
        std::fs::create_dir_all(&dir).map_err(CliError::io(&dir))?;
        for (name, bytes) in reference_recordings() {
            let mut cuts = vec![(String::from("whole"), bytes.clone())];
            for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 9] {
                cuts.push((format!("cut{at}"), bytes[..at].to_vec()));
            }
            for (what, data) in cuts {
                let path = dir.join(format!("ref-{name}-{what}.cast.zst"));
                std::fs::write(&path, data).map_err(CliError::io(&path))?;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("list") => {
            for (name, _) in targets() {
                println!("{name}");
            }
            Ok(())
        }
        Some("run") if args.len() >= 2 => chosen(&args[1]).and_then(|ts| {
            let budget = parse_flags(&args[2..])?;
            for (name, f) in ts {
                // The allocation bound around the target, per input.
                let corpus = corpus(name);
                CHECKED.with(|c| c.set(Some((name, f))));
                randomized(name, run_checked, &corpus, budget);
            }
            Ok(())
        }),
        Some("replay") if args.len() >= 3 => chosen(&args[1]).and_then(|ts| {
            for (name, f) in ts {
                CHECKED.with(|c| c.set(Some((name, f))));
                for arg in &args[2..] {
                    let path = PathBuf::from(arg);
                    // A file that cannot be read is an error, not "0 inputs
                    // pass".
                    let files = if path.is_dir() {
                        load_dir(&path)
                    } else {
                        vec![(
                            path.clone(),
                            std::fs::read(&path).map_err(CliError::io(&path))?,
                        )]
                    };
                    replay(run_checked, &files);
                    eprintln!("{name}: {} inputs from {arg} pass", files.len());
                }
            }
            Ok(())
        }),
        Some("seed") => write_seeds(),
        _ => Err(CliError::Usage),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("termtrail-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

thread_local! {
    /// The target [`run_checked`] runs (the runners take plain functions).
    static CHECKED: std::cell::Cell<Option<Target>> = const { std::cell::Cell::new(None) };
}

fn run_checked(data: &[u8]) {
    let (name, f) = CHECKED.with(|c| c.get()).expect("a target is chosen");
    bounded(name, f, data);
}
