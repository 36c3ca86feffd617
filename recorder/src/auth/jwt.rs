//! `--auth jwt`: OAuth 2.0 / OIDC bearer tokens checked the way AgentCore's
//! JWT authorizer checks them — keys from a JWKS (a file, or the `jwks_uri`
//! of an OIDC discovery document, cached; refetched on an unknown `kid` at
//! most once per [`MIN_REFETCH`], and when older than [`MAX_KEY_AGE`]),
//! issuer, audiences, clients (`client_id` or `azp`), `exp`/`nbf` with
//! [`LEEWAY`]. Only RS256, ES256 and EdDSA:
//! `alg: none` and HMAC (a public key used as a shared secret) are refused
//! before any key is looked at.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio_rustls::rustls::ClientConfig;

use super::token::b64url_decode;
use super::{AuthConfigError, AuthError, AuthMethod, Identity, fetch, printable};

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Least time between two refetches of the JWKS for unknown key ids (a
/// flood of tokens with made-up `kid`s costs the identity provider at most
/// one request per this interval).
pub const MIN_REFETCH: Duration = Duration::from_secs(10);

/// Cached keys older than this are refetched (with discovery) before the
/// next token is checked, so that a key the provider withdrew stops being
/// trusted.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);

/// The accepted algorithms, by their `alg` names.
const ALGORITHMS: [(&str, Algorithm); 3] = [
    ("RS256", Algorithm::RS256),
    ("ES256", Algorithm::ES256),
    ("EdDSA", Algorithm::EdDSA),
];

/// Where the signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--jwt-jwks FILE`: a JWKS document, read once at start-up.
    File(PathBuf),
    /// `--jwt-discovery-url URL`: an OIDC discovery document naming the
    /// issuer and the `jwks_uri`.
    Discovery(String),
}

/// What a JWT must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Signing keys.
    pub keys: KeySource,
    /// Accepted issuers (`iss`); empty: the discovery document's issuer, or
    /// (with a JWKS file) any.
    pub issuers: Vec<String>,
    /// Accepted audiences (`aud`, any one); empty: not checked.
    pub audiences: Vec<String>,
    /// Accepted clients (`client_id`, else `azp`); empty: not checked.
    pub client_ids: Vec<String>,
}

/// One trusted key.
struct Key {
    kid: Option<String>,
    key: DecodingKey,
}

/// Checks JWTs against a cached key set.
pub(crate) struct JwtVerifier {
    issuers: Vec<String>,
    audiences: Vec<String>,
    client_ids: Vec<String>,
    keys: RwLock<Arc<Vec<Key>>>,
    /// Where keys are refetched from (discovery only).
    jwks_uri: Option<String>,
    tls: Option<Arc<ClientConfig>>,
    /// When the last refetch for an unknown key started; held while one
    /// runs so concurrent unknown `kid`s wait for it instead of adding more.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    /// When the cached keys were fetched.
    fetched: std::sync::Mutex<Instant>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<serde_json::Value>,
    client_id: Option<serde_json::Value>,
    azp: Option<serde_json::Value>,
    groups: Option<serde_json::Value>,
    #[serde(rename = "cognito:groups")]
    cognito_groups: Option<serde_json::Value>,
}

/// Parses a JWKS document: every key must be an RS256, ES256 (P-256) or
/// Ed25519 public key; `what` names the file or URL in errors.
fn parse_jwks(bytes: &[u8], what: &str) -> Result<Vec<Key>, AuthConfigError> {
    let bad = |reason: String| AuthConfigError::BadJwks {
        what: what.to_string(),
        reason,
    };
    let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let set: JwkSet = serde_json::from_value(raw.clone()).map_err(|e| bad(e.to_string()))?;
    if set.keys.is_empty() {
        return Err(bad("it holds no keys".into()));
    }
    let mut keys = Vec::with_capacity(set.keys.len());
    for (i, jwk) in set.keys.iter().enumerate() {
        let name = match &jwk.common.key_id {
            Some(kid) => format!("key {} (kid {})", i + 1, printable(kid)),
            None => format!("key {}", i + 1),
        };
        match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => {}
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {}
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {}
            AlgorithmParameters::OctetKey(_) => {
                return Err(bad(format!(
                    "{name}: a symmetric (oct) key; only RSA, EC P-256 and Ed25519 public keys are accepted"
                )));
            }
            _ => {
                // Unknown types, and known ones with missing or malformed
                // parameters, land here: name what the key says it is.
                let said = |field: &str| {
                    raw["keys"][i][field]
                        .as_str()
                        .map_or("?".to_string(), printable)
                };
                return Err(bad(format!(
                    "{name}: unsupported or malformed key (kty {}, crv {}); only RSA, EC P-256 and Ed25519 public keys with their parameters are accepted",
                    said("kty"),
                    said("crv")
                )));
            }
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(format!("{name}: {e}")))?;
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            key,
        });
    }
    if keys.len() > 1 && keys.iter().any(|k| k.kid.is_none()) {
        return Err(bad("a set of several keys where one has no kid".into()));
    }
    Ok(keys)
}

