//! SigV4 for the WebSocket upgrade to a real AgentCore runtime (service
//! `bedrock-agentcore`): the request is signed with aws-sigv4, the session id
//! header included in the signed headers, as AgentCore's own clients do.
//!
//! Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN`, else the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) for
//! `AWS_PROFILE` (default `default`). This is the static part of the
//! standard chain; SSO, IMDS and `credential_process` come with aws-config
//! (the S3 issue brings it in).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// The AgentCore service name for signing.
pub const SERVICE: &str = "bedrock-agentcore";

/// Signs upgrade requests.
#[derive(Clone)]
pub struct Signer {
    creds: Credentials,
    region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Signer")
            .field("access_key_id", &self.creds.access_key_id())
            .field("region", &self.region)
            .finish()
    }
}

impl Signer {
    /// A signer with credentials from the environment or the shared file.
    pub fn from_env(region: &str) -> Result<Signer, String> {
        Ok(Signer {
            creds: load_credentials()?,
            region: region.to_string(),
        })
    }

    /// A signer with explicit credentials (tests).
    pub fn new(creds: Credentials, region: &str) -> Signer {
        Signer {
            creds,
            region: region.to_string(),
        }
    }

    /// Signs `req` in place (adds `x-amz-date`, `authorization` and, with
    /// temporary credentials, `x-amz-security-token`).
    pub fn sign(&self, req: &mut http::Request<()>, at: SystemTime) -> Result<(), String> {
        let identity = self.creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
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
            .ok_or("the request has no host")?;
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
            SignableBody::Bytes(&[]),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| e.to_string())?
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

fn load_credentials() -> Result<Credentials, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(ak), Some(sk)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials::new(
            ak,
            sk,
            env("AWS_SESSION_TOKEN"),
            None,
            "environment",
        ));
    }
    let path = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".aws/credentials")))
        .ok_or("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or HOME for ~/.aws/credentials")?;
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "no AWS credentials in the environment, and {}: {e}",
            path.display()
        )
    })?;
    let mut section = String::new();
    let (mut ak, mut sk, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if section == profile
            && let Some((k, v)) = line.split_once('=')
        {
            let v = Some(v.trim().to_string());
            match k.trim() {
                "aws_access_key_id" => ak = v,
                "aws_secret_access_key" => sk = v,
                "aws_session_token" => token = v,
                _ => {}
            }
        }
    }
    match (ak, sk) {
        (Some(ak), Some(sk)) => Ok(Credentials::new(
            ak,
            sk,
            token,
            None,
            "shared-credentials-file",
        )),
        _ => Err(format!(
            "profile [{profile}] in {} has no access key",
            path.display()
        )),
    }
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
        signer
            .sign(
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
