//! `--auth iam`: AWS IAM identity without a shared secret, as Vault's AWS
//! "iam" method does it. The client SigV4-signs an STS `GetCallerIdentity`
//! request that names this server in a signed header and hands the signed
//! request over as its token ([`mint_token`]); the host checks it and
//! replays it to its own configured STS endpoint — never to a host taken
//! from the token — and the caller's ARN in STS's answer is the principal.
//! Answers are cached until the token's 15 minutes are over.
//!
//! The token (`docs/protocol.md` §8.4): `termtrail-iam-v1.` followed by the
//! unpadded base64url of a JSON object `{"method", "url", "headers": {name:
//! [value]}, "body"}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::ClientConfig;

use super::fetch::{self, FetchError, Target};
use super::token::{b64url_decode, b64url_encode};
use super::{AuthConfigError, AuthError, AuthMethod, Identity, printable};

/// What every IAM token starts with.
pub const TOKEN_PREFIX: &str = "termtrail-iam-v1.";

/// The signed header naming the server a token is meant for.
pub const SERVER_ID_HEADER: &str = "x-termtrail-server-id";

/// The only request body accepted (and signed).
pub const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The body's content type.
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// How long a signed request is valid after its `X-Amz-Date`.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// How far in the future an `X-Amz-Date` may be (clock skew).
pub const SKEW: Duration = Duration::from_secs(60);

/// At most this many headers in a token.
const MAX_HEADERS: usize = 32;

/// At most this many cached answers (expired ones are dropped first).
const MAX_CACHED: usize = 10_000;

/// The regional STS endpoint of `region`.
pub fn regional_endpoint(region: &str) -> String {
    format!("https://sts.{region}.amazonaws.com/")
}

/// What the host checks IAM tokens against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamConfig {
    /// This server's id (`--iam-server-id`): tokens must carry it, signed.
    pub server_id: String,
    /// The STS endpoint tokens are replayed to (`--iam-sts-endpoint`, or
    /// [`regional_endpoint`]).
    pub sts_endpoint: String,
}

/// The signed request a token carries.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SignedRequest {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) headers: BTreeMap<String, Vec<String>>,
    pub(crate) body: String,
}

/// Checks IAM tokens.
pub(crate) struct IamVerifier {
    server_id: String,
    endpoint: Target,
    tls: Option<Arc<ClientConfig>>,
    /// SHA-256 of a token → the identity it proved, until (Unix seconds).
    cache: Mutex<HashMap<[u8; 32], (Identity, u64)>>,
}

