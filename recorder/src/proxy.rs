//! `termtrail proxy`: clients speak the AgentCore shell protocol to the
//! proxy; the proxy speaks to an upstream shell host — AgentCore's protocol
//! (termtrail `serve`, or a runtime endpoint) or terminado's — relays both
//! ways and records.
//!
//! One [`ProxiedShell`] per (session, shell): its upstream task owns the
//! upstream WebSocket. When the upstream link drops it re-attaches with the
//! same ids; the host's replay is compared with the last 256 KiB already
//! received, and only what is new is recorded and passed on (a host that
//! replays output the proxy already saw is not recorded twice). Bytes the
//! host reports as dropped are recorded as a gap marker. When the client
//! drops, the upstream shell and the recording carry on until the client
//! comes back or the grace period ends (the serve module's sweeper).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use termtrail_format::event::{EventData, TermSize};
use termtrail_format::seal::EndReason;
use termtrail_format::utf8::Utf8Stitcher;
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::protocol::{
    CLOSE_TAKEN_OVER, Channel, SESSION_HEADER, decode, encode, exit_code_of, resize_payload,
};
use crate::recording::Recording;
use crate::serve::attachment::Attachment;
use crate::serve::{BoxFut, Target};

/// How much recent upstream output is kept to recognise a replay.
const TAIL_BYTES: usize = 256 << 10;
/// Upstream reconnect attempts before the shell is given up.
const UPSTREAM_RETRIES: u32 = 6;
/// The proxy keeps its upstream link alive on its own (client heartbeats
/// are answered by the proxy, not forwarded): a HEARTBEAT message (a
/// WebSocket ping for terminado) this often.
const UPSTREAM_HEARTBEAT: Duration = Duration::from_secs(30);

/// The upstream's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// AgentCore shell protocol (termtrail serve, AgentCore runtimes).
    AgentCore,
    /// terminado (Jupyter's terminal server), NamedTermManager URLs.
    Terminado,
}

/// Where the upstream is.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Protocol spoken upstream.
    pub protocol: UpstreamProtocol,
    /// AgentCore: the shell endpoint (`ws://h/runtimes/<arn>/ws/shells`);
    /// terminado: a URL with `{shell}` where the terminal name goes (or the
    /// name is appended).
    pub url: String,
    /// TLS client configuration for `wss://` upstreams.
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// SigV4 signing of the upgrade (a real AgentCore runtime).
    pub signer: Option<crate::sigv4::Signer>,
}

impl Upstream {
    fn url_for(&self, shell: &str) -> String {
        match self.protocol {
            UpstreamProtocol::AgentCore => crate::client::shell_url(&self.url, shell),
            UpstreamProtocol::Terminado => {
                // terminado names are \w+.
                let name: String = shell
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                if self.url.contains("{shell}") {
                    self.url.replace("{shell}", &name)
                } else {
                    format!("{}/{name}", self.url.trim_end_matches('/'))
                }
            }
        }
    }
}

/// `(host:port, runtime path segment)` of an AgentCore shell endpoint
/// `ws://host:port/runtimes/<arn>/ws/shells`, for the command call.
pub fn command_target(endpoint: &str) -> Option<(String, String)> {
    let rest = endpoint
        .strip_prefix("ws://")
        .or_else(|| endpoint.strip_prefix("wss://"))?;
    let (authority, path) = rest.split_once('/')?;
    let arn = path.strip_prefix("runtimes/")?.split('/').next()?;
    Some((authority.to_string(), arn.to_string()))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why the upstream could not be reached on the first connect.
#[derive(Debug)]
pub enum ConnectError {
    /// The upstream answered with an HTTP status (its body attached).
    Refused(u16, String),
    /// The upstream could not be reached.
    Unreachable(String),
}

async fn connect(up: &Upstream, session: &str, shell: &str) -> Result<Ws, ConnectError> {
    let url = up.url_for(shell);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Unreachable(format!("bad upstream URL {url}: {e}")))?;
    if up.protocol == UpstreamProtocol::AgentCore {
        let v = session
            .parse()
            .map_err(|_| ConnectError::Unreachable("bad session id".into()))?;
        req.headers_mut().insert(SESSION_HEADER, v);
    }
    if let Some(signer) = &up.signer {
        signer
            .sign(&mut req, std::time::SystemTime::now())
            .await
            .map_err(|e| ConnectError::Unreachable(format!("cannot sign the upgrade: {e}")))?;
    }
    // Small buffers: a proxy holds hundreds of mostly idle upstream links.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(crate::protocol::WS_OUTPUT_READ_BUFFER)
        .write_buffer_size(crate::protocol::WS_WRITE_BUFFER)
        .max_message_size(Some(1 << 20));
    match crate::tls::connect_ws(req, Some(config), up.tls.as_ref()).await {
        Ok(ws) => Ok(ws),
        Err(WsError::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            Err(ConnectError::Refused(resp.status().as_u16(), body))
        }
        Err(e) => Err(ConnectError::Unreachable(format!("{url}: {e}"))),
    }
}

