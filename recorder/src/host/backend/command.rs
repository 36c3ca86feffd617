//! The one-shot command call's two implementations: run it here with
//! `sh -c` (no PTY) under its supervisor, or forward it to an AgentCore upstream. Either streams
//! the answer's JSON Lines as they come and records the output on the way.

use std::time::Duration;

use serde_json::json;
use termtrail_format::event::EventData;
use termtrail_format::seal::EndReason;
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::mpsc;

use super::supervised::Supervised;
use super::{CommandCall, CommandError, Lines};
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
) -> Result<Lines, CommandError> {
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
    let (tx, rx) = mpsc::channel::<String>(64);
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
    tx: mpsc::Sender<String>,
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
        let _ = tx
            .send(json!({"contentStart": {}}).to_string() + "\n")
            .await;
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
        let mut pending: Option<String> = None;
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
                    Ok(p) => p.send(pending.take().unwrap_or_default()),
                    Err(_) => pending = None,
                },
                chunk = out_rx.recv(), if pipes_open && pending.is_none() => match chunk {
                    Some((is_err, bytes)) => {
                        recording.record(EventData::Output(bytes.clone())).await;
                        let key = if is_err { "stderr" } else { "stdout" };
                        let text = String::from_utf8_lossy(&bytes);
                        pending = Some(json!({"contentDelta": {key: text}}).to_string() + "\n");
                    }
                    None => pipes_open = false,
                },
                _ = tokio::time::sleep_until(drained_by.unwrap_or_else(tokio::time::Instant::now)),
                    if drained_by.is_some() => break,
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
        if let Some((code, _)) = stop {
            recording.record(EventData::Exit(code)).await;
        }
        let _ = recording.finish(end).await;
        if let Some((code, status)) = stop {
            let line = json!({"contentStop": {"exitCode": code, "status": status}}).to_string();
            let _ = tokio::time::timeout(DRAIN, tx.send(line + "\n")).await;
        }
        drop(slot);
    }
}

/// The recording's end reason and, for a client still there, the exit
/// code and status to send.
fn ending(
    killed: Option<Killed>,
    code: i32,
    timeout: Duration,
) -> (EndReason, Option<(i32, &'static str)>) {
    let interrupted = |detail: String| EndReason::Interrupted { detail };
    match killed {
        None => (EndReason::Exited { code }, Some((code, "COMPLETED"))),
        Some(Killed::Timeout) => (
            interrupted(format!("command timed out after {} s", timeout.as_secs())),
            Some((124, "TIMED_OUT")),
        ),
        Some(Killed::ClientGone) => (
            interrupted("client disconnected; command killed".into()),
            None,
        ),
        Some(Killed::Shutdown) => (
            interrupted("shell host shut down; command killed".into()),
            None,
        ),
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
    Out(ChildStdout),
    Err(ChildStderr),
}

impl Pipe {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Pipe::Out(p) => p.read(buf).await,
            Pipe::Err(p) => p.read(buf).await,
        }
    }
}

/// The proxy's command call: the same request upstream, its JSON Lines
/// streamed back as they come and recorded on the way.
pub(super) async fn forward(
    up: &Upstream,
    call: CommandCall,
    recording: Recording,
) -> Result<Lines, CommandError> {
    use http_body_util::{BodyExt, Full};
    let fail = |msg: String| Err(CommandError::Unreachable(msg));
    let (authority, arn) = match command_target(&up.url) {
        Some(t) => t,
        None => {
            let shown = crate::upstream::redacted_url(&up.url);
            return fail(format!("cannot derive the command URL from {shown}"));
        }
    };
    let stream = match crate::tls::connect_stream(&authority, up.tls.as_ref()).await {
        Ok(s) => s,
        Err(e) => {
            let _ = recording.finish(EndReason::Closed).await;
            return fail(format!("{authority}: {e}"));
        }
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => return fail(e.to_string()),
        };
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("/runtimes/{arn}/commands"))
        .header("host", &authority)
        .header("content-type", "application/json")
        .header(SESSION_HEADER, &call.session)
        .body(Full::new(call.body));
    let resp = match req {
        Ok(r) => sender.send_request(r).await,
        Err(e) => return fail(e.to_string()),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let status = resp.status();
    let mut upstream_body = resp.into_body();
    if status != hyper::StatusCode::OK {
        let bytes = upstream_body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let _ = recording.finish(EndReason::Closed).await;
        return Err(CommandError::Answered(status.as_u16(), bytes));
    }
    let (tx, rx) = mpsc::channel::<String>(64);
    // The call counts under --max-commands until its stream has ended.
    let slot = call.slot;
    tokio::spawn(async move {
        let mut pending = Vec::new();
        let mut end = EndReason::Interrupted {
            detail: "upstream ended the stream early".into(),
        };
        while let Some(Ok(frame)) = upstream_body.frame().await {
            let Some(data) = frame.data_ref() else {
                continue;
            };
            pending.extend_from_slice(data);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                if let Some(d) = v.get("contentDelta") {
                    for key in ["stdout", "stderr"] {
                        if let Some(text) = d[key].as_str() {
                            recording
                                .record(EventData::Output(text.as_bytes().to_vec()))
                                .await;
                        }
                    }
                } else if let Some(stop) = v.get("contentStop") {
                    let code = stop["exitCode"].as_i64().unwrap_or(255) as i32;
                    recording.record(EventData::Exit(code)).await;
                    end = if stop["status"] == "TIMED_OUT" {
                        EndReason::Interrupted {
                            detail: "command timed out upstream".into(),
                        }
                    } else {
                        EndReason::Exited { code }
                    };
                }
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned()).await;
            }
        }
        let _ = recording.finish(end).await;
        drop(slot);
    });
    Ok(rx)
}
