//! The one-shot command call's two implementations: run it here with
//! `sh -c` (no PTY), or forward it to an AgentCore upstream. Either streams
//! the answer's JSON Lines as they come and records the output on the way.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use termtrail_format::event::EventData;
use termtrail_format::seal::EndReason;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::{CommandCall, CommandError, Lines};
use crate::protocol::SESSION_HEADER;
use crate::recording::Recording;
use crate::upstream::Upstream;
use crate::upstream::agentcore::command_target;

/// Runs the call with `sh -c` here, killing its process group at the
/// timeout (exit code 124).
pub(super) async fn run_local(
    call: CommandCall,
    recording: Recording,
) -> Result<Lines, CommandError> {
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
    let (tx, rx) = mpsc::channel::<String>(64);
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let timeout = Duration::from_secs(call.timeout);
    tokio::spawn(async move {
        let _ = tx
            .send(json!({"contentStart": {}}).to_string() + "\n")
            .await;
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
                    let key = if is_err { "stderr" } else { "stdout" };
                    let line = json!({"contentDelta": {key: String::from_utf8_lossy(&bytes)}}).to_string() + "\n";
                    let _ = tx.send(line).await;
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
        let status = if timed_out { "TIMED_OUT" } else { "COMPLETED" };
        let _ = tx
            .send(json!({"contentStop": {"exitCode": code, "status": status}}).to_string() + "\n")
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
    });
    Ok(rx)
}