enum Up {
    Stdin(Vec<u8>),
    Resize(TermSize),
    /// End the upstream shell (idle timeout, grace period over).
    Close(EndReason),
    /// Let go of the upstream shell without ending it (proxy shutdown): the
    /// host keeps it for its own grace period, and a client re-attaching
    /// through a restarted proxy finds it again (recorded in a new file).
    Detach(EndReason),
}

/// A shell reached through the proxy.
pub struct ProxiedShell {
    session_id: String,
    shell_id: String,
    att: Attachment,
    recording: Recording,
    up_tx: mpsc::Sender<Up>,
    input_stitch: AsyncMutex<Utf8Stitcher>,
}

impl ProxiedShell {
    /// Connects upstream (errors map to the client's HTTP answer), then
    /// starts relaying. `on_end` runs once the upstream shell is gone and the
    /// recording is sealed.
    pub async fn start(
        up: Upstream,
        session: String,
        shell: String,
        recording: Recording,
        on_end: impl FnOnce(Arc<ProxiedShell>) + Send + 'static,
    ) -> Result<Arc<ProxiedShell>, ConnectError> {
        let ws = connect(&up, &session, &shell).await?;
        let (up_tx, up_rx) = mpsc::channel(256);
        let me = Arc::new(ProxiedShell {
            session_id: session,
            shell_id: shell,
            att: Attachment::new(recording.clone()),
            recording,
            up_tx,
            input_stitch: AsyncMutex::new(Utf8Stitcher::new()),
        });
        let task = Arc::clone(&me);
        tokio::spawn(async move {
            let end = task.relay(up, ws, up_rx).await;
            if let Err(e) = task.recording.finish(end).await {
                tracing::error!(session = %task.session_id, shell = %task.shell_id, error = %e, "sealing the recording failed");
            }
            on_end(task);
        });
        Ok(me)
    }

