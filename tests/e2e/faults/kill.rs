//! SIGKILL of `rec`, `serve` and `proxy` at random moments — during
//! start-up, while shells print, and while a recording is sealed: every
//! recording left behind verifies sealed or as an intact unsealed prefix
//! (exit 0 or 3, never 1 or 2), `recover` (local) or `upload` (S3 spool)
//! seals it `interrupted`, and no line printed more than the open chunk's
//! age (plus the tick and a scheduling margin) before the kill is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use futures_util::StreamExt;

use super::{Printer, Rng, check_loss, now_us, report, trials};
use crate::util::*;

/// Scheduling margin on top of the chunk age and the engine's tick, for
/// this loaded 2-core machine (PTY reads, queue, batch, tick all wait for
/// a core). docs/reliability.md states it.
pub const MARGIN_MS: u64 = 800;
/// The engine's tick: `rec` closes chunks by age every 100 ms, hosts
/// every 200 ms.
const REC_TICK_MS: u64 = 100;
const HOST_TICK_MS: u64 = 200;

/// When a trial's kill comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// While the recorder starts (0-150 ms after it was started: `rec`
    /// names its file 10-40 ms after it starts here).
    Startup,
    /// While the program prints (0-2.5 s after its first line).
    Output,
    /// 0-250 ms after the program printed its last line, before, while or
    /// after the recording is sealed (`rec` exits ~200 ms after it).
    Sealing,
}

impl Phase {
    fn pick(rng: &mut Rng) -> Phase {
        match rng.range(0, 9) {
            0 | 1 => Phase::Startup,
            2..=6 => Phase::Output,
            _ => Phase::Sealing,
        }
    }

    /// Lines the program prints: few when the kill must fall at its end.
    fn lines(self, rng: &mut Rng) -> u64 {
        match self {
            Phase::Sealing => rng.range(20, 150),
            _ => 1_000_000,
        }
    }
}

/// Sleeps until the moment `phase` picks for the kill: a random delay
/// after the start, after the first line, or after the last line.
fn wait_for_moment(rng: &mut Rng, phase: Phase, printers: &[&Printer]) {
    let ms = |n| std::thread::sleep(Duration::from_millis(n));
    match phase {
        Phase::Startup => ms(rng.range(0, 150)),
        Phase::Output => {
            printers.iter().for_each(|p| {
                p.wait_printed(1, 20);
            });
            ms(rng.range(0, 2500));
        }
        Phase::Sealing => {
            poll_until(30, || printers.iter().any(|p| p.done()), |d| *d);
            ms(rng.range(0, 250));
        }
    }
}

/// Tallies of a fault's trials.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, usize>,
    max_loss_ms: u64,
    trials: usize,
}

impl Tally {
    fn note(&mut self, outcome: impl Into<String>) {
        *self.outcomes.entry(outcome.into()).or_default() += 1;
    }

    fn loss(&mut self, ms: u64) {
        self.max_loss_ms = self.max_loss_ms.max(ms);
    }

    fn report(&self, fault: &str) {
        let outcome = self
            .outcomes
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        report(fault, self.trials, &outcome, Some(self.max_loss_ms));
    }
}

/// Checks a recording a killed recorder left: verify says sealed (0) or
/// unsealed (3), never tampered or not a recording; an unsealed one is
/// sealed `interrupted` by `recover` and then verifies. One time in three
/// a first `recover` is itself SIGKILLed at a random moment (0-60 ms) and
/// the next one must finish the job. Returns the outcome and the
/// recording's transcript.
#[track_caller]
fn check_and_recover(d: &Dir, rec: &Path, what: &str, rng: &mut Rng) -> (&'static str, String) {
    let path = rec.to_string_lossy().into_owned();
    let v = d.run(&["verify", &path]);
    assert!(
        v.code == 0 || v.code == 3,
        "{what}: verify after the kill: {v:?}"
    );
    let outcome = if v.code == 3 {
        let mut outcome = "recovered";
        if rng.range(0, 2) == 0 {
            let mut first = d
                .cmd(&["recover", &path])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rng.range(0, 60)));
            if kill_now(&mut first).1 {
                outcome = "recovered after a killed recover";
            }
        }
        let r = d.run(&["recover", &path]);
        assert_eq!(r.code, 0, "{what}: recover ({outcome}): {r:?}");
        let v = d.run(&["verify", &path]);
        assert_eq!(v.code, 0, "{what}: verify after recover ({outcome}): {v:?}");
        assert!(v.stdout.contains("interrupted"), "{what}: {v:?}");
        outcome
    } else {
        "sealed"
    };
    let t = d.run(&["export", &path, "--format", "txt"]);
    assert_eq!(t.code, 0, "{what}: export: {t:?}");
    (outcome, t.stdout)
}

