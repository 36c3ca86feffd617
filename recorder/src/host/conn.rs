//! One client connection: confirmation, replay, then relaying frames both
//! ways until the client leaves, the shell exits, or the client is kicked.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use termtrail_format::event::TermSize;
use termtrail_format::seal::EndReason;
use tokio::sync::mpsc;

use super::attachment::{Kick, ToClient};
use super::backend::Shell;
use super::lograte::{self, Kind};
use super::metrics::{Metrics, add};
use crate::protocol::{
    CLOSE_TAKEN_OVER, Channel, MAX_FRAME, ProtocolError, decode, encode, parse_resize,
    status_connected, status_exit,
};

/// Close codes (RFC 6455 §7.4.1, plus the protocol's 4000).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_UNSUPPORTED: u16 = 1003;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
/// "Try again later" (RFC 6455 IANA registry): the way to the shell is lost
/// for now. (1014 "bad gateway" would fit better, but common WebSocket
/// libraries, tungstenite among them, reject it as invalid.)
const CLOSE_TRY_AGAIN: u16 = 1013;

/// A client that does not take a message within this long is closed with
/// 1008 (its output stays buffered for a re-attach).
const SEND_TIMEOUT: std::time::Duration = super::attachment::SLOW_CLIENT;
/// How long a close frame may wait for a client that does not read (a slow
/// one that reads again gets it; a gone one costs no more than this).
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The same for a client let go for slowness: it is behind by what sits in
/// the TCP buffers (megabytes), and the last message the connection
/// accepted goes out only ahead of the close frame.
const SLOW_CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a client connection needs of its host.
pub(crate) struct ClientCtx<'a> {
    /// The host's counters.
    pub(crate) metrics: &'a Metrics,
    /// Resizes beyond this are reduced to it (`--max-terminal-size`).
    pub(crate) max_terminal: TermSize,
}

/// How a send to the client went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Taken.
    Done,
    /// Not taken within [`SEND_TIMEOUT`]: the client does not read.
    /// `unsent` bytes of the output at its end were never accepted by the
    /// connection (what was accepted goes out before a close frame).
    Slow {
        /// Bytes at the end of the output not accepted.
        unsent: usize,
    },
    /// The connection failed (the client is gone).
    Gone,
}

/// Sends one message: accepted into the connection's buffer, then flushed,
/// within [`SEND_TIMEOUT`] in all.
async fn send_message(ws: &mut WebSocket, msg: Message, len: usize) -> Sent {
    let deadline = tokio::time::Instant::now() + SEND_TIMEOUT;
    match tokio::time::timeout_at(deadline, ws.feed(msg)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Sent::Gone,
        Err(_) => return Sent::Slow { unsent: len },
    }
    match tokio::time::timeout_at(deadline, ws.flush()).await {
        Ok(Ok(())) => Sent::Done,
        Ok(Err(_)) => Sent::Gone,
        Err(_) => Sent::Slow { unsent: 0 },
    }
}

async fn try_send(ws: &mut WebSocket, channel: Channel, payload: &[u8]) -> Sent {
    let msg = Message::Binary(encode(channel, payload).into());
    send_message(ws, msg, payload.len()).await
}

async fn send(ws: &mut WebSocket, channel: Channel, payload: &[u8]) -> bool {
    try_send(ws, channel, payload).await == Sent::Done
}

/// Sends output in frames within the 64 KiB limit; when the client stops
/// taking it, how much of its end was never accepted.
async fn send_output(ws: &mut WebSocket, bytes: &[u8]) -> Sent {
    let mut left = bytes.len();
    for part in bytes.chunks(MAX_FRAME - 1) {
        match try_send(ws, Channel::Stdout, part).await {
            Sent::Done => left -= part.len(),
            Sent::Slow { unsent } => {
                return Sent::Slow {
                    unsent: left - part.len() + unsent,
                };
            }
            Sent::Gone => return Sent::Gone,
        }
    }
    Sent::Done
}

