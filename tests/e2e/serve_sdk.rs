//! `serve` driven by the public AgentCore SDK's own ShellSession
//! (tests/python/sdk_shell.py), installed by scripts/test.

use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn python() -> Option<String> {
    peer("TERMTRAIL_PYTHON")
}

fn sdk(py: &str, server: &Server, scenario: &str) -> Value {
    sdk_with(py, server, scenario, &[])
}

fn sdk_with(py: &str, server: &Server, scenario: &str, env: &[(&str, &str)]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_shell.py");
    let out = Command::new(py)
        .arg(script)
        .arg(&server.addr)
        .arg(scenario)
        .envs(env.iter().copied())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{scenario}: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log.lock().unwrap()
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{scenario}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn sdk_session_send_resize_exit_code() {
    let Some(py) = python() else { return };
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let r = sdk(&py, &server, "basic");
    assert_eq!(r["shell_id"], "sdk1", "{r}");
    assert_eq!(
        r["session_id"], "sdk-session-0000-1111-2222-3333-4444",
        "{r}"
    );
    let out = r["output"].as_str().unwrap();
    assert!(out.contains("sdk-42") && out.contains("100"), "{r}");
    assert_eq!(r["exit_code"], 7, "{r}");
    let rec = &server.recordings()[0];
    let v = verified(&d, rec, "exited with code 7");
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("exited with code 7"), "{}", v.stdout);
}

#[test]
fn sdk_reconnect_gets_replay_and_same_shell() {
    let Some(py) = python() else { return };
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let r = sdk(&py, &server, "reconnect");
    assert!(
        r["replay"]
            .as_str()
            .unwrap()
            .contains("produced-while-away"),
        "{r}"
    );
    assert!(r["state"].as_str().unwrap().contains("/tmp/kept"), "{r}");
    assert_eq!(r["exit_code"], 0, "{r}");
}

#[test]
fn sdk_takeover_sets_kicked() {
    let Some(py) = python() else { return };
    let d = Dir::new();
    let server = Server::start(&d, &[]);
    let r = sdk(&py, &server, "takeover");
    assert_eq!(r["first_kicked"], true, "{r}");
    assert_eq!(r["second_kicked"], false, "{r}");
    assert!(
        r["second_output"]
            .as_str()
            .unwrap()
            .contains("second-client"),
        "{r}"
    );
}

#[test]
fn sdk_sees_refusal_at_the_shell_limit() {
    let Some(py) = python() else { return };
    let d = Dir::new();
    let server = Server::start(&d, &["--max-shells", "2"]);
    let r = sdk(&py, &server, "refused");
    assert_eq!(r["refused"], true, "{r}");
    assert_eq!(r["opened"], 2, "{r}");
    assert_eq!(r["status"], 429, "{r}");
    assert!(r["body"].as_str().unwrap().contains("TooManyShells"), "{r}");
}

#[test]
fn sdk_through_the_proxy() {
    let Some(py) = python() else { return };
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &format!("ws://{}", up.addr)]);
    let r = sdk(&py, &px, "basic");
    assert_eq!(r["exit_code"], 7, "{r}");
    assert!(r["output"].as_str().unwrap().contains("sdk-42"), "{r}");
    let r = sdk(&py, &px, "takeover");
    assert_eq!(r["first_kicked"], true, "{r}");
    // Both the proxy and the host recorded the shells (sealed a moment
    // after they end).
    let sealed = |recs: &Vec<std::path::PathBuf>| {
        recs.len() == 2
            && recs
                .iter()
                .all(|p| d.run(&["verify", &p.to_string_lossy()]).code == 0)
    };
    poll_until(10, || px.recordings(), sealed);
    poll_until(10, || up.recordings(), |r| r.len() == 2);
    assert_eq!(px.recordings().len(), 2);
    assert_eq!(up.recordings().len(), 2);
    for rec in px.recordings() {
        let v = d.run(&["verify", &rec.to_string_lossy()]);
        assert_eq!(v.code, 0, "{v:?}");
    }
}

#[test]
fn sdk_over_tls() {
    let Some(py) = python() else { return };
    let d = Dir::new();
    let (ca, c, k) = test_ca(&d);
    let server = Server::start(&d, &["--tls-cert", &c, "--tls-key", &k]);
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("wss://"), "{log}");
    let r = sdk_with(
        &py,
        &server,
        "basic",
        &[("SDK_SCHEME", "wss"), ("SSL_CERT_FILE", &ca)],
    );
    assert_eq!(r["exit_code"], 7, "{r}");
    assert!(r["output"].as_str().unwrap().contains("sdk-42"), "{r}");
    // Plain HTTP to the TLS port gets no answer, and nothing breaks.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(
            !answer.starts_with(b"HTTP/1.1 200"),
            "plain HTTP was served on the TLS port"
        );
    }
    let r = sdk_with(
        &py,
        &server,
        "basic",
        &[("SDK_SCHEME", "wss"), ("SSL_CERT_FILE", &ca)],
    );
    assert_eq!(r["exit_code"], 7, "still serving after a bad client: {r}");
    // The same ids again within a second: a second recording, not a clash.
    poll_until(10, || server.recordings(), |r| r.len() == 2);
    assert_eq!(server.recordings().len(), 2, "{:?}", server.recordings());
    // Bad key files are one-line errors at start-up.
    let bad = d.run(&[
        "serve",
        "--no-auth",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &c,
        "--tls-key",
        &c,
    ]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("key"), "{}", bad.stderr);
}