    /// Relays until the upstream shell ends; returns the end reason.
    async fn relay(&self, up: Upstream, mut ws: Ws, mut rx: mpsc::Receiver<Up>) -> EndReason {
        let mut link = Link {
            terminado: up.protocol == UpstreamProtocol::Terminado,
            replay: Replay::default(),
            stitch: Utf8Stitcher::new(),
            size: TermSize::DEFAULT,
            requested_end: None,
        };
        loop {
            let outcome = self.relay_link(&mut ws, &mut rx, &mut link).await;
            let why = match outcome {
                // When the proxy ended the shell, that is the reason, not
                // the exit status the host answered with.
                Relay::Ended(end) => return link.requested_end.take().unwrap_or(end),
                Relay::Lost(why) => why,
            };
            self.att
                .mark(format!("upstream connection lost ({why}); re-attaching"));
            tracing::warn!(session = %self.session_id, shell = %self.shell_id, why, "upstream lost; re-attaching");
            let mut delay = Duration::from_millis(200);
            let mut attempt = 0;
            ws = loop {
                attempt += 1;
                match connect(&up, &self.session_id, &self.shell_id).await {
                    Ok(ws) => break ws,
                    Err(e) if attempt >= UPSTREAM_RETRIES => {
                        let detail =
                            format!("upstream unreachable after {attempt} attempts: {e:?}");
                        self.att.exit(255, None);
                        return EndReason::Interrupted { detail };
                    }
                    Err(_) => {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            };
            if link.terminado {
                link.replay.expect();
            }
            let _ = ws.send(link.resize_frame(link.size)).await;
        }
    }

    /// Output from upstream: dedupe a replay, record, pass on.
    async fn output(&self, bytes: &[u8], replay: &mut Replay, stitch: &mut Utf8Stitcher) {
        let fresh = replay.filter(bytes);
        self.emit(&fresh, stitch).await;
    }

    /// Records and passes on output that is new.
    async fn emit(&self, fresh: &[u8], stitch: &mut Utf8Stitcher) {
        if fresh.is_empty() {
            return;
        }
        let ready = stitch.push(fresh);
        if !ready.is_empty() {
            self.recording.record(EventData::Output(ready)).await;
        }
        self.att.deliver(fresh).await;
    }

    /// A message from the client side, sent on upstream in its protocol.
    async fn upstream_msg(&self, ws: &mut Ws, msg: Option<Up>, link: &mut Link) -> Option<Relay> {
        let frame = match msg? {
            Up::Stdin(b) if link.terminado => Message::Text(
                json!(["stdin", String::from_utf8_lossy(&b)])
                    .to_string()
                    .into(),
            ),
            Up::Stdin(b) => Message::Binary(encode(Channel::Stdin, &b).into()),
            Up::Resize(s) => {
                link.size = s;
                link.resize_frame(s)
            }
            Up::Detach(end) => {
                let _ = ws.close(None).await;
                return Some(Relay::Ended(end));
            }
            Up::Close(end) if link.terminado => {
                // terminado has no "end this terminal" message: leave it.
                let _ = ws.close(None).await;
                self.att.exit(0, None);
                return Some(Relay::Ended(end));
            }
            Up::Close(end) => {
                // The host answers with the shell's exit status.
                link.requested_end = Some(end);
                Message::Binary(encode(Channel::Close, &[]).into())
            }
        };
        match ws.send(frame).await {
            Ok(()) => None,
            Err(e) => Some(Relay::Lost(e.to_string())),
        }
    }

    /// Relays over one upstream connection until the shell ends or the
    /// connection is lost.
    async fn relay_link(&self, ws: &mut Ws, rx: &mut mpsc::Receiver<Up>, link: &mut Link) -> Relay {
        let mut beat = heartbeat();
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    if let Some(r) = self.upstream_msg(ws, msg, link).await {
                        return r;
                    }
                }
                _ = beat.tick() => {
                    let frame = if link.terminado {
                        Message::Ping(Vec::new().into())
                    } else {
                        Message::Binary(encode(Channel::Heartbeat, &[]).into())
                    };
                    if let Err(e) = ws.send(frame).await {
                        return Relay::Lost(e.to_string());
                    }
                }
                frame = ws.next() => {
                    let ended = match frame {
                        Some(Ok(Message::Binary(b))) if !link.terminado => self.agentcore_msg(&b, link).await,
                        Some(Ok(Message::Text(t))) if link.terminado => self.terminado_msg(t.as_str(), link).await,
                        Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::from(CLOSE_TAKEN_OVER) => {
                            self.finish_output(&mut link.stitch).await;
                            self.att.exit(255, None);
                            Some(EndReason::Interrupted {
                                detail: "another client attached to the upstream shell directly".into(),
                            })
                        }
                        Some(Ok(Message::Close(f))) => return Relay::Lost(format!("closed: {f:?}")),
                        Some(Ok(_)) => None,
                        Some(Err(e)) => return Relay::Lost(e.to_string()),
                        None => return Relay::Lost("connection ended".into()),
                    };
                    if let Some(end) = ended {
                        return Relay::Ended(end);
                    }
                }
            }
        }
    }

    /// One AgentCore message from upstream; the end reason when it ends
    /// the shell.
    async fn agentcore_msg(&self, b: &[u8], link: &mut Link) -> Option<EndReason> {
        let (channel, payload) = decode(b).ok()?;
        match channel {
            Channel::Stdout | Channel::Stderr => {
                self.output(payload, &mut link.replay, &mut link.stitch)
                    .await
            }
            Channel::Status => {
                let v: Value = serde_json::from_slice(payload).unwrap_or_default();
                let meta = &v["metadata"];
                if meta.get("shellId").is_none() {
                    let code = exit_code_of(payload).unwrap_or(255);
                    let signal = v
                        .pointer("/details/causes")
                        .and_then(Value::as_array)
                        .and_then(|c| {
                            c.iter()
                                .find(|c| c["reason"] == "Signal")
                                .and_then(|c| c["message"].as_str()?.parse().ok())
                        });
                    self.finish_output(&mut link.stitch).await;
                    self.recording.record(EventData::Exit(code)).await;
                    self.att.exit(code, signal);
                    return Some(EndReason::Exited { code });
                }
                // A confirmation during a replay ends it (the host's second
                // one, with bytesDropped).
                if link.replay.in_replay() {
                    let fresh = link.replay.done();
                    self.emit(&fresh, &mut link.stitch).await;
                } else if meta["reconnected"] == true {
                    link.replay.start();
                }
                let dropped = meta
                    .get("bytesDropped")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if dropped > 0 {
                    self.att.mark(format!(
                        "gap: the upstream host dropped {dropped} bytes of output"
                    ));
                }
            }
            Channel::Close => {
                self.finish_output(&mut link.stitch).await;
                self.att.exit(255, None);
                return Some(EndReason::Interrupted {
                    detail: "the upstream host closed the shell".into(),
                });
            }
            _ => {}
        }
        None
    }

    /// One terminado message from upstream; the end reason when it ends
    /// the terminal.
    async fn terminado_msg(&self, t: &str, link: &mut Link) -> Option<EndReason> {
        let v: Value = serde_json::from_str(t).unwrap_or_default();
        match v.get(0).and_then(Value::as_str) {
            Some("stdout") => {
                let text = v.get(1).and_then(Value::as_str).unwrap_or_default();
                self.output(text.as_bytes(), &mut link.replay, &mut link.stitch)
                    .await;
                // terminado replays in one stdout message.
                if link.replay.in_replay() {
                    let fresh = link.replay.done();
                    self.emit(&fresh, &mut link.stitch).await;
                }
                None
            }
            Some("disconnect") => {
                self.finish_output(&mut link.stitch).await;
                self.att
                    .mark("terminado ended the terminal (it reports no exit code)".into());
                self.att.exit(0, None);
                Some(EndReason::Closed)
            }
            _ => None,
        }
    }

    async fn finish_output(&self, stitch: &mut Utf8Stitcher) {
        let rest = stitch.finish();
        if !rest.is_empty() {
            self.recording.record(EventData::Output(rest)).await;
        }
    }
}

