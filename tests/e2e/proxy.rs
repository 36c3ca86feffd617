//! `proxy` in front of `serve` (AgentCore protocol) and of terminado: relay,
//! recording, client re-attach, upstream link loss with replay
//! de-duplication, and the SDK through the proxy.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::util::*;

fn proxy(d: &Dir, upstream: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--upstream", upstream];
    args.extend_from_slice(extra);
    Server::start_kind(d, "proxy", &args)
}

fn occurrences(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// Lines of a transcript that end with `word` (a prompt may precede
/// output from a background job).
fn lines_equal(text: &str, word: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_end() == word || l.trim_end().ends_with(&format!("> {word}")))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_relays_records_and_survives_upstream_loss() {
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let relay = Relay::start(&up.addr);
    let pd = Dir::new();
    let px = proxy(&pd, &format!("ws://{}", relay.addr), &[]);
    let (mut ws, resp) = connect(&px.url("p1"), SESSION).await.unwrap();
    assert_eq!(resp.headers()["x-amzn-bedrock-agentcore-shell-id"], "p1");
    let st = status(&mut ws).await;
    assert_eq!(st["metadata"]["shellId"], "p1");
    ws.send(Message::Binary(
        [&[4u8][..], br#"{"width":120,"height":40}"#]
            .concat()
            .into(),
    ))
    .await
    .unwrap();
    stdin(&mut ws, "echo via-proxy-$((6*7)); tput cols\n").await;
    read_until(&mut ws, "120\r\n").await;

    // The upstream link drops while the shell prints: the proxy re-attaches,
    // the host replays what it buffered, and it is recorded exactly once.
    stdin(&mut ws, "(sleep 0.6; echo during-the-cut) &\n").await;
    read_until(&mut ws, "tt>").await;
    // Kept (short): the cut falls while the job sleeps, after the prompt
    // has passed the proxy; nothing outside shows that moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    relay.cut();
    let out = read_until(&mut ws, "during-the-cut\r\n").await;
    assert_eq!(occurrences(&out, "during-the-cut\r\n"), 1, "{out}");
    stdin(&mut ws, "echo after-the-cut\n").await;
    read_until(&mut ws, "after-the-cut\r\n").await;

    // The client drops; the proxy keeps recording; the client re-attaches and
    // gets what it missed.
    // The job notes (in a file) that it printed, while the client is away.
    let printed = d.join("printed");
    stdin(
        &mut ws,
        &format!(
            "(sleep 0.5; echo while-client-away; echo x > {}) &\n",
            printed.display()
        ),
    )
    .await;
    read_until(&mut ws, "tt>").await;
    drop(ws);
    wait_for_file(&printed, 10);
    let (mut ws, st) = open(&px.url("p1")).await;
    assert_eq!(st["metadata"]["reconnected"], true);
    read_until(&mut ws, "while-client-away\r\n").await;
    stdin(&mut ws, "exit 9\n").await;
    let st = exit_status(&mut ws).await;
    assert_eq!(st["details"]["causes"][0]["message"], "9", "{st}");
    assert_eq!(close_of(&mut ws).await.map(|c| c.0), Some(1000));

    let rec = &px.recordings()[0];
    assert!(rec.to_string_lossy().contains("/proxy/"), "{rec:?}");
    let v = verified(&d, rec, "exited with code 9");
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("exited with code 9"), "{}", v.stdout);
    let cast = zstd_dc(rec);
    assert!(cast.contains("\"upstream\":\"ws://"), "upstream in header");
    assert!(cast.contains("\"r\", \"120x40\"]"));
    assert!(cast.contains("upstream connection lost"), "{cast}");
    let text = d
        .run(&["export", &rec.to_string_lossy(), "--format", "txt"])
        .stdout;
    assert_eq!(lines_equal(&text, "during-the-cut"), 1, "{text}\n{cast}");
    assert_eq!(lines_equal(&text, "while-client-away"), 1, "{text}");
    assert!(text.contains("via-proxy-42"));
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_passes_upstream_refusals_and_unreachable_upstreams() {
    let d = Dir::new();
    let up = Server::start(&d, &["--max-shells", "1"]);
    let pd = Dir::new();
    let px = proxy(&pd, &format!("ws://{}", up.addr), &[]);
    let (_held, _) = open(&px.url("only")).await;
    for i in 0..5 {
        match connect(&px.url(&format!("second{i}")), SESSION).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 429)
            }
            other => panic!("{other:?}"),
        }
    }
    let metrics = http_get(&px.addr, "/metrics");
    assert!(
        metrics.contains("termtrail_shells_refused_total 5"),
        "{metrics}"
    );
    let qd = Dir::new();
    let dead = proxy(&qd, "ws://127.0.0.1:9", &[]);
    for i in 0..3 {
        match connect(&dead.url(&format!("x{i}")), SESSION).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 502)
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        dead.recordings().is_empty(),
        "no recording for a shell that never started"
    );
    // Refusals leave no journal entry (verify --store would call a
    // journaled but missing recording tampered) and no empty directory.
    for (dir, host) in [(&pd, &px), (&qd, &dead)] {
        if !host.store.exists() {
            // Nothing at all was created.
            continue;
        }
        let store = host.store.to_string_lossy().into_owned();
        let r = dir.run(&["verify", "--store", &store]);
        // 3: the held shell is live (unsealed); never 1 (tampered).
        assert!(r.code == 0 || r.code == 3, "{r:?}");
        assert!(
            !r.stdout.contains("MISSING") && !r.stdout.contains("TAMPERED"),
            "{r:?}"
        );
        let dirs: Vec<_> = files_under(&host.store)
            .into_iter()
            .filter(|p| p.contains("/second") || p.contains("/x"))
            .collect();
        assert!(dirs.is_empty(), "{dirs:?}");
    }
    let empty = std::process::Command::new("find")
        .arg(pd.join("store"))
        .args(["-mindepth", "1", "-type", "d", "-empty"])
        .output()
        .unwrap();
    assert!(
        empty.stdout.is_empty(),
        "empty directories: {}",
        String::from_utf8_lossy(&empty.stdout)
    );
}

