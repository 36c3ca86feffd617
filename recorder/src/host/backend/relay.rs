//! The relay backend (`proxy`): each shell lives on an upstream shell host,
//! reached through an upstream [`Codec`] (AgentCore or terminado); the relay
//! passes frames both ways and records them.
//!
//! One [`RelayShell`] per (session, shell): its upstream task owns the
//! upstream WebSocket. When the upstream link drops it re-attaches with the
//! same ids; the host's replay is compared with the last 256 KiB already
//! received, and only what is new is recorded and passed on (a host that
//! replays output the relay already saw is not recorded twice). Bytes the
//! host reports as dropped are recorded as a gap marker. When the client
//! drops, the upstream shell and the recording carry on until the client
//! comes back or the grace period ends (the host's timers).
//!
//! The relay cannot see the remote terminal's echo flag, so passwords are
//! kept out of the recording by the prompt rule instead
//! ([`crate::secrets::PromptWatch`]): input typed after output that ends
//! with a password prompt is sent upstream but not recorded, up to the next
//! line break, and a marker says how many bytes were withheld.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use termtrail_format::event::{EventData, TermSize};
use termtrail_format::seal::EndReason;
use termtrail_format::utf8::Utf8Stitcher;
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::super::attachment::Attachment;
use super::super::budget::{OutputBudget, Spent, over};
use super::{
    BoxFut, BoxFuture, CommandCall, CommandError, Events, NewShell, OnEnd, OpenError, Shell,
    ShellBackend,
};
use crate::header::{RecordingInfo, Source};
use crate::protocol::{CLOSE_TAKEN_OVER, MAX_FRAME};
use crate::recording::Recording;
use crate::secrets::{PromptRules, PromptWatch};
use crate::upstream::replay::Replay;
use crate::upstream::{Codec, ConnectError, Incoming, Upstream, Ws, connect};

/// Upstream reconnect attempts before the shell is given up.
const UPSTREAM_RETRIES: u32 = 6;
/// The relay keeps its upstream link alive on its own (client heartbeats
/// are answered by the host, not forwarded): a keep-alive this often.
const UPSTREAM_HEARTBEAT: Duration = Duration::from_secs(30);

/// Shells on an upstream host (`proxy`).
pub struct RelayBackend {
    upstream: Upstream,
    prompts: PromptRules,
    /// Most bytes of output a shell's recording takes (0: no bound).
    max_output: u64,
}

impl RelayBackend {
    /// Shells on `upstream`; input after a prompt matching `prompts` is
    /// withheld from the recording; a shell whose output passes
    /// `max_output` bytes is ended (0: no bound).
    pub fn new(upstream: Upstream, prompts: PromptRules, max_output: u64) -> RelayBackend {
        RelayBackend {
            upstream,
            prompts,
            max_output,
        }
    }
}

impl ShellBackend for RelayBackend {
    fn source(&self) -> Source {
        Source::Proxy
    }

    fn describe(&self, info: RecordingInfo) -> RecordingInfo {
        info.with_upstream(&crate::upstream::redacted_url(&self.upstream.url))
    }

    fn open(&self, new: NewShell) -> BoxFuture<'_, Result<Arc<dyn Shell>, OpenError>> {
        Box::pin(async move {
            let watch = self.prompts.watch();
            let budget = OutputBudget::new(self.max_output);
            let shell = RelayShell::start(self.upstream.clone(), new, (watch, budget)).await?;
            Ok(shell as Arc<dyn Shell>)
        })
    }

    fn runtime(&self, _requested: &str) -> String {
        self.upstream.runtime.clone()
    }

    fn no_commands(&self) -> Option<String> {
        let codec = self.upstream.codec();
        (!codec.has_command_call()).then(|| {
            format!(
                "{} has no one-shot command call; open a shell instead",
                codec.name()
            )
        })
    }

    fn command(
        &self,
        call: CommandCall,
        recording: Recording,
    ) -> BoxFuture<'_, Result<Events, CommandError>> {
        Box::pin(super::command::forward(&self.upstream, call, recording))
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

