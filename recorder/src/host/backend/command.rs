//! The one-shot command call's two implementations: run it here with
//! `sh -c` (no PTY) under its supervisor, or forward it to an AgentCore
//! upstream. Either streams the answer's events as they come and records
//! the output on the way.

use std::time::Duration;

use termtrail_format::event::EventData;
use termtrail_format::seal::EndReason;
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::mpsc;

use super::supervised::Supervised;
use super::{CommandCall, CommandError, Events};
use crate::command_wire::{
    CommandEvent, Decoder, EVENT_STREAM, Exception, Format, JSON_LINES, OutStream,
};
use crate::host::command_limit::CommandSlot;
use crate::host::metrics::Killed;
use crate::protocol::SESSION_HEADER;
use crate::recording::Recording;
use crate::upstream::Upstream;
use crate::upstream::agentcore::command_target;

/// Runs the call with `sh -c` here, under its supervisor
/// ([`crate::supervise`]): it ends when the command and every process it
/// started have exited, or its whole process tree is killed — at the
/// timeout (exit code 124), when the client goes away, or when the host
/// shuts down.
pub(super) async fn run_local(
    call: CommandCall,
    recording: Recording,
) -> Result<Events, CommandError> {
    let timeout = Duration::from_secs(call.timeout);
    let (proc, out, err) = match Supervised::spawn(call.slot.supervisor(), &call.command, timeout) {
        Ok(x) => x,
        Err(e) => {
            let _ = recording.finish(EndReason::Closed).await;
            return Err(CommandError::Internal(format!(
                "cannot start the command's supervisor: {e}"
            )));
        }
    };
    tracing::info!(session = %call.session, command = %call.id, "command started");
    let (tx, rx) = mpsc::channel::<CommandEvent>(64);
    let run = Running {
        proc,
        slot: call.slot,
        recording,
        tx,
        timeout,
    };
    tokio::spawn(run.drive(out, err));
    Ok(rx)
}

/// How long what is left of the output may take to reach the client once
/// the command's tree has exited (then the answer is cut off).
const DRAIN: Duration = Duration::from_secs(10);
/// The same for a command that was killed (timeout, shutdown).
const KILLED_DRAIN: Duration = Duration::from_secs(1);

/// A local command being run and streamed.
struct Running {
    proc: Supervised,
    slot: CommandSlot,
    recording: Recording,
    tx: mpsc::Sender<CommandEvent>,
    timeout: Duration,
}

impl Running {
    /// Streams the output to the client and the recording until the tree
    /// has exited, kills it when it must, then seals the recording and
    /// sends the exit code.
    async fn drive(self, out: ChildStdout, err: ChildStderr) {
        let Running {
            mut proc,
            mut slot,
            recording,
            tx,
            timeout,
        } = self;
        let _ = tx.send(CommandEvent::Start).await;
        let (out_tx, mut out_rx) = mpsc::channel::<(bool, Vec<u8>)>(16);
        let readers = [(false, Pipe::Out(out)), (true, Pipe::Err(err))]
            .map(|(is_err, pipe)| tokio::spawn(read_pipe(is_err, pipe, out_tx.clone())));
        drop(out_tx);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut killed: Option<Killed> = None;
        let mut status = None;
        let mut pipes_open = true;
        // A line read but not yet taken by the client: no more is read
        // meanwhile, so a client that does not read holds the command back.
        let mut pending: Option<CommandEvent> = None;
        let mut drained_by = None;
        while status.is_none() || pipes_open || pending.is_some() {
            let mut kill = None;
            tokio::select! {
                _ = &mut deadline, if killed.is_none() => kill = Some(Killed::Timeout),
                _ = tx.closed(), if killed.is_none() => kill = Some(Killed::ClientGone),
                _ = slot.shutdown(), if killed.is_none() => kill = Some(Killed::Shutdown),
                st = proc.wait(), if status.is_none() => {
                    status = Some(st);
                    // A killed command's client gets less time.
                    let drain = if killed.is_some() { KILLED_DRAIN } else { DRAIN };
                    drained_by = Some(tokio::time::Instant::now() + drain);
                }
                permit = tx.reserve(), if pending.is_some() => match permit {
                    Ok(p) => {
                        if let Some(event) = pending.take() {
                            p.send(event);
                        }
                    }
                    Err(_) => pending = None,
                },
                chunk = out_rx.recv(), if pipes_open && pending.is_none() => match chunk {
                    Some((is_err, bytes)) => {
                        recording.record(EventData::Output(bytes.clone())).await;
                        let stream = if is_err { OutStream::Stderr } else { OutStream::Stdout };
                        pending = Some(CommandEvent::Output(stream, bytes));
                    }
                    None => pipes_open = false,
                },
                _ = tokio::time::sleep_until(drained_by.unwrap_or_else(tokio::time::Instant::now)),
                    if drained_by.is_some() => break,
            }
            // A client whose connection the shutdown closes is not a
            // client that left.
            if kill == Some(Killed::ClientGone) && slot.stopping() {
                kill = Some(Killed::Shutdown);
            }
            if let Some(why) = kill {
                killed = Some(why);
                slot.killed(why);
                proc.kill();
            }
        }
        for r in readers {
            r.abort();
        }
        let (code, _) =
            crate::rec::exit_code(status.unwrap_or_else(|| {
                Err(std::io::Error::other("the supervisor was not waited for"))
            }));
        let (end, stop) = ending(killed, code, timeout);
        if let Some(CommandEvent::Stop { exit_code, .. }) = &stop {
            recording.record(EventData::Exit(*exit_code)).await;
        }
        let _ = recording.finish(end).await;
        if let Some(last) = stop {
            let _ = tokio::time::timeout(DRAIN, tx.send(last)).await;
        }
        drop(slot);
    }
}

