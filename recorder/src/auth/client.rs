//! The clients' side (`attach`, `exec`): the `Authorization` header they
//! send — a bearer token read from a file or `TERMTRAIL_TOKEN`, or an IAM
//! token minted afresh from the AWS credential chain for each connection
//! (so a reconnect after 15 minutes still has a valid one).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http::HeaderValue;

use super::iam::{MintError, mint_token};
use super::token::MAX_TOKEN;
use crate::sigv4::{SigV4Error, Signer};

/// How a client authenticates.
#[derive(Clone)]
pub enum ClientAuth {
    /// A bearer token (a JWT from the identity provider).
    Bearer(String),
    /// An IAM token minted for each connection.
    Iam {
        /// Credentials (the standard chain) and region.
        signer: Signer,
        /// The STS endpoint the server replays to.
        sts_endpoint: String,
        /// The server's `--iam-server-id`.
        server_id: String,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        match self {
            ClientAuth::Bearer(t) => write!(f, "Bearer(<{} bytes>)", t.len()),
            ClientAuth::Iam {
                sts_endpoint,
                server_id,
                ..
            } => write!(f, "Iam({sts_endpoint}, server id {server_id})"),
        }
    }
}

/// Why a client has no usable token.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// The token file could not be read.
    #[error("{}: cannot read the token ({error})", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The token (file or `TERMTRAIL_TOKEN`) is empty, too large, or not
    /// one line of printable ASCII.
    #[error("{what}: {reason}")]
    Bad {
        /// The file, or `TERMTRAIL_TOKEN`.
        what: String,
        /// Why.
        reason: &'static str,
    },
    /// No AWS credentials.
    #[error("{0}")]
    Credentials(SigV4Error),
    /// The IAM token could not be signed.
    #[error("cannot sign the IAM token: {0}")]
    Mint(MintError),
}

/// Checks a bearer token's text (`what` names its origin in errors).
fn bearer(text: &str, what: String) -> Result<ClientAuth, ClientAuthError> {
    let token = text.trim();
    let bad = |reason| ClientAuthError::Bad {
        what: what.clone(),
        reason,
    };
    if token.is_empty() {
        return Err(bad("the token is empty"));
    }
    if token.len() > MAX_TOKEN {
        return Err(bad("the token is larger than 16 KiB"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("the token is not one line of printable ASCII"));
    }
    Ok(ClientAuth::Bearer(token.to_string()))
}

impl ClientAuth {
    /// The bearer token in `path` (surrounding whitespace ignored).
    pub fn from_file(path: &Path) -> Result<ClientAuth, ClientAuthError> {
        let text = std::fs::read_to_string(path).map_err(|error| ClientAuthError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        bearer(&text, path.display().to_string())
    }

    /// The bearer token in `TERMTRAIL_TOKEN`, when set.
    pub fn from_env() -> Result<Option<ClientAuth>, ClientAuthError> {
        match std::env::var("TERMTRAIL_TOKEN") {
            Ok(t) => bearer(&t, "TERMTRAIL_TOKEN".into()).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// IAM tokens from the standard AWS credential chain (checked now).
    pub fn iam(
        region: &str,
        sts_endpoint: &str,
        server_id: &str,
    ) -> Result<ClientAuth, ClientAuthError> {
        Ok(ClientAuth::Iam {
            signer: Signer::from_chain(region).map_err(ClientAuthError::Credentials)?,
            sts_endpoint: sts_endpoint.to_string(),
            server_id: server_id.to_string(),
        })
    }

    /// The `Authorization` header value for a connection made now.
    pub async fn header(&self) -> Result<HeaderValue, ClientAuthError> {
        let token = match self {
            ClientAuth::Bearer(t) => t.clone(),
            ClientAuth::Iam {
                signer,
                sts_endpoint,
                server_id,
            } => {
                let creds = signer
                    .credentials()
                    .await
                    .map_err(ClientAuthError::Credentials)?;
                mint_token(
                    &creds,
                    signer.region(),
                    sts_endpoint,
                    server_id,
                    SystemTime::now(),
                )
                .map_err(ClientAuthError::Mint)?
            }
        };
        let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ClientAuthError::Bad {
                what: "the token".into(),
                reason: "not printable ASCII",
            }
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_are_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "abc.def.ghi\n").unwrap();
        assert!(
            matches!(ClientAuth::from_file(&f).unwrap(), ClientAuth::Bearer(t) if t == "abc.def.ghi")
        );
        std::fs::write(&f, "\n").unwrap();
        let e = ClientAuth::from_file(&f).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: the token is empty", f.display())
        );
        std::fs::write(&f, "a b").unwrap();
        assert!(ClientAuth::from_file(&f).is_err());
        let e = ClientAuth::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(e, ClientAuthError::Read { .. }));
        let debug = format!("{:?}", ClientAuth::Bearer("secret-token".into()));
        assert!(!debug.contains("secret"), "{debug}");
    }
}
