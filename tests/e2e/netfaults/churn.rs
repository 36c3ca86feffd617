//! Connection churn: 1,000 connect/disconnect cycles (times
//! `TERMTRAIL_FAULT_TRIALS`) against `serve` and against `proxy` in front
//! of it, each a raw WebSocket that attaches to one shell, reads its
//! confirmation (every fourth also its output) and goes: a clean close
//! (close frame, answer awaited), a plain drop (FIN, no close frame) or a
//! reset (RST). After 50 cycles of warm-up the hosts' descriptors, threads,
//! tokio tasks (`termtrail_runtime_alive_tasks` in /metrics) and resident
//! memory are taken; after the rest they must be back there, within the
//! tolerances docs/reliability.md (Network faults part) states.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Usage, trials, usage};
use crate::util::*;

const WARM_UP: u32 = 50;
const CYCLES: u32 = 1000;
/// Tolerances over the level after warm-up: descriptors and tasks exactly
/// back (a few in flight allowed), threads (tokio's blocking pool keeps
/// idle threads 10 s), resident memory.
const FD_TOLERANCE: u64 = 2;
const TASK_TOLERANCE: u64 = 2;
const THREAD_TOLERANCE: u64 = 4;
const RSS_TOLERANCE_KIB: u64 = 8 << 10;

/// One cycle against the shell at `url`, ended as `i` says.
async fn cycle(addr: &str, url: &str, i: u32) {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id",
        SESSION.parse().unwrap(),
    );
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
    let st = status(&mut ws).await;
    assert_eq!(st["status"], "Success", "cycle {i}: {st}");
    if i.is_multiple_of(4) {
        // The command's echo does not hold the number its output does.
        stdin(&mut ws, &format!("echo churn-$(({i}+1))\n")).await;
        read_until(&mut ws, &format!("churn-{}", i + 1)).await;
    }
    match i % 3 {
        0 => {
            ws.send(Message::Close(None)).await.unwrap();
            // The host answers the close; then the connection ends.
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
        }
        1 => drop(ws),
        _ => {
            if let MaybeTlsStream::Plain(s) = ws.get_ref() {
                s.set_zero_linger().unwrap();
            }
            drop(ws);
        }
    }
}

/// `termtrail_runtime_alive_tasks` of the host at `addr`.
fn tasks(addr: &str) -> u64 {
    let m = http_get(addr, "/metrics");
    m.lines()
        .find_map(|l| l.strip_prefix("termtrail_runtime_alive_tasks "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no termtrail_runtime_alive_tasks in {m}"))
}

/// A host's level: /proc's numbers and its tokio tasks.
#[derive(Debug, Clone, Copy)]
struct Level {
    usage: Usage,
    tasks: u64,
}

fn level(host: &Server) -> Level {
    Level {
        usage: usage(host.child.id()),
        tasks: tasks(&host.addr),
    }
}

fn back_to(base: Level, now: Level) -> bool {
    now.usage.fds <= base.usage.fds + FD_TOLERANCE
        && now.tasks <= base.tasks + TASK_TOLERANCE
        && now.usage.threads <= base.usage.threads + THREAD_TOLERANCE
        && now.usage.rss_kib <= base.usage.rss_kib + RSS_TOLERANCE_KIB
}

/// Churns against `front` (the host clients reach); every host in `hosts`
/// must be back at its level after warm-up.
async fn churn(front: &Server, hosts: &[&Server], name: &str) {
    let url = front.url("churn");
    for i in 0..WARM_UP {
        cycle(&front.addr, &url, i).await;
    }
    // Settled: the last drop noticed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base: Vec<Level> = hosts.iter().map(|h| level(h)).collect();
    let t = Instant::now();
    let cycles = CYCLES * trials();
    // The resident memory every 1,000 cycles: its curve (flat, or still
    // climbing) is in the output for the long run.
    let mut curve: Vec<Vec<u64>> = Vec::new();
    for i in WARM_UP..WARM_UP + cycles {
        cycle(&front.addr, &url, i).await;
        if (i + 1 - WARM_UP).is_multiple_of(1000) {
            curve.push(hosts.iter().map(|h| usage(h.child.id()).rss_kib).collect());
        }
    }
    let took = t.elapsed();
    eprintln!("netfaults churn {name}: RSS KiB every 1,000 cycles: {curve:?}");
    for (h, base) in hosts.iter().zip(&base) {
        let now = poll_until(15, || level(h), |now| back_to(*base, *now));
        eprintln!(
            "netfaults churn {name}: {cycles} cycles in {took:?}; pid {}: after warm-up {base:?}, after churn {now:?}",
            h.child.id()
        );
        assert!(
            back_to(*base, now),
            "{name}: pid {} not back to its level after {cycles} cycles: before {base:?}, after {now:?}",
            h.child.id()
        );
    }
    // The shell itself still answers.
    let (mut ws, _) = open(&url).await;
    stdin(&mut ws, "echo still-$((6*7))\n").await;
    read_until(&mut ws, "still-42").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_connections_to_serve_leave_nothing_behind() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    churn(&server, &[&server], "serve").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_connections_to_the_proxy_leave_nothing_behind() {
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let upstream = format!("ws://{}", up.addr);
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &upstream]);
    churn(&px, &[&px, &up], "proxy").await;
}