impl IamVerifier {
    /// A verifier for `cfg`; a bad endpoint URL or server id stops start-up.
    pub(crate) fn new(
        cfg: IamConfig,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<IamVerifier, AuthConfigError> {
        let endpoint =
            Target::parse(&cfg.sts_endpoint).map_err(|e| AuthConfigError::BadStsEndpoint {
                url: cfg.sts_endpoint.clone(),
                reason: e.to_string(),
            })?;
        if cfg.server_id.is_empty()
            || !cfg
                .server_id
                .bytes()
                .all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(AuthConfigError::BadServerId);
        }
        Ok(IamVerifier {
            server_id: cfg.server_id,
            endpoint,
            tls,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Checks `token` (with its prefix); the caller's identity.
    pub(crate) async fn verify(&self, token: &str, now: SystemTime) -> Result<Identity, AuthError> {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((id, until)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            && *until >= now
        {
            return Ok(id.clone());
        }
        let (req, signed_at) = self.check(token, now)?;
        let identity = self.replay(&req).await?;
        let until = signed_at + MAX_AGE.as_secs();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (_, u)| *u >= now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(digest, (identity.clone(), until));
        Ok(identity)
    }

    /// Everything that can be checked without STS; the request and its
    /// signing time (Unix seconds).
    pub(crate) fn check(&self, token: &str, now: u64) -> Result<(SignedRequest, u64), AuthError> {
        let malformed = |why: &str| AuthError::Malformed(why.to_string());
        let encoded = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| malformed("not a termtrail-iam-v1 token"))?;
        let json =
            b64url_decode(encoded).ok_or_else(|| malformed("the IAM token is not base64url"))?;
        let mut req: SignedRequest = serde_json::from_slice(&json)
            .map_err(|_| malformed("the IAM token is not the JSON of a signed request"))?;
        if req.method != "POST" {
            return Err(malformed("the signed request is not a POST"));
        }
        if req.body != BODY {
            return Err(malformed("the signed request is not sts:GetCallerIdentity"));
        }
        if req.headers.len() > MAX_HEADERS {
            return Err(malformed("the signed request has too many headers"));
        }
        // Header names compare case-insensitively; each once, one value. Two
        // spellings of one name would leave which one counts to chance.
        let count = req.headers.len();
        req.headers = req
            .headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        if req.headers.len() != count {
            return Err(malformed(
                "the signed request names a header twice (in different letter cases)",
            ));
        }
        let one = |name: &str| -> Result<Option<&str>, AuthError> {
            match req.headers.get(name).map(Vec::as_slice) {
                None => Ok(None),
                Some([v]) => Ok(Some(v.as_str())),
                Some(_) => Err(AuthError::Malformed(format!(
                    "the signed request's {name} header must have exactly one value"
                ))),
            }
        };
        let url = Target::parse(&req.url)
            .map_err(|_| malformed("the signed request's URL is not absolute http(s)"))?;
        if url != self.endpoint {
            return Err(AuthError::WrongEndpoint);
        }
        if let Some(host) = one("host")?
            && !host.eq_ignore_ascii_case(&self.endpoint.host)
        {
            return Err(AuthError::WrongEndpoint);
        }
        let auth = one("authorization")?
            .ok_or_else(|| malformed("the signed request has no Authorization header"))?;
        let signed: Vec<&str> = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .and_then(|rest| {
                rest.split(", ")
                    .find_map(|p| p.strip_prefix("SignedHeaders="))
            })
            .ok_or_else(|| {
                malformed("the signed request's Authorization is not SigV4 (AWS4-HMAC-SHA256)")
            })?
            .split(';')
            .collect();
        for must in ["host", "x-amz-date", SERVER_ID_HEADER] {
            if !signed.contains(&must) {
                return Err(AuthError::Malformed(format!(
                    "the {must} header is not signed"
                )));
            }
        }
        match one(SERVER_ID_HEADER)? {
            None => {
                return Err(malformed(
                    "the signed request has no X-Termtrail-Server-Id header",
                ));
            }
            Some(id) if id != self.server_id => return Err(AuthError::WrongServer),
            Some(_) => {}
        }
        let date = one("x-amz-date")?
            .ok_or_else(|| malformed("the signed request has no X-Amz-Date header"))?;
        let signed_at = parse_amz_date(date)
            .ok_or_else(|| malformed("the X-Amz-Date header is not YYYYMMDDTHHMMSSZ"))?;
        if signed_at > now + SKEW.as_secs() {
            return Err(AuthError::NotYetValid);
        }
        if now > signed_at + MAX_AGE.as_secs() {
            return Err(AuthError::Expired);
        }
        Ok((req, signed_at))
    }

    /// Sends the signed request to the configured endpoint.
    async fn replay(&self, req: &SignedRequest) -> Result<Identity, AuthError> {
        const SKIP: [&str; 7] = [
            "host",
            "content-length",
            "connection",
            "transfer-encoding",
            "te",
            "upgrade",
            "keep-alive",
        ];
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .filter(|(k, _)| !SKIP.contains(&k.as_str()))
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        let answer = fetch::request(
            http::Method::POST,
            &self.endpoint,
            &headers,
            Bytes::from_static(BODY.as_bytes()),
            self.tls.as_ref(),
        )
        .await;
        let (status, body) = answer.map_err(|e: FetchError| {
            tracing::warn!(sts = %self.endpoint.host, error = %e, "STS cannot be reached");
            AuthError::StsUnavailable(e.to_string())
        })?;
        let text = String::from_utf8_lossy(&body);
        match status {
            200 => {
                let arn = xml_text(&text, "Arn")
                    .filter(|a| a.starts_with("arn:"))
                    .ok_or_else(|| {
                        AuthError::StsUnavailable("STS answered without an Arn".into())
                    })?;
                Ok(Identity {
                    principal: arn.to_string(),
                    groups: Vec::new(),
                    method: AuthMethod::Iam,
                })
            }
            400..=499 => {
                let code = xml_text(&text, "Code").map_or(format!("HTTP {status}"), printable);
                tracing::info!(status, code = %code, "STS refused a signed request");
                Err(AuthError::IamRefused(code))
            }
            _ => Err(AuthError::StsUnavailable(format!(
                "STS answered HTTP {status}"
            ))),
        }
    }
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + len].trim())
}

/// `YYYYMMDDTHHMMSSZ` as Unix seconds.
fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = termtrail_format::civil::days_from_civil(y, m, d);
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The STS endpoint is not an absolute http(s) URL.
    #[error("{0}: not an http:// or https:// URL")]
    Url(String),
    /// The signing parameters are incomplete.
    #[error("{0}")]
    Params(v4::signing_params::BuildError),
    /// aws-sigv4 could not sign.
    #[error("{0}")]
    Signing(aws_sigv4::http_request::SigningError),
}