/// A shell reached through the relay.
pub struct RelayShell {
    session_id: String,
    shell_id: String,
    att: Attachment,
    recording: Recording,
    up_tx: mpsc::Sender<Up>,
    input_stitch: AsyncMutex<Utf8Stitcher>,
    /// Password prompts seen in the output, and input withheld after them.
    prompts: std::sync::Mutex<PromptWatch>,
    /// The upstream shell existed before this relay opened it.
    resumed: bool,
    /// Its `--max-recording-bytes`.
    budget: std::sync::Mutex<OutputBudget>,
}

impl RelayShell {
    /// Connects upstream (errors map to the client's HTTP answer), then
    /// starts relaying. The shell's `on_end` runs once the upstream shell is
    /// gone and the recording is sealed.
    async fn start(
        up: Upstream,
        new: NewShell,
        (prompts, budget): (PromptWatch, OutputBudget),
    ) -> Result<Arc<RelayShell>, OpenError> {
        let NewShell {
            session,
            shell,
            recording,
            on_end,
        } = new;
        let mut ws = connect(&up, &session, &shell).await?;
        // The host's confirmation (and, when the shell already existed
        // there, its replay) is read before the client is attached, so that
        // the client is told `reconnected` as the host said it.
        let opening = match Opening::read(&mut ws, up.codec()).await {
            Ok(o) => o,
            Err(e) => {
                let _ = ws.close(None).await;
                return Err(OpenError::Upstream(e));
            }
        };
        // Upstream accepted: now the shell exists, and so does its recording.
        let recording = match recording() {
            Ok(r) => r,
            Err(why) => {
                let _ = ws.close(None).await;
                return Err(OpenError::Recording(why));
            }
        };
        let (up_tx, up_rx) = mpsc::channel(256);
        let me = Arc::new(RelayShell {
            session_id: session,
            shell_id: shell,
            att: Attachment::new(recording.clone()),
            recording,
            up_tx,
            input_stitch: AsyncMutex::new(Utf8Stitcher::new()),
            prompts: std::sync::Mutex::new(prompts),
            resumed: opening.resumed,
            budget: std::sync::Mutex::new(budget),
        });
        let mut link = Link {
            codec: up.codec(),
            replay: Replay::default(),
            stitch: Utf8Stitcher::new(),
            size: TermSize::DEFAULT,
            requested_end: None,
        };
        if opening.resumed {
            let label = "the upstream shell already existed (opened before this proxy attached \
                         to it): the output it kept meanwhile follows";
            me.recording.record(EventData::Marker(label.into())).await;
        }
        // The replay goes to the recording and into the attachment's buffer,
        // which the client receives as a re-attach's replay.
        let mut ended = None;
        for msg in &opening.messages {
            if let Incoming::Confirmed { dropped, .. } = link.codec.decode(msg)
                && dropped > 0
            {
                me.att.add_dropped(dropped);
            }
            if let Some(end) = me.incoming(msg, &mut link).await {
                ended = Some(end);
                break;
            }
        }
        let task = Arc::clone(&me);
        tokio::spawn(async move {
            let end = match ended {
                Some(end) => {
                    let _ = ws.close(None).await;
                    end
                }
                None => task.relay(up, ws, up_rx, link).await,
            };
            // Boxed as well: sealing runs once, at the end.
            Box::pin(task.run(end, on_end)).await
        });
        Ok(me)
    }

    async fn run(self: Arc<Self>, end: EndReason, on_end: OnEnd) {
        // An answer still being withheld when the shell ends gets its marker.
        let unfinished = self.prompt_watch().finish();
        if let Some(marker) = unfinished {
            self.recording.record(EventData::Marker(marker)).await;
        }
        if let Err(e) = self.recording.finish(end).await {
            tracing::error!(session = %self.session_id, shell = %self.shell_id, error = %e, "sealing the recording failed");
        }
        on_end(self);
    }