/// Sends a close frame, waiting at most [`CLOSE_TIMEOUT`] for the client to
/// take it.
async fn close(ws: &mut WebSocket, code: u16, reason: &str) {
    close_within(ws, code, reason, CLOSE_TIMEOUT).await;
}

/// Sends a close frame (after what the connection already accepted),
/// waiting at most `wait` for the client to take them.
async fn close_within(ws: &mut WebSocket, code: u16, reason: &str, wait: std::time::Duration) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: close_reason(reason).into(),
    }));
    let _ = tokio::time::timeout(wait, ws.send(frame)).await;
}

/// Closes a client that took no output for [`SEND_TIMEOUT`] with 1008 and
/// detaches it (its output is kept for a re-attach).
async fn close_slow(
    ws: &mut WebSocket,
    metrics: &Metrics,
    shell: &Arc<dyn Shell>,
    id: u64,
    unsent: &[u8],
    queue: &mut mpsc::Receiver<ToClient>,
) {
    add(&metrics.slow_clients, 1);
    if lograte::allow(Kind::Connection) {
        tracing::info!(session = %shell.session_id(), shell = %shell.shell_id(), client = id, "client too slow: closing it (1008)");
    }
    shell.att().detach(id);
    requeue(shell, unsent, queue);
    close_within(ws, CLOSE_POLICY, SLOW_REASON, SLOW_CLOSE_TIMEOUT).await;
}

/// Output still queued for a client that is being let go for slowness goes
/// back to the shell's replay buffer: its re-attach gets it. (What was
/// already written to the connection is not sent again.)
fn requeue(shell: &Arc<dyn Shell>, first: &[u8], queue: &mut mpsc::Receiver<ToClient>) {
    // Closed first: output the shell was about to hand this client goes to
    // the buffer after what is requeued here, not into a queue nobody reads.
    queue.close();
    let mut unsent = first.to_vec();
    while let Ok(msg) = queue.try_recv() {
        if let ToClient::Stdout(bytes) = msg {
            unsent.extend_from_slice(&bytes);
        }
    }
    shell.att().requeue(&unsent);
}

/// The reason of the slow client's close frame.
const SLOW_REASON: &str = "client too slow: output buffered for re-attach";

/// Most bytes of a close frame's reason: a control frame carries at most
/// 125 bytes (RFC 6455 §5.5), two of which are the code.
const MAX_CLOSE_REASON: usize = 123;

/// `reason` cut to [`MAX_CLOSE_REASON`] bytes on a character boundary,
/// with `…` when cut (a parse error can quote a whole frame).
fn close_reason(reason: &str) -> String {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason.to_string();
    }
    let mut end = MAX_CLOSE_REASON - '…'.len_utf8();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

