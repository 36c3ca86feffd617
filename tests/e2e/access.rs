//! The access policy on `serve` and `proxy` (issue 13 §2–3): a decision
//! matrix over WebSocket and the command call with JWTs minted by PyJWT
//! (principals × groups × environments × actions × break-glass × expired
//! tokens) against docs/policy/team.cedar, break-glass expiry, re-attach by
//! another principal, SIGHUP reloads, and the AgentCore SDK through an
//! authenticating proxy.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::auth::{ISSUER, claims, header_of, keys, mint};
use crate::util::*;

const BREAK_GLASS: &str = "X-Termtrail-Break-Glass";

fn doc(name: &str) -> String {
    format!("{}/docs/policy/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Connects with a bearer token and, when given, a break-glass reason.
async fn connect_as(url: &str, token: &str, reason: Option<&str>) -> Result<Ws, (u16, Value)> {
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert(
        "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id",
        SESSION.parse().unwrap(),
    );
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(r) = reason {
        h.insert(BREAK_GLASS, r.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => {
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("{e}"),
    }
}

/// A token for `sub` in `groups` (expired when `expired`).
fn token(py: &str, dir: &Path, sub: &str, groups: &[&str], expired: bool) -> String {
    let exp = if expired { "-120" } else { "+600" };
    mint(
        py,
        dir,
        "rs1",
        claims(json!({"sub": sub, "groups": groups, "exp": exp, "iat": "-700"})),
        None,
    )
}

/// The host's flags for JWTs from `jwks` and the team policy.
fn policy_flags(jwks: &Path) -> Vec<String> {
    [
        "--auth",
        "jwt",
        "--jwt-jwks",
        &jwks.to_string_lossy(),
        "--jwt-issuer",
        ISSUER,
        "--policy",
        &doc("team.cedar"),
        "--policy-schema",
        &doc("termtrail.cedarschema"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn serve_with(d: &Dir, flags: &[String]) -> Server {
    let store = d.join("store");
    let s = store.to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec!["serve", "--listen", "127.0.0.1:0", "--store", &s];
    args.extend(flags.iter().map(String::as_str));
    args.extend_from_slice(&["--", "bash", "--norc", "--noprofile"]);
    Server::spawn(d.cmd(&args), &store)
}

/// `exec` of `echo ok` as `token`, with a break-glass reason when given.
fn exec_as(d: &Dir, server: &Server, token: &str, reason: Option<&str>) -> Run {
    let base = format!("ws://{}", server.addr);
    let mut args = vec!["exec", &base];
    if let Some(r) = reason {
        args.extend_from_slice(&["--break-glass", r]);
    }
    args.extend_from_slice(&["--", "echo", "ok"]);
    run(d.cmd(&args).env("TERMTRAIL_TOKEN", token), b"")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_decides_every_connect_and_command_in_production() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let jwks = d.join("jwks.json");
    keys(&py, d.path(), &jwks, &["rs1"]);
    let mut flags = policy_flags(&jwks);
    let audit_log = d.join("audit.jsonl");
    flags.extend([
        "--audit".to_string(),
        audit_log.to_string_lossy().into_owned(),
    ]);
    flags.extend(
        [
            "--environment",
            "production",
            "--break-glass-duration",
            "3s",
        ]
        .map(str::to_string),
    );
    let server = serve_with(&d, &flags);
    assert!(
        server.log.lock().unwrap().contains("::: access policy: "),
        "{}",
        server.log.lock().unwrap()
    );
    let ann = token(&py, d.path(), "ann", &["oncall"], false);
    let carl = token(&py, d.path(), "carl", &["oncall", "developers"], false);
    let bob = token(&py, d.path(), "bob", &["developers"], false);
    let olga = token(&py, d.path(), "olga", &["operators"], false);
    let ann_expired = token(&py, d.path(), "ann", &["oncall"], true);

    // Shells: (token, break-glass reason, expected HTTP status, text the
    // refusal's message must hold).
    let shells: &[(&str, &str, Option<&str>, u16, &str)] = &[
        (
            "ann, no reason",
            &ann,
            None,
            403,
            "allowed with break-glass",
        ),
        (
            "bob, developers",
            &bob,
            None,
            403,
            "forbidden by production-shells-need-break-glass",
        ),
        (
            "bob with a reason",
            &bob,
            Some("curious"),
            403,
            "forbidden by production-shells-need-break-glass",
        ),
        ("olga, operators", &olga, None, 403, "may not OpenShell"),
        (
            "olga with a reason",
            &olga,
            Some("INC-9"),
            403,
            "may not OpenShell",
        ),
        ("ann, expired token", &ann_expired, Some("INC-1"), 401, ""),
        (
            "ann, empty reason",
            &ann,
            Some("  "),
            400,
            "must state a reason",
        ),
    ];
    for (case, t, reason, status, text) in shells {
        let (got, body) = connect_as(&server.url("denied"), t, *reason)
            .await
            .err()
            .unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(got, *status, "{case}: {body}");
        assert_eq!(body["kind"], "Status", "{case}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(text),
            "{case}: {body}"
        );
        if *status == 403 {
            assert_eq!(body["reason"], "AccessDenied", "{case}: {body}");
        }
    }
    // A developer who asked for break-glass is not told to ask for it.
    let (_, body) = connect_as(&server.url("denied"), &bob, Some("curious"))
        .await
        .err()
        .unwrap();
    assert!(
        !body["message"].as_str().unwrap().contains("break-glass:"),
        "{body}"
    );
    assert!(
        server.recordings().is_empty(),
        "a refused connect records nothing: {:?}",
        server.recordings()
    );

    // On-call with a reason: a shell, time-boxed at 3 s; the reason in the
    // header; at expiry a BreakGlassExpired status, then the exit status.
    let mut ws = connect_as(&server.url("glass"), &ann, Some("INC-4211 agent stuck"))
        .await
        .unwrap();
    status(&mut ws).await;
    stdin(&mut ws, "echo in-$((6*7))\n").await;
    read_until(&mut ws, "in-42").await;
    // Only the principal that opened it may re-attach, even one the policy
    // lets open shells.
    let (got, body) = connect_as(&server.url("glass"), &carl, Some("INC-4211"))
        .await
        .expect_err("another principal re-attaching");
    assert_eq!(got, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("another principal"),
        "{body}"
    );
    let notice = exit_status(&mut ws).await;
    assert_eq!(notice["reason"], "BreakGlassExpired", "{notice}");
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("break-glass period of 3s is over"),
        "{notice}"
    );
    let exit = exit_status(&mut ws).await;
    assert!(
        exit.get("reason") != Some(&json!("BreakGlassExpired")),
        "{exit}"
    );
    let h = header_of(&server, "glass");
    assert_eq!(h["principal"], "ann");
    assert_eq!(h["reason"], "INC-4211 agent stuck");
    let rec = server
        .recordings()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/glass"))
        .unwrap();
    let v = verified(&d, &rec, "break-glass period");
    assert!(
        v.stdout.contains("break-glass period of 3s is over"),
        "{v:?}"
    );

    // Commands are their own grant: operators may run them where nobody
    // may open a shell without break-glass; on-call may not, even with a
    // reason (their break-glass grant covers shells only).
    let r = exec_as(&d, &server, &olga, None);
    assert_eq!((r.code, r.stdout.as_str()), (0, "ok\n"), "{r:?}");
    for (case, t, reason) in [
        ("bob", &bob, None),
        ("ann", &ann, None),
        ("ann with a reason", &ann, Some("INC-1")),
    ] {
        let r = exec_as(&d, &server, t, reason);
        assert!(
            r.code != 0 && r.stderr.contains("HTTP 403") && r.stderr.contains("RunCommand"),
            "{case}: {r:?}"
        );
    }
    let r = exec_as(&d, &server, &ann_expired, None);
    assert!(r.code != 0 && r.stderr.contains("HTTP 401"), "{r:?}");

    let metrics = http_get(&server.addr, "/metrics");
    let count = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(count("termtrail_access_denied_total") >= 10, "{metrics}");
    assert_eq!(count("termtrail_break_glass_grants_total"), 1, "{metrics}");
    // Tokens never reach the log.
    let log = server.log.lock().unwrap().clone();
    assert!(!log.contains(&ann[..40]), "{log}");

    // Every decision is in the audit log, which verifies intact.
    let mut server = server;
    assert_eq!(server.stop(), 0);
    let text = std::fs::read_to_string(&audit_log).unwrap();
    assert!(!text.contains(&ann[..40]), "no token in the audit log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<&Value> = lines.iter().filter(|l| l["event"] == "decision").collect();
    // 7 refused shells, bob again, the glass shell, carl's re-attach; 5 commands.
    assert_eq!(decisions.len(), 15, "{text}");
    let find = |pred: &dyn Fn(&Value) -> bool| -> &Value {
        decisions
            .iter()
            .find(|d| pred(d))
            .unwrap_or_else(|| panic!("no such decision in {text}"))
    };
    let d1 = find(&|d| d["principal"] == "bob" && d["action"] == "OpenShell");
    assert_eq!(d1["allowed"], false);
    assert_eq!(
        d1["policies"],
        json!(["production-shells-need-break-glass"]),
        "{d1}"
    );
    assert_eq!(d1["environment"], "production");
    assert_eq!(d1["groups"], json!(["developers"]));
    let d2 = find(&|d| d["principal"] == "ann" && d["allowed"] == true);
    assert_eq!(d2["break_glass"], "INC-4211 agent stuck", "{d2}");
    assert_eq!(d2["policies"], json!(["oncall-break-glass"]), "{d2}");
    assert_eq!(d2["shell"], "glass");
    let d3 = find(&|d| d["principal"] == "carl");
    assert_eq!(d3["allowed"], false);
    assert!(
        d3["reason"].as_str().unwrap().contains("another principal"),
        "{d3}"
    );
    let d4 = find(&|d| d["principal"] == "" && d["action"] == "RunCommand");
    assert!(
        d4["reason"].as_str().unwrap().contains("TokenExpired"),
        "{d4}"
    );
    let d5 = find(&|d| d["principal"] == "olga" && d["action"] == "RunCommand");
    assert_eq!(d5["allowed"], true);
    assert_eq!(d5["policies"], json!(["operators-run-commands"]));
    let start = lines
        .iter()
        .find(|l| l["event"] == "shell_start")
        .expect("shell_start");
    assert_eq!(start["principal"], "ann");
    assert_eq!(start["auth"], "jwt");
    assert_eq!(start["break_glass"], "INC-4211 agent stuck");
    let r = d.run(&["verify", "--audit", &audit_log.to_string_lossy()]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_dev_developers_open_shells_without_break_glass_and_without_a_deadline() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let jwks = d.join("jwks.json");
    keys(&py, d.path(), &jwks, &["rs1"]);
    let mut flags = policy_flags(&jwks);
    flags.extend(["--environment", "dev", "--break-glass-duration", "1s"].map(str::to_string));
    let server = serve_with(&d, &flags);
    let bob = token(&py, d.path(), "bob", &["developers"], false);
    let olga = token(&py, d.path(), "olga", &["operators"], false);
    let mut ws = connect_as(&server.url("dev"), &bob, None).await.unwrap();
    status(&mut ws).await;
    // Longer than the break-glass duration: no deadline for this grant.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    stdin(&mut ws, "echo dev-$((6*7))\n").await;
    read_until(&mut ws, "dev-42").await;
    stdin(&mut ws, "exit\n").await;
    assert_eq!(exit_status(&mut ws).await["status"], "Success");
    let h = header_of(&server, "dev");
    assert_eq!(h["principal"], "bob");
    assert!(h.get("reason").is_none(), "{h}");
    let (got, body) = connect_as(&server.url("dev2"), &olga, None)
        .await
        .expect_err("operators have no shells in dev");
    assert_eq!(got, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no policy permits it"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_policy_and_a_broken_one_leaves_the_old_in_force() {
    let d = Dir::new();
    let policy = d.join("p.cedar");
    std::fs::write(
        &policy,
        "@id(\"nobody\")\nforbid (principal, action, resource);\n",
    )
    .unwrap();
    let p = policy.to_string_lossy().into_owned();
    let server = Server::start(&d, &["--policy", &p]);
    let open_shell = |shell: &'static str| {
        let url = server.url(shell);
        async move {
            match connect(&url, SESSION).await {
                Ok((mut ws, _)) => {
                    status(&mut ws).await;
                    stdin(&mut ws, "exit\n").await;
                    exit_status(&mut ws).await;
                    200
                }
                Err(WsError::Http(r)) => r.status().as_u16(),
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(open_shell("a").await, 403);
    std::fs::write(
        &policy,
        "@id(\"everyone\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    let hup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
    };
    hup(server.child.id());
    wait_until(
        10,
        || format!("the reload: {}", server.log.lock().unwrap()),
        || {
            server
                .log
                .lock()
                .unwrap()
                .contains("policy reloaded")
                .then_some(())
        },
    );
    assert_eq!(open_shell("b").await, 200);
    std::fs::write(&policy, "permit (principal, action, resource)\n oops;\n").unwrap();
    hup(server.child.id());
    let log = wait_until(
        10,
        || format!("the failed reload: {}", server.log.lock().unwrap()),
        || {
            let log = server.log.lock().unwrap().clone();
            log.contains("policy reload failed").then_some(log)
        },
    );
    assert!(
        log.contains(&format!("{p}:")),
        "the log names the file and line: {log}"
    );
    assert_eq!(open_shell("c").await, 200, "the old policy stays in force");
}

/// A proxy in front of `upstream` that opens `runtime` there, deciding with
/// the team policy and the environments file `envs`.
fn proxy_on(d: &Dir, upstream: &Server, runtime: &str, envs: &Path, jwks: &Path) -> Server {
    let store = d.join("store");
    let s = store.to_string_lossy().into_owned();
    let up = format!("ws://{}", upstream.addr);
    let mut args: Vec<String> = [
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--store",
        &s,
        "--upstream",
        &up,
        "--runtime",
        runtime,
        "--environments",
        &envs.to_string_lossy(),
    ]
    .map(str::to_string)
    .to_vec();
    args.extend(policy_flags(jwks));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::spawn(d.cmd(&argv), &store)
}

/// The AgentCore SDK's ShellSession (bearer token as subprotocol) through
/// the host at `addr`: its JSON report (tests/python/sdk_oauth.py).
fn sdk(py: &str, addr: &str, token: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_oauth.py");
    let out = Command::new(py)
        .arg(script)
        .arg(addr)
        .arg(token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_decides_on_the_runtime_it_opens_for_the_sdk_and_raw_clients() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let upstream = Server::start(&d, &[]);
    let jwks = d.join("jwks.json");
    keys(&py, d.path(), &jwks, &["rs1"]);
    let envs = d.join("environments.txt");
    std::fs::write(
        &envs,
        "# test\narn:aws:bedrock-agentcore:*:123456789012:runtime/prod-* production\narn:aws:bedrock-agentcore:*:*:runtime/* dev\n",
    )
    .unwrap();
    let dev_arn = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/shop";
    let prod_arn = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/prod-shop";
    let bob = token(&py, d.path(), "bob", &["developers"], false);

    // A proxy on the dev runtime: a developer's raw client and SDK session
    // are allowed; the proxy's recording names bob.
    let pd = Dir::new();
    let dev = proxy_on(&pd, &upstream, dev_arn, &envs, &jwks);
    let mut ws = connect_as(&dev.url("pxdev"), &bob, None).await.unwrap();
    status(&mut ws).await;
    stdin(&mut ws, "echo px-$((6*7))\nexit\n").await;
    read_until(&mut ws, "px-42").await;
    assert_eq!(exit_status(&mut ws).await["status"], "Success");
    assert_eq!(header_of(&dev, "pxdev")["principal"], "bob");
    let v = sdk(&py, &dev.addr, &bob);
    assert_eq!(v["exit_code"], 3, "{v}");
    assert!(
        v["output"].as_str().unwrap().contains("sdk-oauth-42"),
        "{v}"
    );

    // A proxy on the production runtime decides on it, whatever runtime the
    // client's URL names (both clients name a dev-looking one): refused by
    // the forbid policy before anything starts upstream.
    let qd = Dir::new();
    let prod = proxy_on(&qd, &upstream, prod_arn, &envs, &jwks);
    let before = upstream.recordings().len();
    let (got, body) = connect_as(&prod.url("pxprod"), &bob, None)
        .await
        .expect_err("a developer on the production runtime");
    assert_eq!(got, 403, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("runtime/prod-shop\" (environment \"production\")"),
        "{body}"
    );
    let v = sdk(&py, &prod.addr, &bob);
    assert_eq!(v["status"], 403, "{v}");
    let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["reason"], "AccessDenied", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("environment \"production\""),
        "{body}"
    );
    assert_eq!(
        upstream.recordings().len(),
        before,
        "nothing started upstream"
    );

    // serve refuses --environments: its runtime comes from the client.
    let r = d.run(&[
        "serve",
        "--no-auth",
        "--environments",
        &envs.to_string_lossy(),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--environment NAME"), "{r:?}");
}