/// SIGKILLs `child` unless it ended by itself; returns the moment (µs) and
/// whether it was still running.
fn kill_now(child: &mut Child) -> (u64, bool) {
    let at = now_us();
    let running = child.try_wait().ok().flatten().is_none();
    let _ = child.kill();
    let _ = child.wait();
    (at, running)
}

/// The recordings under `store` that are not in `before`.
fn new_recordings(store: &Path, before: &[PathBuf]) -> Vec<PathBuf> {
    recordings_under(store)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect()
}

#[test]
fn rec_killed_at_random_moments_loses_at_most_the_open_chunk() {
    let (mut rng, _seed) = Rng::for_test("rec_killed_at_random_moments");
    let d = Dir::new();
    let store = d.join("store");
    let store_s = store.to_string_lossy().into_owned();
    let mut tally = Tally::default();
    for t in 0..trials(4) {
        let chunk_ms = [250, 500, 1000][rng.range(0, 2) as usize];
        let phase = Phase::pick(&mut rng);
        let p = Printer::new(d.path(), &format!("rec{t}"));
        let what = format!("trial {t} ({phase:?}, --chunk-ms {chunk_ms})");
        let before = recordings_under(&store);
        let script = p.script(phase.lines(&mut rng), 0);
        let chunk = chunk_ms.to_string();
        let err = std::fs::File::create(d.join(&format!("rec{t}.err"))).unwrap();
        let mut child = d
            .cmd(&[
                "rec",
                "--headless",
                "-q",
                "--chunk-ms",
                &chunk,
                "--store",
                &store_s,
                "--",
                "bash",
                "--norc",
                "--noprofile",
                "-c",
                &script,
            ])
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        wait_for_moment(&mut rng, phase, &[&p]);
        let (killed_at, running) = kill_now(&mut child);
        p.stop(3);
        let err = std::fs::read_to_string(d.join(&format!("rec{t}.err"))).unwrap();
        assert!(!err.contains("panicked"), "{what}: {err}");
        let found = new_recordings(&store, &before);
        assert!(found.len() <= 1, "{what}: {found:?}");
        let (outcome, text) = match found.first() {
            Some(rec) => check_and_recover(&d, rec, &what, &mut rng),
            None => ("no recording yet", String::new()),
        };
        let bound = chunk_ms + REC_TICK_MS + MARGIN_MS;
        tally.loss(check_loss(&what, &p.printed(), &text, killed_at, bound));
        tally.trials += 1;
        tally.note(if running {
            format!("{phase:?} kill: {outcome}")
        } else {
            "ended before the kill: sealed".into()
        });
    }
    // The recordings and this recorder's journal of seals agree.
    let v = d.run(&["verify", "--store", &store_s]);
    assert_eq!(v.code, 0, "verify --store: {v:?}");
    tally.report("SIGKILL rec (local store)");
}

#[test]
fn rec_killed_into_s3_is_sealed_and_uploaded_by_the_next_upload() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let (mut rng, _seed) = Rng::for_test("rec_killed_into_s3");
    let d = Dir::new();
    let ep = moto.endpoint();
    let mut tally = Tally::default();
    for t in 0..trials(10).div_ceil(10) {
        let p = Printer::new(d.path(), &format!("s3rec{t}"));
        let prefix = format!("s3://recs/t{t}");
        let mut child = rec_s3(&d, &ep, &prefix, &["-q"], &p.script(1_000_000, 0))
            .env("LC_ALL", "C")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_moment(&mut rng, Phase::Output, &[&p]);
        let (killed_at, _) = kill_now(&mut child);
        p.stop(3);
        let what = format!("S3 trial {t}");
        let left = spooled(&d);
        assert!(
            left.iter().any(|f| f.ends_with(".cast.zst")),
            "{what}: {left:?}"
        );
        let r = run_s3(&d, &ep, &["upload", "--store", &prefix]);
        assert_eq!(r.code, 0, "{what}: upload: {r:?}");
        assert!(spooled(&d).is_empty(), "{what}: {:?}", spooled(&d));
        let key = moto
            .keys("recs")
            .into_iter()
            .find(|k| k.starts_with(&format!("t{t}/")))
            .unwrap_or_else(|| panic!("{what}: nothing uploaded"));
        let url = format!("s3://recs/{key}");
        let v = run_s3(&d, &ep, &["verify", &url]);
        assert_eq!(v.code, 0, "{what}: {v:?}");
        assert!(v.stdout.contains("interrupted"), "{what}: {v:?}");
        let text = run_s3(&d, &ep, &["export", &url, "--format", "txt"]).stdout;
        let bound = 1000 + REC_TICK_MS + MARGIN_MS;
        tally.loss(check_loss(&what, &p.printed(), &text, killed_at, bound));
        tally.trials += 1;
        tally.note("Output kill: sealed by upload");
    }
    tally.report("SIGKILL rec (S3 spool)");
}