    /// Relays until the upstream shell ends; returns the end reason.
    async fn relay(
        &self,
        up: Upstream,
        mut ws: Ws,
        mut rx: mpsc::Receiver<Up>,
        mut link: Link,
    ) -> EndReason {
        loop {
            let outcome = self.relay_link(&mut ws, &mut rx, &mut link).await;
            let why = match outcome {
                // When the relay ended the shell, that is the reason, not
                // the exit status the host answered with.
                Relay::Ended(end) => return link.requested_end.take().unwrap_or(end),
                Relay::Lost(why) => why,
            };
            self.att
                .mark(format!("upstream connection lost ({why}); re-attaching"));
            tracing::warn!(session = %self.session_id, shell = %self.shell_id, why, "upstream lost; re-attaching");
            // Boxed: connecting (TLS, signing, the upgrade) is a 12 KiB
            // future, which would otherwise sit inline in every shell's
            // relay task for its whole life (bench/shells.py's memory per
            // idle shell).
            ws = match Box::pin(self.reconnect(&up)).await {
                Ok(ws) => ws,
                Err(end) => return end,
            };
            if link.codec.replays_at_once() {
                link.replay.expect();
            }
            let _ = ws.send(link.codec.resize(link.size)).await;
        }
    }

    /// Re-attaches upstream with backoff; the end reason when it gives up.
    async fn reconnect(&self, up: &Upstream) -> Result<Ws, EndReason> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match connect(up, &self.session_id, &self.shell_id).await {
                Ok(ws) => return Ok(ws),
                Err(e) if attempt >= UPSTREAM_RETRIES => {
                    // The shell may well be alive upstream: the client is
                    // not told it exited, but that the way to it is lost
                    // (close 1013, try again later), so that it may re-attach later.
                    let detail = format!(
                        "upstream unreachable after {attempt} attempts ({e}); the upstream shell may still be running"
                    );
                    self.att.lost();
                    return Err(EndReason::Interrupted { detail });
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
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
        self.prompt_watch().output(fresh);
        let (spent, max) = {
            let mut b = self.budget.lock().unwrap_or_else(|p| p.into_inner());
            (b.spend(fresh.len()), b.max())
        };
        // Past the bound nothing more is recorded (the shell ends).
        let ready = if spent == Spent::Over {
            Vec::new()
        } else {
            stitch.push(fresh)
        };
        if !ready.is_empty() {
            self.recording.record(EventData::Output(ready)).await;
        }
        if spent == Spent::JustOver {
            // After the bytes that passed the bound: their marker.
            let end = over(&self.att, &self.session_id, &self.shell_id, max).await;
            let tx = self.up_tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(Up::Close(end)).await;
            });
        }
        self.att.deliver(fresh).await;
    }

    /// A message from the client side, sent on upstream in its protocol.
    async fn upstream_msg(&self, ws: &mut Ws, msg: Option<Up>, link: &mut Link) -> Option<Relay> {
        let frame = match msg? {
            Up::Stdin(b) => link.codec.stdin(&b),
            Up::Resize(s) => {
                link.size = s;
                link.codec.resize(s)
            }
            Up::Detach(end) => {
                let _ = ws.close(None).await;
                return Some(Relay::Ended(end));
            }
            Up::Close(end) => match link.codec.close() {
                // The host answers with the shell's exit status.
                Some(frame) => {
                    link.requested_end = Some(end);
                    frame
                }
                // No way to end the shell upstream: leave it.
                None => {
                    let _ = ws.close(None).await;
                    self.att.exit(0, None);
                    return Some(Relay::Ended(end));
                }
            },
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
        // A message read while joining output that was not output: the
        // next to handle, in order.
        let mut next: Option<Frame> = None;
        loop {
            let frame = match next.take() {
                Some(frame) => frame,
                None => tokio::select! {
                    msg = rx.recv() => {
                        if let Some(r) = self.upstream_msg(ws, msg, link).await {
                            return r;
                        }
                        continue;
                    }
                    _ = beat.tick() => {
                        if let Err(e) = ws.send(link.codec.heartbeat()).await {
                            return Relay::Lost(e.to_string());
                        }
                        continue;
                    }
                    frame = ws.next() => frame,
                },
            };
            let ended = match frame {
                Some(Ok(Message::Close(Some(f))))
                    if f.code == CloseCode::from(CLOSE_TAKEN_OVER) =>
                {
                    self.finish_output(&mut link.stitch).await;
                    self.att.exit(255, None);
                    Some(EndReason::Interrupted {
                        detail: "another client attached to the upstream shell directly".into(),
                    })
                }
                Some(Ok(Message::Close(f))) => return Relay::Lost(format!("closed: {f:?}")),
                Some(Ok(m)) => match joined_output(&m, ws, link, &mut next) {
                    Some(joined) => {
                        self.output(&joined, &mut link.replay, &mut link.stitch)
                            .await;
                        None
                    }
                    None => self.incoming(&m, link).await,
                },
                Some(Err(e)) => return Relay::Lost(e.to_string()),
                None => return Relay::Lost("connection ended".into()),
            };
            if let Some(end) = ended {
                return Relay::Ended(end);
            }
        }
    }

    /// One message from upstream; the end reason when it ends the shell.
    async fn incoming(&self, msg: &Message, link: &mut Link) -> Option<EndReason> {
        match link.codec.decode(msg) {
            Incoming::Output(bytes) => {
                self.output(&bytes, &mut link.replay, &mut link.stitch)
                    .await;
                // A protocol that replays in one message has replayed now.
                if link.codec.replays_at_once() && link.replay.in_replay() {
                    let fresh = link.replay.done();
                    self.emit(&fresh, &mut link.stitch).await;
                }
            }
            Incoming::Confirmed {
                reconnected,
                dropped,
            } => {
                // A confirmation during a replay ends it (the host's second
                // one, with bytesDropped).
                if link.replay.in_replay() {
                    let fresh = link.replay.done();
                    self.emit(&fresh, &mut link.stitch).await;
                } else if reconnected {
                    link.replay.start();
                }
                if dropped > 0 {
                    self.att.mark(format!(
                        "gap: the upstream host dropped {dropped} bytes of output"
                    ));
                }
            }
            Incoming::Exited { code, signal } => {
                self.finish_output(&mut link.stitch).await;
                self.recording.record(EventData::Exit(code)).await;
                self.att.exit(code, signal);
                return Some(EndReason::Exited { code });
            }
            Incoming::HostClosed => {
                self.finish_output(&mut link.stitch).await;
                self.att.exit(255, None);
                return Some(EndReason::Interrupted {
                    detail: "the upstream host closed the shell".into(),
                });
            }
            Incoming::Gone => {
                self.finish_output(&mut link.stitch).await;
                self.att.mark(format!(
                    "{} ended the terminal (it reports no exit code)",
                    link.codec.name()
                ));
                self.att.exit(0, None);
                return Some(EndReason::Closed);
            }
            Incoming::Nothing => {}
        }
        None
    }

    fn prompt_watch(&self) -> std::sync::MutexGuard<'_, PromptWatch> {
        self.prompts.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn finish_output(&self, stitch: &mut Utf8Stitcher) {
        let rest = stitch.finish();
        if !rest.is_empty() {
            self.recording.record(EventData::Output(rest)).await;
        }
    }
}

