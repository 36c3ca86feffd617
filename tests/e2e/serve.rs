//! `serve` driven by a raw WebSocket client (tokio-tungstenite): the wire
//! protocol byte by byte, re-attach with replay, takeover, limits, bad
//! input, timeouts, shutdown, and the recordings it leaves.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::util::*;

fn verify_text(d: &Dir, path: &std::path::Path) -> (i32, String) {
    let r = d.run(&["verify", &path.to_string_lossy()]);
    (r.code, r.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn new_shell_protocol_exit_status_and_recording() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut ws, resp) = connect(&server.url("s1"), SESSION).await.unwrap();
    assert_eq!(resp.headers()["x-amzn-bedrock-agentcore-shell-id"], "s1");
    assert_eq!(
        resp.headers()["x-amzn-bedrock-agentcore-runtime-session-id"],
        SESSION
    );
    let st = status(&mut ws).await;
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["status"], "Success");
    assert_eq!(st["metadata"]["shellId"], "s1");
    assert_eq!(st["metadata"]["reconnected"], false);
    ws.send(Message::Binary(
        [&[4u8][..], br#"{"width":100,"height":30}"#]
            .concat()
            .into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Binary(vec![5u8].into())).await.unwrap();
    stdin(&mut ws, "echo hello-$((6*7)); tput cols\n").await;
    let out = read_until(&mut ws, "100\r\n").await;
    assert!(out.contains("hello-42"), "{out}");
    stdin(&mut ws, "exit 3\n").await;
    let st = status(&mut ws).await;
    assert_eq!(st["status"], "Failure");
    assert_eq!(st["reason"], "NonZeroExitCode");
    assert_eq!(st["details"]["causes"][0]["message"], "3");
    assert_eq!(close_of(&mut ws).await.map(|c| c.0), Some(1000));
    // The recording is sealed as soon as the shell exits.
    let recs = server.recordings();
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rel = recs[0]
        .strip_prefix(&server.store)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(rel.contains(&format!("/serve/{SESSION}/s1/")), "{rel}");
    let (code, text) = poll_until(5, || verify_text(&d, &recs[0]), |(code, _)| *code == 0);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("exited with code 3"), "{text}");
    let cast = zstd_dc(&recs[0]);
    assert!(cast.contains("\"r\", \"100x30\"]"), "{cast}");
    assert!(
        cast.contains("\"i\", \"echo hello-$((6*7)); tput cols\\n\"]"),
        "{cast}"
    );
    assert!(cast.contains("attach by client"), "{cast}");
    assert!(cast.contains("\"session\":\"e2e-session"), "{cast}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reattach_replays_output_and_keeps_state_and_takeover_kicks_with_4000() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let url = server.url("keep");
    let (mut a, _) = open(&url).await;
    // The job notes (in a file) that it printed: the output is then in the
    // detached shell's buffer, to be replayed.
    let printed = d.join("printed");
    stdin(
        &mut a,
        &format!(
            "cd /tmp; export MARK=kept-42; (sleep 0.7; echo while-detached; echo x > {}) &\n",
            printed.display()
        ),
    )
    .await;
    read_until(&mut a, "tt>").await;
    drop(a); // network loss: no CLOSE frame
    wait_for_file(&printed, 10);
    let (mut b, st) = open(&url).await;
    assert_eq!(st["metadata"]["reconnected"], true, "{st}");
    let replay = read_until(&mut b, "while-detached").await;
    assert!(replay.contains("while-detached"));
    let st = status(&mut b).await;
    assert_eq!(st["metadata"]["bytesDropped"], 0, "{st}");
    stdin(&mut b, "echo $PWD $MARK\n").await;
    read_until(&mut b, "/tmp kept-42").await;

    // A second client takes the shell over: the first is closed with 4000.
    let (mut c, st) = open(&url).await;
    assert_eq!(st["metadata"]["reconnected"], true);
    let (code, reason) = close_of(&mut b).await.expect("close frame");
    assert_eq!(code, 4000, "{reason}");
    stdin(&mut c, "echo still-here\n").await;
    read_until(&mut c, "still-here").await;
    stdin(&mut c, "exit\n").await;
    assert_eq!(status(&mut c).await["status"], "Success");
    let rec = &server.recordings()[0];
    let v = verified(&d, rec, "");
    assert_eq!(v.code, 0, "sealed: {v:?}");
    let cast = zstd_dc(rec);
    assert!(cast.contains("re-attach by client"), "{cast}");
    assert!(cast.contains("takeover by client"), "{cast}");
    assert!(cast.contains("detach of client"), "{cast}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_limit_refuses_with_a_clear_status() {
    let d = Dir::new();
    let server = Server::start(&d, &["--max-shells", "2"]);
    let (mut a, _) = connect(&server.url("one"), SESSION).await.unwrap();
    let (mut b, _) = connect(&server.url("two"), SESSION).await.unwrap();
    status(&mut a).await;
    status(&mut b).await;
    match connect(&server.url("three"), SESSION).await {
        Err(WsError::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429);
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["reason"], "TooManyShells");
            assert!(body["message"].as_str().unwrap().contains("maximum of 2"));
        }
        other => panic!("expected HTTP 429, got {other:?}"),
    }
    // Re-attaching to an existing shell is not a new shell: allowed.
    let (_a2, st) = open(&server.url("one")).await;
    assert_eq!(st["metadata"]["reconnected"], true);
    // When a shell ends, its slot frees up.
    stdin(&mut b, "exit\n").await;
    status(&mut b).await;
    let live = |n: usize| format!("termtrail_live_shells {n}\n");
    let m = poll_until(
        10,
        || http_get(&server.addr, "/metrics"),
        |m| m.contains(&live(1)),
    );
    assert!(m.contains(&live(1)), "{m}");
    let (_c, st) = open(&server.url("three")).await;
    assert_eq!(st["metadata"]["reconnected"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_frames_close_only_that_connection() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut good, _) = open(&server.url("good")).await;
    let cases: Vec<(&str, Message, u16)> = vec![
        ("text frame", Message::Text("hello".into()), 1003),
        ("empty binary", Message::Binary(Vec::new().into()), 1008),
        (
            "bad resize json",
            Message::Binary([&[4u8][..], b"{\"width\":"].concat().into()),
            1008,
        ),
        (
            "resize zero",
            Message::Binary([&[4u8][..], br#"{"width":0,"height":5}"#].concat().into()),
            1008,
        ),
        (
            "client sends stdout",
            Message::Binary(vec![1u8, b'x'].into()),
            1008,
        ),
        ("oversized", Message::Binary(vec![0u8; 70_000].into()), 1009),
    ];
    for (i, (name, msg, want)) in cases.into_iter().enumerate() {
        let (mut bad, _) = connect(&server.url(&format!("bad{i}")), SESSION)
            .await
            .unwrap();
        status(&mut bad).await;
        let _ = bad.send(msg).await;
        let got = close_of(&mut bad).await.map(|c| c.0);
        assert_eq!(got, Some(want), "{name}");
    }
    // Unknown channels are ignored; the good session never noticed anything.
    good.send(Message::Binary(vec![0x42, 1, 2].into()))
        .await
        .unwrap();
    stdin(&mut good, "echo unaffected\n").await;
    read_until(&mut good, "unaffected").await;
    let metrics = http_get(&server.addr, "/metrics");
    assert!(
        metrics.contains("termtrail_protocol_errors_total"),
        "{metrics}"
    );
    let errors: u64 = metrics
        .lines()
        .find(|l| l.starts_with("termtrail_protocol_errors_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(errors >= 5, "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_missing_ids() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let h = http_get(&server.addr, "/healthz");
    assert!(h.starts_with("HTTP/1.1 200") && h.ends_with("ok\n"), "{h}");
    let m = http_get(&server.addr, "/metrics");
    assert!(m.contains("termtrail_live_shells 0"), "{m}");
    // A log that is not a terminal gets no colour codes.
    let (mut ws, _) = open(&server.url("logged")).await;
    stdin(&mut ws, "exit\n").await;
    exit_status(&mut ws).await;
    let log = wait_until(
        10,
        || "the shell's log lines".into(),
        || {
            let log = server.log.lock().unwrap().clone();
            log.contains("shell ended").then_some(log)
        },
    );
    assert!(!log.contains('\x1b'), "{log:?}");
    match connect(&server.url("s"), "").await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 400),
        other => panic!("{other:?}"),
    }
    match connect(&server.url("-bad"), SESSION).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 400),
        other => panic!("{other:?}"),
    }
    // Without shellId the host picks one and says which.
    let url = format!("ws://{}/runtimes/{ARN}/ws/shells", server.addr);
    let (mut ws, resp) = connect(&url, SESSION).await.unwrap();
    let id = resp.headers()["x-amzn-bedrock-agentcore-shell-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(status(&mut ws).await["metadata"]["shellId"], id.as_str());
    let m = http_get(&server.addr, "/metrics");
    assert!(m.contains("termtrail_live_shells 1"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_timeout_and_grace_end_shells_with_their_reason() {
    let d = Dir::new();
    // The timers' timing is tested under paused time (recorder/src/host/
    // timers.rs); here: the flags reach them, and the end reasons the seals.
    let server = Server::start(&d, &["--idle-timeout", "300ms", "--grace", "60s"]);
    let (mut ws, _) = open(&server.url("idle")).await;
    // Heartbeats do not count as traffic: sent every 100 ms until the exit
    // status comes, they do not keep the shell alive. (Frames are read
    // first: a heartbeat sent after the host closed would be refused.)
    let started = Instant::now();
    let mut beat = tokio::time::interval(Duration::from_millis(100));
    let mut notices = Vec::new();
    let st = loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "heartbeats kept an idle shell alive"
        );
        tokio::select! {
            biased;
            frame = next_frame(&mut ws) => match frame {
                Some((3, payload)) => {
                    let st: Value = serde_json::from_slice(&payload).unwrap();
                    if st["reason"] == "IdleTimeout" {
                        notices.push(st);
                    } else if st["metadata"].get("shellId").is_none() {
                        break st;
                    }
                }
                Some(_) => {}
                None => panic!("closed without an exit status"),
            },
            _ = beat.tick() => ws.send(Message::Binary(vec![5u8].into())).await.unwrap(),
        }
    };
    // The client is told why before the exit status (SIGHUP: 129, as for a
    // CLOSE), so it can tell an idle timeout from other endings.
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["code"], 408, "{notices:?}");
    assert!(
        notices[0]["message"]
            .as_str()
            .unwrap()
            .contains("idle timeout"),
        "{notices:?}"
    );
    assert_eq!(st["details"]["causes"][0]["message"], "129", "{st}");
    let v = verified(&d, &server.recordings()[0], "idle timeout");
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("idle timeout"), "{}", v.stdout);

    let d2 = Dir::new();
    let server2 = Server::start(&d2, &["--grace", "200ms"]);
    let (ws, _) = open(&server2.url("gone")).await;
    drop(ws);
    let v = verified(&d2, &server2.recordings()[0], "(closed)");
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("(closed)"), "{}", v.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_clients_and_seals_recordings_as_interrupted() {
    let d = Dir::new();
    let mut server = Server::start(&d, &[]);
    let (mut ws, _) = open(&server.url("live")).await;
    stdin(&mut ws, "echo before-shutdown\n").await;
    read_until(&mut ws, "before-shutdown").await;
    sigterm(server.child.id());
    let close = close_of(&mut ws).await;
    assert!(matches!(close, Some((1001, _))), "{close:?}");
    let code = server.stop();
    assert_eq!(code, 0, "{}", server.log.lock().unwrap());
    let (code, text) = verify_text(&d, &server.recordings()[0]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("interrupted (shell host shut down)"),
        "{text}"
    );
}

#[test]
fn refuses_to_start_without_auth_or_off_loopback() {
    let d = Dir::new();
    let r = d.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--no-auth"), "{}", r.stderr);
    let r = d.run(&["serve", "--listen", "0.0.0.0:0", "--no-auth"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("loopback"), "{}", r.stderr);
    let r = d.run(&["serve", "--idle-timeout", "5x", "--no-auth"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown unit"), "{}", r.stderr);
}

#[test]
fn exec_runs_one_command_streams_and_exits_with_its_code() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let url = format!("ws://{}", server.addr);
    let r = d.run(&[
        "exec",
        &url,
        "--",
        "echo to-stdout; echo to-stderr >&2; exit 4",
    ]);
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(r.stdout, "to-stdout\n");
    assert!(r.stderr.contains("to-stderr"), "{}", r.stderr);
    let r = d.run(&["exec", &url, "--timeout", "1", "--", "sleep 10"]);
    assert_eq!(r.code, 124, "{r:?}");
    assert!(
        r.stderr.contains("stopped the command after 1 s"),
        "{}",
        r.stderr
    );
    // Both recordings sealed (a moment after their commands end).
    let recs = poll_until(
        10,
        || server.recordings(),
        |recs| recs.len() == 2 && recs.iter().all(|p| verify_text(&d, p).0 == 0),
    );
    assert_eq!(recs.len(), 2, "every command is recorded: {recs:?}");
    let verdicts: Vec<String> = recs.iter().map(|p| verify_text(&d, p).1).collect();
    assert!(
        verdicts.iter().any(|v| v.contains("exited with code 4")),
        "{verdicts:?}"
    );
    assert!(
        verdicts.iter().any(|v| v.contains("timed out after 1 s")),
        "{verdicts:?}"
    );
    // Bad requests get one-line errors.
    let r = d.run(&["exec", "ftp://x", "--", "true"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad URL"), "{}", r.stderr);
    let r = d.run(&["exec", "ws://127.0.0.1:9", "--", "true"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_disturbs_no_one_and_memory_stays_bounded() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut flood, _) = open(&server.url("flood")).await;
    // 200 MB of output to a client that never reads again.
    stdin(
        &mut flood,
        "head -c 200000000 /dev/zero | tr '\\\\0' x; echo; echo flood-done\n",
    )
    .await;
    let (mut calm, _) = open(&server.url("calm")).await;
    let mut peak = 0;
    for i in 0..20 {
        let t = Instant::now();
        stdin(&mut calm, &format!("echo calm-{i}\n")).await;
        read_until(&mut calm, &format!("calm-{i}\r\n")).await;
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the other session stalled: {:?}",
            t.elapsed()
        );
        peak = peak.max(rss_kib(server.child.id()));
        // Kept: it spreads the samples over the flood (3 s), there is
        // nothing to wait for.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        peak > 0 && peak < 150 * 1024,
        "host RSS {peak} KiB while one client does not read"
    );
    drop(flood);
}

/// A client that reads, but slower than its shell writes, slows that shell
/// down (back-pressure) and loses nothing: it is not detached while it makes
/// progress, and every line arrives in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_slows_its_shell_and_loses_nothing() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut slow, _) = open(&server.url("slow")).await;
    stdin(&mut slow, "seq 1 400000; echo seq-$((1+1))-done\n").await;
    let mut out = Vec::new();
    let start = Instant::now();
    // 3 s of slow reading. That a slow reader is kept past the 10 s a client
    // may take nothing (attachment::SLOW_CLIENT) is tested under paused time
    // in recorder/src/host/attachment.rs.
    while start.elapsed() < Duration::from_secs(3) {
        match next_frame(&mut slow).await {
            Some((1, b)) => out.extend(b),
            Some(_) => {}
            None => panic!("slow client was closed after {:?}", start.elapsed()),
        }
        // Kept: this is what makes the reader slow.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (mut calm, _) = open(&server.url("calm")).await;
    let t = Instant::now();
    stdin(&mut calm, "echo calm-ok\n").await;
    read_until(&mut calm, "calm-ok\r\n").await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let partial = out.len();
    assert!(
        !String::from_utf8_lossy(&out).contains("seq-2-done"),
        "the reader was not slower than the shell ({partial} bytes): the test shows nothing"
    );
    out.extend(read_until(&mut slow, "seq-2-done").await.into_bytes());
    let text = String::from_utf8_lossy(&out);
    let numbers: Vec<u64> = text
        .split('\n')
        // A line may start with the end of bracketed paste and a CR.
        .filter_map(|l| l.trim_end().rsplit('\r').next()?.parse().ok())
        .collect();
    let first = numbers
        .iter()
        .position(|&n| n == 1)
        .unwrap_or_else(|| panic!("no line 1 in {:?}", &text[..text.len().min(300)]));
    let run = &numbers[first..];
    assert_eq!(run.len(), 400000, "lines lost or repeated");
    assert!(run.iter().enumerate().all(|(i, &n)| n == i as u64 + 1));
}

/// `serve` under a file-size limit (`ulimit -f`, SIGXFSZ ignored), so its
/// recordings fail part-way with EFBIG.
fn serve_with_tiny_disk(d: &Dir, extra: &str) -> Server {
    host_with_tiny_disk(d, &format!("serve {extra} -- bash --norc --noprofile"))
}

/// `termtrail <args>` (serve or proxy) under the file-size limit.
fn host_with_tiny_disk(d: &Dir, args: &str) -> Server {
    let (cmd, rest) = args.split_once(' ').unwrap_or((args, ""));
    let store = d.join("store");
    let script = format!(
        "trap '' XFSZ; ulimit -f 60; exec $TT {cmd} --listen 127.0.0.1:0 --no-auth --store {store} {rest}",
        store = store.display()
    );
    Server::spawn(d.shell(&script), &store)
}

/// Opens shell `big` on `host` and has it print ~160 KB of incompressible
/// output: more than the 60 KiB a recording may grow to under
/// [`host_with_tiny_disk`].
async fn overflow_the_recording(host: &Server) -> Ws {
    let (mut ws, _) = open(&host.url("big")).await;
    stdin(
        &mut ws,
        "head -c 120000 /dev/urandom | base64 -w 100; echo printed-all\n",
    )
    .await;
    ws
}

/// Kills a host with SIGKILL (its recordings fail anyway).
fn kill(mut host: Server) {
    let _ = host.child.kill();
    let _ = host.child.wait();
}

/// The exit status of a shell that `--strict` must end (within 20 s).
async fn ended(ws: &mut Ws) -> Value {
    tokio::time::timeout(Duration::from_secs(20), exit_status(ws))
        .await
        .expect("the shell was not ended")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_that_fails_is_counted_and_strict_ends_its_shell() {
    for strict in [false, true] {
        let d = Dir::new();
        let host = serve_with_tiny_disk(&d, if strict { "--strict" } else { "" });
        let mut ws = overflow_the_recording(&host).await;
        if strict {
            // The output that could not be recorded ends the shell.
            let st = ended(&mut ws).await;
            assert_eq!(st["status"], "Failure", "{st}");
            assert!(st["message"].to_string().contains("exit code"), "{st}");
        } else {
            read_until(&mut ws, "printed-all").await;
            // The chunk is written (and fails) within a second or so.
            poll_until(
                10,
                || http_get(&host.addr, "/metrics"),
                |m| m.contains("termtrail_recording_failures_total 1"),
            );
            // The shell goes on (unrecorded).
            stdin(&mut ws, "echo still-$((40+2))\n").await;
            read_until(&mut ws, "still-42").await;
        }
        let metrics = poll_until(
            10,
            || http_get(&host.addr, "/metrics"),
            |m| m.contains("termtrail_recording_failures_total 1"),
        );
        assert!(
            metrics.contains("termtrail_recording_failures_total 1"),
            "strict={strict}: {metrics}"
        );
        kill(host);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_strict_ends_a_proxied_shell_whose_recording_fails() {
    let d = Dir::new();
    let upstream = Server::start(&Dir::new(), &[]);
    let host = host_with_tiny_disk(
        &d,
        &format!("proxy --strict --upstream ws://{}", upstream.addr),
    );
    let mut ws = overflow_the_recording(&host).await;
    let st = ended(&mut ws).await;
    assert!(st.to_string().contains("exit code"), "{st}");
    let metrics = http_get(&host.addr, "/metrics");
    assert!(
        metrics.contains("termtrail_recording_failures_total 1"),
        "{metrics}"
    );
    kill(host);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_shell_or_command_inherits_another_shells_terminal() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut a, _) = open(&server.url("fd-a")).await;
    stdin(&mut a, "echo a-$((6*7))\n").await;
    read_until(&mut a, "a-42").await;
    // Another shell: its descriptors hold no terminal master (ptmx).
    let (mut b, _) = open(&server.url("fd-b")).await;
    stdin(
        &mut b,
        "echo masters-$(ls -l /proc/$$/fd | grep -c ptmx)-$((1+1))end\n",
    )
    .await;
    let out = read_until(&mut b, "-2end\r\n").await;
    assert!(out.contains("masters-0-2end"), "{out}");
    // A one-shot command neither.
    let base = format!("ws://{}", server.addr);
    let r = d.run(&["exec", &base, "--", "ls -l /proc/self/fd"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("ptmx"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_ends_when_its_program_exits_even_if_a_detached_process_holds_its_terminal() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut ws, _) = open(&server.url("setsid")).await;
    // The detached sleep keeps the terminal open for 8 s; the shell still
    // ends at once with its own exit status.
    stdin(&mut ws, "setsid -f sleep 8.4321; exit 7\n").await;
    let started = std::time::Instant::now();
    let exit = exit_status(&mut ws).await;
    assert_eq!(exit["details"]["causes"][0]["message"], "7", "{exit}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "ended after {:?}",
        started.elapsed()
    );
    let rec = wait_until(
        10,
        || "the recording".into(),
        || server.recordings().into_iter().next(),
    );
    verified(&d, &rec, "exited with code 7");
    let metrics = poll_until(
        5,
        || http_get(&server.addr, "/metrics"),
        |m| m.contains("termtrail_live_shells 0"),
    );
    assert!(metrics.contains("termtrail_live_shells 0"), "{metrics}");
    let _ = std::process::Command::new("pkill")
        .args(["-f", "sleep 8.4321"])
        .status();
}
