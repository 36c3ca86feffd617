//! The one-shot command call's two implementations: run it here with
//! `sh -c` (no PTY), or forward it to an AgentCore upstream. Either streams
//! the answer's events as they come and records the output on the way.

use std::process::Stdio;
use std::time::Duration;

use termtrail_format::event::EventData;
use termtrail_format::seal::EndReason;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::{CommandCall, CommandError, Events};
use crate::command_wire::{
    CommandEvent, Decoder, EVENT_STREAM, Exception, Format, JSON_LINES, OutStream,
};
use crate::protocol::SESSION_HEADER;
use crate::recording::Recording;
use crate::upstream::Upstream;
use crate::upstream::agentcore::command_target;

/// Runs the call with `sh -c` here, killing its process group at the
/// timeout (exit code 124).
pub(super) async fn run_local(
    call: CommandCall,
    recording: Recording,
) -> Result<Events, CommandError> {
    let mut child = match tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&call.command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let _ = recording.finish(EndReason::Closed).await;
            return Err(CommandError::Internal(format!("cannot run sh: {e}")));
        }
    };
    tracing::info!(session = %call.session, command = %call.id, "command started");
    let (tx, rx) = mpsc::channel::<CommandEvent>(64);
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let timeout = Duration::from_secs(call.timeout);
    tokio::spawn(async move {
        let _ = tx.send(CommandEvent::Start).await;
        let (out_tx, mut out_rx) = mpsc::channel::<(bool, Vec<u8>)>(16);
        for (is_err, pipe) in [
            (false, stdout.take().map(Pipe::Out)),
            (true, stderr.take().map(Pipe::Err)),
        ] {
            let Some(mut pipe) = pipe else { continue };
            let out_tx = out_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 << 10];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 || out_tx.send((is_err, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(out_tx);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut timed_out = false;
        loop {
            tokio::select! {
                chunk = out_rx.recv() => {
                    let Some((is_err, bytes)) = chunk else { break };
                    recording.record(EventData::Output(bytes.clone())).await;
                    let stream = if is_err { OutStream::Stderr } else { OutStream::Stdout };
                    let _ = tx.send(CommandEvent::Output(stream, bytes)).await;
                }
                _ = &mut deadline, if !timed_out => {
                    timed_out = true;
                    if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        let (code, _) = crate::rec::exit_code(child.wait().await);
        let code = if timed_out { 124 } else { code };
        recording.record(EventData::Exit(code)).await;
        let end = if timed_out {
            EndReason::Interrupted {
                detail: format!("command timed out after {} s", timeout.as_secs()),
            }
        } else {
            EndReason::Exited { code }
        };
        let _ = recording.finish(end).await;
        let _ = tx
            .send(CommandEvent::Stop {
                exit_code: code,
                timed_out,
            })
            .await;
    });
    Ok(rx)
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
        Err(why) => return abandon(recording, why).await,
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
    tokio::spawn(relay_answer(upstream_body, format, recording, tx));
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
    'read: while let Some(frame) = upstream_body.frame().await {
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
            let _ = tx.send(event).await;
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
async fn request(
    up: &Upstream,
    authority: &str,
    arn: &str,
    call: &CommandCall,
) -> Result<hyper::Request<http_body_util::Full<axum::body::Bytes>>, String> {
    let path = format!("/runtimes/{arn}/commands");
    let scheme = if up.tls.is_some() { "https" } else { "http" };
    let mut req = hyper::Request::post(format!("{scheme}://{authority}{path}"))
        .header("host", authority)
        .header("content-type", "application/json")
        .header("accept", format!("{JSON_LINES}, {EVENT_STREAM};q=0.5"))
        .header(SESSION_HEADER, &call.session)
        .body(())
        .map_err(|e| format!("cannot build the upstream command call: {e}"))?;
    if let Some(signer) = &up.signer {
        signer
            .sign_payload(&mut req, &call.body, std::time::SystemTime::now())
            .await
            .map_err(|e| format!("cannot sign the upstream command call: {e}"))?;
    }
    // HTTP/1.1 origin form: the path alone on the request line.
    *req.uri_mut() = path
        .parse()
        .map_err(|e| format!("bad upstream command path: {e}"))?;
    Ok(req.map(|()| http_body_util::Full::new(call.body.clone())))
}
