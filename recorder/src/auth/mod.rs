//! Who is on the other end of a connection: the authenticated [`Identity`]
//! every shell, command and policy decision is made for, and how it was
//! established ([`AuthMethod`]); the host's [`Authenticator`], built once
//! at start-up from [`AuthConfig`], which turns a request's headers into an
//! identity or an [`AuthError`] (`docs/protocol.md` §8).
//!
//! Submodules: where tokens travel ([`token`]), JWTs ([`jwt`]), signed STS
//! requests ([`iam`]), the clients' side ([`client`]), and the HTTP requests
//! they need (`fetch`).

pub mod client;
#[cfg(test)]
mod fake_http;
mod fetch;
pub use fetch::FetchError;
pub mod iam;
pub mod jwt;
pub mod token;

use std::path::PathBuf;
use std::time::SystemTime;

use axum::http::HeaderMap;

pub use iam::IamConfig;
pub use jwt::{JwtConfig, KeySource};

/// How a client's identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// An OAuth 2.0 / OIDC bearer token (JWT).
    Jwt,
    /// A signed AWS STS `GetCallerIdentity` request.
    Iam,
    /// `--no-auth` (loopback only): the principal is the host's own user.
    None,
}

impl AuthMethod {
    /// The name in headers, the audit log and `--auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::Iam => "iam",
            AuthMethod::None => "none",
        }
    }
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who: a token's `sub`, an IAM caller's ARN, or (without
    /// authentication) the host's user.
    pub principal: String,
    /// Groups the principal is a member of (a token's `groups` or
    /// `cognito:groups` claim); empty for IAM and `--no-auth`.
    pub groups: Vec<String>,
    /// How the identity was established.
    pub method: AuthMethod,
}

impl Identity {
    /// Who this is, method included (`jwt:ann`, `iam:arn:aws:…`): a JWT's
    /// `sub` that spells an IAM ARN is not that IAM principal.
    pub fn key(&self) -> String {
        format!("{}:{}", self.method.as_str(), self.principal)
    }

    /// The identity of every client of a host run with `--no-auth`.
    pub fn unauthenticated(principal: &str) -> Identity {
        Identity {
            principal: principal.to_string(),
            groups: Vec::new(),
            method: AuthMethod::None,
        }
    }
}

/// Why a request was not authenticated. Each has a short code
/// ([`AuthError::reason`]) for the refusal's Status body; messages never
/// contain the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carries no token.
    #[error(
        "no token: send Authorization: Bearer <token>, or the subprotocols base64UrlBearerAuthorization.<base64url token> and base64UrlBearerAuthorization"
    )]
    NoToken,
    /// The token is over 16 KiB.
    #[error("the token is larger than 16 KiB")]
    TooLarge,
    /// The token (or its carriage) is not well-formed.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The JWT's algorithm is not RS256, ES256 or EdDSA (or does not fit
    /// its key).
    #[error("the token's algorithm is not accepted: {0} (RS256, ES256 and EdDSA are)")]
    Algorithm(String),
    /// No trusted key has the JWT's key id (after a refetch, when allowed).
    #[error("the token is signed with a key this host does not know")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// Past `exp` (JWT) or 15 minutes after `X-Amz-Date` (IAM).
    #[error("the token has expired")]
    Expired,
    /// Before `nbf` (JWT), or an `X-Amz-Date` in the future (IAM).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The JWT's issuer is not an accepted one.
    #[error("the token's issuer is not accepted here")]
    WrongIssuer,
    /// None of the JWT's audiences is accepted.
    #[error("the token's audience is not accepted here")]
    WrongAudience,
    /// The JWT's `client_id`/`azp` is not an accepted client.
    #[error("the token's client is not accepted here")]
    WrongClient,
    /// The IAM token names another server id.
    #[error("the IAM token is meant for another server (X-Termtrail-Server-Id)")]
    WrongServer,
    /// The IAM token's request is not for this host's STS endpoint.
    #[error("the IAM token's request is not addressed to this host's STS endpoint")]
    WrongEndpoint,
    /// The token is of a method this host does not accept.
    #[error("this host does not accept {} tokens", .0.as_str())]
    MethodNotEnabled(AuthMethod),
    /// STS refused the signed request (bad signature, unknown key, …).
    #[error("STS refused the signed request: {0}")]
    IamRefused(String),
    /// STS could not be asked (answered with HTTP 503).
    #[error("STS cannot be reached to check the token: {0}")]
    StsUnavailable(String),
}

impl AuthError {
    /// The code in the refusal's Status body (`reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::NoToken => "NoToken",
            AuthError::TooLarge => "TokenTooLarge",
            AuthError::Malformed(_) => "MalformedToken",
            AuthError::Algorithm(_) => "UnsupportedAlgorithm",
            AuthError::UnknownKey => "UnknownKey",
            AuthError::BadSignature => "BadSignature",
            AuthError::Expired => "TokenExpired",
            AuthError::NotYetValid => "TokenNotYetValid",
            AuthError::WrongIssuer => "WrongIssuer",
            AuthError::WrongAudience => "WrongAudience",
            AuthError::WrongClient => "WrongClient",
            AuthError::WrongServer => "WrongServerId",
            AuthError::WrongEndpoint => "WrongStsEndpoint",
            AuthError::MethodNotEnabled(_) => "MethodNotEnabled",
            AuthError::IamRefused(_) => "IamRefused",
            AuthError::StsUnavailable(_) => "StsUnavailable",
        }
    }

    /// The HTTP status: 503 when STS could not be asked, else 401.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::StsUnavailable(_) => 503,
            _ => 401,
        }
    }
}

