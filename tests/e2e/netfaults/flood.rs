//! Slow clients and an output flood through `proxy` in front of `serve`:
//! a client that stops reading, one that reads 1 KiB/s (raw TCP, a small
//! receive buffer) and a shell printing `TERMTRAIL_FAULT_FLOOD_MB` MiB
//! (default 256) of base64 to a client that reads as fast as it can, all
//! at once. Measured: the resident memory of `serve` and `proxy` every
//! 200 ms against their idle level, and the echo round trip of a fourth
//! shell before and during the flood. The flood arrives whole and its
//! recordings (the proxy's and serve's) verify.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{RssSampler, cpu_ticks, flood_mb, median, usage};
use crate::util::*;

/// Bound on each host's resident memory over its idle level during the
/// flood and the slow clients (docs/reliability.md, Network faults).
const RSS_GROWTH_BOUND_KIB: u64 = 64 << 10;
/// Bounds on the calm shell's echo round trip during the flood.
const RT_MEDIAN_BOUND: Duration = Duration::from_millis(1500);
const RT_MAX_BOUND: Duration = Duration::from_secs(5);

/// One echo through the calm shell.
async fn echo(ws: &mut Ws, n: u32) -> Duration {
    let t = Instant::now();
    stdin(ws, &format!("echo rt-$(({n}+1))\n")).await;
    read_until(ws, &format!("rt-{}\r\n", n + 1)).await;
    t.elapsed()
}

/// Reads the flood to its end marker; returns the output bytes and how
/// long it took. Only the last bytes are kept.
async fn drink(ws: &mut Ws, marker: &str) -> (u64, Duration) {
    let t = Instant::now();
    let mut total = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("flood output within 30 s");
        match frame {
            Some(Ok(Message::Binary(b))) if b.first() == Some(&1) => {
                total += b.len() as u64 - 1;
                tail.extend_from_slice(&b[1..]);
                if tail.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                    return (total, t.elapsed());
                }
                let keep = tail.len().saturating_sub(marker.len());
                tail.drain(..keep);
            }
            Some(Ok(_)) => {}
            other => panic!("the flood ended after {total} bytes: {other:?}"),
        }
    }
}

/// A client that takes 1 KiB a second (raw bytes off a socket with a 4 KiB
/// receive buffer) from a shell printing base64 without end, counting in
/// `got`; stops when the task is aborted.
async fn trickle(px: &Server, got: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(px.addr.parse().unwrap()).await.unwrap();
    let mut req = px.url("trickle").into_client_request().unwrap();
    req.headers_mut().insert(
        "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id",
        SESSION.parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    status(&mut ws).await;
    stdin(&mut ws, "base64 -w 76 /dev/urandom\n").await;
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            let MaybeTlsStream::Plain(s) = ws.get_mut() else {
                return;
            };
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.fetch_add(n as u64, Ordering::SeqCst),
            };
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_and_slow_clients_through_the_proxy_keep_memory_bounded_and_others_served() {
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let upstream = format!("ws://{}", up.addr);
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &upstream]);
    let pids = [up.child.id(), px.child.id()];

    // The calm shell, and the echo round trip before anything else runs.
    let (mut calm, _) = open(&px.url("calm")).await;
    let mut before = Vec::new();
    for n in 0..7 {
        before.push(echo(&mut calm, n).await);
    }
    let before = median(before);
    let idle: Vec<u64> = pids.iter().map(|&p| usage(p).rss_kib).collect();
    let sampler = RssSampler::start(&pids);

    // A client that stops reading, and one that reads 1 KiB/s.
    let (mut stalled, _) = open(&px.url("stalled")).await;
    stdin(&mut stalled, "base64 -w 76 /dev/urandom\n").await;
    let trickled = Arc::new(AtomicU64::new(0));
    let trickler = trickle(&px, trickled.clone()).await;
    let cpu0: Vec<u64> = pids.iter().map(|&p| cpu_ticks(p)).collect();

    // The flood, read as fast as the client can.
    let mb = flood_mb();
    let (mut flood, _) = open(&px.url("flood")).await;
    stdin(
        &mut flood,
        &format!(
            "head -c $(({mb}*786432)) /dev/urandom | base64 -w 100; echo flood-$((6*7))-done\n"
        ),
    )
    .await;
    let drinker = tokio::spawn(async move {
        let r = drink(&mut flood, "flood-42-done").await;
        (flood, r)
    });
    let mut during = Vec::new();
    let mut n = 100;
    while !drinker.is_finished() {
        during.push(echo(&mut calm, n).await);
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut flood, (bytes, took)) = drinker.await.unwrap();
    let peaks = sampler.peaks();
    let samples = sampler.count();
    drop(sampler);
    trickler.abort();
    let trickled = trickled.load(Ordering::SeqCst);
    let cpu_s: Vec<f64> = pids
        .iter()
        .zip(&cpu0)
        .map(|(&p, c0)| (cpu_ticks(p) - c0) as f64 / 100.0)
        .collect();
    let rt_median = median(during.clone());
    let rt_max = during.iter().max().copied().unwrap_or_default();
    let rt_p99 = {
        let mut v = during.clone();
        v.sort();
        v.get(v.len() * 99 / 100).copied().unwrap_or_default()
    };
    eprintln!(
        "netfaults flood: {bytes} bytes through the proxy in {took:?} ({:.1} MB/s); \
         RSS KiB idle {idle:?} peak {peaks:?} ({samples} samples); echo round trip before {before:?}, \
         during median {rt_median:?} p99 {rt_p99:?} max {rt_max:?} ({} echoes); trickle client took {trickled} bytes; \
         CPU s of serve, proxy {cpu_s:?}",
        bytes as f64 / took.as_secs_f64() / 1e6,
        during.len()
    );
    // base64 of `mb` × 768 KiB: 1 MiB per MB and a newline per 100 bytes.
    let want = mb * 786_432 / 3 * 4 * 101 / 100;
    assert!(
        bytes >= want,
        "{bytes} bytes of the flood arrived, want {want}"
    );
    for ((pid, idle), peak) in pids.iter().zip(&idle).zip(&peaks) {
        assert!(
            *peak <= idle + RSS_GROWTH_BOUND_KIB,
            "pid {pid}: RSS peaked at {peak} KiB from {idle} KiB idle"
        );
    }
    assert!(
        rt_median <= RT_MEDIAN_BOUND && rt_max <= RT_MAX_BOUND,
        "the calm shell's echo round trip during the flood: median {rt_median:?}, max {rt_max:?} (before {before:?})"
    );

    // The shells end; the flood's recordings (proxy and serve) verify.
    stdin(&mut flood, "exit\n").await;
    exit_status(&mut flood).await;
    for (dir, host) in [(&pd, &px), (&d, &up)] {
        let rec = poll_until(
            10,
            || {
                host.recordings()
                    .into_iter()
                    .find(|p| p.to_string_lossy().contains("/flood/"))
            },
            Option::is_some,
        )
        .expect("the flood's recording");
        let v = verified(dir, &rec, "exited with code 0");
        assert_eq!(v.code, 0, "{v:?}");
    }
    drop(stalled);
}