fn terminado_size(s: TermSize) -> String {
    // terminado orders rows, cols.
    json!(["set_size", s.rows, s.cols]).to_string()
}

enum Relay {
    Ended(EndReason),
    Lost(String),
}

/// What the relay keeps across upstream connections of one shell.
struct Link {
    terminado: bool,
    replay: Replay,
    stitch: Utf8Stitcher,
    size: TermSize,
    /// Why the proxy asked the host to end the shell, if it did.
    requested_end: Option<EndReason>,
}

impl Link {
    fn resize_frame(&self, size: TermSize) -> Message {
        if self.terminado {
            Message::Text(terminado_size(size).into())
        } else {
            Message::Binary(encode(Channel::Resize, &resize_payload(size)).into())
        }
    }
}

/// Recognises a replay of output already received. The last bytes received
/// are kept; a replay is held until it is complete, then only the part not
/// seen before is released.
#[derive(Default)]
struct Replay {
    tail: VecDeque<u8>,
    /// Some while a replay is being received.
    pending: Option<Vec<u8>>,
    /// The next output starts a replay (terminado re-attach).
    expecting: bool,
}

impl Replay {
    /// After an upstream re-attach: the host's first output is a replay.
    fn expect(&mut self) {
        self.expecting = true;
    }

    fn in_replay(&self) -> bool {
        self.pending.is_some()
    }

