//! The abuse suite (issue 14): hostile clients on loopback against `serve`
//! and `proxy`. Each scenario asserts that a well-behaved client keeps its
//! service while the abuse goes on (an echo round trip through a fresh
//! shell, and `/healthz`), that descriptors and memory stay bounded, and
//! that the store verifies clean afterwards.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::util::*;

/// A well-behaved client's echo round trip through a new shell, ended with
/// CLOSE; panics when it takes longer than `limit`.
async fn round_trip(host: &Server, shell: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let work = async {
        let (mut ws, st) = open(&host.url(shell)).await;
        assert_eq!(st["metadata"]["shellId"], shell, "{st}");
        stdin(&mut ws, "echo well-$((6*7))-behaved\n").await;
        read_until(&mut ws, "well-42-behaved\r\n").await;
        ws.send(Message::Binary(vec![0xFF].into())).await.unwrap();
        exit_status(&mut ws).await;
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| panic!("a well-behaved client waited over {limit:?}"));
    let took = started.elapsed();
    let health = http_get(&host.addr, "/healthz");
    assert!(health.ends_with("ok\n"), "{health}");
    took
}

/// Open descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `verify --store` of `host`'s store: every recording intact and sealed.
fn store_verifies_clean(d: &Dir, host: &Server) {
    let store = host.store.to_string_lossy().into_owned();
    let v = poll_until(
        15,
        || d.run(&["verify", "--store", &store]),
        |r| r.code == 0,
    );
    assert_eq!(v.code, 0, "{v:?}");
}

/// Raw HTTP: sends `request`, returns the answer's head and body (as far
/// as its Content-Length says; a keep-alive connection is not waited on).
fn raw_http(addr: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if out.len() >= end + 4 + len || head.contains(" 101 ") {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An upgrade request for `path` with `session` (raw bytes, unchecked).
fn upgrade(addr: &str, path: &str, session: &[u8]) -> Vec<u8> {
    [
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             X-Amzn-Bedrock-AgentCore-Runtime-Session-Id: "
        )
        .as_bytes(),
        session,
        b"\r\n\r\n",
    ]
    .concat()
}

/// Hostile ids (traversal, controls, escapes, bidi, oversize) are refused
/// with 400 before anything is created, never reach the log raw, and
/// disturb no one.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_ids_are_refused_and_create_nothing() {
    let d = Dir::new();
    let host = Server::start(&d, &["--grace", "1s"]);
    let addr = host.addr.clone();
    let ok_session = SESSION.as_bytes();
    let long = "a".repeat(257);
    let sessions: Vec<&[u8]> = vec![
        b"../../etc",
        b"a/b",
        b"x\x1b]0;pwned\x07",
        "\u{202e}evil".as_bytes(),
        b"\x9b2J",
        long.as_bytes(),
        b"",
        b"%2e%2e%2f",
    ];
    let mut answers = Vec::new();
    for s in &sessions {
        let a = raw_http(
            &addr,
            &upgrade(&addr, "/runtimes/r/ws/shells?shellId=ok1", s),
        );
        answers.push(a);
    }
    let shells = [
        "..%2F..%2Fetc",
        "%1b%5d0%3bx%07",
        "%E2%80%AEevil",
        "-dash-first",
        "a%2Fb",
        &"b".repeat(129),
    ];
    for sh in shells {
        let path = format!("/runtimes/r/ws/shells?shellId={sh}");
        answers.push(raw_http(&addr, &upgrade(&addr, &path, ok_session)));
    }
    for a in &answers {
        let status = a.lines().next().unwrap_or_default();
        // Refused; an empty or unparsable header value may be refused by the
        // HTTP layer itself, but never upgraded.
        assert!(
            status.contains(" 400 ") || status.is_empty(),
            "{a}\n--- all: {answers:#?}"
        );
        assert!(!a.contains("101 Switching"), "{a}");
    }
    // A runtime path with traversal and an 8 KiB segment: never a shell.
    for path in [
        "/runtimes/..%2F..%2Fetc/ws/shells?shellId=ok2".to_string(),
        format!("/runtimes/{}/ws/shells?shellId=ok3", "r".repeat(8192)),
    ] {
        let a = raw_http(&addr, &upgrade(&addr, &path, ok_session));
        let status = a.lines().next().unwrap_or_default().to_string();
        if status.contains(" 101 ") {
            // Accepted as a runtime name: it must not reach the file system.
            continue;
        }
        assert!(status.contains(" 4"), "a hostile runtime path got {status}");
    }
    round_trip(&host, "after-hostile-ids", Duration::from_secs(20)).await;
    // Nothing was created for a refused id; nothing outside the store.
    let files = files_under(&host.store);
    for f in &files {
        assert!(
            !f.contains("etc") && !f.contains('\u{1b}') && !f.contains('\u{202e}'),
            "{files:#?}"
        );
    }
    assert!(!d.join("etc").exists());
    let log = host.log.lock().unwrap().clone();
    for raw in ["\u{1b}]0;pwned", "\u{202e}", "\u{9b}"] {
        assert!(!log.contains(raw), "raw control in the log: {log}");
    }
    store_verifies_clean(&d, &host);
}

