//! S3 faults under `rec --store s3://…` and `serve --store s3://…`: a
//! fault-injecting proxy (tests/python/s3_fault_proxy.py) between termtrail
//! and moto answers 503 or 500, resets connections or answers slowly for a
//! while, and moto itself is stopped and started again (empty: the upload
//! in progress is forgotten). Meanwhile a program prints a numbered line
//! every 100 ms. Checked: every line in the recording in S3, which
//! verifies sealed with its journal entry, and the lag from S3 answering
//! again to the first upload of the recording that succeeds, within the
//! bound docs/storage.md states.

use std::time::Duration;

use serde_json::Value;

use super::{trials, wall_ms};
use crate::util::*;

/// The tests' `--upload-interval`.
const INTERVAL_MS: u64 = 500;
/// How long each fault lasts, and the calm between faults.
const FAULT_MS: u64 = 3000;
const CALM_MS: u64 = 2500;

/// The documented bound on the lag from S3 answering again to the bucket
/// having caught up (docs/storage.md, "Faults"): the outage (at most 60
/// s), one upload interval, and 5 s for the requests themselves and the
/// SDK's own retry pauses.
fn lag_bound_ms(outage_ms: u64) -> u64 {
    outage_ms.min(60_000) + INTERVAL_MS + 5_000
}

/// The fault-injecting proxy in front of moto.
struct FaultProxy {
    peer: PeerServer,
}

