//! SigV4 for the WebSocket upgrade to a real AgentCore runtime (service
//! `bedrock-agentcore`): the request is signed with aws-sigv4, the session id
//! header included in the signed headers, as AgentCore's own clients do.
//!
//! Credentials come from AWS's standard chain (aws-config, the same as the
//! S3 store's): environment variables, the shared config and credentials
//! files for `AWS_PROFILE` (SSO, `credential_process`, assumed roles), web
//! identity tokens, and the ECS/EC2 metadata services. Temporary credentials
//! are refreshed by the chain before they expire; each upgrade is signed
//! with the current ones.

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningError, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// The AgentCore service name for signing.
pub const SERVICE: &str = "bedrock-agentcore";

/// Why a request could not be signed (or a signer not made).
#[derive(Debug, thiserror::Error)]
pub enum SigV4Error {
    /// The runtime that checks the credential chain could not start.
    #[error("{0}")]
    Runtime(std::io::Error),
    /// The standard chain has no credentials provider at all.
    #[error("{}", NO_CREDENTIALS)]
    NoCredentials,
    /// The chain's provider yielded no credentials.
    #[error("{} ({})", NO_CREDENTIALS, .0)]
    Credentials(CredentialsError),
    /// The signing parameters are incomplete.
    #[error("{0}")]
    Params(v4::signing_params::BuildError),
    /// The request names no host (neither a `host` header nor in its URI).
    #[error("the request has no host")]
    NoHost,
    /// aws-sigv4 refused the request or could not sign it.
    #[error("{0}")]
    Signing(SigningError),
}

/// Signs upgrade requests.
#[derive(Clone)]
pub struct Signer {
    creds: Arc<Creds>,
    region: String,
}

enum Creds {
    Static(Credentials),
    /// The standard chain, built on first use inside the async runtime
    /// that signs.
    Chain(tokio::sync::OnceCell<Option<SharedCredentialsProvider>>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        let source = match &*self.creds {
            Creds::Static(c) => c.access_key_id().to_string(),
            Creds::Chain(_) => "standard chain".into(),
        };
        f.debug_struct("Signer")
            .field("credentials", &source)
            .field("region", &self.region)
            .finish()
    }
}

impl Signer {
    /// A signer with credentials from AWS's standard chain. Checks once
    /// (blocking, outside any async runtime) that the chain yields
    /// credentials, so a proxy without any refuses to start.
    pub fn from_chain(region: &str) -> Result<Signer, SigV4Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SigV4Error::Runtime)?;
        rt.block_on(async {
            let provider = chain().await.ok_or(SigV4Error::NoCredentials)?;
            provider
                .provide_credentials()
                .await
                .map_err(SigV4Error::Credentials)
        })?;
        Ok(Signer {
            creds: Arc::new(Creds::Chain(tokio::sync::OnceCell::new())),
            region: region.to_string(),
        })
    }

    /// A signer with explicit credentials (tests).
    pub fn new(creds: Credentials, region: &str) -> Signer {
        Signer {
            creds: Arc::new(Creds::Static(creds)),
            region: region.to_string(),
        }
    }

    /// The region it signs for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The credentials to sign with now.
    pub async fn credentials(&self) -> Result<Credentials, SigV4Error> {
        match &*self.creds {
            Creds::Static(c) => Ok(c.clone()),
            Creds::Chain(cell) => {
                let provider = cell
                    .get_or_init(chain)
                    .await
                    .as_ref()
                    .ok_or(SigV4Error::NoCredentials)?;
                provider
                    .provide_credentials()
                    .await
                    .map_err(SigV4Error::Credentials)
            }
        }
    }

    /// Signs `req` in place with the current credentials (adds
    /// `x-amz-date`, `authorization` and, with temporary credentials,
    /// `x-amz-security-token`).
    pub async fn sign(
        &self,
        req: &mut http::Request<()>,
        at: SystemTime,
    ) -> Result<(), SigV4Error> {
        self.sign_payload(req, &[], at).await
    }

    /// Signs `req`, whose body is `payload` (the command call's POST).
    pub async fn sign_payload(
        &self,
        req: &mut http::Request<()>,
        payload: &[u8],
        at: SystemTime,
    ) -> Result<(), SigV4Error> {
        let creds = self.credentials().await?;
        sign_payload_with(&creds, &self.region, req, payload, at)
    }
}

