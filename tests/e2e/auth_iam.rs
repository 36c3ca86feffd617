//! Authentication on `serve` (issue 13 §1), continued: IAM tokens checked
//! by moto's STS with its IAM authentication on (minted by `exec` from the
//! AWS credential chain, and by botocore's signer from docs/protocol.md §8.4
//! alone), and the start-up refusals.

use std::process::Command;

use crate::auth::{Carry, connect, header_of, refused, serve, shell_round_trip};
use crate::util::*;

/// boto3 against moto: creates IAM user `name` with an access key allowed
/// everything; (access key id, secret).
fn iam_user(moto: &Moto, name: &str) -> (String, String) {
    let out = moto.py(&format!(
        "iam = boto3.client('iam', endpoint_url='{e}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
iam.create_user(UserName='{name}')\n\
p = iam.create_policy(PolicyName='all-{name}', PolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}}]}}))\n\
iam.attach_user_policy(UserName='{name}', PolicyArn=p['Policy']['Arn'])\n\
k = iam.create_access_key(UserName='{name}')['AccessKey']\n\
print(k['AccessKeyId'], k['SecretAccessKey'])",
        e = moto.endpoint()
    ));
    let mut it = out.split_whitespace();
    (
        it.next().unwrap().to_string(),
        it.next().unwrap().to_string(),
    )
}

fn iam_token(py: &str, url: &str, server_id: &str, key: &(String, String), age: u64) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/iam_token.py");
    let out = Command::new(py)
        .args([script, url, server_id, "us-east-1", &age.to_string()])
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_tokens_checked_by_moto_sts() {
    // Four free requests create the user, its policy and key.
    let Some(moto) = Moto::start_enforcing_iam(4) else {
        return;
    };
    let py = peer("TERMTRAIL_PYTHON").unwrap();
    let key = iam_user(&moto, "ann");
    let d = Dir::new();
    let sts = format!("{}/", moto.endpoint());
    let server = serve(
        &d,
        &[
            "--auth",
            "iam",
            "--iam-server-id",
            "tt.test",
            "--iam-sts-endpoint",
            &sts,
        ],
    );
    let base = format!("ws://{}", server.addr);
    // exec mints its token from the AWS credential chain (here: the environment).
    let client = |key: &(String, String), server_id: &str, args: &[&str]| {
        let mut all = vec![
            "exec",
            base.as_str(),
            "--auth",
            "iam",
            "--iam-server-id",
            server_id,
            "--iam-sts-endpoint",
            sts.as_str(),
            "--iam-region",
            "us-east-1",
        ];
        all.extend_from_slice(args);
        let mut c = d.cmd(&all);
        c.env("AWS_ACCESS_KEY_ID", &key.0)
            .env("AWS_SECRET_ACCESS_KEY", &key.1)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        run(&mut c, b"")
    };
    let r = client(
        &key,
        "tt.test",
        &["--session", "iam-session-0001", "--", "echo", "as-iam"],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "as-iam\n"),
        "{r:?}\n{}",
        server.log.lock().unwrap()
    );
    let header = header_of(&server, "cmd-");
    assert_eq!(header["principal"], "arn:aws:iam::123456789012:user/ann");
    assert_eq!(header["auth"], "iam");
    // A wrong secret: STS refuses the signature.
    let wrong = (key.0.clone(), "not-the-secret".to_string());
    let r = client(&wrong, "tt.test", &["--", "true"]);
    assert!(
        r.code != 0 && r.stderr.contains("HTTP 401") && r.stderr.contains("STS refused"),
        "{r:?}"
    );
    // A token for another server.
    let r = client(&key, "other.test", &["--", "true"]);
    assert!(
        r.code != 0 && r.stderr.contains("HTTP 401") && r.stderr.contains("another server"),
        "{r:?}"
    );
    // Tokens made by botocore's signer to the documented format: fresh
    // works (over the WebSocket), 16 minutes old or addressed elsewhere not.
    let url = server.url("iamws");
    let fresh = iam_token(&py, &sts, "tt.test", &key, 0);
    let (mut ws, _) = connect(&url, Carry::Header(&fresh)).await.unwrap();
    shell_round_trip(&mut ws, "iam").await;
    let old = iam_token(&py, &sts, "tt.test", &key, 16 * 60);
    assert_eq!(
        refused(&url, Carry::Header(&old)).await,
        (401, "TokenExpired".into())
    );
    let elsewhere = iam_token(&py, "http://127.0.0.1:1/", "tt.test", &key, 0);
    assert_eq!(
        refused(&url, Carry::Header(&elsewhere)).await,
        (401, "WrongStsEndpoint".into())
    );
    // An assumed role: temporary credentials (the session token is signed
    // too); the principal is the role session's ARN.
    let role = moto.py(&format!(
        "iam = boto3.client('iam', endpoint_url='{e}', region_name='us-east-1', aws_access_key_id='{a}', aws_secret_access_key='{s}')\n\
iam.create_role(RoleName='oncall', AssumeRolePolicyDocument=json.dumps({{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Principal': {{'AWS': '*'}}, 'Action': 'sts:AssumeRole'}}]}}))\n\
sts = boto3.client('sts', endpoint_url='{e}', region_name='us-east-1', aws_access_key_id='{a}', aws_secret_access_key='{s}')\n\
c = sts.assume_role(RoleArn='arn:aws:iam::123456789012:role/oncall', RoleSessionName='ann-debug')['Credentials']\n\
print(c['AccessKeyId'], c['SecretAccessKey'], c['SessionToken'])",
        e = moto.endpoint(),
        a = key.0,
        s = key.1
    ));
    let mut it = role.split_whitespace();
    let (ra, rs, rt) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let mut c = d.cmd(&[
        "exec",
        &base,
        "--auth",
        "iam",
        "--iam-server-id",
        "tt.test",
        "--iam-sts-endpoint",
        &sts,
        "--iam-region",
        "us-east-1",
        "--session",
        "iam-role-session",
        "--",
        "echo",
        "as-role",
    ]);
    c.env("AWS_ACCESS_KEY_ID", ra)
        .env("AWS_SECRET_ACCESS_KEY", rs)
        .env("AWS_SESSION_TOKEN", rt)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let r = run(&mut c, b"");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "as-role\n"),
        "{r:?}\n{}",
        server.log.lock().unwrap()
    );
    let rec = wait_until(
        10,
        || "the role's recording".into(),
        || {
            server
                .recordings()
                .into_iter()
                .find(|p| p.to_string_lossy().contains("iam-role-session"))
        },
    );
    let text = wait_until(
        10,
        || "a sealed recording".into(),
        || {
            let out = Command::new("zstd").arg("-dc").arg(&rec).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        },
    );
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"principal\":\"arn:aws:sts::123456789012:assumed-role/oncall/ann-debug\""),
        "{}",
        text.lines().next().unwrap()
    );
    // STS unreachable: 503, not 401.
    let d2 = Dir::new();
    let dead = serve(
        &d2,
        &[
            "--auth",
            "iam",
            "--iam-server-id",
            "tt.test",
            "--iam-sts-endpoint",
            "http://127.0.0.1:1/",
        ],
    );
    let to_dead = iam_token(&py, "http://127.0.0.1:1/", "tt.test", &key, 0);
    assert_eq!(
        refused(&dead.url("x"), Carry::Header(&to_dead)).await,
        (503, "StsUnavailable".into())
    );
    // A JWT where only IAM is accepted.
    assert_eq!(
        refused(&url, Carry::Header("a.b.c")).await,
        (401, "MalformedToken".into())
    );
}

