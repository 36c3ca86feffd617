//! The host's limits against hostile clients (issue 14 items 2, 4, 5, 10,
//! 11): silent and half-sent connections at `--max-connections`, SIGTERM
//! with requests never finished, log volume under a connection flood, a
//! detached shell whose output nobody reads, slots freed at exit, slow
//! clients and Close frames, and `--max-terminal-size`. Each abuse test
//! checks that a well-behaved client keeps its echo round trip and that
//! `/healthz` and `/metrics` answer meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream as StdTcp;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::util::*;

/// Descriptors process `pid` has open.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The value of metric `name` (without labels) in `/metrics`.
fn metric(addr: &str, name: &str) -> u64 {
    let text = http_get(addr, "/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// A `/healthz` round trip within `secs`, on a connection of its own.
fn healthz_within(addr: &str, secs: u64) -> Duration {
    let t = Instant::now();
    let mut s = StdTcp::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.contains("200 OK") && out.ends_with("ok\n"), "{out:?}");
    t.elapsed()
}

/// Opens shell `name`, runs `echo` through it and returns the round trip.
async fn echo_round_trip(server: &Server, name: &str) -> Duration {
    let t = Instant::now();
    let (mut ws, st) = open(&server.url(name)).await;
    assert_eq!(st["status"], "Success", "{st}");
    stdin(&mut ws, &format!("echo rt-$((6*7))-{name}\n")).await;
    read_until(&mut ws, &format!("rt-42-{name}")).await;
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_half_sent_connections_at_the_cap_keep_out_no_one() {
    let d = Dir::new();
    let server = Server::start(&d, &["--max-connections", "40", "--header-timeout", "2s"]);
    let pid = server.child.id();
    let base = fds(pid);
    // 150 silent connections and 30 half-sent requests, far past the cap.
    let mut flood = Vec::new();
    for i in 0..180 {
        let mut s = StdTcp::connect(&server.addr).unwrap();
        if i % 6 == 0 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
        }
        flood.push(s);
    }
    // Service while the flood is held.
    let h = healthz_within(&server.addr, 5);
    assert!(h < Duration::from_secs(2), "/healthz took {h:?}");
    let rt = echo_round_trip(&server, "calm").await;
    assert!(rt < Duration::from_secs(5), "echo round trip {rt:?}");
    assert!(metric(&server.addr, "termtrail_connections_evicted_total") >= 140);
    let open_now = metric(&server.addr, "termtrail_connections_open");
    assert!(open_now <= 41, "{open_now} connections open at a cap of 40");
    let held = fds(pid);
    assert!(
        held <= base + 40 + 16,
        "{held} descriptors open (at start {base}) with a cap of 40 connections"
    );
    // What is left of the flood is closed by the header timeout.
    let timed_out = poll_until(
        6,
        || metric(&server.addr, "termtrail_header_timeouts_total"),
        |n| *n > 0,
    );
    assert!(timed_out > 0, "no header timeout counted");
    // The shell's WebSocket was never evicted: it still echoes.
    let (mut ws, st) = open(&server.url("calm")).await;
    assert_eq!(st["metadata"]["reconnected"], true, "{st}");
    stdin(&mut ws, "echo still-$((1+1))\n").await;
    read_until(&mut ws, "still-2").await;
    drop(flood);
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains("connection limit reached"),
        "the cap is not in the log: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_a_host_with_half_sent_requests_and_slow_clients_at_once() {
    let d = Dir::new();
    // A header timeout far beyond the test: only shutdown may end them.
    let mut server = Server::start(&d, &["--header-timeout", "5m"]);
    let mut half = Vec::new();
    for _ in 0..20 {
        let mut s = StdTcp::connect(&server.addr).unwrap();
        s.write_all(b"GET /runtimes/x/ws/shells HTTP/1.1\r\nHost: x\r\nUpgr")
            .unwrap();
        half.push(s);
    }
    // A shell whose client never reads its output again.
    let (mut slow, _) = open(&server.url("slow")).await;
    stdin(&mut slow, "yes slow-output\n").await;
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let code = server.stop();
    let took = t.elapsed();
    eprintln!("SIGTERM to exit: {took:?}");
    // Nothing waits for the half-sent requests: well within the 10 s deadline.
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    assert_eq!(code, 0);
    drop(half);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_shell_frees_its_slot_at_once() {
    let d = Dir::new();
    let server = Server::start(&d, &["--max-shells", "1"]);
    for i in 0..3 {
        let (mut ws, _) = open(&server.url(&format!("s{i}"))).await;
        stdin(&mut ws, "exit 3\n").await;
        let st = exit_status(&mut ws).await;
        assert_eq!(st["message"], "command terminated with exit code 3", "{st}");
        // At once: no waiting for the recording's seal or a kill timer.
        match connect(&server.url(&format!("next{i}")), SESSION).await {
            Ok((mut next, _)) => {
                let st = status(&mut next).await;
                assert_eq!(st["status"], "Success", "{st}");
                stdin(&mut next, "exit 0\n").await;
                exit_status(&mut next).await;
            }
            Err(e) => panic!("round {i}: the ended shell still held its slot: {e}"),
        }
    }
    assert_eq!(metric(&server.addr, "termtrail_shells_refused_total"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_close_frame_is_answered_with_a_close_frame() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut ws, _) = open(&server.url("closer")).await;
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return Ok(f),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("ended without a close frame".into()),
            }
        }
    })
    .await
    .expect("an answer within 5 s");
    let frame = answer.expect("a close frame back (RFC 6455 §5.5.1)");
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_gets_1008_and_its_detached_flood_pauses() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let (mut ws, _) = open(&server.url("flood")).await;
    // Output that does not compress away: the recording's size shows it.
    stdin(&mut ws, "base64 -w 76 /dev/urandom\n").await;
    // Stop reading: the host's send times out after 10 s.
    std::thread::sleep(Duration::from_secs(12));
    // Meanwhile another client is served as usual.
    let rt = echo_round_trip(&server, "calm").await;
    assert!(rt < Duration::from_secs(3), "echo round trip {rt:?}");
    healthz_within(&server.addr, 3);
    // Reading again, the client finds its output, then the close frame.
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => {
                    return f.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("no close frame: {e}"),
                None => panic!("ended without a close frame"),
            }
        }
    })
    .await
    .expect("the close within 10 s");
    let (code, reason) = close.expect("a close code");
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("too slow"), "{reason}");
    assert!(metric(&server.addr, "termtrail_slow_clients_total") >= 1);
    // Detached, the flood pauses once the replay buffer is full: the
    // recording stops growing.
    let rec = poll_until(5, || server.recordings(), |r| r.len() == 2);
    let flood_rec = rec
        .iter()
        .find(|p| p.to_string_lossy().contains("/flood/"))
        .expect("the flood's recording")
        .clone();
    std::thread::sleep(Duration::from_millis(1500));
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let before = size(&flood_rec);
    std::thread::sleep(Duration::from_secs(2));
    let grown = size(&flood_rec) - before;
    assert!(
        grown < 64 << 10,
        "the detached shell's recording grew {grown} bytes in 2 s"
    );
    assert!(metric(&server.addr, "termtrail_output_paused_total") >= 1);
    // Re-attached, the client gets the buffer and the output goes on.
    let (mut back, st) = open(&server.url("flood")).await;
    assert_eq!(st["metadata"]["reconnected"], true, "{st}");
    let mut got = 0;
    while got < 1 << 20 {
        match next_frame(&mut back).await {
            Some((1, b)) => got += b.len(),
            Some(_) => {}
            None => panic!("closed after {got} bytes"),
        }
    }
    stdin(&mut back, "\x03").await;
    stdin(&mut back, "exit\n").await;
    let st = exit_status(&mut back).await;
    assert_eq!(st["kind"], "Status", "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_resize_is_reduced_to_the_maximum_terminal_size() {
    let d = Dir::new();
    let server = Server::start(&d, &["--max-terminal-size", "300x100"]);
    let (mut ws, _) = open(&server.url("big")).await;
    let mut frame = vec![4u8];
    frame.extend_from_slice(br#"{"width":65535,"height":65535}"#);
    ws.send(Message::Binary(frame.into())).await.unwrap();
    stdin(&mut ws, "stty size; echo size-$((1+1))\n").await;
    let out = read_until(&mut ws, "size-2").await;
    assert!(out.contains("100 300"), "{out}");
    assert_eq!(metric(&server.addr, "termtrail_resizes_clamped_total"), 1);
    stdin(&mut ws, "exit\n").await;
    exit_status(&mut ws).await;
    let rec = poll_until(10, || server.recordings(), |r| r.len() == 1);
    // Read once sealed (a file still being written ends early for zstd).
    let v = verified(&d, &rec[0], "exited");
    assert_eq!(v.code, 0, "{v:?}");
    let cast = zstd_dc(&rec[0]);
    assert!(cast.contains(r#""r", "300x100""#), "{cast}");
    assert!(!cast.contains("65535"), "{cast}");
}

/// Sends `n` WebSocket upgrades for new shells, each on a connection of
/// its own (refused with 429 by a host at its shell limit).
fn refused_requests(addr: &str, n: usize, worker: usize) {
    for i in 0..n {
        let Ok(mut s) = StdTcp::connect(addr) else {
            continue;
        };
        let _ = write!(
            s,
            "GET /runtimes/x/ws/shells?shellId=w{worker}-{i} HTTP/1.1\r\nHost: {addr}\r\n\
Connection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
X-Amzn-Bedrock-AgentCore-Runtime-Session-Id: {SESSION}\r\n\r\n"
        );
        // The refusal closes the connection; a hang is not waited out.
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// Log bytes and refusal lines while `n` refused connections hit a host
/// started with `extra`; the host stays available meanwhile.
async fn log_under_flood(extra: &[&str], n: usize) -> (Server, usize, u64, u64) {
    let d = Dir::new();
    let mut flags = vec!["--max-shells", "1"];
    flags.extend_from_slice(extra);
    let server = Server::start(&d, &flags);
    let (mut held, _) = open(&server.url("held")).await;
    let start_len = server.log.lock().unwrap().len();
    let t = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let addr = server.addr.clone();
            std::thread::spawn(move || refused_requests(&addr, n / 4, w))
        })
        .collect();
    // The held shell and /healthz stay available during the flood.
    stdin(&mut held, "echo held-$((2+2))\n").await;
    read_until(&mut held, "held-4").await;
    healthz_within(&server.addr, 3);
    for w in workers {
        w.join().unwrap();
    }
    let secs = t.elapsed().as_secs() + 1;
    assert_eq!(
        metric(&server.addr, "termtrail_shells_refused_total"),
        n as u64
    );
    // The last second's summary is written by the timers.
    std::thread::sleep(Duration::from_millis(1500));
    let log = server.log.lock().unwrap()[start_len..].to_string();
    let refusals = log.matches("refused: shell limit").count() as u64;
    (server, log.len(), refusals, secs)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_refused_connections_leaves_a_bounded_log() {
    let n = 1200;
    let (server, bytes, refusals, secs) = log_under_flood(&["--log-rate", "5"], n).await;
    assert!(
        refusals <= 5 * (secs + 1),
        "{refusals} refusal lines in {secs} s at --log-rate 5"
    );
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("suppressed"), "{log}");
    let suppressed = metric(&server.addr, "termtrail_log_lines_suppressed_total");
    assert!(
        suppressed >= n as u64 - 5 * (secs + 1),
        "{suppressed} suppressed"
    );
    assert!(bytes < 32 << 10, "{bytes} log bytes for {n} refusals");
    // Unlimited, every refusal is a line: the measure above means something.
    let (_, unlimited, all, _) = log_under_flood(&["--log-rate", "1000000"], n).await;
    assert_eq!(all, n as u64);
    assert!(unlimited > 4 * bytes, "{unlimited} vs {bytes} bytes");
}

/// `n` TCP connections to `addr` that never send a byte.
fn silent(addr: &str, n: usize) -> Vec<StdTcp> {
    (0..n).map(|_| StdTcp::connect(addr).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_flood_before_the_tls_handshake_keeps_out_no_one() {
    let d = Dir::new();
    let (ca, cert, key) = test_ca(&d);
    let host = Server::start(
        &d,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--max-connections",
            "64",
        ],
    );
    let pid = host.child.id();
    let base = fds(pid);
    let flood = silent(&host.addr, 200);
    std::thread::sleep(Duration::from_millis(300));
    // Handshakes under way are bounded (a quarter of 64, at least 16).
    let held = fds(pid);
    assert!(
        held <= base + 16 + 8,
        "{held} descriptors (at start {base}) with 200 silent TLS connections"
    );
    let wss = format!("wss://{}", host.addr);
    let t = Instant::now();
    let r = d.run_with_input(
        &["attach", &wss, "--ca-cert", &ca],
        b"echo tls-rt-$((6*7))\nexit 3\n",
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("tls-rt-42"), "{}", r.stdout);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(flood);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_holds_its_connection_cap_too() {
    let hd = Dir::new();
    let upstream = Server::start(&hd, &[]);
    let pd = Dir::new();
    let up = format!("ws://{}", upstream.addr);
    let px = Server::start_kind(
        &pd,
        "proxy",
        &[
            "--upstream",
            &up,
            "--max-connections",
            "30",
            "--max-terminal-size",
            "200x50",
        ],
    );
    let flood = silent(&px.addr, 120);
    healthz_within(&px.addr, 3);
    let rt = echo_round_trip(&px, "via-proxy").await;
    assert!(rt < Duration::from_secs(5), "echo through the proxy {rt:?}");
    assert!(metric(&px.addr, "termtrail_connections_evicted_total") >= 80);
    // A huge resize reaches the upstream reduced.
    let (mut ws, _) = open(&px.url("via-proxy")).await;
    let mut frame = vec![4u8];
    frame.extend_from_slice(br#"{"width":65535,"height":9}"#);
    ws.send(Message::Binary(frame.into())).await.unwrap();
    stdin(&mut ws, "stty size; echo sz-$((1+1))\n").await;
    let out = read_until(&mut ws, "sz-2").await;
    assert!(out.contains("9 200"), "{out}");
    assert_eq!(metric(&px.addr, "termtrail_resizes_clamped_total"), 1);
    drop(flood);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_detached_flood_through_the_proxy_pauses_its_upstream_link() {
    let hd = Dir::new();
    let upstream = Server::start(&hd, &[]);
    let pd = Dir::new();
    let up = format!("ws://{}", upstream.addr);
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &up]);
    let (mut ws, _) = open(&px.url("pflood")).await;
    stdin(&mut ws, "base64 -w 76 /dev/urandom\n").await;
    read_until(&mut ws, "\n").await;
    drop(ws);
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let rec = wait_until(
        5,
        || "the proxy's recording".into(),
        || px.recordings().into_iter().next(),
    );
    let paused = poll_until(
        5,
        || metric(&px.addr, "termtrail_output_paused_total"),
        |n| *n >= 1,
    );
    assert!(paused >= 1, "the proxy's output never paused");
    // A chunk's flush (1 s) after the pause, the file stays put.
    std::thread::sleep(Duration::from_millis(1500));
    let before = size(&rec);
    std::thread::sleep(Duration::from_secs(2));
    let grown = size(&rec) - before;
    assert!(
        grown < 64 << 10,
        "the proxy's recording grew {grown} bytes in 2 s"
    );
    // Others are served meanwhile; re-attached, the output goes on.
    let rt = echo_round_trip(&px, "pcalm").await;
    assert!(rt < Duration::from_secs(3), "{rt:?}");
    let (mut back, st) = open(&px.url("pflood")).await;
    assert_eq!(st["metadata"]["reconnected"], true, "{st}");
    let mut got = 0;
    while got < 1 << 20 {
        match next_frame(&mut back).await {
            Some((1, b)) => got += b.len(),
            Some(_) => {}
            None => panic!("closed after {got} bytes"),
        }
    }
    stdin(&mut back, "\x03").await;
    stdin(&mut back, "exit\n").await;
    exit_status(&mut back).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn under_a_low_open_files_limit_a_flood_never_exhausts_descriptors() {
    let d = Dir::new();
    let store = d.join("store");
    // Soft and hard limit 256: the default cap is 256 - 128 - 8 x 10 = 48.
    let c = d.shell(&format!(
        "ulimit -n 256 && exec \"$TT\" serve --listen 127.0.0.1:0 --no-auth --store '{}' -- bash --norc --noprofile",
        store.display()
    ));
    let server = Server::spawn(c, &store);
    let pid = server.child.id();
    let flood = silent(&server.addr, 400);
    std::thread::sleep(Duration::from_millis(300));
    let held = fds(pid);
    assert!(held < 200, "{held} descriptors open under a limit of 256");
    healthz_within(&server.addr, 3);
    let rt = echo_round_trip(&server, "low").await;
    assert!(rt < Duration::from_secs(5), "echo round trip {rt:?}");
    let m = http_get(&server.addr, "/metrics");
    assert!(
        !m.contains("termtrail_connections_evicted_total 0\n"),
        "{m}"
    );
    let log = server.log.lock().unwrap().clone();
    assert!(!log.contains("Too many open files"), "{log}");
    drop(flood);
}

/// Floods shell `name` on `host` while reading it, until the host ends it
/// at its recording bound: returns the status that says why.
async fn flood_until_the_bound(host: &Server, name: &str) -> serde_json::Value {
    let (mut ws, _) = open(&host.url(name)).await;
    stdin(&mut ws, "base64 -w 76 /dev/urandom\n").await;
    let why = tokio::time::timeout(Duration::from_secs(15), status(&mut ws))
        .await
        .expect("the shell was not ended at its bound");
    let exit = exit_status(&mut ws).await;
    assert_eq!(exit["status"], "Failure", "{exit}");
    why
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_past_max_recording_bytes_ends_its_shell_with_a_reason() {
    let d = Dir::new();
    let server = Server::start(&d, &["--max-recording-bytes", "1M"]);
    let why = flood_until_the_bound(&server, "big").await;
    assert_eq!(why["reason"], "RecordingLimitReached", "{why}");
    assert_eq!(why["code"], 413, "{why}");
    assert_eq!(metric(&server.addr, "termtrail_recording_limit_total"), 1);
    let rt = echo_round_trip(&server, "calm").await;
    assert!(rt < Duration::from_secs(3), "{rt:?}");
    let rec = server
        .recordings()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/big/"))
        .expect("the recording");
    let r = verified(&d, &rec, "interrupted");
    assert_eq!(r.code, 0, "{r:?}");
    let cast = zstd_dc(&rec);
    assert!(cast.contains("size limit of 1048576 bytes"), "no marker");
    // The output recorded stops within one read of the bound (JSON escapes
    // and event lines add a little).
    assert!(cast.len() < (1 << 20) + (256 << 10), "{} bytes", cast.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_ends_a_shell_past_its_recording_bound_too() {
    let hd = Dir::new();
    let upstream = Server::start(&hd, &[]);
    let pd = Dir::new();
    let up = format!("ws://{}", upstream.addr);
    let px = Server::start_kind(
        &pd,
        "proxy",
        &["--upstream", &up, "--max-recording-bytes", "1M"],
    );
    let why = flood_until_the_bound(&px, "pbig").await;
    assert_eq!(why["reason"], "RecordingLimitReached", "{why}");
    assert_eq!(metric(&px.addr, "termtrail_recording_limit_total"), 1);
    let rec = poll_until(5, || px.recordings(), |r| r.len() == 1);
    let r = verified(&pd, &rec[0], "interrupted");
    assert_eq!(r.code, 0, "{r:?}");
}