const NO_CREDENTIALS: &str = "no AWS credentials found for SigV4: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is available";

async fn chain() -> Option<SharedCredentialsProvider> {
    termtrail_store::s3::sdk_config()
        .await
        .credentials_provider()
}

/// Signs `req` with `creds` (see [`Signer::sign`]).
pub fn sign_with(
    creds: &Credentials,
    region: &str,
    req: &mut http::Request<()>,
    at: SystemTime,
) -> Result<(), SigV4Error> {
    sign_payload_with(creds, region, req, &[], at)
}

/// Signs `req`, whose body is `payload`, with `creds`.
pub fn sign_payload_with(
    creds: &Credentials,
    region: &str,
    req: &mut http::Request<()>,
    payload: &[u8],
    at: SystemTime,
) -> Result<(), SigV4Error> {
    {
        let identity = creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SERVICE)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .map_err(SigV4Error::Params)?
            .into();
        // Sign what AgentCore's own clients sign: the host and the session
        // id (aws-sigv4 adds x-amz-date and the security token). Hop-by-hop
        // and WebSocket handshake headers stay out: intermediaries may
        // rewrite them.
        let host = req
            .headers()
            .get("host")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .ok_or(SigV4Error::NoHost)?;
        let mut headers = vec![("host".to_string(), host)];
        if let Some(v) = req
            .headers()
            .get(crate::protocol::SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            headers.push((crate::protocol::SESSION_HEADER.to_string(), v.to_string()));
        }
        let uri = req.uri().to_string();
        let signable = SignableRequest::new(
            req.method().as_str(),
            uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(payload),
        )
        .map_err(SigV4Error::Signing)?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(SigV4Error::Signing)?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

/// The region in a runtime ARN `arn:aws:bedrock-agentcore:REGION:ACCOUNT:runtime/ID`.
pub fn region_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next()? == "arn").then_some(())?;
    parts.next()?;
    (parts.next()? == SERVICE).then_some(())?;
    parts.next().filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_arns() {
        assert_eq!(
            region_of_arn("arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/x"),
            Some("us-west-2")
        );
        assert_eq!(region_of_arn("arn:aws:s3:::bucket"), None);
        assert_eq!(region_of_arn("local"), None);
    }

    #[test]
    fn signing_adds_the_headers_and_covers_the_session_header() {
        let signer = Signer::new(
            Credentials::new("AKIDEXAMPLE", "secret", Some("tok".into()), None, "test"),
            "us-west-2",
        );
        let mut req = http::Request::get(
            "wss://bedrock-agentcore.us-west-2.amazonaws.com/runtimes/a/ws/shells?shellId=s",
        )
        .header("host", "bedrock-agentcore.us-west-2.amazonaws.com")
        .header("x-amzn-bedrock-agentcore-runtime-session-id", "sess")
        .body(())
        .unwrap();
        let creds = futures_util::FutureExt::now_or_never(signer.credentials())
            .unwrap()
            .unwrap();
        sign_with(
            &creds,
            "us-west-2",
            &mut req,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
        )
        .unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20270115/us-west-2/bedrock-agentcore/aws4_request"), "{auth}");
        assert!(auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token;x-amzn-bedrock-agentcore-runtime-session-id,"), "{auth}");
        assert_eq!(req.headers()["x-amz-security-token"], "tok");
        assert_eq!(req.headers()["x-amz-date"], "20270115T080000Z");
    }
}