/// A proxy that restarts lets go of its upstream shells instead of ending
/// them: a client re-attaching through the new proxy finds the same shell.
/// Shells the proxy ends itself (idle timeout) keep that end reason.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_restart_detaches_and_idle_timeout_is_the_end_reason() {
    let d = Dir::new();
    let up = Server::start(&d, &["--grace", "60s"]);
    let upstream = format!("ws://{}", up.addr);
    let pd = Dir::new();
    let mut px = proxy(&pd, &upstream, &[]);
    let (mut ws, st) = open(&px.url("keep")).await;
    assert_eq!(st["metadata"]["reconnected"], false, "{st}");
    stdin(&mut ws, "X=kept-$((6*7)); echo set\n").await;
    read_until(&mut ws, "set\r\n").await;
    // Printed while no proxy is attached upstream (the file says when).
    let printed = d.join("printed");
    stdin(
        &mut ws,
        &format!(
            "(sleep 1; echo while-no-proxy; echo x > {}) &\n",
            printed.display()
        ),
    )
    .await;
    read_until(&mut ws, "tt>").await;
    assert_eq!(px.stop(), 0);
    assert_eq!(close_of(&mut ws).await.map(|c| c.0), Some(1001));
    let first = px.recordings();
    assert_eq!(first.len(), 1);
    let v = d.run(&["verify", &first[0].to_string_lossy()]);
    assert!(v.stdout.contains("left running"), "{v:?}");
    wait_for_file(&printed, 10);

    // Through the new proxy the shell is a re-attach, as the host says:
    // confirmation `reconnected: true`, the host's replay, then the second
    // confirmation (docs/protocol.md §6, "Through termtrail proxy").
    // 1 s: long enough for the re-attach and the echo below under load.
    let px2 = proxy(&pd, &upstream, &["--idle-timeout", "1s"]);
    let (mut ws, st) = open(&px2.url("keep")).await;
    assert_eq!(st["metadata"]["reconnected"], true, "{st}");
    read_until(&mut ws, "while-no-proxy").await;
    let second = status(&mut ws).await;
    assert_eq!(second["metadata"]["shellId"], "keep", "{second}");
    assert_eq!(second["metadata"]["bytesDropped"], 0, "{second}");
    stdin(&mut ws, "echo got-$X\n").await;
    read_until(&mut ws, "got-kept-42\r\n").await;
    // No more traffic: the proxy ends the upstream shell after 1 s.
    exit_status(&mut ws).await;
    let second: Vec<_> = px2
        .recordings()
        .into_iter()
        .filter(|p| !first.contains(p))
        .collect();
    assert_eq!(second.len(), 1, "{second:?}");
    let v = verified(&d, &second[0], "idle timeout");
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("idle timeout"), "{v:?}");
    // The output printed while no proxy was attached is in the new
    // recording, once, after a marker saying where it came from.
    let cast = zstd_dc(&second[0]);
    let marker = cast.find("already existed").expect("the marker");
    // (The job's `Done` line quotes the command, without a line break.)
    let replayed = cast.find("while-no-proxy\\r\\n").expect("the replay");
    assert!(marker < replayed, "{cast}");
    assert_eq!(occurrences(&cast, "while-no-proxy\\r\\n"), 1, "{cast}");
}