/// The recording's end reason and, for a client still there, the last
/// event to send: the exit code, or (at shutdown) an exception saying the
/// command was killed.
fn ending(
    killed: Option<Killed>,
    code: i32,
    timeout: Duration,
) -> (EndReason, Option<CommandEvent>) {
    let interrupted = |detail: &str| EndReason::Interrupted {
        detail: detail.to_string(),
    };
    match killed {
        None => (
            EndReason::Exited { code },
            Some(CommandEvent::Stop {
                exit_code: code,
                timed_out: false,
            }),
        ),
        Some(Killed::Timeout) => (
            interrupted(&format!("command timed out after {} s", timeout.as_secs())),
            Some(CommandEvent::Stop {
                exit_code: 124,
                timed_out: true,
            }),
        ),
        Some(Killed::ClientGone) => (interrupted("client disconnected; command killed"), None),
        Some(Killed::Shutdown) => {
            let why = "shell host shut down; command killed";
            (
                interrupted(why),
                Some(CommandEvent::Failed(Exception::InternalServer, why.into())),
            )
        }
    }
}

/// Sends what `pipe` gives into `out` until its end.
async fn read_pipe(is_err: bool, mut pipe: Pipe, out: mpsc::Sender<(bool, Vec<u8>)>) {
    let mut buf = vec![0u8; 16 << 10];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 || out.send((is_err, buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
}

enum Pipe {
    Out(tokio::process::ChildStdout),
    Err(tokio::process::ChildStderr),
}

impl Pipe {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Pipe::Out(p) => p.read(buf).await,
            Pipe::Err(p) => p.read(buf).await,
        }
    }
}

/// The proxy's command call: the same request upstream, its answer (JSON
/// Lines from a termtrail upstream, which carry bytes exactly; the event
/// stream from AgentCore) read back into events, recorded and passed on.
pub(super) async fn forward(
    up: &Upstream,
    call: CommandCall,
    recording: Recording,
) -> Result<Events, CommandError> {
    use http_body_util::{BodyExt, Limited};
    let (authority, arn) = match command_target(&up.url) {
        Some(t) => t,
        None => {
            let shown = crate::upstream::redacted_url(&up.url);
            let why = format!("cannot derive the command URL from {shown}");
            return abandon(recording, why).await;
        }
    };
    let stream = match crate::tls::connect_stream(&authority, up.tls.as_ref()).await {
        Ok(s) => s,
        Err(e) => return abandon(recording, format!("{authority}: {e}")).await,
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => return abandon(recording, format!("{authority}: {e}")).await,
        };
    tokio::spawn(conn);
    let req = match request(up, &authority, &arn, &call).await {
        Ok(r) => r,
        Err(why) => return abandon(recording, why.to_string()).await,
    };
    let resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => return abandon(recording, format!("{authority}: {e}")).await,
    };
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let error_type = header("x-amzn-errortype");
    let format = header("content-type")
        .as_deref()
        .and_then(Format::from_content_type);
    let upstream_body = resp.into_body();
    if status != hyper::StatusCode::OK {
        // An error body is a short JSON object; more is not read.
        let bytes = Limited::new(upstream_body, 64 << 10)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let _ = recording.finish(EndReason::Closed).await;
        return Err(CommandError::Answered {
            status: status.as_u16(),
            error_type,
            body: bytes,
        });
    }
    let Some(format) = format else {
        let why = format!(
            "{authority} answered the command call with neither {EVENT_STREAM} nor {JSON_LINES}"
        );
        return abandon(recording, why).await;
    };
    let (tx, rx) = mpsc::channel::<CommandEvent>(64);
    // The call counts under --max-commands until its answer has ended.
    let slot = call.slot;
    tokio::spawn(async move {
        relay_answer(upstream_body, format, recording, tx).await;
        drop(slot);
    });
    Ok(rx)
}

