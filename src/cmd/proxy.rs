//! `termtrail proxy`: a recording proxy in front of a shell host (AgentCore
//! protocol or terminado).

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use termtrail_recorder::host::Backend;
use termtrail_recorder::upstream::Upstream;

use super::args::{CaCertArg, PromptArgs};
use super::host::{HostFlags, fix_malloc_threshold, run_host};
use crate::exit::Exit;

/// Text after `proxy --help`'s options.
pub const HELP: &str = "\
Clients speak the AgentCore shell protocol to the proxy exactly as to
`termtrail serve` (docs/protocol.md); the proxy opens the same (session, shell)
upstream, relays both ways and records every shell to the store under
YYYY/MM/DD/proxy/<session>/<shell>/. If the client drops, the upstream shell and
its recording carry on until the client re-attaches or --grace ends. If the
upstream link drops, the proxy re-attaches with the same ids and records the
host's replay only where it is new; bytes the host dropped become a gap marker.
One-shot commands (docs/protocol.md §9) are forwarded to an AgentCore upstream
(SigV4-signed like the upgrade), recorded, and answered in the format the
client asked for (the service's event stream, or JSON Lines); the upstream may
answer either.

Secrets: the proxy cannot see the remote terminal's echo flag, so after output
whose last line ends with a password prompt (password:, password for …:,
passphrase …:, PIN …:, token:, case-insensitive; --secret-prompt REGEX adds
one, --no-default-secret-prompts drops these) the input up to and including the
next CR/LF is sent upstream but not recorded; a marker records how many bytes
were withheld. Recorded output is redacted as with serve (--redact,
--no-default-redactions). See docs/recording.md (Secrets).

Upstreams:
  --upstream-protocol agentcore  ws[s]://HOST:PORT or the full shell endpoint URL
                                 (termtrail serve, or an AgentCore runtime:
                                 wss://bedrock-agentcore.REGION.amazonaws.com with
                                 --runtime ARN; the upgrade is SigV4-signed)
  --upstream-protocol terminado  a NamedTermManager URL; {shell} is replaced by
                                 the shell id (else appended), e.g.
                                 ws://127.0.0.1:8888/websocket/{shell}

Clients authenticate to the proxy exactly as to `serve` (--auth jwt, --auth
iam, or --no-auth on loopback; see `termtrail serve --help` and
docs/protocol.md §8); the proxy records the authenticated principal. The access
policy decides as on serve (--policy, docs/policy.md); --environments FILE
gives each runtime ARN its environment (`PATTERN NAME` lines, first match wins),
so one proxy can open dev shells freely and production ones only through
break-glass.

One-shot command calls are forwarded upstream and recorded; at most
--max-commands are forwarded at once (the next gets HTTP 429 TooManyCommands,
docs/protocol.md §9.7).

The limits of `serve` hold here too (--header-timeout, --max-connections,
--max-terminal-size, --max-recording-bytes, --log-rate; see `termtrail serve
--help`): output no
client reads pauses the upstream link once the replay buffer is full.

Examples:
  termtrail proxy --listen 127.0.0.1:9000 --upstream ws://127.0.0.1:8765 --no-auth
  termtrail proxy --listen 0.0.0.0:9443 --tls-cert cert.pem --tls-key key.pem \\
      --auth jwt --jwt-jwks jwks.json --jwt-issuer https://idp.example.com \\
      --upstream wss://bedrock-agentcore.us-west-2.amazonaws.com --runtime arn:aws:bedrock-agentcore:… \\
      --policy team.cedar --policy-schema termtrail.cedarschema --environments environments.txt
  termtrail proxy --listen 127.0.0.1:9000 --upstream-protocol terminado \\
      --upstream 'ws://127.0.0.1:8888/websocket/{shell}' --no-auth
  termtrail proxy --listen 127.0.0.1:9000 --upstream ws://127.0.0.1:8765 --no-auth \\
      --secret-prompt '(?i)one-time code: *$'";

/// Upstream protocols.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// The AgentCore shell protocol (termtrail serve).
    Agentcore,
    /// terminado (Jupyter's terminal server).
    Terminado,
}

/// How the proxy authenticates to its upstream.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// SigV4 when the upstream is an AWS endpoint (*.amazonaws.com), else none.
    Auto,
    /// Sign the upgrade with SigV4 (AWS credentials from the environment or ~/.aws/credentials).
    Sigv4,
    /// No upstream authentication.
    None,
}