async fn fetch_jwks(
    url: &str,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Vec<Key>, AuthConfigError> {
    let bytes = fetch::get(url, tls)
        .await
        .map_err(|reason| AuthConfigError::Fetch {
            url: url.to_string(),
            reason,
        })?;
    parse_jwks(&bytes, url)
}

impl JwtVerifier {
    /// Loads the keys (and the discovery document); any problem stops
    /// start-up with the file or URL and the reason.
    pub(crate) async fn new(
        cfg: JwtConfig,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<JwtVerifier, AuthConfigError> {
        let mut issuers = cfg.issuers;
        let (keys, jwks_uri) = match &cfg.keys {
            KeySource::File(path) => {
                let bytes = std::fs::read(path).map_err(|error| AuthConfigError::ReadJwks {
                    path: path.clone(),
                    error,
                })?;
                (parse_jwks(&bytes, &path.display().to_string())?, None)
            }
            KeySource::Discovery(url) => {
                let bad = |reason: String| AuthConfigError::BadDiscovery {
                    url: url.clone(),
                    reason,
                };
                let body = fetch::get(url, tls.as_ref()).await.map_err(|reason| {
                    AuthConfigError::Fetch {
                        url: url.clone(),
                        reason,
                    }
                })?;
                let doc: Discovery =
                    serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
                let jwks_uri = doc.jwks_uri.ok_or_else(|| bad("no jwks_uri".into()))?;
                fetch::Target::parse(&jwks_uri)
                    .map_err(|e| bad(format!("jwks_uri {jwks_uri:?}: {e}")))?;
                if issuers.is_empty() {
                    issuers.extend(doc.issuer);
                }
                (fetch_jwks(&jwks_uri, tls.as_ref()).await?, Some(jwks_uri))
            }
        };
        Ok(JwtVerifier {
            issuers,
            audiences: cfg.audiences,
            client_ids: cfg.client_ids,
            keys: RwLock::new(Arc::new(keys)),
            jwks_uri,
            tls,
            last_refetch: tokio::sync::Mutex::new(None),
            fetched: std::sync::Mutex::new(Instant::now()),
        })
    }

    fn find(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()));
        match kid {
            Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            // No kid: only a set of one key says which.
            None => keys.first().filter(|_| keys.len() == 1),
        }
        .map(|k| k.key.clone())
    }

    /// Refetches the JWKS (rate-limited); whether the keys were replaced.
    async fn refetch(&self, why: &str) -> bool {
        let Some(url) = &self.jwks_uri else {
            return false;
        };
        let mut last = self.last_refetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < MIN_REFETCH) {
            return false;
        }
        *last = Some(Instant::now());
        match fetch_jwks(url, self.tls.as_ref()).await {
            Ok(keys) => {
                tracing::info!(jwks = %url, keys = keys.len(), "JWKS refetched: {why}");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
                *self.fetched.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                true
            }
            Err(e) => {
                // The cached keys stay in use.
                tracing::warn!(error = %e, "cannot refetch the JWKS; keeping the cached keys");
                false
            }
        }
    }

    /// Checks `token`; the identity it proves.
    pub(crate) async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let alg = algorithm_of(token)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Malformed(format!("bad JWT header ({e})")))?;
        let kid = header.kid.as_deref();
        let stale = self.jwks_uri.is_some()
            && self
                .fetched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
                > MAX_KEY_AGE;
        if stale {
            self.refetch("the cached keys are over an hour old").await;
        }
        let key = match self.find(kid) {
            Some(k) => k,
            None => {
                let found = if self.refetch("an unknown key id").await {
                    self.find(kid)
                } else {
                    None
                };
                match found {
                    Some(k) => k,
                    None => {
                        tracing::warn!(kid = %printable(kid.unwrap_or("(none)")), "token refused: unknown key id");
                        return Err(AuthError::UnknownKey);
                    }
                }
            }
        };
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY.as_secs();
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if !self.issuers.is_empty() {
            v.set_issuer(&self.issuers);
            required.push("iss");
        }
        if self.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audiences);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_) => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidAlgorithm => {
                AuthError::Algorithm(format!("{alg:?} does not match the key's type"))
            }
            ErrorKind::MissingRequiredClaim(c) => {
                AuthError::Malformed(format!("the token has no {} claim", printable(c)))
            }
            ErrorKind::InvalidClaimFormat(c) => {
                AuthError::Malformed(format!("the token's {} claim is malformed", printable(c)))
            }
            _ => AuthError::Malformed("not a well-formed JWT".into()),
        })?;
        let claims = data.claims;
        if !self.client_ids.is_empty() {
            let client = claims
                .client_id
                .as_ref()
                .or(claims.azp.as_ref())
                .and_then(|v| v.as_str());
            if !client.is_some_and(|c| self.client_ids.iter().any(|want| want == c)) {
                return Err(AuthError::WrongClient);
            }
        }
        let principal = match claims.sub {
            // A principal is a name: blank or holding control characters,
            // it could pass for another one in logs and listings.
            Some(serde_json::Value::String(s))
                if !s.trim().is_empty() && !s.chars().any(char::is_control) =>
            {
                s
            }
            _ => {
                return Err(AuthError::Malformed(
                    "the token has no usable sub claim (missing, blank or with control characters)"
                        .into(),
                ));
            }
        };
        let groups = claims
            .groups
            .or(claims.cognito_groups)
            .and_then(|v| match v {
                serde_json::Value::Array(items) => Some(
                    items
                        .into_iter()
                        .filter_map(|g| g.as_str().map(str::to_string))
                        .collect(),
                ),
                serde_json::Value::String(s) => Some(vec![s]),
                _ => None,
            })
            .unwrap_or_default();
        Ok(Identity {
            principal,
            groups,
            method: AuthMethod::Jwt,
        })
    }
}