/// A token for the server `server_id` whose STS endpoint is `endpoint`,
/// signed at `at` with `creds` for `region`.
pub fn mint_token(
    creds: &Credentials,
    region: &str,
    endpoint: &str,
    server_id: &str,
    at: SystemTime,
) -> Result<String, MintError> {
    let target = Target::parse(endpoint).map_err(|_| MintError::Url(endpoint.to_string()))?;
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(MintError::Params)?
        .into();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    headers.insert("host".into(), vec![target.host.clone()]);
    headers.insert("content-type".into(), vec![CONTENT_TYPE.into()]);
    headers.insert(SERVER_ID_HEADER.into(), vec![server_id.into()]);
    let signable = SignableRequest::new(
        "POST",
        endpoint,
        headers.iter().map(|(k, v)| (k.as_str(), v[0].as_str())),
        SignableBody::Bytes(BODY.as_bytes()),
    )
    .map_err(MintError::Signing)?;
    let (instructions, _) = sign(signable, &params)
        .map_err(MintError::Signing)?
        .into_parts();
    for (k, v) in instructions.headers() {
        headers.insert(k.to_ascii_lowercase(), vec![v.to_string()]);
    }
    let req = SignedRequest {
        method: "POST".into(),
        url: endpoint.to_string(),
        headers,
        body: BODY.into(),
    };
    let json = serde_json::to_vec(&req).unwrap_or_default();
    Ok(format!("{TOKEN_PREFIX}{}", b64url_encode(&json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:9/";

    fn verifier() -> IamVerifier {
        IamVerifier::new(
            IamConfig {
                server_id: "tt.example".into(),
                sts_endpoint: ENDPOINT.into(),
            },
            None,
        )
        .unwrap()
    }

    fn token(endpoint: &str, server: &str, at: u64) -> String {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        mint_token(
            &creds,
            "us-east-1",
            endpoint,
            server,
            UNIX_EPOCH + Duration::from_secs(at),
        )
        .unwrap()
    }

    #[test]
    fn amz_dates_parse() {
        assert_eq!(parse_amz_date("20270115T080000Z"), Some(1_800_000_000));
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20270115T080000"), None);
        assert_eq!(parse_amz_date("2027011xT080000Z"), None);
        assert_eq!(parse_amz_date("20271315T080000Z"), None);
    }

    #[test]
    fn a_minted_token_passes_the_local_checks_and_names_its_server_signed() {
        let now = 1_800_000_000;
        let t = token(ENDPOINT, "tt.example", now);
        let (req, at) = verifier().check(&t, now + 60).unwrap();
        assert_eq!(at, now);
        let auth = &req.headers["authorization"][0];
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-termtrail-server-id,"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/sts/aws4_request"), "{auth}");
        assert!(!t.contains("secret"));
    }

    #[test]
    fn stale_future_foreign_and_redirected_tokens_are_refused() {
        let now = 1_800_000_000;
        let v = verifier();
        let t = token(ENDPOINT, "tt.example", now);
        assert!(matches!(
            v.check(&t, now + 15 * 60 + 1),
            Err(AuthError::Expired)
        ));
        assert!(matches!(v.check(&t, now - 61), Err(AuthError::NotYetValid)));
        let other = token(ENDPOINT, "other.example", now);
        assert!(matches!(v.check(&other, now), Err(AuthError::WrongServer)));
        let elsewhere = token("http://evil.example/", "tt.example", now);
        assert!(matches!(
            v.check(&elsewhere, now),
            Err(AuthError::WrongEndpoint)
        ));
        assert!(matches!(
            v.check("termtrail-iam-v1.!!", now),
            Err(AuthError::Malformed(_))
        ));
        // A host header pointing elsewhere than the URL.
        let json = b64url_decode(t.strip_prefix(TOKEN_PREFIX).unwrap()).unwrap();
        let mut req: SignedRequest = serde_json::from_slice(&json).unwrap();
        req.headers
            .insert("host".into(), vec!["evil.example".into()]);
        let forged = format!(
            "{TOKEN_PREFIX}{}",
            b64url_encode(&serde_json::to_vec(&req).unwrap())
        );
        assert!(matches!(
            v.check(&forged, now),
            Err(AuthError::WrongEndpoint)
        ));
        req.headers
            .insert("host".into(), vec!["127.0.0.1:9".into()]);
        req.body = "Action=AssumeRole".into();
        let forged = format!(
            "{TOKEN_PREFIX}{}",
            b64url_encode(&serde_json::to_vec(&req).unwrap())
        );
        assert!(matches!(
            v.check(&forged, now),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn arns_and_error_codes_come_out_of_sts_xml() {
        let ok = "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/ann</Arn><UserId>AID</UserId></GetCallerIdentityResult></GetCallerIdentityResponse>";
        assert_eq!(
            xml_text(ok, "Arn"),
            Some("arn:aws:iam::123456789012:user/ann")
        );
        let err =
            "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>";
        assert_eq!(xml_text(err, "Code"), Some("SignatureDoesNotMatch"));
        assert_eq!(xml_text(err, "Arn"), None);
    }

    #[tokio::test]
    async fn sts_answers_are_cached_and_its_refusals_and_failures_told_apart() {
        use crate::auth::fake_http::FakeHttp;
        let ok = "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/oncall/ann</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>";
        let sts = FakeHttp::start(200, ok).await;
        let endpoint = format!("{}/", sts.base);
        let v = IamVerifier::new(
            IamConfig {
                server_id: "tt.example".into(),
                sts_endpoint: endpoint.clone(),
            },
            None,
        )
        .unwrap();
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let t = token(&endpoint, "tt.example", secs);
        let id = v.verify(&t, now).await.unwrap();
        assert_eq!(
            id.principal,
            "arn:aws:sts::123456789012:assumed-role/oncall/ann"
        );
        assert_eq!(id.method, AuthMethod::Iam);
        assert!(v.verify(&t, now).await.is_ok());
        assert_eq!(sts.hits(), 1, "the second use is answered from the cache");
        sts.set(
            403,
            "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>",
        );
        let t2 = token(&endpoint, "tt.example", secs - 1);
        let e = v.verify(&t2, now).await.unwrap_err();
        assert!(
            matches!(&e, AuthError::IamRefused(c) if c == "SignatureDoesNotMatch"),
            "{e:?}"
        );
        assert_eq!((e.status(), e.reason()), (401, "IamRefused"));
        sts.set(500, "oops");
        let e = v
            .verify(&token(&endpoint, "tt.example", secs - 2), now)
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.reason()), (503, "StsUnavailable"));
        // A cached identity ends with its token's 15 minutes.
        let later = now + MAX_AGE + Duration::from_secs(1);
        assert!(matches!(v.verify(&t, later).await, Err(AuthError::Expired)));
    }
}