    /// A replay starts (the host confirmed a re-attach).
    fn start(&mut self) {
        self.pending = Some(Vec::new());
        self.expecting = false;
    }

    /// Live bytes pass through (and are remembered); replay bytes are held.
    fn filter(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.expecting {
            self.start();
        }
        if let Some(p) = &mut self.pending {
            p.extend_from_slice(bytes);
            return Vec::new();
        }
        self.remember(bytes);
        bytes.to_vec()
    }

    /// The replay is complete: returns its part not seen before.
    fn done(&mut self) -> Vec<u8> {
        self.expecting = false;
        let Some(p) = self.pending.take() else {
            return Vec::new();
        };
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        let fresh = p[overlap(&tail, &p)..].to_vec();
        self.remember(&fresh);
        fresh
    }

    fn remember(&mut self, bytes: &[u8]) {
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
    }
}

/// Length of the longest suffix of `seen` that is a prefix of `replay`
/// (KMP over `replay ‖ sentinel ‖ seen`, linear time).
fn overlap(seen: &[u8], replay: &[u8]) -> usize {
    let pat: Vec<u16> = replay.iter().map(|&b| u16::from(b)).collect();
    let text = seen.iter().map(|&b| u16::from(b));
    let mut fail = vec![0usize; pat.len()];
    let mut k = 0;
    for i in 1..pat.len() {
        while k > 0 && pat[i] != pat[k] {
            k = fail[k - 1];
        }
        if pat[i] == pat[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut k = 0;
    for c in text {
        while k > 0 && (k == pat.len() || c != pat[k]) {
            k = fail[k - 1];
        }
        if k < pat.len() && c == pat[k] {
            k += 1;
        }
    }
    k
}

impl Target for ProxiedShell {
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn shell_id(&self) -> &str {
        &self.shell_id
    }
    fn att(&self) -> &Attachment {
        &self.att
    }
    fn input<'a>(&'a self, bytes: &'a [u8]) -> BoxFut<'a> {
        Box::pin(async move {
            self.att.touch();
            // The proxy has no PTY to ask about echo: input is recorded as
            // typed (password withholding comes with the access policy).
            let ready = self.input_stitch.lock().await.push(bytes);
            if !ready.is_empty() {
                self.recording.record(EventData::Input(ready)).await;
            }
            let _ = self.up_tx.send(Up::Stdin(bytes.to_vec())).await;
        })
    }
    fn resize(&self, size: TermSize) -> BoxFut<'_> {
        Box::pin(async move {
            self.att.touch();
            self.recording.record(EventData::Resize(size)).await;
            let _ = self.up_tx.send(Up::Resize(size)).await;
        })
    }
    fn end(self: Arc<Self>, end: EndReason) {
        let tx = self.up_tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(Up::Close(end)).await;
        });
    }
    fn shutdown(self: Arc<Self>) {
        let tx = self.up_tx.clone();
        tokio::spawn(async move {
            let end = EndReason::Interrupted {
                detail: "proxy shut down; the upstream shell was left running (detached)".into(),
            };
            let _ = tx.send(Up::Detach(end)).await;
        });
    }
    fn recording_path(&self) -> &std::path::Path {
        self.recording.path()
    }
}

fn heartbeat() -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(
        tokio::time::Instant::now() + UPSTREAM_HEARTBEAT,
        UPSTREAM_HEARTBEAT,
    );
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_finds_the_longest_seen_prefix() {
        assert_eq!(overlap(b"hello world", b"world and more"), 5);
        assert_eq!(overlap(b"abcabc", b"abcabcx"), 6);
        assert_eq!(overlap(b"xyz", b"new"), 0);
        assert_eq!(overlap(b"", b"new"), 0);
        assert_eq!(overlap(b"aaaa", b"aa"), 2);
        assert_eq!(overlap(b"abab", b"abab"), 4);
    }
}