/// An upstream that stays unreachable is not a shell that exited: the
/// client is closed with 1013 (try again later) and no exit status, and once the upstream is
/// back the same shell is found again, as a re-attach.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_losing_its_upstream_does_not_report_the_shell_ended() {
    let d = Dir::new();
    let up = Server::start(&d, &["--grace", "60s"]);
    let relay = Relay::start(&up.addr);
    let pd = Dir::new();
    let px = proxy(&pd, &format!("ws://{}", relay.addr), &[]);
    let (mut ws, _) = open(&px.url("lost")).await;
    stdin(&mut ws, "Y=still-$((6*7)); echo set\n").await;
    read_until(&mut ws, "set\r\n").await;
    relay.set_down(true);
    // No exit status may come before the close: the shell did not end.
    let mut statuses = Vec::new();
    let close = loop {
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
        match next.expect("closed within 30 s") {
            Some(Ok(Message::Binary(b))) if b[0] == 3 => {
                statuses.push(String::from_utf8_lossy(&b[1..]).into_owned())
            }
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close, Some(1013), "{statuses:?}");
    assert!(statuses.is_empty(), "{statuses:?}");
    relay.set_down(false);
    let (mut ws, st) = open(&px.url("lost")).await;
    assert_eq!(st["metadata"]["reconnected"], true, "{st}");
    stdin(&mut ws, "echo got-$Y\n").await;
    read_until(&mut ws, "got-still-42\r\n").await;
    stdin(&mut ws, "exit 3\n").await;
    let st = exit_status(&mut ws).await;
    assert_eq!(st["details"]["causes"][0]["message"], "3", "{st}");
    let recs = px.recordings();
    assert_eq!(recs.len(), 2, "{recs:?}");
    let verdicts: Vec<String> = recs
        .iter()
        .map(|r| d.run(&["verify", &r.to_string_lossy()]).stdout)
        .collect();
    assert!(
        verdicts.iter().any(|v| v.contains("may still be running")),
        "{verdicts:?}"
    );
    assert!(
        verdicts.iter().any(|v| v.contains("exited with code 3")),
        "{verdicts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_in_front_of_terminado() {
    let d = Dir::new();
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let term = PeerServer::start(&py, "terminado_server.py", &["0"], &d);
    let relay = Relay::start(&format!("127.0.0.1:{}", term.port));
    let px = proxy(
        &Dir::new(),
        &format!("ws://{}/websocket/{{shell}}", relay.addr),
        &["--upstream-protocol", "terminado"],
    );
    let (mut ws, _) = open(&px.url("term1")).await;
    ws.send(Message::Binary(
        [&[4u8][..], br#"{"width":101,"height":33}"#]
            .concat()
            .into(),
    ))
    .await
    .unwrap();
    stdin(&mut ws, "stty size; echo term-$((6*7))\n").await;
    let out = read_until(&mut ws, "term-42").await;
    assert!(out.contains("33 101"), "terminado got rows, cols: {out}");
    // terminado replays its whole buffer (seen output included) on re-attach:
    // the proxy passes on and records only what is new.
    stdin(&mut ws, "echo unique-before-cut\n").await;
    read_until(&mut ws, "unique-before-cut\r\n").await;
    let before = relay.served();
    relay.cut();
    // The proxy is back when terminado replays its buffer on the new link.
    let served = poll_until(10, || relay.served(), |n| *n > before);
    assert!(served > before, "the proxy did not re-attach to terminado");
    stdin(&mut ws, "echo after-reattach\n").await;
    let out = read_until(&mut ws, "after-reattach\r\n").await;
    assert!(
        !out.contains("\nunique-before-cut\r\n"),
        "replayed output passed on twice: {out}"
    );
    stdin(&mut ws, "exit\n").await;
    exit_status(&mut ws).await;
    let rec = &px.recordings()[0];
    let v = verified(&d, rec, "");
    assert_eq!(v.code, 0, "{v:?}");
    let text = d
        .run(&["export", &rec.to_string_lossy(), "--format", "txt"])
        .stdout;
    assert_eq!(lines_equal(&text, "unique-before-cut"), 1, "{text}");
    assert!(text.contains("after-reattach"));
}

#[test]
fn exec_through_the_proxy_is_forwarded_and_recorded_on_both_sides() {
    let d = Dir::new();
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &format!("ws://{}", up.addr)]);
    let r = d.run(&[
        "exec",
        &format!("ws://{}", px.addr),
        "--",
        "echo through-proxy; echo oops >&2; exit 5",
    ]);
    assert_eq!(r.code, 5, "{r:?}");
    assert_eq!(r.stdout, "through-proxy\n");
    assert!(r.stderr.contains("oops"), "{}", r.stderr);
    for rec in [&px.recordings()[0], &up.recordings()[0]] {
        let v = verified(&d, rec, "exited with code 5");
        assert_eq!(v.code, 0, "{v:?}");
        assert!(v.stdout.contains("exited with code 5"), "{}", v.stdout);
    }
    assert!(px.recordings()[0].to_string_lossy().contains("/proxy/"));
    let m = http_get(&px.addr, "/metrics");
    assert!(m.contains("termtrail_recording_backlog_events 0"), "{m}");
}

