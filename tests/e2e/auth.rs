//! Authentication on `serve` (issue 13 §1) with JWTs minted by an
//! independent library (PyJWT, tests/python/jwt_tool.py) against a JWKS file
//! and an OIDC discovery endpoint the test runs; both token carriages; the
//! AgentCore SDK's ShellSession with a bearer token. IAM and the start-up
//! refusals: `auth_iam.rs`. The helpers here serve both.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::util::*;

pub(crate) const ISSUER: &str = "https://idp.termtrail.test";

fn tool(py: &str, args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/jwt_tool.py");
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "jwt_tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Keys `kids` in `dir/keys`, their JWKS at `jwks`.
pub(crate) fn keys(py: &str, dir: &Path, jwks: &Path, kids: &[&str]) {
    let k = dir.join("keys").to_string_lossy().into_owned();
    let mut args = vec!["keys", k.as_str()];
    args.extend_from_slice(kids);
    tool(py, &args);
    publish(py, dir, jwks, kids);
}

/// Writes the JWKS of (existing) keys `kids` to `jwks`.
fn publish(py: &str, dir: &Path, jwks: &Path, kids: &[&str]) {
    let k = dir.join("keys").to_string_lossy().into_owned();
    let j = jwks.to_string_lossy().into_owned();
    let mut args = vec!["jwks", k.as_str(), j.as_str()];
    args.extend_from_slice(kids);
    tool(py, &args);
}

/// A token signed with `kid`'s key (`alg` overrides the header's).
pub(crate) fn mint(py: &str, dir: &Path, kid: &str, claims: Value, alg: Option<&str>) -> String {
    let k = dir.join("keys").to_string_lossy().into_owned();
    let c = claims.to_string();
    let mut args = vec!["mint", k.as_str(), kid, c.as_str()];
    args.extend(alg);
    tool(py, &args)
}

/// Claims that pass the host's checks, with `extra` merged in.
pub(crate) fn claims(extra: Value) -> Value {
    let mut c = serde_json::json!({
        "sub": "ann", "iss": ISSUER, "aud": "termtrail", "client_id": "cli-1",
        "exp": "+300", "iat": "-5", "groups": ["oncall", "dev"],
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// `serve` with `args` (authentication flags) into `d/store`.
pub(crate) fn serve(d: &Dir, args: &[&str]) -> Server {
    let store = d.join("store");
    let s = store.to_string_lossy().into_owned();
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--store", &s];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "bash", "--norc", "--noprofile"]);
    Server::spawn(d.cmd(&all), &store)
}

pub(crate) enum Carry<'a> {
    Header(&'a str),
    Subprotocol(&'a str),
    Raw(&'a str, &'a str),
    Nothing,
}

pub(crate) async fn connect(
    url: &str,
    carry: Carry<'_>,
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
> {
    let mut req = url.into_client_request()?;
    let h = req.headers_mut();
    h.insert(
        "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id",
        SESSION.parse().unwrap(),
    );
    match carry {
        Carry::Header(t) => {
            h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        Carry::Subprotocol(t) => {
            let enc = b64url(t.as_bytes());
            let v = format!("base64UrlBearerAuthorization.{enc}, base64UrlBearerAuthorization");
            h.insert("sec-websocket-protocol", v.parse().unwrap());
        }
        Carry::Raw(k, v) => {
            h.insert(http_name(k), v.parse().unwrap());
        }
        Carry::Nothing => {}
    }
    tokio_tungstenite::connect_async(req).await
}

fn http_name(k: &str) -> tokio_tungstenite::tungstenite::http::HeaderName {
    k.parse().unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The refusal's (HTTP status, Status reason); panics if it was accepted.
pub(crate) async fn refused(url: &str, carry: Carry<'_>) -> (u16, String) {
    match connect(url, carry).await {
        Ok(_) => panic!("accepted"),
        Err(WsError::Http(resp)) => {
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["kind"], "Status");
            assert_eq!(body["code"], resp.status().as_u16());
            (
                resp.status().as_u16(),
                body["reason"].as_str().unwrap().to_string(),
            )
        }
        Err(e) => panic!("{e}"),
    }
}

/// Runs `echo`, exits 0, and returns the recording's header.
pub(crate) async fn shell_round_trip(ws: &mut Ws, word: &str) {
    status(ws).await;
    stdin(ws, &format!("echo {word}-$((6*7))\n")).await;
    read_until(ws, &format!("{word}-42")).await;
    stdin(ws, "exit\n").await;
    assert_eq!(exit_status(ws).await["status"], "Success");
}

/// The `termtrail` block of the header of the recording of shell `shell`.
/// (The first whose shell id starts with `shell`; waits until it is sealed:
/// it verifies intact.)
pub(crate) fn header_of(server: &Server, shell: &str) -> Value {
    let rec = wait_until(
        10,
        || format!("the sealed recording of {shell}"),
        || {
            let rec = server
                .recordings()
                .into_iter()
                .find(|p| p.to_string_lossy().contains(&format!("/{shell}")))?;
            let verify = Command::new(bin()).arg("verify").arg(&rec).output().ok()?;
            verify.status.success().then_some(rec)
        },
    );
    let text = zstd_dc(&rec);
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    header["termtrail"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn jwts_from_a_jwks_file_in_both_carriages_and_every_refusal() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let jwks = d.join("jwks.json");
    keys(&py, d.path(), &jwks, &["rs1", "es1", "ed1", "rs9"]);
    // rs9 is not published: its tokens have an unknown key id.
    publish(&py, d.path(), &jwks, &["rs1", "es1", "ed1"]);
    let j = jwks.to_string_lossy().into_owned();
    let server = serve(
        &d,
        &[
            "--auth",
            "jwt",
            "--jwt-jwks",
            &j,
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            "other",
            "--jwt-audience",
            "termtrail",
            "--jwt-client-id",
            "cli-1",
            "--jwt-client-id",
            "cli-2",
        ],
    );
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .contains("::: authentication: jwt")
    );

    // RS256 in the header: the identity goes into the recording.
    let t = mint(&py, d.path(), "rs1", claims(serde_json::json!({})), None);
    let (mut ws, _) = connect(&server.url("rsh"), Carry::Header(&t))
        .await
        .unwrap();
    shell_round_trip(&mut ws, "rs").await;
    let h = header_of(&server, "rsh");
    assert_eq!(h["principal"], "ann");
    assert_eq!(h["auth"], "jwt");
    assert_eq!(h["groups"], serde_json::json!(["oncall", "dev"]));
    assert!(
        h["source_addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{h}"
    );

    // ES256 as a subprotocol: the host selects the bare marker, never the token.
    let t = mint(
        &py,
        d.path(),
        "es1",
        claims(
            serde_json::json!({"sub": "bob", "groups": null, "cognito:groups": ["ops"], "client_id": null, "azp": "cli-2"}),
        ),
        None,
    );
    let (mut ws, resp) = connect(&server.url("esh"), Carry::Subprotocol(&t))
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "base64UrlBearerAuthorization"
    );
    shell_round_trip(&mut ws, "es").await;
    let h = header_of(&server, "esh");
    assert_eq!(
        (h["principal"].as_str(), h["groups"].clone()),
        (Some("bob"), serde_json::json!(["ops"]))
    );

    // EdDSA, audience given as a list.
    let t = mint(
        &py,
        d.path(),
        "ed1",
        claims(serde_json::json!({"aud": ["x", "termtrail"]})),
        None,
    );
    let (mut ws, _) = connect(&server.url("edh"), Carry::Header(&t))
        .await
        .unwrap();
    shell_round_trip(&mut ws, "ed").await;

    let url = server.url("never");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            mint(
                &py,
                d.path(),
                "rs1",
                claims(serde_json::json!({"exp": "-120"})),
                None,
            ),
            "TokenExpired",
        ),
        (
            "nbf ahead",
            mint(
                &py,
                d.path(),
                "rs1",
                claims(serde_json::json!({"nbf": "+600"})),
                None,
            ),
            "TokenNotYetValid",
        ),
        (
            "no exp",
            mint(
                &py,
                d.path(),
                "rs1",
                claims(serde_json::json!({"exp": null})),
                None,
            ),
            "MalformedToken",
        ),
        (
            "wrong iss",
            mint(
                &py,
                d.path(),
                "rs1",
                claims(serde_json::json!({"iss": "https://evil.test"})),
                None,
            ),
            "WrongIssuer",
        ),
        (
            "wrong aud",
            mint(
                &py,
                d.path(),
                "rs1",
                claims(serde_json::json!({"aud": "someone-else"})),
                None,
            ),
            "WrongAudience",
        ),
        (
            "wrong client",
            mint(
                &py,
                d.path(),
                "es1",
                claims(serde_json::json!({"client_id": "cli-3"})),
                None,
            ),
            "WrongClient",
        ),
        (
            "unknown kid",
            mint(&py, d.path(), "rs9", claims(serde_json::json!({})), None),
            "UnknownKey",
        ),
        (
            "alg none",
            mint(
                &py,
                d.path(),
                "rs1",
                claims(serde_json::json!({})),
                Some("none"),
            ),
            "UnsupportedAlgorithm",
        ),
        (
            "HS256 with the public key",
            mint(
                &py,
                d.path(),
                "rs1",
                claims(serde_json::json!({})),
                Some("HS256"),
            ),
            "UnsupportedAlgorithm",
        ),
        ("garbage", "not-a-token".into(), "MalformedToken"),
        ("huge", "a".repeat(17 * 1024), "TokenTooLarge"),
    ];
    for (what, token, want) in &cases {
        let (code, reason) = refused(&url, Carry::Header(token)).await;
        assert_eq!((code, reason.as_str()), (401, *want), "{what} (header)");
    }
    // A signature that does not verify: es1's claims with ed1's… signature.
    let good = mint(&py, d.path(), "rs1", claims(serde_json::json!({})), None);
    let other = mint(
        &py,
        d.path(),
        "rs1",
        claims(serde_json::json!({"sub": "mallory"})),
        None,
    );
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(
        refused(&url, Carry::Header(&forged)).await,
        (401, "BadSignature".into())
    );
    // The same refusals through the subprotocol carriage.
    for (what, token, want) in cases.iter().filter(|c| c.0 != "huge") {
        let (code, reason) = refused(&url, Carry::Subprotocol(token)).await;
        assert_eq!(
            (code, reason.as_str()),
            (401, *want),
            "{what} (subprotocol)"
        );
    }
    assert_eq!(refused(&url, Carry::Nothing).await, (401, "NoToken".into()));
    assert_eq!(
        refused(&url, Carry::Raw("authorization", "Basic YTpi")).await,
        (401, "MalformedToken".into())
    );
    let big = format!("base64UrlBearerAuthorization.{}", "QUFB".repeat(6000));
    assert_eq!(
        refused(&url, Carry::Raw("sec-websocket-protocol", &big)).await,
        (401, "TokenTooLarge".into())
    );
    // Nothing started for refused clients; the unknown kid is logged; no
    // token reaches the log.
    assert_eq!(server.recordings().len(), 3, "{:?}", server.recordings());
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains("unknown key id") && log.contains("rs9"),
        "{log}"
    );
    for (_, token, _) in &cases {
        if token.len() > 40 {
            assert!(
                !log.contains(&token[token.len() - 40..]),
                "a token in the log"
            );
        }
    }
    let metrics = http_get(&server.addr, "/metrics");
    assert!(
        metrics.contains("termtrail_auth_failures_total "),
        "{metrics}"
    );

    // exec: the token from --token-file or TERMTRAIL_TOKEN; none → refused.
    let tf = d.join("token");
    std::fs::write(&tf, format!("{good}\n")).unwrap();
    let base = format!("ws://{}", server.addr);
    let r = d.run(&[
        "exec",
        &base,
        "--token-file",
        &tf.to_string_lossy(),
        "--",
        "echo",
        "via-file",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "via-file\n"), "{r:?}");
    let r = run(
        d.cmd(&["exec", &base, "--", "echo", "via-env"])
            .env("TERMTRAIL_TOKEN", &good),
        b"",
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "via-env\n"), "{r:?}");
    let r = run(
        d.cmd(&["exec", &base, "--", "true"])
            .env_remove("TERMTRAIL_TOKEN"),
        b"",
    );
    assert!(
        r.code != 0 && r.stderr.contains("HTTP 401") && r.stderr.contains("no token"),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_rotation_and_an_identity_provider_that_goes_down() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let web = d.join("web");
    std::fs::create_dir_all(web.join(".well-known")).unwrap();
    keys(
        &py,
        d.path(),
        &web.join("jwks.json"),
        &["rs1", "ed2", "es3"],
    );
    publish(&py, d.path(), &web.join("jwks.json"), &["rs1"]);
    let web_s = web.to_string_lossy().into_owned();
    let idp = PeerServer::start(&py, "jwt_tool.py", &["serve", &web_s], &d);
    let base = format!("http://127.0.0.1:{}", idp.port);
    std::fs::write(
        web.join(".well-known/openid-configuration"),
        serde_json::json!({"issuer": ISSUER, "jwks_uri": format!("{base}/jwks.json")}).to_string(),
    )
    .unwrap();
    let discovery = format!("{base}/.well-known/openid-configuration");
    let server = serve(&d, &["--auth", "jwt", "--jwt-discovery-url", &discovery]);
    let url = server.url("x");
    let t1 = mint(&py, d.path(), "rs1", claims(serde_json::json!({})), None);
    let (mut ws, _) = connect(&server.url("d1"), Carry::Header(&t1))
        .await
        .unwrap();
    shell_round_trip(&mut ws, "d1").await;
    // The issuer comes from the discovery document.
    let wrong = mint(
        &py,
        d.path(),
        "rs1",
        claims(serde_json::json!({"iss": "https://other.test"})),
        None,
    );
    assert_eq!(
        refused(&url, Carry::Header(&wrong)).await,
        (401, "WrongIssuer".into())
    );
    // The provider rotates in a new key: the host refetches for its kid.
    publish(&py, d.path(), &web.join("jwks.json"), &["rs1", "ed2"]);
    let t2 = mint(
        &py,
        d.path(),
        "ed2",
        claims(serde_json::json!({"sub": "rotated"})),
        None,
    );
    let (mut ws, _) = connect(&server.url("d2"), Carry::Header(&t2))
        .await
        .unwrap();
    shell_round_trip(&mut ws, "d2").await;
    assert_eq!(header_of(&server, "d2")["principal"], "rotated");
    // The provider goes down: cached keys keep working, an unknown kid is
    // refused (and logged).
    drop(idp);
    let (mut ws, _) = connect(&server.url("d3"), Carry::Header(&t1))
        .await
        .unwrap();
    shell_round_trip(&mut ws, "d3").await;
    let t3 = mint(&py, d.path(), "es3", claims(serde_json::json!({})), None);
    assert_eq!(
        refused(&url, Carry::Header(&t3)).await,
        (401, "UnknownKey".into())
    );
    assert!(server.log.lock().unwrap().contains("unknown key id"));
}

#[test]
fn the_agentcore_sdk_opens_a_shell_with_a_bearer_token() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let jwks = d.join("jwks.json");
    keys(&py, d.path(), &jwks, &["rs1"]);
    let server = serve(
        &d,
        &["--auth", "jwt", "--jwt-jwks", &jwks.to_string_lossy()],
    );
    let sdk = |token: &str| -> Value {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_oauth.py");
        let out = Command::new(&py)
            .arg(script)
            .arg(&server.addr)
            .arg(token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let t = mint(
        &py,
        d.path(),
        "rs1",
        claims(serde_json::json!({"sub": "sdk-user"})),
        None,
    );
    let v = sdk(&t);
    assert_eq!(v["exit_code"], 3, "{v}");
    assert_eq!(v["subprotocol"], "base64UrlBearerAuthorization", "{v}");
    assert!(
        v["output"].as_str().unwrap().contains("sdk-oauth-42"),
        "{v}"
    );
    assert_eq!(header_of(&server, "sdkoauth")["principal"], "sdk-user");
    let expired = mint(
        &py,
        d.path(),
        "rs1",
        claims(serde_json::json!({"exp": "-300"})),
        None,
    );
    let v = sdk(&expired);
    assert_eq!(v["status"], 401, "{v}");
    assert!(v["body"].as_str().unwrap().contains("TokenExpired"), "{v}");
}

#[test]
fn attach_through_an_authenticating_proxy_records_the_principal() {
    let Some(py) = peer("TERMTRAIL_PYTHON") else {
        return;
    };
    let d = Dir::new();
    let jwks = d.join("jwks.json");
    keys(&py, d.path(), &jwks, &["ed1"]);
    let up = Server::start(&d, &[]);
    let pd = Dir::new();
    let pstore = pd.join("store");
    let ps = pstore.to_string_lossy().into_owned();
    let j = jwks.to_string_lossy().into_owned();
    let upstream = format!("ws://{}", up.addr);
    let px = Server::spawn(
        pd.cmd(&[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &ps,
            "--upstream",
            &upstream,
            "--auth",
            "jwt",
            "--jwt-jwks",
            &j,
        ]),
        &pstore,
    );
    let url = format!("ws://{}", px.addr);
    let token = mint(
        &py,
        d.path(),
        "ed1",
        claims(serde_json::json!({"sub": "via-proxy"})),
        None,
    );
    let tf = d.join("token");
    std::fs::write(&tf, &token).unwrap();
    let tfs = tf.to_string_lossy().into_owned();
    let r = d.run_with_input(
        &["attach", &url, "--shell", "pxauth", "--token-file", &tfs],
        b"echo proxied-$((2*21))\nexit 4\n",
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.contains("proxied-42"), "{}", r.stdout);
    let h = header_of(&px, "pxauth");
    assert_eq!(
        (h["principal"].as_str(), h["auth"].as_str()),
        (Some("via-proxy"), Some("jwt"))
    );
    assert!(!r.stderr.contains(&token) && !px.log.lock().unwrap().contains(&token));
    // Without a token: refused before any upstream shell is opened.
    let r = run(
        d.cmd(&["attach", &url, "--shell", "nope"])
            .env_remove("TERMTRAIL_TOKEN"),
        b"",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("HTTP 401") && r.stderr.contains("no token"),
        "{r:?}"
    );
    assert_eq!(up.recordings().len(), 1, "{:?}", up.recordings());
}
