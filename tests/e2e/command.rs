//! The one-shot command endpoint under abuse (issue 14 item 3), through
//! the real `serve` and raw HTTP (asking for JSON Lines): the
//! `--max-commands` cap with its 429 and metrics, a timeout that holds when
//! the command closes its output or escapes with `setsid`, a client that
//! leaves, SIGTERM with commands running, and a command flood during which
//! shells still start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::*;

/// Starts `POST /runtimes/<arn>/commands` for `command` and returns the
/// connection, the response still to be read.
fn post(addr: &str, command: &str, timeout: u64) -> TcpStream {
    let body = serde_json::json!({"command": command, "timeout": timeout}).to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /runtimes/{ARN}/commands HTTP/1.1\r\nHost: {addr}\r\n\
X-Amzn-Bedrock-AgentCore-Runtime-Session-Id: {SESSION}\r\n\
Content-Type: application/json\r\nAccept: application/x-ndjson\r\n\
Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

/// Reads `s` until what came holds `needle` (or the connection ends, or
/// `secs` pass); returns what came.
fn read_until(s: &mut TcpStream, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) && Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A marker no other test uses: a `sleep` interval unique to this test
/// process and `n`, so `pgrep -f` finds exactly the test's processes.
fn marker(n: u32) -> String {
    format!("{}.{}", 300 + n, std::process::id())
}

/// The processes whose command line holds `marker`.
fn alive(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Waits (up to `secs`) until no process holds `marker`; kills any left
/// (by pid) before failing, so a failing test leaves nothing behind.
#[track_caller]
fn assert_all_gone(marker: &str, secs: u64) {
    let left = poll_until(secs, || alive(marker), Vec::is_empty);
    for pid in &left {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    assert!(left.is_empty(), "processes left running: {left:?}");
}

/// A counter or gauge from `/metrics`.
fn metric(server: &Server, line_start: &str) -> String {
    let m = http_get(&server.addr, "/metrics");
    m.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{m}"))
}

/// A shell opens and echoes through the host (the well-behaved client).
async fn shell_round_trip(server: &Server, shell: &str) -> Duration {
    let t = Instant::now();
    let (mut ws, st) = tokio::time::timeout(Duration::from_secs(10), open(&server.url(shell)))
        .await
        .expect("the shell opens in time");
    assert_eq!(st["status"], "Success", "{st}");
    stdin(&mut ws, "echo round-$((20+22))\n").await;
    let out = tokio::time::timeout(Duration::from_secs(10), read_until_ws(&mut ws, "round-42"))
        .await
        .expect("the echo comes back in time");
    assert!(out.contains("round-42"), "{out}");
    t.elapsed()
}

use crate::util::read_until as read_until_ws;

#[tokio::test(flavor = "multi_thread")]
async fn the_command_cap_refuses_at_once_with_429_and_counts() {
    let d = Dir::new();
    let server = Server::start(&d, &["--max-commands", "2"]);
    let m = marker(1);
    let mut running: Vec<TcpStream> = (0..2)
        .map(|_| post(&server.addr, &format!("sleep {m}"), 30))
        .collect();
    for s in &mut running {
        let head = read_until(s, "contentStart", 10);
        assert!(head.contains("200 OK"), "{head}");
    }
    let t = Instant::now();
    let mut third = post(&server.addr, "echo never", 30);
    let refused = read_until(&mut third, "}", 10);
    assert!(t.elapsed() < Duration::from_secs(2), "refused at once");
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    let body = &refused[refused.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body.trim()).expect(body);
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["reason"], "TooManyCommands");
    assert_eq!(v["code"], 429);
    assert_eq!(metric(&server, "termtrail_commands_running "), "2");
    assert_eq!(metric(&server, "termtrail_commands_refused_total "), "1");
    assert_eq!(metric(&server, "termtrail_commands_total "), "2");
    // Commands do not take shell slots: a shell opens and echoes meanwhile.
    shell_round_trip(&server, "beside").await;
    assert!(http_get(&server.addr, "/healthz").contains("ok"));
    // The clients leave: their commands end and free their slots.
    drop(running);
    assert_all_gone(&m, 5);
    let free = poll_until(
        5,
        || metric(&server, "termtrail_commands_running "),
        |v| v == "0",
    );
    assert_eq!(free, "0");
    let mut again = post(&server.addr, "echo after-$((1+1))", 30);
    let out = read_until(&mut again, "contentStop", 10);
    assert!(out.contains("after-2"), "{out}");
    assert!(
        out.contains(r#""exitCode":0,"status":"COMPLETED""#),
        "{out}"
    );
}

#[test]
fn the_timeout_holds_when_the_command_closes_its_output() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let m = marker(2);
    let t = Instant::now();
    let mut s = post(&server.addr, &format!("exec >/dev/null 2>&1; sleep {m}"), 2);
    let out = read_until(&mut s, "contentStop", 15);
    let took = t.elapsed();
    assert!(
        out.contains(r#""contentStop":{"exitCode":124,"status":"TIMED_OUT"}"#),
        "{out}"
    );
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    assert_all_gone(&m, 3);
    assert_eq!(
        metric(
            &server,
            "termtrail_commands_killed_total{reason=\"timeout\"} "
        ),
        "1"
    );
}

#[test]
fn setsid_and_double_forked_descendants_die_at_the_timeout() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let m = marker(3);
    // One escapes into a new session, one double-forks with its output
    // closed; the command itself waits in the foreground.
    let cmd =
        format!("(setsid sleep 1{m} &); (exec >/dev/null 2>&1; (sleep 2{m} &) &); sleep 3{m}");
    let mut s = post(&server.addr, &cmd, 2);
    let started = read_until(&mut s, "contentStart", 10);
    assert!(started.contains("200 OK"), "{started}");
    let seen = poll_until(5, || alive(&format!("^sleep [123]{m}")), |v| v.len() == 3);
    assert_eq!(seen.len(), 3, "all three sleeps started: {seen:?}");
    let out = read_until(&mut s, "contentStop", 15);
    assert!(out.contains(r#""status":"TIMED_OUT""#), "{out}");
    assert_all_gone(&m, 3);
}

#[test]
fn a_command_is_waited_for_until_its_descendants_exit() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    // The background child closed the output pipes: only waiting on the
    // processes, not on the pipes, sees it.
    let t = Instant::now();
    let mut s = post(
        &server.addr,
        "(exec >/dev/null 2>&1; setsid sleep 1.5) & echo early",
        20,
    );
    let out = read_until(&mut s, "contentStop", 15);
    assert!(out.contains("early"), "{out}");
    assert!(
        out.contains(r#""contentStop":{"exitCode":0,"status":"COMPLETED"}"#),
        "{out}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn a_client_that_leaves_ends_the_command_and_the_recording_says_so() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let m = marker(4);
    let mut s = post(
        &server.addr,
        &format!("(setsid sleep 1{m} &); echo started; sleep 2{m}"),
        300,
    );
    let out = read_until(&mut s, "started", 10);
    assert!(out.contains("started"), "{out}");
    poll_until(5, || alive(&format!("^sleep [12]{m}")), |v| v.len() == 2);
    drop(s);
    assert_all_gone(&m, 5);
    let recs = poll_until(10, || server.recordings(), |r| r.len() == 1);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let v = verified(&d, &recs[0], "client disconnected; command killed");
    assert!(
        v.stdout
            .contains("interrupted (client disconnected; command killed)"),
        "{v:?}"
    );
    assert_eq!(
        metric(
            &server,
            "termtrail_commands_killed_total{reason=\"client_gone\"} "
        ),
        "1"
    );
}

#[test]
fn sigterm_kills_running_commands_and_the_host_exits_promptly() {
    let d = Dir::new();
    let mut server = Server::start(&d, &[]);
    let m = marker(5);
    let mut clients: Vec<TcpStream> = (1..=2)
        .map(|i| {
            post(
                &server.addr,
                &format!("(setsid sleep {i}1{m} &); echo up; sleep {i}2{m}"),
                3600,
            )
        })
        .collect();
    for c in &mut clients {
        let out = read_until(c, "up", 10);
        assert!(out.contains("up"), "{out}");
    }
    poll_until(5, || alive(&m), |v| v.len() >= 4);
    let t = Instant::now();
    server.stop();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the host took {took:?} to exit"
    );
    assert_all_gone(&m, 3);
    // The clients' streams ended without a contentStop.
    for c in &mut clients {
        let rest = read_until(c, "contentStop", 2);
        assert!(!rest.contains("contentStop"), "{rest}");
    }
    let recs = server.recordings();
    assert_eq!(recs.len(), 2, "{recs:?}");
    for r in &recs {
        let v = verified(&d, r, "shell host shut down; command killed");
        assert!(
            v.stdout.contains("shell host shut down; command killed"),
            "{v:?}"
        );
    }
    let store = server.store.to_string_lossy().into_owned();
    let v = d.run(&["verify", "--store", &store]);
    assert_eq!(v.code, 0, "{v:?}");
}

/// Descriptors the process holds now.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_flood_stays_bounded_and_shells_still_start() {
    let d = Dir::new();
    let server = Server::start(&d, &["--max-commands", "4"]);
    let pid = server.child.id();
    let m = marker(6);
    shell_round_trip(&server, "before-flood").await;
    let idle_fds = fds(pid);
    let idle_rss = crate::serve::rss_kib(pid);
    let calls: Vec<TcpStream> = (0..80)
        .map(|_| {
            let s = post(&server.addr, &format!("sleep {m}"), 30);
            std::thread::sleep(Duration::from_millis(5));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // At most 4 commands run (each: supervisor, sh, sleep).
    let procs = alive(&format!("^sleep {m}"));
    assert!(procs.len() <= 4, "{procs:?}");
    assert_eq!(metric(&server, "termtrail_commands_running "), "4");
    let refused: u64 = metric(&server, "termtrail_commands_refused_total ")
        .parse()
        .unwrap();
    assert_eq!(refused, 76);
    // The clients' sockets (80) and 4 × 3 pipes, not hundreds more.
    let flood_fds = fds(pid);
    assert!(
        flood_fds < idle_fds + 80 + 4 * 3 + 20,
        "{idle_fds} -> {flood_fds}"
    );
    let flood_rss = crate::serve::rss_kib(pid);
    assert!(
        flood_rss < idle_rss + 32 * 1024,
        "RSS {idle_rss} KiB -> {flood_rss} KiB"
    );
    let took = shell_round_trip(&server, "during-flood").await;
    assert!(took < Duration::from_secs(5), "echo round trip {took:?}");
    assert!(http_get(&server.addr, "/healthz").contains("ok"));
    drop(calls);
    assert_all_gone(&m, 5);
    // What is left is the second shell's (its PTY and recording).
    let after = poll_until(5, || fds(pid), |&n| n <= idle_fds + 10);
    assert!(
        after <= idle_fds + 10,
        "{idle_fds} -> {after} after the flood"
    );
}

#[test]
fn the_proxy_caps_forwarded_commands_too() {
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let upstream = format!("ws://{}", up.addr);
    let px = Server::start_kind(
        &pd,
        "proxy",
        &["--upstream", &upstream, "--max-commands", "1"],
    );
    let m = marker(7);
    let mut first = post(&px.addr, &format!("echo up; sleep {m}"), 4);
    let out = read_until(&mut first, "up", 10);
    assert!(out.contains("200 OK"), "{out}");
    let mut second = post(&px.addr, "echo never", 30);
    let refused = read_until(&mut second, "}", 10);
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.contains(r#""reason":"TooManyCommands""#),
        "{refused}"
    );
    assert_eq!(metric(&px, "termtrail_commands_refused_total "), "1");
    assert_eq!(metric(&px, "termtrail_commands_running "), "1");
    // The upstream times the first out; the proxy's slot is free again.
    let out = read_until(&mut first, "contentStop", 15);
    assert!(out.contains(r#""status":"TIMED_OUT""#), "{out}");
    assert_all_gone(&m, 3);
    let free = poll_until(
        5,
        || metric(&px, "termtrail_commands_running "),
        |v| v == "0",
    );
    assert_eq!(free, "0");
    let mut third = post(&px.addr, "echo again", 30);
    let out = read_until(&mut third, "contentStop", 10);
    assert!(out.contains("again"), "{out}");
}

#[test]
fn the_timeout_holds_for_a_client_that_stops_reading() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let m = marker(8);
    // Endless output nobody reads: the pipes fill and `yes` blocks.
    let stalled = post(&server.addr, &format!("yes {m}"), 2);
    poll_until(5, || alive(&format!("^yes {m}")), |v| !v.is_empty());
    assert_all_gone(&m, 8);
    assert_eq!(
        metric(
            &server,
            "termtrail_commands_killed_total{reason=\"timeout\"} "
        ),
        "1"
    );
    assert!(http_get(&server.addr, "/healthz").contains("ok"));
    drop(stalled);
    let free = poll_until(
        15,
        || metric(&server, "termtrail_commands_running "),
        |v| v == "0",
    );
    assert_eq!(free, "0");
}

/// Through the proxy, a client that leaves makes the proxy drop its
/// upstream call; the upstream host then kills the command (its whole
/// tree), and both recordings say why (docs/protocol.md §9.8).
#[test]
fn a_client_leaving_the_proxy_ends_the_command_upstream() {
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let upstream = format!("ws://{}", up.addr);
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &upstream]);
    let m = marker(9);
    let mut s = post(&px.addr, &format!("echo started; sleep 3{m}"), 300);
    let out = read_until(&mut s, "started", 10);
    assert!(out.contains("started"), "{out}");
    poll_until(5, || alive(&format!("^sleep 3{m}")), |v| v.len() == 1);
    drop(s);
    assert_all_gone(&m, 10);
    let recs = poll_until(10, || px.recordings(), |r| r.len() == 1);
    let v = verified(&pd, &recs[0], "upstream call was abandoned");
    assert!(v.stdout.contains("client disconnected"), "{v:?}");
    let recs = poll_until(10, || up.recordings(), |r| r.len() == 1);
    let v = verified(&d, &recs[0], "client disconnected; command killed");
    assert!(v.stdout.contains("command killed"), "{v:?}");
}