/// Opens a shell per (name, script) on a host (`url` gives a shell's
/// URL) and sends it its script; the clients keep reading. The task
/// returns the tasks reading each shell (aborted by the caller).
fn start_printing(
    url: impl Fn(&str) -> String + Send + 'static,
    scripts: Vec<(String, String)>,
) -> tokio::task::JoinHandle<Vec<tokio::task::JoinHandle<()>>> {
    tokio::spawn(async move {
        let mut readers = Vec::new();
        for (name, script) in scripts {
            let Ok((mut ws, _)) = connect(&url(&name), SESSION).await else {
                continue;
            };
            stdin(&mut ws, &format!("{script}\n")).await;
            readers.push(tokio::spawn(async move {
                while let Some(Ok(_)) = ws.next().await {}
            }));
        }
        readers
    })
}

/// One host trial: 1-3 shells print on `host` (serve or proxy), the host
/// is SIGKILLed at a random moment, then every shell's recording is
/// checked, recovered and held to the loss bound.
/// A proxy's `upstream` host is stopped right after the kill (its shells
/// would go on printing).
async fn host_trial(
    rng: &mut Rng,
    d: &Dir,
    host: &mut Server,
    upstream: Option<Server>,
    t: usize,
    tally: &mut Tally,
) {
    let phase = Phase::pick(rng);
    let shells = rng.range(1, 3) as usize;
    let names: Vec<String> = (0..shells).map(|i| format!("t{t}s{i}")).collect();
    let printers: Vec<Printer> = names.iter().map(|n| Printer::new(d.path(), n)).collect();
    let lines = phase.lines(rng);
    let scripts = names
        .iter()
        .zip(&printers)
        .map(|(n, p)| (n.clone(), p.script(lines, 0)))
        .collect();
    let base = host.url("");
    let opener = start_printing(move |name| format!("{base}{name}"), scripts);
    let refs: Vec<&Printer> = printers.iter().collect();
    tokio::task::block_in_place(|| wait_for_moment(rng, phase, &refs));
    let (killed_at, _) = kill_now(&mut host.child);
    // The upstream shells end with their host (SIGTERM on drop).
    tokio::task::block_in_place(|| drop(upstream));
    opener.abort();
    if let Ok(readers) = opener.await {
        readers.iter().for_each(|r| r.abort());
    }
    let what = format!("trial {t} ({phase:?}, {shells} shells)");
    let log = host.log.lock().unwrap().clone();
    assert!(!log.contains("panicked"), "{what}: {log}");
    for (name, p) in names.iter().zip(&printers) {
        let what = format!("{what}, shell {name}");
        tokio::task::block_in_place(|| p.stop(3));
        let recs: Vec<PathBuf> = host
            .recordings()
            .into_iter()
            .filter(|r| r.to_string_lossy().contains(&format!("/{name}/")))
            .collect();
        assert!(recs.len() <= 1, "{what}: {recs:?}");
        let (outcome, text) = match recs.first() {
            Some(rec) => tokio::task::block_in_place(|| check_and_recover(d, rec, &what, rng)),
            None => ("no recording yet", String::new()),
        };
        let bound = 1000 + HOST_TICK_MS + MARGIN_MS;
        tally.loss(check_loss(&what, &p.printed(), &text, killed_at, bound));
        tally.note(format!("{phase:?} kill: {outcome}"));
    }
    tally.trials += 1;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_killed_at_random_moments_loses_at_most_the_open_chunk() {
    let (mut rng, _seed) = Rng::for_test("serve_killed_at_random_moments");
    let d = Dir::new();
    let mut tally = Tally::default();
    for t in 0..trials(3) {
        let mut host = Server::start(&d, &[]);
        host_trial(&mut rng, &d, &mut host, None, t, &mut tally).await;
    }
    let store = d.join("store").to_string_lossy().into_owned();
    if d.join("store").exists() {
        let v = d.run(&["verify", "--store", &store]);
        assert_eq!(v.code, 0, "verify --store: {v:?}");
    }
    tally.report("SIGKILL serve (local store)");
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_killed_at_random_moments_loses_at_most_the_open_chunk() {
    let (mut rng, _seed) = Rng::for_test("proxy_killed_at_random_moments");
    let d = Dir::new();
    let mut tally = Tally::default();
    for t in 0..trials(3) {
        let ud = Dir::new();
        let upstream = Server::start(&ud, &[]);
        let target = format!("ws://{}", upstream.addr);
        let mut host = Server::start_kind(&d, "proxy", &["--upstream", &target]);
        host_trial(&mut rng, &d, &mut host, Some(upstream), t, &mut tally).await;
    }
    let store = d.join("store").to_string_lossy().into_owned();
    if d.join("store").exists() {
        let v = d.run(&["verify", "--store", &store]);
        assert_eq!(v.code, 0, "verify --store: {v:?}");
    }
    tally.report("SIGKILL proxy (local store, serve upstream)");
}
