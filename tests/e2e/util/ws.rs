//! The hosts' WebSocket client side (tokio-tungstenite): connect with the
//! AgentCore session header, read frames, statuses, output and the close
//! frame, send stdin; and a plain HTTP GET for /healthz and /metrics.

use std::io::{Read, Write};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The AgentCore session id the tests use.
pub const SESSION: &str = "e2e-session-0123456789-0123456789-abcdef";

/// A client connection to a host.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects to `url` with the AgentCore session header set to `session`.
pub async fn connect(
    url: &str,
    session: &str,
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert(
        "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id",
        session.parse().unwrap(),
    );
    tokio_tungstenite::connect_async(req).await
}

/// The next binary frame as (channel, payload), pings skipped; None when
/// the connection ends (within 10 s).
pub async fn next_frame(ws: &mut Ws) -> Option<(u8, Vec<u8>)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("frame within 10 s")
        {
            Some(Ok(Message::Binary(b))) => return Some((b[0], b[1..].to_vec())),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
        }
    }
}

/// The next status frame (channel 3), skipping output.
pub async fn status(ws: &mut Ws) -> Value {
    loop {
        let (ch, payload) = next_frame(ws).await.expect("a status frame");
        if ch == 3 {
            return serde_json::from_slice(&payload).unwrap();
        }
    }
}

/// The next status that is not a connection confirmation (an exit status).
pub async fn exit_status(ws: &mut Ws) -> Value {
    loop {
        let st = status(ws).await;
        if st["metadata"].get("shellId").is_none() {
            return st;
        }
    }
}

/// Opens (or re-attaches to) a shell and reads its connection confirmation.
pub async fn open(url: &str) -> (Ws, Value) {
    let (mut ws, _) = connect(url, SESSION).await.unwrap();
    let confirmation = status(&mut ws).await;
    (ws, confirmation)
}

/// Reads output until `needle` appears; returns everything read.
pub async fn read_until(ws: &mut Ws, needle: &str) -> String {
    let needle_bytes = needle.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    // Only the new bytes (and the needle's length before them) are searched:
    // megabytes of output arrive in thousands of frames.
    let mut from = 0;
    while !needle.is_empty()
        && !out[from..]
            .windows(needle_bytes.len())
            .any(|w| w == needle_bytes)
    {
        from = out.len().saturating_sub(needle_bytes.len());
        match next_frame(ws).await {
            Some((1, b)) => out.extend(b),
            Some(_) => {}
            None => panic!(
                "closed before {needle:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `text` as stdin (channel 0).
pub async fn stdin(ws: &mut Ws, text: &str) {
    let mut m = vec![0u8];
    m.extend_from_slice(text.as_bytes());
    ws.send(Message::Binary(m.into())).await.unwrap();
}

/// The close frame (code, reason) that ends the connection.
pub async fn close_of(ws: &mut Ws) -> Option<(u16, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("close within 10 s")
        {
            Some(Ok(Message::Close(Some(f)))) => {
                return Some((u16::from(f.code), f.reason.to_string()));
            }
            Some(Ok(Message::Close(None))) | None => return None,
            Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// A plain HTTP/1.1 GET.
pub fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