/// The SigV4 test's keys.
const SIGV4_KEYS: (&str, &str, &str) = (
    "AKIDTERMTRAILTEST",
    "c2VjcmV0LWtleS1mb3ItdGVzdHM",
    "session-token-for-tests",
);

/// Runs a proxy with `env` in front of an upstream that checks the upgrade's
/// signature with botocore (for SIGV4_KEYS), and a shell through it.
async fn signed_shell(py: &str, pd: &Dir, env: &[(&str, String)]) {
    let (ak, sk, token) = SIGV4_KEYS;
    let up = PeerServer::start(py, "sigv4_upstream.py", &[ak, sk, token], pd);
    let arn = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/signed-test";
    let store = pd.join("store");
    let mut c = pd.cmd(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--no-auth",
        "--store",
        &store.to_string_lossy(),
        "--upstream",
        &format!("ws://127.0.0.1:{}", up.port),
        "--runtime",
        arn,
        "--upstream-auth",
        "sigv4",
    ]);
    c.env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        c.env(k, v);
    }
    let px = Server::spawn(c, &store);
    let url = format!("ws://{}/runtimes/x/ws/shells?shellId=signed", px.addr);
    let (mut ws, _) = open(&url).await;
    assert_eq!(
        up.next_line(),
        "sigv4 ok",
        "botocore accepts the proxy's signature"
    );
    stdin(&mut ws, "echo signed; exit\n").await;
    read_until(&mut ws, "signed").await;
    exit_status(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_signs_the_upstream_upgrade_with_sigv4() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let (ak, sk, token) = SIGV4_KEYS;
    // Credentials from the environment.
    let pd = Dir::new();
    let env = [
        ("AWS_ACCESS_KEY_ID", ak.to_string()),
        ("AWS_SECRET_ACCESS_KEY", sk.to_string()),
        ("AWS_SESSION_TOKEN", token.to_string()),
    ];
    signed_shell(&py, &pd, &env).await;
    // Credentials from a profile's credential_process (the standard chain,
    // as for SSO and roles).
    let pd = Dir::new();
    let script = pd.join("creds.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho '{{\"Version\": 1, \"AccessKeyId\": \"{ak}\", \"SecretAccessKey\": \"{sk}\", \"SessionToken\": \"{token}\"}}'\n"),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(&script)
        .status()
        .unwrap();
    let config = pd.join("aws-config");
    std::fs::write(
        &config,
        format!("[profile tt]\ncredential_process = {}\n", script.display()),
    )
    .unwrap();
    let env = [
        ("AWS_CONFIG_FILE", config.display().to_string()),
        ("AWS_PROFILE", "tt".to_string()),
    ];
    signed_shell(&py, &pd, &env).await;
    let arn = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/signed-test";
    // Without credentials the proxy refuses to start, saying why.
    let r = Dir::new().run(&[
        "proxy",
        "--no-auth",
        "--upstream",
        "wss://bedrock-agentcore.us-west-2.amazonaws.com",
        "--runtime",
        arn,
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("AWS credentials"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_credentials_never_reach_clients_logs_or_recordings() {
    let d = Dir::new();
    let upstream = Server::start(&d, &[]);
    // Reachable: the shell works; the header names the upstream without
    // its userinfo or query values.
    let pd = Dir::new();
    let url = format!(
        "ws://ann:s3cret@{}/runtimes/{ARN}/ws/shells?token=t0psecret",
        upstream.addr
    );
    let px = proxy(&pd, &url, &[]);
    let (mut ws, _) = open(&px.url("cred")).await;
    stdin(&mut ws, "echo c-$((6*7))\nexit\n").await;
    read_until(&mut ws, "c-42").await;
    exit_status(&mut ws).await;
    let rec = wait_until(
        10,
        || "the proxy's recording".into(),
        || px.recordings().into_iter().next(),
    );
    verified(&pd, &rec, "exited");
    let text = zstd_dc(&rec);
    let header = text.lines().next().unwrap();
    assert!(header.contains("REDACTED@"), "{header}");
    for secret in ["s3cret", "t0psecret"] {
        assert!(
            !text.contains(secret),
            "{secret} in the recording: {header}"
        );
    }
    // Unreachable: the refusal and the log do not quote the secret.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let qd = Dir::new();
    let url =
        format!("ws://ann:s3cret@127.0.0.1:{port}/runtimes/a/ws/shells?X-Amz-Signature=t0psecret");
    let px2 = proxy(&qd, &url, &[]);
    let err = connect(&px2.url("gone"), SESSION).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
        panic!("{err}")
    };
    assert_eq!(resp.status().as_u16(), 502);
    let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned();
    assert!(body.contains("REDACTED"), "{body}");
    for secret in ["s3cret", "t0psecret"] {
        assert!(!body.contains(secret), "{body}");
        assert!(!px2.log.lock().unwrap().contains(secret));
        assert!(!px.log.lock().unwrap().contains(secret));
    }
}