impl FaultProxy {
    fn start(python: &str, moto: &Moto, d: &Dir) -> FaultProxy {
        let port = moto.port.to_string();
        FaultProxy {
            peer: PeerServer::start(python, "s3_fault_proxy.py", &[&port], d),
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.peer.port)
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Sets the plan (actions per request, round robin); returns the
    /// proxy's time of the change (ms since the epoch).
    fn set(&self, plan: &str) -> u64 {
        let v: Value = serde_json::from_str(body(&http_get(
            &self.addr(),
            &format!("/__fault__/set?plan={plan}"),
        )))
        .unwrap();
        v["t"].as_u64().unwrap()
    }

    /// Every S3 request so far.
    fn log(&self) -> Vec<Value> {
        serde_json::from_str(body(&http_get(&self.addr(), "/__fault__/log"))).unwrap()
    }
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// One fault: a plan for the proxy, or S3 stopped.
#[derive(Clone, Copy)]
enum Fault {
    Plan(&'static str),
    Stopped,
}

const FAULTS: [(&str, Fault); 6] = [
    ("503 SlowDown on every request", Fault::Plan("503")),
    ("500 InternalError on every request", Fault::Plan("500")),
    ("connection reset on every request", Fault::Plan("reset")),
    ("2 of 3 requests 503", Fault::Plan("503,503,ok")),
    ("every request 1.5 s slow", Fault::Plan("delay1500")),
    ("S3 stopped and restarted empty", Fault::Stopped),
];

/// What one fault did.
#[derive(Debug)]
struct Outcome {
    fault: &'static str,
    /// From the fault's start to S3 answering again.
    outage_ms: u64,
    /// From S3 answering again to the recording's first upload that
    /// succeeded (None: none within the bound).
    lag_ms: Option<u64>,
}

/// Runs every fault `trials()` times against uploads to `bucket` through
/// `fp`, each after a calm spell; measures the lag after each.
fn run_faults(who: &str, moto: &mut Moto, fp: &FaultProxy, bucket: &str) -> Vec<Outcome> {
    let mut out = Vec::new();
    for _ in 0..trials() {
        for (name, fault) in FAULTS {
            std::thread::sleep(Duration::from_millis(CALM_MS));
            let start = wall_ms();
            match fault {
                Fault::Plan(plan) => {
                    fp.set(plan);
                }
                Fault::Stopped => moto.stop(),
            }
            std::thread::sleep(Duration::from_millis(FAULT_MS));
            let back = match fault {
                Fault::Plan(_) => fp.set("ok"),
                Fault::Stopped => {
                    moto.start_again();
                    moto.make_bucket(bucket);
                    wall_ms()
                }
            };
            let outage_ms = back - start;
            let lag_ms = poll_until(
                lag_bound_ms(outage_ms).div_ceil(1000) + 1,
                || first_upload_after(&fp.log(), back),
                Option::is_some,
            );
            let o = Outcome {
                fault: name,
                outage_ms,
                lag_ms,
            };
            eprintln!("netfaults s3 {who}: {o:?}");
            out.push(o);
        }
    }
    out
}

/// Milliseconds from `t0` to the end of the first request after it that
/// put recording bytes into S3 (a part or an object) and succeeded.
fn first_upload_after(log: &[Value], t0: u64) -> Option<u64> {
    log.iter()
        .filter(|e| e["t"].as_u64() >= Some(t0))
        .filter(|e| e["method"] == "PUT" && e["status"] == 200)
        .filter(|e| e["path"].as_str().is_some_and(|p| p.ends_with(".cast.zst")))
        .find_map(|e| e["t_done"].as_u64())
        .map(|t| t.saturating_sub(t0))
}

/// Every lag within its bound.
#[track_caller]
fn assert_lags(outcomes: &[Outcome]) {
    for o in outcomes {
        let bound = lag_bound_ms(o.outage_ms);
        assert!(
            o.lag_ms.is_some_and(|l| l <= bound),
            "{}: lag {:?} ms, bound {bound} ms: {outcomes:?}",
            o.fault,
            o.lag_ms
        );
    }
}

/// The loop both tests record: a numbered line every 100 ms until `stop`
/// exists, then the count.
/// `rec --store s3://recs/NAME` through the fault proxy, uploading every
/// INTERVAL_MS, running the printer until `stop` exists.
fn rec_through(d: &Dir, fp: &FaultProxy, name: &str, stop: &std::path::Path) -> Recorder {
    let interval = format!("{INTERVAL_MS}ms");
    Recorder::start(
        &mut rec_s3(
            d,
            &fp.endpoint(),
            &format!("s3://recs/{name}"),
            &["-q", "--upload-interval", &interval],
            &printer(stop),
        ),
        stop,
        &d.join("rec.log"),
    )
}

fn printer(stop: &std::path::Path) -> String {
    format!(
        "i=0; while [ ! -e {} ]; do i=$((i+1)); echo line-$i; sleep 0.1; done; echo total-$i",
        stop.display()
    )
}

/// A `rec` running [`printer`]: when the test fails half-way, dropping
/// this ends the loop (its stop file) and then the recorder, so nothing is
/// left running.
struct Recorder {
    child: std::process::Child,
    stop: std::path::PathBuf,
}

impl Recorder {
    /// Starts `c` with its stderr in `log` (a pipe nobody reads would fill
    /// up with the warnings of failed rounds and stop the recorder).
    fn start(
        c: &mut std::process::Command,
        stop: &std::path::Path,
        log: &std::path::Path,
    ) -> Recorder {
        let child = c
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Recorder {
            child,
            stop: stop.to_path_buf(),
        }
    }

    /// Ends the loop and waits for the recorder's exit.
    fn finish(&mut self) -> std::process::ExitStatus {
        std::fs::write(&self.stop, "").unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, "");
        if poll_until(5, || self.child.try_wait().ok().flatten(), Option::is_some).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The one recording under `bucket/prefix`: it verifies sealed with its
/// journal (`verify --store`), holds `line-1` … `line-N` and `total-N`,
/// and its journal entry names it.
#[track_caller]
fn check_store(d: &Dir, moto: &Moto, bucket: &str, prefix: &str) -> u64 {
    let ep = moto.endpoint();
    let keys: Vec<String> = moto
        .keys(bucket)
        .into_iter()
        .filter(|k| k.starts_with(&format!("{prefix}/")))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let url = format!("s3://{bucket}/{}", keys[0]);
    let r = run_s3(
        d,
        &ep,
        &["verify", "--store", &format!("s3://{bucket}/{prefix}")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("intact, sealed"), "{r:?}");
    let text = run_s3(d, &ep, &["export", &url, "--format", "txt"]).stdout;
    // The last one: a shell echoes the command (`total-$i`) first.
    let total: u64 = text
        .rsplit("total-")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total in the recording: {text}"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("line-"))
        .collect();
    let want: Vec<String> = (1..=total).map(|i| format!("line-{i}")).collect();
    assert_eq!(lines, want, "lines lost or repeated");
    let entries: Vec<String> = moto
        .all_keys(bucket)
        .into_iter()
        .filter(|k| k.contains("journal/") && k.ends_with(".json"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = moto.py(&format!(
        "print(c.get_object(Bucket='{bucket}', Key='{}')['Body'].read().decode())",
        entries[0]
    ));
    let entry: Value = serde_json::from_str(entry.trim()).unwrap();
    assert_eq!(
        format!("{prefix}/{}", entry["key"].as_str().unwrap()),
        keys[0],
        "{entry}"
    );
    total
}

#[test]
fn rec_into_s3_loses_nothing_to_errors_resets_slowness_and_a_restart() {
    let Some(python) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let Some(mut moto) = Moto::start() else {
        return;
    };
    moto.make_bucket("recs");
    let d = Dir::new();
    let fp = FaultProxy::start(&python, &moto, &d);
    let stop = d.join("STOP");
    let mut rec = rec_through(&d, &fp, "rec", &stop);
    let outcomes = run_faults("rec", &mut moto, &fp, "recs");
    let status = rec.finish();
    let log = std::fs::read_to_string(d.join("rec.log")).unwrap_or_default();
    assert!(status.success(), "{status}: {log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_lags(&outcomes);
    let total = check_store(&d, &moto, "recs", "rec");
    assert!(total >= 50, "only {total} lines");
    assert!(spooled(&d).is_empty(), "{:?}", spooled(&d));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_into_s3_loses_nothing_to_errors_resets_slowness_and_a_restart() {
    let Some(python) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let Some(moto) = Moto::start() else {
        return;
    };
    moto.make_bucket("recs");
    let d = Dir::new();
    let fp = FaultProxy::start(&python, &moto, &d);
    let interval = format!("{INTERVAL_MS}ms");
    let cmd = tt(
        &d,
        &fp.endpoint(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--store",
            "s3://recs/srv",
            "--upload-interval",
            &interval,
            "--",
            "bash",
            "--norc",
            "--noprofile",
        ],
    );
    let mut server = Server::spawn(cmd, &d.join("none"));
    let (mut ws, _) = open(&server.url("printer")).await;
    let stop = d.join("STOP");
    stdin(&mut ws, &format!("{}; exit 0\n", printer(&stop))).await;
    // The client reads everything until the shell's exit status.
    let reader = tokio::spawn(async move {
        let st = exit_status(&mut ws).await;
        assert_eq!(st["status"], "Success", "{st}");
    });
    let (moto, fp, outcomes) = tokio::task::spawn_blocking(move || {
        let mut moto = moto;
        let outcomes = run_faults("serve", &mut moto, &fp, "recs");
        (moto, fp, outcomes)
    })
    .await
    .unwrap();
    std::fs::write(&stop, "").unwrap();
    reader.await.unwrap();
    // Sealed at the shell's exit, uploaded while serve runs on.
    let done = poll_until(
        lag_bound_ms(0).div_ceil(1000) + 10,
        || {
            moto.all_keys("recs")
                .iter()
                .filter(|k| k.starts_with("srv/"))
                .count()
        },
        |n| *n >= 2,
    );
    assert_eq!(done, 2, "the recording and its journal entry");
    drop(fp);
    assert_eq!(server.stop(), 0, "{}", server.log.lock().unwrap());
    let log = server.log.lock().unwrap().clone();
    assert!(!log.contains("panicked"), "{log}");
    assert_lags(&outcomes);
    let total = check_store(&d, &moto, "recs", "srv");
    assert!(total >= 50, "only {total} lines");
    assert!(spooled(&d).is_empty(), "{:?}", spooled(&d));
}

/// Regression: after a long outage the uploader's retries were up to a
/// minute apart, so a `rec` that ended during the outage gave up waiting
/// (exit 2, the recording left in the spool) although S3 was back within
/// a second of its end. While someone waits, retries are at most 2 s
/// apart.
#[test]
fn rec_ending_in_a_long_outage_uploads_once_s3_is_back() {
    let Some(python) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let Some(moto) = Moto::start() else {
        return;
    };
    moto.make_bucket("recs");
    let d = Dir::new();
    let fp = FaultProxy::start(&python, &moto, &d);
    fp.set("reset");
    let stop = d.join("STOP");
    let mut rec = Recorder::start(
        &mut rec_s3(
            &d,
            &fp.endpoint(),
            "s3://recs/long",
            &["-q", "--upload-interval", "500ms", "--upload-wait", "15s"],
            &printer(&stop),
        ),
        &stop,
        &d.join("rec.log"),
    );
    // Long enough for retries 8-16 s apart.
    std::thread::sleep(Duration::from_secs(25));
    // The recording ends while S3 is still away; it is back 5 s later
    // (past the SDK's own retries of the rounds at the end).
    std::fs::write(&stop, "").unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let back = fp.set("ok");
    let status = rec.finish();
    let waited = wall_ms() - back;
    let log = std::fs::read_to_string(d.join("rec.log")).unwrap_or_default();
    assert!(
        status.success(),
        "{status} ({waited} ms after S3 was back): {log}"
    );
    eprintln!("netfaults s3: rec exited {waited} ms after S3 was back");
    assert!(waited <= 2_000 + 6_000, "{waited} ms");
    check_store(&d, &moto, "recs", "long");
}

/// Regression: a request S3 accepted and never answered (a connection
/// lost on the way without a reset) held the uploader for the SDK's
/// attempt timeout of 120 s, so the bucket lagged by minutes although S3
/// was back at once. An upload's request now gets 30 s plus 1 s per 32 KiB
/// of body.
#[test]
fn an_upload_request_never_answered_is_given_up_within_its_timeout() {
    let Some(python) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let Some(moto) = Moto::start() else {
        return;
    };
    moto.make_bucket("recs");
    let d = Dir::new();
    let fp = FaultProxy::start(&python, &moto, &d);
    let stop = d.join("STOP");
    let mut rec = rec_through(&d, &fp, "hang", &stop);
    // Uploads under way; then one request goes unanswered, and S3 is
    // fine again right after it.
    poll_until(20, || first_upload_after(&fp.log(), 0), Option::is_some);
    fp.set("hang");
    let hung = poll_until(
        10,
        || fp.log().iter().any(|e| e["action"] == "hang"),
        |h| *h,
    );
    assert!(hung, "no request reached the proxy");
    let back = fp.set("ok");
    // The tail part is a few KiB: 30 s for the attempt, then the SDK's
    // retry on a new connection.
    let bound = 30_000 + INTERVAL_MS + 5_000;
    let lag = poll_until(
        bound / 1000 + 2,
        || first_upload_after(&fp.log(), back),
        Option::is_some,
    );
    eprintln!("netfaults s3 hang: lag {lag:?} ms after the hung request");
    assert!(
        lag.is_some_and(|l| l <= bound),
        "lag {lag:?} ms, bound {bound} ms"
    );
    let status = rec.finish();
    let log = std::fs::read_to_string(d.join("rec.log")).unwrap_or_default();
    assert!(status.success(), "{status}: {log}");
    check_store(&d, &moto, "recs", "hang");
}