/// Serves client `id` of `shell` on `ws` until it leaves, the shell exits,
/// or it is kicked; `on_attach` is told once it is attached whether it took
/// the shell over from another client.
pub(crate) async fn serve_client(
    mut ws: WebSocket,
    ctx: ClientCtx<'_>,
    shell: Arc<dyn Shell>,
    id: u64,
    reconnected: bool,
    on_attach: impl FnOnce(bool),
) {
    let metrics = ctx.metrics;
    let mut a = shell.att().attach(id, reconnected);
    on_attach(a.took_over);
    let shell_id = shell.shell_id().to_string();
    if !send(
        &mut ws,
        Channel::Status,
        &status_connected(&shell_id, reconnected, None),
    )
    .await
    {
        shell.att().detach(id);
        return;
    }
    // What the shell printed while no client was attached: a re-attach's
    // replay, or a new shell's first output (printed before its first
    // client came). Only a re-attach ends it with the second confirmation.
    add(&metrics.bytes_out, a.replay.len() as u64);
    let ok = send_output(&mut ws, &a.replay).await == Sent::Done
        && (!reconnected
            || send(
                &mut ws,
                Channel::Status,
                &status_connected(&shell_id, true, Some(a.dropped)),
            )
            .await);
    if !ok {
        shell.att().detach(id);
        return;
    }
    if let Some((code, signal)) = a.exited {
        let _ = send(&mut ws, Channel::Status, &status_exit(code, signal)).await;
        close(&mut ws, CLOSE_NORMAL, "shell exited").await;
        return;
    }
    loop {
        tokio::select! {
            // A kick is sent before the old client's queue is dropped, so
            // checking it first never mistakes a takeover for a lost queue.
            biased;
            why = &mut a.kick => {
                let (code, reason) = match why {
                    Ok(Kick::TakenOver) => (CLOSE_TAKEN_OVER, "another client attached to this shell"),
                    Ok(Kick::TooSlow) => {
                        add(&metrics.slow_clients, 1);
                        requeue(&shell, &[], &mut a.rx);
                        (CLOSE_POLICY, SLOW_REASON)
                    }
                    Ok(Kick::UpstreamLost) => (CLOSE_TRY_AGAIN, "upstream host unreachable; the shell may still run there: re-attach later"),
                    Ok(Kick::Shutdown) | Err(_) => (CLOSE_GOING_AWAY, "shell host shutting down or shell ended"),
                };
                if lograte::allow(Kind::Connection) {
                    tracing::info!(session = %shell.session_id(), shell = %shell.shell_id(), client = id, reason, "closing client");
                }
                let wait = if code == CLOSE_POLICY { SLOW_CLOSE_TIMEOUT } else { CLOSE_TIMEOUT };
                close_within(&mut ws, code, reason, wait).await;
                // Already detached by whoever kicked it.
                return;
            }
            msg = ws.recv() => {
                if !from_client(&mut ws, &ctx, &shell, id, msg).await {
                    break;
                }
            }
            out = a.rx.recv() => match out {
                Some(ToClient::Stdout(bytes)) => {
                    add(&metrics.bytes_out, bytes.len() as u64);
                    match send_output(&mut ws, &bytes).await {
                        Sent::Done => {}
                        Sent::Slow { unsent } => {
                            let unsent = &bytes[bytes.len() - unsent..];
                            return close_slow(&mut ws, metrics, &shell, id, unsent, &mut a.rx).await;
                        }
                        Sent::Gone => break,
                    }
                }
                Some(ToClient::Status(status)) => {
                    match try_send(&mut ws, Channel::Status, &status).await {
                        Sent::Done => {}
                        Sent::Slow { .. } => return close_slow(&mut ws, metrics, &shell, id, &[], &mut a.rx).await,
                        Sent::Gone => break,
                    }
                }
                Some(ToClient::Exit(code, signal)) => {
                    let _ = send(&mut ws, Channel::Status, &status_exit(code, signal)).await;
                    close(&mut ws, CLOSE_NORMAL, "shell exited").await;
                    return;
                }
                None => break,
            },
        }
    }
    shell.att().detach(id);
}