/// Reads the upstream's answer into events: each recorded and passed on
/// until its end (a `contentStop` or an exception); one that breaks off,
/// cannot be read or ends early ends with an `internalServerException`.
async fn relay_answer(
    mut upstream_body: hyper::body::Incoming,
    format: Format,
    recording: Recording,
    tx: mpsc::Sender<CommandEvent>,
) {
    use http_body_util::BodyExt;
    let mut decoder = Decoder::new(format);
    let mut end = None;
    let mut failure = None;
    let abandoned = || {
        Some(EndReason::Interrupted {
            detail: "client disconnected; the upstream call was abandoned".into(),
        })
    };
    'read: loop {
        let frame = tokio::select! {
            frame = upstream_body.frame() => frame,
            // The client went away: the upstream's answer is dropped
            // (closing that connection), which ends the command there.
            () = tx.closed() => {
                end = abandoned();
                break;
            }
        };
        let Some(frame) = frame else { break };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                failure = Some(format!("the upstream's answer broke off: {e}"));
                break;
            }
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let events = match decoder.push(data) {
            Ok(events) => events,
            Err(e) => {
                failure = Some(format!("the upstream's answer is unreadable: {e}"));
                break;
            }
        };
        for event in events {
            match &event {
                CommandEvent::Output(_, bytes) => {
                    recording.record(EventData::Output(bytes.clone())).await;
                }
                CommandEvent::Stop {
                    exit_code,
                    timed_out,
                } => {
                    recording.record(EventData::Exit(*exit_code)).await;
                    end = Some(if *timed_out {
                        EndReason::Interrupted {
                            detail: "command timed out upstream".into(),
                        }
                    } else {
                        EndReason::Exited { code: *exit_code }
                    });
                }
                CommandEvent::Failed(exception, message) => {
                    end = Some(EndReason::Interrupted {
                        detail: format!(
                            "the upstream failed the command: {}: {message}",
                            exception.error_type()
                        ),
                    });
                }
                CommandEvent::Start => {}
            }
            let last = !matches!(event, CommandEvent::Start | CommandEvent::Output(..));
            if tx.send(event).await.is_err() && !last {
                end = abandoned();
                break 'read;
            }
            if last {
                break 'read;
            }
        }
    }
    let end = match end {
        Some(end) => end,
        None => {
            let why = failure
                .unwrap_or_else(|| "the upstream ended the answer without an exit code".into());
            let _ = tx
                .send(CommandEvent::Failed(Exception::InternalServer, why.clone()))
                .await;
            EndReason::Interrupted { detail: why }
        }
    };
    let _ = recording.finish(end).await;
}

/// Ends the recording of a call that never reached its upstream.
async fn abandon(recording: Recording, why: String) -> Result<Events, CommandError> {
    let _ = recording.finish(EndReason::Closed).await;
    Err(CommandError::Unreachable(why))
}

/// The upstream command call: the client's body and session id, asking for
/// JSON Lines first, SigV4-signed (body included) when the upstream wants it.
/// Why the upstream command call could not be built.
#[derive(Debug, thiserror::Error)]
enum UpstreamRequestError {
    /// The request (headers from the client's call) is not valid HTTP.
    #[error("cannot build the upstream command call: {0}")]
    Build(#[from] http::Error),
    /// SigV4 signing failed (no credentials, or they could not be read).
    #[error("cannot sign the upstream command call: {0}")]
    Sign(#[from] crate::sigv4::SigV4Error),
    /// The runtime path is not a valid request target.
    #[error("bad upstream command path: {0}")]
    Path(#[from] http::uri::InvalidUri),
}

async fn request(
    up: &Upstream,
    authority: &str,
    arn: &str,
    call: &CommandCall,
) -> Result<hyper::Request<http_body_util::Full<axum::body::Bytes>>, UpstreamRequestError> {
    let path = format!("/runtimes/{arn}/commands");
    let scheme = if up.tls.is_some() { "https" } else { "http" };
    let mut req = hyper::Request::post(format!("{scheme}://{authority}{path}"))
        .header("host", authority)
        .header("content-type", "application/json")
        .header("accept", format!("{JSON_LINES}, {EVENT_STREAM};q=0.5"))
        .header(SESSION_HEADER, &call.session)
        .body(())?;
    if let Some(signer) = &up.signer {
        signer
            .sign_payload(&mut req, &call.body, std::time::SystemTime::now())
            .await?;
    }
    // HTTP/1.1 origin form: the path alone on the request line.
    *req.uri_mut() = path.parse()?;
    Ok(req.map(|()| http_body_util::Full::new(call.body.clone())))
}