enum Relay {
    Ended(EndReason),
    Lost(String),
}

/// One read from the upstream WebSocket.
type Frame = Option<Result<Message, WsError>>;

/// Most bytes of output joined into one piece (one client frame's worth).
const JOIN_BYTES: usize = MAX_FRAME - 1;

/// When `first` is live output and more output is already waiting on `ws`
/// (the relay fell behind a flood), all of it joined, up to [`JOIN_BYTES`]:
/// it is then recorded as one event and sent to the client as one frame,
/// rather than paying both per upstream message. Only what is readable
/// without waiting is taken, so nothing is delayed. The first message that
/// is not output is left in `next`, to be handled after the joined output.
/// None when nothing more waits, `first` is not output, or a replay is
/// under way (a replay is handled message by message).
fn joined_output(
    first: &Message,
    ws: &mut Ws,
    link: &Link,
    next: &mut Option<Frame>,
) -> Option<Vec<u8>> {
    if !link.replay.is_live() {
        return None;
    }
    let Incoming::Output(bytes) = link.codec.decode(first) else {
        return None;
    };
    let mut joined: Option<Vec<u8>> = None;
    while joined.as_ref().map_or(bytes.len(), Vec::len) < JOIN_BYTES {
        let Some(frame) = ws.next().now_or_never() else {
            break;
        };
        if let Some(Ok(m)) = &frame
            && let Incoming::Output(more) = link.codec.decode(m)
        {
            joined
                .get_or_insert_with(|| bytes.to_vec())
                .extend_from_slice(&more);
            continue;
        }
        *next = Some(frame);
        break;
    }
    joined
}