#[test]
fn start_up_refusals() {
    let d = Dir::new();
    let good = d.join("jwks.json");
    std::fs::write(&good, r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"e"}]}"#).unwrap();
    let good = good.to_string_lossy().into_owned();
    let bad = d.join("bad-jwks.json");
    std::fs::write(&bad, "{\"keys\": [\n  {\"kty\": \"RSA\", \"n\": 5,}\n]}").unwrap();
    let bad = bad.to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--listen", "0.0.0.0:0"],
            vec!["no authentication is configured"],
        ),
        (
            vec!["--listen", "0.0.0.0:0", "--no-auth"],
            vec!["--no-auth is allowed only on a loopback address"],
        ),
        (
            vec![
                "--listen",
                "0.0.0.0:0",
                "--auth",
                "jwt",
                "--jwt-jwks",
                &good,
            ],
            vec!["refusing plaintext ws://", "--insecure-plaintext"],
        ),
        (
            vec!["--auth", "jwt", "--jwt-jwks", &bad],
            vec![&bad, "not a usable JWKS", "line 2"],
        ),
        (
            vec!["--auth", "jwt", "--jwt-jwks", "/nonexistent/jwks.json"],
            vec!["/nonexistent/jwks.json: cannot read the JWKS"],
        ),
        (
            vec![
                "--auth",
                "jwt",
                "--jwt-discovery-url",
                "http://127.0.0.1:1/.well-known/openid-configuration",
            ],
            vec!["http://127.0.0.1:1/.well-known/openid-configuration: cannot fetch"],
        ),
        (
            vec!["--auth", "jwt"],
            vec!["--auth jwt needs --jwt-discovery-url URL or --jwt-jwks FILE"],
        ),
        (
            vec!["--auth", "iam", "--iam-sts-endpoint", "http://127.0.0.1:1/"],
            vec!["--auth iam needs --iam-server-id"],
        ),
        (
            vec![
                "--auth",
                "jwt,iam",
                "--jwt-jwks",
                &good,
                "--iam-server-id",
                "x",
                "--iam-sts-endpoint",
                "ftp://x/",
            ],
            vec!["--iam-sts-endpoint ftp://x/"],
        ),
    ];
    for (args, wants) in &cases {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let r = d.run(&all);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        for want in wants {
            assert!(
                r.stderr.contains(want),
                "{args:?}: want {want:?} in {}",
                r.stderr
            );
        }
    }
    // Beyond loopback with authentication and --insecure-plaintext: starts.
    let store = d.join("store");
    let s = store.to_string_lossy().into_owned();
    let mut server = Server::spawn(
        d.cmd(&[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--store",
            &s,
            "--auth",
            "jwt",
            "--jwt-jwks",
            &good,
            "--insecure-plaintext",
        ]),
        &store,
    );
    assert!(
        server.log.lock().unwrap().contains("plaintext ws://"),
        "{}",
        server.log.lock().unwrap()
    );
    assert_eq!(server.stop(), 0);
}
