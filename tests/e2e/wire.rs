//! The one-shot command call in the service's wire format (issue 14 items
//! 13 and 14): boto3's own `invoke_agent_runtime_command`
//! (tests/python/boto3_command.py) against `serve` and through `proxy`,
//! errors by their modelled names before and after the answer starts, the
//! proxy reading an event-stream upstream (tests/python/
//! agentcore_command_upstream.py, frames encoded there), JSON Lines on
//! request, and `exec` passing bytes on exactly.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::util::*;

const RUNTIME: &str = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/termtrail-test";
/// boto3 checks the session id's modelled length (33 to 256 characters).
const SESSION: &str = "wire-session-0000-1111-2222-3333-4444";

/// Output with a character cut across two writes and bytes that are not UTF-8.
const MIXED: &str =
    r"echo out; echo err >&2; printf '\342'; sleep 0.3; printf '\202\254 x\377y\n'; exit 3";

/// One call through boto3 at `addr`.
fn boto3(py: &str, addr: &str, command: &str, timeout: Option<u64>) -> Value {
    let mut req = json!({"arn": RUNTIME, "session": SESSION, "command": command});
    if let Some(t) = timeout {
        req["timeout"] = json!(t);
    }
    boto3_request(py, addr, &req)
}

/// One call through boto3 at `addr`, described as boto3_command.py reads it.
fn boto3_request(py: &str, addr: &str, req: &Value) -> Value {
    let command = &req["command"];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/boto3_command.py");
    let out = Command::new(py)
        .arg(script)
        .arg(format!("http://{addr}"))
        .arg(req.to_string())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "boto3 {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn assert_error(r: &Value, class: &str, http: Option<u16>, during: &str) {
    let e = &r["error"];
    assert_eq!(e["code"], class, "{r}");
    if let Some(h) = http {
        assert_eq!(e["http"], h, "{r}");
        // botocore raises the modelled exception class itself.
        assert_eq!(e["class"], class, "{r}");
    }
    assert_eq!(e["during"], during, "{r}");
}

fn verify_text(d: &Dir, path: &std::path::Path) -> (i32, String) {
    let r = d.run(&["verify", &path.to_string_lossy()]);
    (r.code, r.stdout)
}

/// The decompressed recording among `recs` whose output holds `needle`.
fn recording_with(recs: &[PathBuf], needle: &str) -> String {
    recs.iter()
        .map(|p| zstd_dc(p))
        .find(|t| t.contains(needle))
        .unwrap_or_else(|| panic!("no recording with {needle:?} in {recs:?}"))
}

#[test]
fn boto3_runs_commands_on_serve_and_through_the_proxy() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &format!("ws://{}", up.addr)]);
    for addr in [&up.addr, &px.addr] {
        let r = boto3(&py, addr, MIXED, None);
        assert!(r.get("error").is_none(), "{addr}: {r}");
        assert_eq!(r["stdout"], "out\n€ x\u{fffd}y\n", "{addr}: {r}");
        assert_eq!(r["stderr"], "err\n", "{r}");
        assert_eq!(r["exit_code"], 3, "{r}");
        assert_eq!(r["status"], "COMPLETED", "{r}");
        let events = r["events"].as_array().unwrap();
        assert_eq!(events.first().unwrap(), "contentStart", "{r}");
        assert_eq!(events.last().unwrap(), "contentStop", "{r}");
        assert_eq!(r["content_type"], "application/vnd.amazon.eventstream");
        assert_eq!(r["session"], SESSION, "{r}");
        let id = r["headers"]["x-amzn-requestid"].as_str().unwrap();
        assert!(id.starts_with("cmd-"), "{r}");

        let r = boto3(&py, addr, "echo started; sleep 10", Some(1));
        assert_eq!(r["stdout"], "started\n", "{r}");
        assert_eq!(r["exit_code"], 124, "{r}");
        assert_eq!(r["status"], "TIMED_OUT", "{r}");

        let r = boto3(&py, addr, "true", Some(0));
        assert_error(&r, "ValidationException", Some(400), "call");
        assert!(r["error"]["message"].as_str().unwrap().contains("timeout"));
    }
    // The proxy records the output bytes exactly as serve does (bytes that
    // are not UTF-8 in `b` events beside their U+FFFD, docs/format.md §3).
    for recs in [up.recordings(), px.recordings()] {
        let text = recording_with(&recs, "out");
        let mut bytes = recovered_output(&text);
        // stderr's line may come between any two reads of stdout.
        let err = bytes.windows(4).position(|w| w == b"err\n").unwrap();
        bytes.drain(err..err + 4);
        let stdout = String::from_utf8_lossy(&bytes);
        assert_eq!(stdout, "out\n€ x\u{fffd}y\n", "{text}");
        assert!(bytes.windows(3).any(|w| w == b"x\xffy"), "{text}");
    }
}