/// Fifty clients sending malformed, oversized and misdirected frames, over
/// and over: each is closed with its code, and a well-behaved client's
/// round trip carries on; descriptors return to where they were.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_malformed_frames_disturbs_no_one() {
    let d = Dir::new();
    let host = Server::start(&d, &["--grace", "1s", "--max-shells", "100"]);
    malformed_frame_flood(&d, &host).await;
}

/// The same through `proxy` (in front of `serve`): the proxy judges its
/// clients' frames itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_malformed_frames_through_the_proxy_disturbs_no_one() {
    let d = Dir::new();
    let up = Server::start(&d, &["--grace", "1s", "--max-shells", "100"]);
    let pd = Dir::new();
    let upstream = format!("ws://{}", up.addr);
    let px = Server::start_kind(
        &pd,
        "proxy",
        &[
            "--upstream",
            &upstream,
            "--grace",
            "1s",
            "--max-shells",
            "100",
        ],
    );
    malformed_frame_flood(&pd, &px).await;
    store_verifies_clean(&d, &up);
}

async fn malformed_frame_flood(d: &Dir, host: &Server) {
    let pid = host.child.id();
    let baseline = round_trip(host, "before", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = fds(pid);
    let bad: Vec<(Message, u16)> = vec![
        (Message::Text("hello".into()), 1003),
        (Message::Binary(Vec::new().into()), 1008),
        (
            Message::Binary(b"\x04{\"width\":0,\"height\":5}".to_vec().into()),
            1008,
        ),
        (Message::Binary(b"\x04not json".to_vec().into()), 1008),
        (
            Message::Binary(b"\x01output from a client".to_vec().into()),
            1008,
        ),
        (Message::Binary(vec![0u8; 70_000].into()), 1009),
    ];
    let mut tasks = Vec::new();
    for i in 0..50 {
        let url = host.url(&format!("bad{i}"));
        let (msg, want) = bad[i % bad.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..3 {
                let (mut ws, _) = connect(&url, SESSION).await.unwrap();
                ws.send(msg.clone()).await.unwrap();
                let code = loop {
                    match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
                        Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)),
                        Ok(Some(Ok(_))) => continue,
                        other => panic!("no close frame: {other:?}"),
                    }
                };
                codes.push((code, want));
            }
            codes
        }));
    }
    let during = round_trip(host, "during", Duration::from_secs(30)).await;
    for t in tasks {
        for (code, want) in t.await.unwrap() {
            assert_eq!(code, Some(want));
        }
    }
    eprintln!("round trip: {baseline:?} before, {during:?} during the flood");
    // The misbehaving clients' shells end after the grace period.
    let m = poll_until(
        15,
        || http_get(&host.addr, "/metrics"),
        |m| m.contains("termtrail_live_shells 0"),
    );
    assert!(m.contains("termtrail_live_shells 0"), "{m}");
    let fds_after = poll_until(10, || fds(pid), |n| *n <= fds_before + 2);
    assert!(
        fds_after <= fds_before + 2,
        "descriptors: {fds_before} before, {fds_after} after"
    );
    assert!(rss_kib(pid) < 200 * 1024, "RSS {} KiB", rss_kib(pid));
    store_verifies_clean(d, host);
}

/// What a client sent reaches the host's log with its controls made
/// visible: a principal holding a bidi override (a valid token's `sub`) is
/// logged as `\u{202e}`, never raw.
#[tokio::test(flavor = "multi_thread")]
async fn client_text_in_the_log_is_shown_with_its_controls_visible() {
    use crate::auth::{Carry, ISSUER, claims, connect as auth_connect, keys, mint, serve};
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let jwks = d.join("jwks.json");
    keys(&py, d.path(), &jwks, &["rs1"]);
    let j = jwks.to_string_lossy().into_owned();
    let host = serve(
        &d,
        &[
            "--auth",
            "jwt",
            "--jwt-jwks",
            &j,
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            "termtrail",
        ],
    );
    let sub = "ann\u{202e}nimda";
    let t = mint(
        &py,
        d.path(),
        "rs1",
        claims(serde_json::json!({ "sub": sub })),
        None,
    );
    let (mut ws, _) = auth_connect(&host.url("bidi"), Carry::Header(&t))
        .await
        .unwrap();
    status(&mut ws).await;
    stdin(&mut ws, "exit\n").await;
    exit_status(&mut ws).await;
    let log = poll_until(
        10,
        || host.log.lock().unwrap().clone(),
        |l| l.contains("ann\\u{202e}nimda"),
    );
    assert!(log.contains("ann\\u{202e}nimda"), "{log}");
    assert!(
        !log.contains('\u{202e}'),
        "a raw bidi override in the log: {log}"
    );
}