/// Handles what client `id` sent (`msg` from [`WebSocket::recv`]); false
/// when the connection ends (the client left, or sent something that closes
/// it, which it is told).
async fn from_client(
    ws: &mut WebSocket,
    ctx: &ClientCtx<'_>,
    shell: &Arc<dyn Shell>,
    id: u64,
    msg: Option<Result<Message, axum::Error>>,
) -> bool {
    let msg = match msg {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            let text = e.to_string();
            if text.contains("without closing handshake") {
                // The client went away (network loss, killed).
                return false;
            }
            // The WebSocket layer rejected a frame (over the size limit, or
            // malformed): say why before hanging up.
            add(&ctx.metrics.protocol_errors, 1);
            let code = if text.contains("too long") || text.contains("Space limit") {
                CLOSE_TOO_BIG
            } else {
                CLOSE_PROTOCOL
            };
            if lograte::allow(Kind::BadRequest) {
                tracing::warn!(session = %shell.session_id(), shell = %shell.shell_id(), client = id, error = %close_reason(&text), "bad frame; closing this connection");
            }
            close(ws, code, &text).await;
            return false;
        }
        None => return false,
    };
    let metrics = ctx.metrics;
    match msg {
        Message::Binary(b) => {
            if let Err(e) = handle_frame(ws, ctx, shell, &b).await {
                add(&metrics.protocol_errors, 1);
                if lograte::allow(Kind::BadRequest) {
                    tracing::warn!(session = %shell.session_id(), shell = %shell.shell_id(), client = id, error = %close_reason(&e.to_string()), "protocol error; closing this connection");
                }
                let code = match e {
                    ProtocolError::Text => CLOSE_UNSUPPORTED,
                    ProtocolError::TooLarge(_) => CLOSE_TOO_BIG,
                    _ => CLOSE_POLICY,
                };
                close(ws, code, &e.to_string()).await;
                return false;
            }
            true
        }
        Message::Text(_) => {
            add(&metrics.protocol_errors, 1);
            close(ws, CLOSE_UNSUPPORTED, &ProtocolError::Text.to_string()).await;
            false
        }
        Message::Close(_) => {
            // RFC 6455 §5.5.1: a Close is answered with a Close (the
            // WebSocket layer queued the echo; flushing sends it).
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.flush()).await;
            false
        }
        Message::Ping(_) | Message::Pong(_) => true,
    }
}

async fn handle_frame(
    ws: &mut WebSocket,
    ctx: &ClientCtx<'_>,
    shell: &Arc<dyn Shell>,
    msg: &[u8],
) -> Result<(), ProtocolError> {
    let (channel, payload) = decode(msg)?;
    match channel {
        Channel::Stdin => {
            add(&ctx.metrics.bytes_in, payload.len() as u64);
            shell.input(payload).await;
        }
        Channel::Resize => {
            let asked = parse_resize(payload)?;
            let size = clamp(asked, ctx.max_terminal);
            if size != asked {
                add(&ctx.metrics.resizes_clamped, 1);
                if lograte::allow(Kind::Limit) {
                    tracing::info!(session = %shell.session_id(), shell = %shell.shell_id(), cols = asked.cols, rows = asked.rows, max_cols = ctx.max_terminal.cols, max_rows = ctx.max_terminal.rows, "resize reduced to --max-terminal-size");
                }
            }
            shell.resize(size).await;
        }
        Channel::Heartbeat => {
            let _ = send(ws, Channel::Heartbeat, &[]).await;
        }
        Channel::Close => {
            Arc::clone(shell).end(EndReason::Closed);
        }
        Channel::Stdout | Channel::Stderr | Channel::Status => {
            return Err(ProtocolError::Direction(channel.byte()));
        }
        Channel::Unknown(_) => {}
    }
    Ok(())
}

/// `asked` reduced to `max` in each dimension.
fn clamp(asked: TermSize, max: TermSize) -> TermSize {
    TermSize {
        cols: asked.cols.min(max.cols),
        rows: asked.rows.min(max.rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizes_are_reduced_to_the_maximum_in_each_dimension() {
        let max = TermSize {
            cols: 1000,
            rows: 1000,
        };
        let t = |cols, rows| TermSize { cols, rows };
        assert_eq!(clamp(t(65535, 65535), max), t(1000, 1000));
        assert_eq!(clamp(t(80, 65535), max), t(80, 1000));
        assert_eq!(clamp(t(1000, 24), max), t(1000, 24));
        assert_eq!(clamp(t(1, 1), max), t(1, 1));
    }

    #[test]
    fn close_reasons_fit_a_control_frame_and_stay_utf8() {
        assert_eq!(close_reason("shell exited"), "shell exited");
        let exact = "x".repeat(MAX_CLOSE_REASON);
        assert_eq!(close_reason(&exact), exact);
        for long in ["y".repeat(65_078), "é".repeat(100), "a€".repeat(60)] {
            let cut = close_reason(&long);
            assert!(cut.len() <= MAX_CLOSE_REASON, "{} bytes", cut.len());
            assert!(cut.ends_with('…'));
            assert!(long.starts_with(cut.trim_end_matches('…')));
        }
    }
}
