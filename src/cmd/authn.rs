//! Authentication flags: the host's (`serve`, `proxy`: `--auth`, `--jwt-*`,
//! `--iam-*`, `--no-auth`, `--insecure-plaintext`) with the start-up rules
//! for listening beyond loopback, and the clients' (`attach`, `exec`:
//! `--token-file`, `TERMTRAIL_TOKEN`, `--auth iam`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};

use super::args::BadValue;
use termtrail_recorder::auth::client::ClientAuth;
use termtrail_recorder::auth::iam::regional_endpoint;
use termtrail_recorder::auth::{AuthConfig, IamConfig, JwtConfig, KeySource};

/// Authentication methods a host accepts.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// OAuth 2.0 / OIDC bearer tokens (JWT).
    Jwt,
    /// AWS IAM: a signed sts:GetCallerIdentity request.
    Iam,
}

/// How `serve` and `proxy` authenticate clients.
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::AUTH)]
pub struct HostAuthArgs {
    /// Accepted authentication methods (repeatable, or a comma list: --auth jwt,iam).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "METHOD",
        conflicts_with = "no_auth"
    )]
    pub auth: Vec<Method>,
    /// Run without authentication (loopback addresses only): every client is this host's $USER.
    #[arg(long)]
    pub no_auth: bool,
    /// OIDC discovery document (…/.well-known/openid-configuration): the issuer and the JWKS come from it.
    #[arg(long, value_name = "URL", conflicts_with = "jwt_jwks")]
    pub jwt_discovery_url: Option<String>,
    /// JWKS file with the keys JWTs are signed with (instead of --jwt-discovery-url).
    #[arg(long, value_name = "FILE")]
    pub jwt_jwks: Option<PathBuf>,
    /// Accepted JWT issuer (repeatable; default: the discovery document's).
    #[arg(long, value_name = "ISS")]
    pub jwt_issuer: Vec<String>,
    /// Accepted JWT audience, matched against `aud` (repeatable).
    #[arg(long, value_name = "AUD")]
    pub jwt_audience: Vec<String>,
    /// Accepted OAuth client, matched against `client_id` or `azp` (repeatable).
    #[arg(long, value_name = "ID")]
    pub jwt_client_id: Vec<String>,
    /// This server's name in IAM tokens (their signed X-Termtrail-Server-Id header).
    #[arg(long, value_name = "ID")]
    pub iam_server_id: Option<String>,
    /// The STS endpoint IAM tokens are checked with (default: the regional STS, sts.REGION.amazonaws.com).
    #[arg(long, value_name = "URL")]
    pub iam_sts_endpoint: Option<String>,
    /// Region of the default STS endpoint (default: $AWS_REGION, $AWS_DEFAULT_REGION).
    #[arg(long, value_name = "REGION")]
    pub iam_region: Option<String>,
    /// Allow plaintext ws:// on an address beyond loopback (tokens then cross the network readable).
    #[arg(long)]
    pub insecure_plaintext: bool,
}

fn env_region() -> Option<String> {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()
        .filter(|r| !r.is_empty())
}

/// The STS endpoint: given, or the regional one.
fn sts_endpoint(endpoint: &Option<String>, region: &Option<String>) -> Result<String> {
    if let Some(e) = endpoint {
        return Ok(e.clone());
    }
    match region.clone().or_else(env_region) {
        Some(r) => Ok(regional_endpoint(&r)),
        None => bail!(
            "--auth iam needs an STS endpoint: pass --iam-region REGION (or set AWS_REGION), or --iam-sts-endpoint URL"
        ),
    }
}

impl HostAuthArgs {
    /// The authenticator's configuration; None with `--no-auth`.
    pub fn config(&self) -> Result<Option<AuthConfig>> {
        if self.no_auth {
            return Ok(None);
        }
        if self.auth.is_empty() {
            bail!(
                "no authentication is configured: pass --auth jwt and/or --auth iam (see --help), or --no-auth to run without it on a loopback address such as 127.0.0.1"
            );
        }
        let mut cfg = AuthConfig::default();
        if self.auth.contains(&Method::Jwt) {
            let keys = match (&self.jwt_discovery_url, &self.jwt_jwks) {
                (Some(url), _) => KeySource::Discovery(url.clone()),
                (None, Some(path)) => KeySource::File(path.clone()),
                (None, None) => {
                    bail!("--auth jwt needs --jwt-discovery-url URL or --jwt-jwks FILE")
                }
            };
            cfg.jwt = Some(JwtConfig {
                keys,
                issuers: self.jwt_issuer.clone(),
                audiences: self.jwt_audience.clone(),
                client_ids: self.jwt_client_id.clone(),
            });
        } else if self.jwt_discovery_url.is_some() || self.jwt_jwks.is_some() {
            bail!("--jwt-discovery-url and --jwt-jwks need --auth jwt");
        }
        if self.auth.contains(&Method::Iam) {
            let Some(server_id) = self.iam_server_id.clone() else {
                bail!(
                    "--auth iam needs --iam-server-id ID (the name clients sign into their tokens, e.g. this host's DNS name)"
                );
            };
            cfg.iam = Some(IamConfig {
                server_id,
                sts_endpoint: sts_endpoint(&self.iam_sts_endpoint, &self.iam_region)?,
            });
        } else if self.iam_server_id.is_some() || self.iam_sts_endpoint.is_some() {
            bail!("--iam-server-id and --iam-sts-endpoint need --auth iam");
        }
        Ok(Some(cfg))
    }

