//! The token parsers' fuzz target.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use termtrail_format::fuzzing::Scratch;

use crate::auth::AuthError;
use crate::auth::iam::{BODY, IamConfig, IamVerifier, MAX_AGE, SKEW, TOKEN_PREFIX};
use crate::auth::jwt::{JwtConfig, JwtVerifier, KeySource};
use crate::auth::token::{MAX_TOKEN, b64url_decode, b64url_encode, extract};
use crate::sigv4::region_of_arn;

/// "Now" for IAM tokens (their `X-Amz-Date` is checked against it).
const NOW: u64 = 1_800_000_000;

/// A JWKS file of two public keys whose private halves no one here has
/// (RFC 8037's Ed25519 and RFC 7515's P-256 examples): no token can verify.
const JWKS: &str = r#"{"keys":[
 {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
 {"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn jwks_verifier(jwks: &[u8]) -> Result<JwtVerifier, crate::auth::AuthConfigError> {
    let file = Scratch::with("jwks.json", jwks).expect("the temporary directory is writable");
    let cfg = JwtConfig {
        keys: KeySource::File(file.path().to_path_buf()),
        issuers: vec!["https://issuer.example".into()],
        audiences: vec!["termtrail".into()],
        client_ids: Vec::new(),
    };
    runtime().block_on(JwtVerifier::new(cfg, None))
}

fn jwt() -> &'static JwtVerifier {
    static V: OnceLock<JwtVerifier> = OnceLock::new();
    V.get_or_init(|| jwks_verifier(JWKS.as_bytes()).expect("the fuzz JWKS loads"))
}

fn iam() -> &'static IamVerifier {
    static V: OnceLock<IamVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let cfg = IamConfig {
            server_id: "fuzz-host".into(),
            sts_endpoint: "https://sts.us-east-1.amazonaws.com/".into(),
        };
        IamVerifier::new(cfg, None).expect("the fuzz IAM configuration")
    })
}

/// The first byte picks what the rest is: 0 a JWT, 1 the JSON inside an
/// IAM token (base64url-encoded here, so the fuzzer reaches the checks
/// behind the encoding), 2 a whole IAM token, 3 request headers (`name:
/// value` lines) a token is taken from, 4 a JWKS document, 5 base64url text
/// and an ARN.
///
/// Invariants: no JWT verifies (no one has the keys); an IAM token passes
/// the local checks only for this host's STS endpoint and server id,
/// signed within its 15 minutes; a token taken from headers is non-empty,
/// within the size limit, from exactly one carriage; base64url decodes only
/// its canonical form and round-trips.
pub fn auth(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 6 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            let got = runtime().block_on(jwt().verify(token));
            assert!(got.is_err(), "a JWT verified without the key: {got:?}");
        }
        1 => iam_token(&format!("{TOKEN_PREFIX}{}", b64url_encode(rest))),
        2 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                iam_token(token);
            }
        }
        3 => headers(rest),
        4 => {
            let _ = jwks_verifier(rest);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Some(bytes) = b64url_decode(text) {
                assert_eq!(b64url_encode(&bytes), text.trim_end_matches('='));
            }
            assert_eq!(b64url_decode(&b64url_encode(rest)).as_deref(), Some(rest));
            if let Some(region) = region_of_arn(text) {
                assert!(text.contains(region));
            }
        }
    }
}

fn iam_token(token: &str) {
    match iam().check(token, NOW) {
        Ok((req, signed_at)) => {
            assert!(signed_at <= NOW + SKEW.as_secs() && NOW <= signed_at + MAX_AGE.as_secs());
            assert_eq!(req.method, "POST");
            assert_eq!(req.body, BODY);
            let url = req.url.to_ascii_lowercase();
            assert!(
                url.starts_with("https://sts.us-east-1.amazonaws.com"),
                "{url}"
            );
            assert_eq!(
                req.headers.get("x-termtrail-server-id").map(Vec::as_slice),
                Some(&["fuzz-host".to_string()][..])
            );
        }
        Err(
            AuthError::Malformed(_)
            | AuthError::WrongEndpoint
            | AuthError::WrongServer
            | AuthError::Expired
            | AuthError::NotYetValid,
        ) => {}
        Err(other) => panic!("the local IAM checks gave {other:?}"),
    }
}

fn headers(text: &[u8]) {
    let mut map = HeaderMap::new();
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    match extract(&map) {
        Ok(bearer) => {
            assert!(!bearer.token.is_empty() && bearer.token.len() <= MAX_TOKEN);
            assert!(map.get_all(http::header::AUTHORIZATION).iter().count() <= 1);
        }
        Err(AuthError::Malformed(_) | AuthError::NoToken | AuthError::TooLarge) => {}
        Err(other) => panic!("taking a token from headers gave {other:?}"),
    }
}