/// The token's `alg`, when it is one of the accepted three; read from the
/// raw header so that `none`, HMAC and unknown names are refused by name.
fn algorithm_of(token: &str) -> Result<Algorithm, AuthError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "not a JWT (three base64url parts)".into(),
        ));
    };
    let bytes = b64url_decode(head)
        .ok_or_else(|| AuthError::Malformed("the JWT header is not base64url".into()))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("the JWT header is not JSON".into()))?;
    let alg = header
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or_else(|| AuthError::Malformed("the JWT header has no alg".into()))?;
    ALGORITHMS
        .iter()
        .find(|(name, _)| *name == alg)
        .map(|(_, a)| *a)
        .ok_or_else(|| AuthError::Algorithm(printable(alg)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::b64url_encode;

    fn jwt(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.{}",
            b64url_encode(header.as_bytes()),
            b64url_encode(claims.as_bytes()),
            b64url_encode(b"sig")
        )
    }

    #[test]
    fn only_three_algorithms_pass_the_first_look() {
        assert_eq!(
            algorithm_of(&jwt(r#"{"alg":"RS256"}"#, "{}")).unwrap(),
            Algorithm::RS256
        );
        assert_eq!(
            algorithm_of(&jwt(r#"{"alg":"EdDSA"}"#, "{}")).unwrap(),
            Algorithm::EdDSA
        );
        for alg in ["none", "HS256", "RS512", "ES384", "PS256"] {
            let e = algorithm_of(&jwt(&format!(r#"{{"alg":"{alg}"}}"#), "{}")).unwrap_err();
            assert!(matches!(&e, AuthError::Algorithm(a) if a == alg), "{e:?}");
        }
        assert!(matches!(
            algorithm_of("garbage"),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            algorithm_of("a.b.c.d"),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            algorithm_of("e30.e30.e30"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn a_jwks_with_symmetric_or_unknown_keys_is_refused_with_its_name() {
        let e = parse_jwks(
            br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"k1"}]}"#,
            "/x/jwks.json",
        )
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .starts_with("/x/jwks.json: not a usable JWKS: key 1 (kid k1): a symmetric"),
            "{e}"
        );
        let e = parse_jwks(b"{\"keys\": [\n  {\"kty\": \"RSA\",}]}", "f.json")
            .err()
            .unwrap();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_jwks(
            br#"{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}"#,
            "f.json",
        )
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .contains("key 1: unsupported or malformed key (kty EC, crv P-384)"),
            "{e}"
        );
        let e = parse_jwks(br#"{"keys":[{"kty":"RSA","n":5,"e":"AQAB"}]}"#, "f.json")
            .err()
            .unwrap();
        assert!(e.to_string().contains("(kty RSA, crv ?)"), "{e}");
        let e = parse_jwks(br#"{"keys":[]}"#, "f.json").err().unwrap();
        assert_eq!(e.to_string(), "f.json: not a usable JWKS: it holds no keys");
        let ok = parse_jwks(
            br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"e"}]}"#,
            "f.json",
        )
        .unwrap();
        assert_eq!(ok[0].kid.as_deref(), Some("e"));
    }

    const KEY_1: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIFB41QCfD1WiRrZVCg2sUgyK3ePoZZ8saGM2bTFd6Ap\n-----END PRIVATE KEY-----\n";
    const PUB_1: &str = "J5-xlCL3-ei1rlsahqYHguzEHFK0LfuF7QFMFnXPqGU";
    const KEY_2: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPMv+qFVIwoGDqyPmV80RxQ8XPtgAZY0wDTWJbt1e11h\n-----END PRIVATE KEY-----\n";
    const PUB_2: &str = "Ky34Ri2pQDLshUUoQvCO8KnGOTgRN93ZW6cP9z1k3Dw";

    fn signed(pem: &str, kid: &str, claims: serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        let key = jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn jwks(keys: &[(&str, &str)]) -> String {
        let keys: Vec<_> = keys
            .iter()
            .map(|(kid, x)| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid}))
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    #[tokio::test]
    async fn unknown_kids_refetch_at_most_once_per_interval_and_a_dead_provider_keeps_the_cache() {
        use crate::auth::fake_http::FakeHttp;
        let idp = FakeHttp::start(200, &jwks(&[("k1", PUB_1)])).await;
        let discovery = FakeHttp::start(
            200,
            &serde_json::json!({"issuer": "https://idp", "jwks_uri": format!("{}/jwks", idp.base)})
                .to_string(),
        )
        .await;
        let cfg = JwtConfig {
            keys: KeySource::Discovery(format!(
                "{}/.well-known/openid-configuration",
                discovery.base
            )),
            issuers: vec![],
            audiences: vec![],
            client_ids: vec![],
        };
        let v = JwtVerifier::new(cfg, None).await.unwrap();
        assert_eq!(idp.hits(), 1);
        let exp = jsonwebtoken::get_current_timestamp() + 300;
        let claims = |sub: &str| serde_json::json!({"sub": sub, "iss": "https://idp", "exp": exp, "groups": "solo"});
        let id = v.verify(&signed(KEY_1, "k1", claims("ann"))).await.unwrap();
        assert_eq!(
            (id.principal.as_str(), id.groups.as_slice()),
            ("ann", &["solo".to_string()][..])
        );
        assert_eq!(idp.hits(), 1, "a known kid costs no request");
        // Rotation: k2 appears; the first unknown kid refetches.
        idp.set(200, &jwks(&[("k1", PUB_1), ("k2", PUB_2)]));
        let id = v.verify(&signed(KEY_2, "k2", claims("bob"))).await.unwrap();
        assert_eq!(id.principal, "bob");
        assert_eq!(idp.hits(), 2);
        // Another unknown kid within the interval: no request, refused.
        let e = v
            .verify(&signed(KEY_2, "k3", claims("eve")))
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::UnknownKey), "{e:?}");
        assert_eq!(idp.hits(), 2, "refetches are rate-limited");
        // The issuer came from discovery; a key swap is a bad signature.
        let wrong_iss = serde_json::json!({"sub": "x", "iss": "https://other", "exp": exp});
        assert!(matches!(
            v.verify(&signed(KEY_1, "k1", wrong_iss)).await,
            Err(AuthError::WrongIssuer)
        ));
        assert!(matches!(
            v.verify(&signed(KEY_2, "k1", claims("x"))).await,
            Err(AuthError::BadSignature)
        ));
        // The provider breaks: after the interval a refetch fails, and the
        // cached keys stay in use.
        idp.set(500, "down");
        *v.last_refetch.lock().await = None;
        assert!(matches!(
            v.verify(&signed(KEY_2, "k4", claims("x"))).await,
            Err(AuthError::UnknownKey)
        ));
        assert_eq!(idp.hits(), 3);
        assert!(v.verify(&signed(KEY_1, "k1", claims("ann"))).await.is_ok());
        // Keys older than an hour are refetched: a withdrawn key stops working.
        idp.set(200, &jwks(&[("k2", PUB_2)]));
        *v.last_refetch.lock().await = None;
        *v.fetched.lock().unwrap() = Instant::now() - MAX_KEY_AGE - Duration::from_secs(1);
        let e = v
            .verify(&signed(KEY_1, "k1", claims("ann")))
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::UnknownKey), "{e:?}");
        assert_eq!(idp.hits(), 4);
        assert!(v.verify(&signed(KEY_2, "k2", claims("bob"))).await.is_ok());
    }
}