    /// The start-up rules for the bound address: beyond loopback, a host
    /// needs authentication, and plaintext needs `--insecure-plaintext`.
    pub fn check_address(&self, addr: SocketAddr, tls: bool) -> Result<()> {
        if addr.ip().is_loopback() {
            return Ok(());
        }
        if self.no_auth {
            bail!(
                "--no-auth is allowed only on a loopback address, not {addr}: pass --auth jwt or --auth iam to listen there"
            );
        }
        if !tls && !self.insecure_plaintext {
            bail!(
                "refusing plaintext ws:// on {addr} (beyond loopback tokens would cross the network readable): pass --tls-cert FILE --tls-key FILE, or --insecure-plaintext"
            );
        }
        Ok(())
    }
}

/// How `attach` and `exec` authenticate to the host.
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::AUTH)]
pub struct ClientAuthArgs {
    /// A file holding the bearer token (a JWT); TERMTRAIL_TOKEN is used when neither this nor --auth is given.
    #[arg(long, value_name = "FILE", conflicts_with = "auth")]
    pub token_file: Option<PathBuf>,
    /// Authenticate with AWS IAM: a signed sts:GetCallerIdentity from the standard AWS credential chain.
    #[arg(long, value_enum, value_name = "METHOD")]
    pub auth: Option<ClientMethod>,
    /// The host's --iam-server-id (required with --auth iam).
    #[arg(long, value_name = "ID")]
    pub iam_server_id: Option<String>,
    /// The STS endpoint the host checks with (default: the regional STS, sts.REGION.amazonaws.com).
    #[arg(long, value_name = "URL")]
    pub iam_sts_endpoint: Option<String>,
    /// Region to sign for (default: $AWS_REGION, $AWS_DEFAULT_REGION).
    #[arg(long, value_name = "REGION")]
    pub iam_region: Option<String>,
    /// Ask for break-glass access, stating why (recorded with the shell and in the audit log; the grant is time-boxed).
    #[arg(long, value_name = "REASON", value_parser = parse_reason)]
    pub break_glass: Option<String>,
}

/// A break-glass reason: 1 to 1024 bytes of text without control characters.
fn parse_reason(s: &str) -> Result<String, BadValue> {
    let t = s.trim();
    if t.is_empty() {
        return Err(BadValue("a break-glass reason must say something".into()));
    }
    if t.len() > termtrail_recorder::host::access::MAX_REASON || t.chars().any(char::is_control) {
        return Err(BadValue(
            "a break-glass reason is at most 1024 bytes, without control characters".into(),
        ));
    }
    Ok(t.to_string())
}

/// Client-side methods that need more than a token.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMethod {
    /// AWS IAM (see --iam-server-id).
    Iam,
}

impl ClientAuthArgs {
    /// The client's authentication, if any.
    pub fn client_auth(&self) -> Result<Option<ClientAuth>> {
        if let Some(path) = &self.token_file {
            return Ok(Some(ClientAuth::from_file(path)?));
        }
        if self.auth == Some(ClientMethod::Iam) {
            let Some(server_id) = &self.iam_server_id else {
                bail!("--auth iam needs --iam-server-id ID (the host's)");
            };
            let region = match self.iam_region.clone().or_else(env_region) {
                Some(r) => r,
                None => {
                    bail!("--auth iam needs a region: pass --iam-region REGION or set AWS_REGION")
                }
            };
            let endpoint = sts_endpoint(&self.iam_sts_endpoint, &Some(region.clone()))?;
            return Ok(Some(ClientAuth::iam(&region, &endpoint, server_id)?));
        }
        Ok(ClientAuth::from_env()?)
    }
}