/// `proxy` arguments. `--listen` and `--max-shells` are not a shared group:
/// their defaults and texts differ from `serve`'s.
#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9000", value_parser = super::args::parse_listen)]
    #[arg(help_heading = super::headings::LISTENING)]
    pub listen: String,
    /// The upstream shell host.
    #[arg(long, value_name = "URL")]
    #[arg(help_heading = super::headings::UPSTREAM)]
    pub upstream: String,
    /// The upstream's protocol.
    #[arg(long, value_enum, default_value = "agentcore")]
    #[arg(help_heading = super::headings::UPSTREAM)]
    pub upstream_protocol: UpstreamProtocol,
    #[command(flatten, next_help_heading = super::headings::TLS)]
    pub ca_cert: CaCertArg,
    /// Authentication towards the upstream (agentcore).
    #[arg(long, value_enum, default_value = "auto")]
    #[arg(help_heading = super::headings::UPSTREAM)]
    pub upstream_auth: UpstreamAuth,
    /// AWS region for SigV4 (default: from --runtime's ARN).
    #[arg(long, value_name = "REGION")]
    #[arg(help_heading = super::headings::UPSTREAM)]
    pub region: Option<String>,
    /// Runtime ARN used in the upstream path when --upstream has no path (agentcore).
    #[arg(long, value_name = "ARN", default_value = "local")]
    #[arg(help_heading = super::headings::UPSTREAM)]
    pub runtime: String,
    #[command(flatten, next_help_heading = super::headings::STORAGE)]
    pub host: HostFlags,
    /// At most this many live shells through the proxy; the next is refused (HTTP 429).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..))]
    #[arg(help_heading = super::headings::LIMITS)]
    pub max_shells: u16,
    #[command(flatten)]
    pub secret_prompts: PromptArgs,
}

impl ProxyArgs {
    /// The upstream as the proxy takes it: its URL, TLS and SigV4 signer.
    fn upstream(&self) -> Result<Upstream> {
        use termtrail_recorder::upstream::UpstreamProtocol as Protocol;
        if !(self.upstream.starts_with("ws://") || self.upstream.starts_with("wss://")) {
            bail!(
                "--upstream must be a ws:// or wss:// URL, got {:?}",
                self.upstream
            );
        }
        let tls = self.ca_cert.client_tls(&self.upstream)?;
        let signer = self.signer()?;
        Ok(match self.upstream_protocol {
            UpstreamProtocol::Agentcore => {
                let url = termtrail_recorder::client::endpoint_for(&self.upstream, &self.runtime);
                let runtime = termtrail_recorder::upstream::runtime_of_endpoint(&url)
                    .unwrap_or_else(|| self.runtime.clone());
                Upstream {
                    protocol: Protocol::AgentCore,
                    url,
                    tls,
                    signer,
                    runtime,
                }
            }
            UpstreamProtocol::Terminado => Upstream {
                protocol: Protocol::Terminado,
                url: self.upstream.clone(),
                tls,
                signer: None,
                runtime: self.runtime.clone(),
            },
        })
    }

    /// The SigV4 signer, when the upstream is to be signed.
    fn signer(&self) -> Result<Option<termtrail_recorder::sigv4::Signer>> {
        let aws_host = self
            .upstream
            .split("://")
            .nth(1)
            .and_then(|r| r.split(['/', ':']).next())
            .is_some_and(|h| h.ends_with(".amazonaws.com"));
        let sign = match self.upstream_auth {
            UpstreamAuth::Sigv4 => true,
            UpstreamAuth::Auto => aws_host,
            UpstreamAuth::None => false,
        };
        if !sign {
            return Ok(None);
        }
        let region = self
            .region
            .clone()
            .or_else(|| termtrail_recorder::sigv4::region_of_arn(&self.runtime).map(str::to_string))
            .context("SigV4 needs a region: pass --region, or --runtime with a full runtime ARN")?;
        Ok(Some(termtrail_recorder::sigv4::Signer::from_chain(
            &region,
        )?))
    }
}

/// Runs `proxy` until SIGTERM or SIGINT.
pub fn run(a: ProxyArgs) -> Result<Exit> {
    fix_malloc_threshold();
    let upstream = a.upstream()?;
    run_host(
        "proxy",
        &a.listen,
        a.max_shells,
        a.host,
        Backend::Proxy {
            upstream,
            prompts: a.secret_prompts.rules()?,
        },
    )
}