/// Why the authenticator could not be built (start-up stops).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// The JWKS file could not be read.
    #[error("{}: cannot read the JWKS ({error})", .path.display())]
    ReadJwks {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A JWKS (file or URL) is not one this host can use.
    #[error("{what}: not a usable JWKS: {reason}")]
    BadJwks {
        /// The file or URL.
        what: String,
        /// Why (with the line and column of a JSON error).
        reason: String,
    },
    /// A discovery document or JWKS could not be fetched.
    #[error("{url}: cannot fetch ({reason})")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        reason: FetchError,
    },
    /// The discovery document is not usable.
    #[error("{url}: not a usable OIDC discovery document: {reason}")]
    BadDiscovery {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The STS endpoint is not an absolute http(s) URL.
    #[error("--iam-sts-endpoint {url}: {reason}")]
    BadStsEndpoint {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server id is empty or has control characters.
    #[error("--iam-server-id must be non-empty printable ASCII")]
    BadServerId,
    /// Neither JWT nor IAM configured.
    #[error("no authentication method configured")]
    NoMethod,
}

/// How the host authenticates, as the binary configures it.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `--auth jwt`.
    pub jwt: Option<JwtConfig>,
    /// `--auth iam`.
    pub iam: Option<IamConfig>,
}

/// Turns requests into identities. Built once at start-up; shared by every
/// request handler.
pub struct Authenticator {
    inner: Inner,
}

enum Inner {
    /// `--no-auth`: everyone is this principal.
    Off { principal: String },
    /// Boxed: the verifiers are large, and there is one authenticator.
    On(Box<Verifiers>),
}

struct Verifiers {
    jwt: Option<jwt::JwtVerifier>,
    iam: Option<iam::IamVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let methods: Vec<&str> = self.methods().iter().map(|m| m.as_str()).collect();
        f.debug_struct("Authenticator")
            .field("methods", &methods)
            .finish()
    }
}

impl Authenticator {
    /// `--no-auth`: every client is `principal` (the host's user).
    pub fn disabled(principal: &str) -> Authenticator {
        Authenticator {
            inner: Inner::Off {
                principal: principal.to_string(),
            },
        }
    }

    /// Loads keys and checks the configuration; any problem (an unreadable
    /// or malformed JWKS, an unreachable discovery URL, …) is an error that
    /// names the file or URL.
    pub async fn build(cfg: AuthConfig) -> Result<Authenticator, AuthConfigError> {
        if cfg.jwt.is_none() && cfg.iam.is_none() {
            return Err(AuthConfigError::NoMethod);
        }
        // System roots for https identity providers and STS; without any,
        // only http:// endpoints work (and say so when used).
        let tls = crate::tls::client_config(None).ok();
        let jwt = match cfg.jwt {
            Some(c) => Some(jwt::JwtVerifier::new(c, tls.clone()).await?),
            None => None,
        };
        let iam = match cfg.iam {
            Some(c) => Some(iam::IamVerifier::new(c, tls)?),
            None => None,
        };
        Ok(Authenticator {
            inner: Inner::On(Box::new(Verifiers { jwt, iam })),
        })
    }

    /// Whether clients must authenticate (false with `--no-auth`).
    pub fn is_enabled(&self) -> bool {
        matches!(self.inner, Inner::On(_))
    }

    /// The accepted methods (`[None]` with `--no-auth`).
    pub fn methods(&self) -> Vec<AuthMethod> {
        match &self.inner {
            Inner::Off { .. } => vec![AuthMethod::None],
            Inner::On(v) => v
                .jwt
                .as_ref()
                .map(|_| AuthMethod::Jwt)
                .into_iter()
                .chain(v.iam.as_ref().map(|_| AuthMethod::Iam))
                .collect(),
        }
    }

    /// The identity the request's token proves.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let (jwt, iam) = match &self.inner {
            Inner::Off { principal } => return Ok(Identity::unauthenticated(principal)),
            Inner::On(v) => (&v.jwt, &v.iam),
        };
        let bearer = token::extract(headers)?;
        if bearer.token.starts_with(iam::TOKEN_PREFIX) {
            let iam = iam
                .as_ref()
                .ok_or(AuthError::MethodNotEnabled(AuthMethod::Iam))?;
            return iam.verify(&bearer.token, SystemTime::now()).await;
        }
        match jwt {
            Some(jwt) => jwt.verify(&bearer.token).await,
            None => Err(AuthError::Malformed(format!(
                "not an IAM token (they start with {})",
                iam::TOKEN_PREFIX
            ))),
        }
    }
}

/// `text` for a message or log line: printable ASCII only (others become
/// `?`), at most 64 characters — for values taken from tokens.
pub(crate) fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > 64 {
        out.push('…');
    }
    out
}