/// The output bytes of a recording's text: each `o` event's string with its
/// k-th U+FFFD replaced by the k-th token of the `b` event after it.
fn recovered_output(text: &str) -> Vec<u8> {
    let events: Vec<Value> = text
        .lines()
        .skip(1)
        .filter(|l| l.starts_with('['))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e[1] != "o" {
            continue;
        }
        let s = e[2].as_str().unwrap();
        let tokens: Vec<Vec<u8>> = match events.get(i + 1) {
            Some(b) if b[1] == "b" => b[2]
                .as_str()
                .unwrap()
                .split(' ')
                .map(|t| hex::decode(t).unwrap())
                .collect(),
            _ => Vec::new(),
        };
        let mut tokens = tokens.into_iter();
        for c in s.chars() {
            match (c, c == '\u{fffd}') {
                (_, true) => out.extend(tokens.next().unwrap_or_else(|| "\u{fffd}".into())),
                (c, false) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }
    out
}

#[test]
fn refusals_and_failures_reach_boto3_as_the_modelled_exceptions() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    // serve with JWT authentication and the team policy: boto3's SigV4
    // header is no bearer token (401); with a bearer token (replacing it),
    // operators may run commands, developers may not (403).
    let jwks = d.join("jwks.json");
    crate::auth::keys(&py, d.path(), &jwks, &["rs1"]);
    let jwks = jwks.to_string_lossy().into_owned();
    let policy = |name: &str| format!("{}/docs/policy/{name}", env!("CARGO_MANIFEST_DIR"));
    let authed = crate::auth::serve(
        &d,
        &[
            "--auth",
            "jwt",
            "--jwt-jwks",
            &jwks,
            "--jwt-issuer",
            crate::auth::ISSUER,
            "--policy",
            &policy("team.cedar"),
            "--policy-schema",
            &policy("termtrail.cedarschema"),
            "--environment",
            "production",
        ],
    );
    let r = boto3(&py, &authed.addr, "true", None);
    assert_error(&r, "AccessDeniedException", Some(401), "call");
    for (who, group, denied) in [("olga", "operators", false), ("bob", "developers", true)] {
        let claims = crate::auth::claims(json!({"sub": who, "groups": [group]}));
        let token = crate::auth::mint(&py, d.path(), "rs1", claims, None);
        let req =
            json!({"arn": RUNTIME, "session": SESSION, "command": "echo ran", "bearer": token});
        let r = boto3_request(&py, &authed.addr, &req);
        if denied {
            assert_error(&r, "AccessDeniedException", Some(403), "call");
            assert!(
                r["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("RunCommand"),
                "{r}"
            );
        } else {
            assert_eq!(
                (r["stdout"].as_str(), r["exit_code"].as_i64()),
                (Some("ran\n"), Some(0)),
                "{r}"
            );
        }
    }

    // A proxy in front of a stand-in for AgentCore's command endpoint,
    // which answers only the event stream (and relays to serve).
    let up = Server::start(&d, &[]);
    let fake = PeerServer::start(&py, "agentcore_command_upstream.py", &[&up.addr], &d);
    let pd = Dir::new();
    let upstream = format!("ws://127.0.0.1:{}/runtimes/x/ws/shells", fake.port);
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &upstream]);

    let r = boto3(&py, &px.addr, MIXED, None);
    assert_eq!(
        fake.next_line(),
        "call application/x-ndjson, application/vnd.amazon.eventstream;q=0.5"
    );
    assert_eq!(r["stdout"], "out\n€ x\u{fffd}y\n", "{r}");
    assert_eq!(r["stderr"], "err\n", "{r}");
    assert_eq!(r["exit_code"], 3, "{r}");

    let r = boto3(&py, &px.addr, "fake-throttle", None);
    assert_error(&r, "ThrottlingException", Some(429), "call");
    assert_eq!(r["error"]["message"], "Rate exceeded", "{r}");
    let r = boto3(&py, &px.addr, "fake-deny", None);
    assert_error(&r, "AccessDeniedException", Some(403), "call");

    // After the answer started: an exception event, named by its member.
    let r = boto3(&py, &px.addr, "fake-midstream", None);
    assert_eq!(r["stdout"], "partial\n", "{r}");
    assert_error(&r, "throttlingException", None, "stream");
    assert_eq!(r["error"]["message"], "Rate exceeded mid-stream", "{r}");

    // Every call is recorded by the proxy (the refused ones empty, sealed
    // `closed`), the failure as such.
    let recs = poll_until(
        10,
        || px.recordings(),
        |recs| recs.len() == 4 && recs.iter().all(|p| verify_text(&d, p).0 == 0),
    );
    let verdicts: Vec<String> = recs.iter().map(|p| verify_text(&d, p).1).collect();
    assert!(
        verdicts.iter().any(|v| v.contains("exited with code 3")),
        "{verdicts:?}"
    );
    assert!(
        verdicts.iter().any(|v| v.contains("ThrottlingException")),
        "{verdicts:?}"
    );
    assert!(px.log.lock().unwrap().len() < 1 << 20);
    assert_eq!(http_get(&px.addr, "/healthz").lines().last(), Some("ok"));
}

