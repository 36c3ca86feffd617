//! Output throughput of a shell host or proxy, seen by a Rust client (run by
//! bench/shells.py; Python's websockets caps at ~27 MB/s on this machine).
//!
//!     cargo run --release -p termtrail-recorder --example ws_throughput -- ws://HOST:PORT MB

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, mb): (&str, u64) = (&args[1], args[2].parse().expect("MB"));
    let url = format!(
        "{base}/runtimes/bench/ws/shells?shellId=tp{}",
        std::process::id()
    );
    let mut req = url.as_str().into_client_request().expect("url");
    req.headers_mut().insert(
        "x-amzn-bedrock-agentcore-runtime-session-id",
        "bench-throughput-session-000".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    let cmd = format!(
        "stty -echo; head -c {} /dev/zero | tr '\\0' x; echo; echo END-OF-$((1+1))-BENCH\n",
        mb * 1_000_000
    );
    let mut msg = vec![0u8];
    msg.extend_from_slice(cmd.as_bytes());
    ws.send(Message::Binary(msg.into())).await.expect("send");
    let mut got = 0u64;
    let mut start = None;
    let mut tail: Vec<u8> = Vec::new();
    while let Some(m) = ws.next().await {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error after {got} bytes: {e}");
                break;
            }
        };
        if let Message::Close(f) = &m {
            eprintln!("closed after {got} bytes: {f:?}");
        }
        let Message::Binary(b) = m else { continue };
        if b.first() != Some(&1) {
            continue;
        }
        start.get_or_insert_with(Instant::now);
        got += b.len() as u64 - 1;
        tail.extend_from_slice(&b[1..]);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
        // The marker as printed; the echoed command line spells it differently.
        if tail.windows(16).any(|w| w == b"END-OF-2-BENCH\r\n") {
            break;
        }
    }
    let secs = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    assert!(got >= mb * 1_000_000, "only {got} bytes arrived");
    println!("{:.1}", got as f64 / secs / 1e6);
}