/// What the relay keeps across upstream connections of one shell.
struct Link {
    codec: &'static dyn Codec,
    replay: Replay,
    stitch: Utf8Stitcher,
    size: TermSize,
    /// Why the relay asked the host to end the shell, if it did.
    requested_end: Option<EndReason>,
}

impl Shell for RelayShell {
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
            // The relay has no PTY to ask about echo: input after a password
            // prompt is withheld up to the next line break.
            let filtered = self.prompt_watch().input(bytes);
            if let Some(marker) = filtered.marker {
                self.recording.record(EventData::Marker(marker)).await;
            }
            if !filtered.record.is_empty() {
                let ready = self.input_stitch.lock().await.push(&filtered.record);
                if !ready.is_empty() {
                    self.recording.record(EventData::Input(ready)).await;
                }
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
        // Output paused for want of a reader must flow, so the end is seen.
        self.att.release();
        let tx = self.up_tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(Up::Close(end)).await;
        });
    }
    fn shutdown(self: Arc<Self>) {
        self.att.release();
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
    fn resumed(&self) -> bool {
        self.resumed
    }
}

/// How long the relay waits for the host's confirmation of a new upstream
/// connection, and then for the end of its replay.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// A replay longer than this is not waited for: the rest arrives as live
/// output (a host keeps 256 KiB).
const MAX_OPENING_REPLAY: usize = 1 << 20;

/// What the host said when the relay first connected: whether the shell
/// already existed there, and the messages read so far (its confirmation
/// and replay), for the relay to process in order.
struct Opening {
    resumed: bool,
    messages: Vec<Message>,
}

impl Opening {
    /// Reads the host's confirmation, and when it is a re-attach, its
    /// replay up to the second confirmation. A protocol without
    /// confirmations (terminado) reads nothing.
    async fn read(ws: &mut Ws, codec: &'static dyn Codec) -> Result<Opening, ConnectError> {
        let mut opening = Opening {
            resumed: false,
            messages: Vec::new(),
        };
        if codec.replays_at_once() {
            return Ok(opening);
        }
        let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
        let mut replayed = 0;
        let mut confirmations = 0;
        loop {
            let next = tokio::time::timeout_at(deadline, ws.next()).await;
            let msg = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(ConnectError::Unreachable(e.to_string())),
                Ok(None) => {
                    return Err(ConnectError::Unreachable(
                        "the upstream host closed the connection before confirming it".into(),
                    ));
                }
                // A host that never confirms: carry on with what came.
                Err(_) if confirmations > 0 => return Ok(opening),
                Err(_) => {
                    return Err(ConnectError::Unreachable(format!(
                        "the upstream host did not confirm the shell within {CONFIRM_TIMEOUT:?}"
                    )));
                }
            };
            let incoming = codec.decode(&msg);
            let done = match &incoming {
                Incoming::Confirmed { reconnected, .. } => {
                    confirmations += 1;
                    if confirmations == 1 {
                        opening.resumed = *reconnected;
                    }
                    // A new shell has no replay; a re-attach's ends with the
                    // second confirmation.
                    !opening.resumed || confirmations > 1
                }
                Incoming::Output(b) => {
                    replayed += b.len();
                    confirmations == 0 || replayed > MAX_OPENING_REPLAY
                }
                Incoming::Nothing => false,
                _ => true,
            };
            opening.messages.push(msg);
            if done {
                return Ok(opening);
            }
        }
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