/// `exec URL -- command`'s exit code, raw stdout and stderr.
fn exec_raw(d: &Dir, addr: &str, command: &str) -> (i32, Vec<u8>, String) {
    let out = d
        .cmd(&["exec", &format!("ws://{addr}"), "--", command])
        .output()
        .expect("exec");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_passes_split_characters_and_raw_bytes_on_exactly() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &format!("ws://{}", up.addr)]);
    let want = b"out\n\xe2\x82\xac x\xffy\n".to_vec();
    for addr in [&up.addr, &px.addr] {
        let (code, stdout, stderr) = exec_raw(&d, addr, MIXED);
        assert_eq!(code, 3, "{stderr}");
        assert_eq!(stdout, want, "{addr}: {}", String::from_utf8_lossy(&stdout));
        assert_eq!(stderr, "err\n");
    }
    // Through a proxy whose upstream speaks only the event stream: the
    // wire carries text, so the byte that is not UTF-8 arrives as U+FFFD.
    let fake = PeerServer::start(&py, "agentcore_command_upstream.py", &[&up.addr], &d);
    let upstream = format!("ws://127.0.0.1:{}/runtimes/x/ws/shells", fake.port);
    let qd = Dir::new();
    let px2 = Server::start_kind(&qd, "proxy", &["--upstream", &upstream]);
    let (code, stdout, _) = exec_raw(&d, &px2.addr, MIXED);
    assert_eq!(code, 3);
    assert_eq!(String::from_utf8(stdout).unwrap(), "out\n€ x\u{fffd}y\n");
    let (code, stdout, stderr) = exec_raw(&d, &px2.addr, "fake-midstream");
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, b"partial\n");
    assert!(
        stderr.contains("ThrottlingException: Rate exceeded mid-stream"),
        "{stderr}"
    );
}

/// A raw HTTP/1.1 command call to `addr` with `extra` header lines; the
/// whole response (headers and body, chunked as sent).
fn raw_call(addr: &str, extra: &str, body: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    write!(
        s,
        "POST /runtimes/{ARN}/commands HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn json_lines_only_when_accept_asks_and_refusals_name_their_error_type() {
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let body = json!({"command": r"printf 'a\377'"}).to_string();
    let session = format!("x-amzn-bedrock-agentcore-runtime-session-id: {SESSION}\r\n");
    let lines = raw_call(
        &server.addr,
        &format!("{session}Accept: application/x-ndjson\r\n"),
        &body,
    );
    let text = String::from_utf8_lossy(&lines).to_ascii_lowercase();
    assert!(
        text.contains("content-type: application/x-ndjson"),
        "{text}"
    );
    assert!(
        text.contains(r#"{"contentdelta":{"stdout":"a�","stdoutbase64":"yf8="}}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"{"contentstop":{"exitcode":0,"status":"completed"}}"#),
        "{text}"
    );

    let stream = raw_call(&server.addr, &format!("{session}Accept: */*\r\n"), &body);
    let text = String::from_utf8_lossy(&stream);
    assert!(
        text.contains("content-type: application/vnd.amazon.eventstream"),
        "{text}"
    );
    assert!(
        text.contains(":event-type") && text.contains("chunk"),
        "{text}"
    );

    // No session id: a 400 the SDKs read as ValidationException.
    let refused = raw_call(&server.addr, "", &body);
    let text = String::from_utf8_lossy(&refused);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("x-amzn-errortype: ValidationException"),
        "{text}"
    );
    assert!(
        text.contains(r#""message":"a runtime session id header is required""#),
        "{text}"
    );
}

#[test]
fn the_proxy_signs_its_upstream_command_call_with_sigv4() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let (ak, sk, token) = ("AKIDWIRETEST", "d2lyZS1zZWNyZXQta2V5", "wire-session-token");
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let fake = PeerServer::start(
        &py,
        "agentcore_command_upstream.py",
        &[&up.addr, ak, sk, token],
        &d,
    );
    let pd = Dir::new();
    let store = pd.join("store");
    let mut c = pd.cmd(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--no-auth",
        "--store",
        &store.to_string_lossy(),
        "--upstream",
        &format!("ws://127.0.0.1:{}", fake.port),
        "--runtime",
        RUNTIME,
        "--upstream-auth",
        "sigv4",
    ]);
    c.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ak)
        .env("AWS_SECRET_ACCESS_KEY", sk)
        .env("AWS_SESSION_TOKEN", token);
    let px = Server::spawn(c, &store);
    let r = boto3(&py, &px.addr, "echo signed; exit 4", None);
    assert!(fake.next_line().starts_with("call "));
    assert_eq!(fake.next_line(), "sigv4 ok");
    assert_eq!(r["stdout"], "signed\n", "{r}");
    assert_eq!(r["exit_code"], 4, "{r}");
}
