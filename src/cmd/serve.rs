//! `termtrail serve`: host shells over WebSocket (AgentCore shell protocol),
//! recording each.

use anyhow::Result;
use clap::Args;
use termtrail_recorder::host::Backend;

use super::host::{HostFlags, fix_malloc_threshold, run_host};
use crate::exit::Exit;

/// Text after `serve --help`'s options.
pub const HELP: &str = "\
Clients connect to ws://ADDR/runtimes/<runtime-arn>/ws/shells?shellId=ID with the
header X-Amzn-Bedrock-AgentCore-Runtime-Session-Id (see docs/protocol.md). A new
(session, shell) pair starts a shell; the same pair re-attaches to it and gets
the output buffered meanwhile (up to 256 KiB) replayed; a second client takes the
shell over (the first is closed with code 4000). Every shell is recorded to the
store under YYYY/MM/DD/serve/<session>/<shell>/.

One-shot commands (InvokeAgentRuntimeCommand, docs/protocol.md §9): POST
/runtimes/<runtime-arn>/commands runs `sh -c` without a PTY and answers with the
service's AWS event stream, so AWS SDK clients work against this host, e.g.
boto3.client('bedrock-agentcore', endpoint_url='http://ADDR')
.invoke_agent_runtime_command(...); JSON Lines instead for Accept:
application/x-ndjson (what `termtrail exec` asks for). Refusals carry
x-amzn-errortype (ValidationException, AccessDeniedException, ...). Each
command is recorded under YYYY/MM/DD/serve/<session>/cmd-<id>/.

Authentication (docs/protocol.md §8) comes first on every request; a client
without a valid token gets HTTP 401 (503 when STS cannot be asked) with a
reason such as NoToken, TokenExpired or WrongAudience, before anything starts:
  --auth jwt   OAuth/OIDC bearer tokens (Authorization: Bearer, or the WebSocket
               subprotocol base64UrlBearerAuthorization.<base64url token>):
               keys from --jwt-discovery-url or --jwt-jwks; RS256/ES256/EdDSA
  --auth iam   a signed sts:GetCallerIdentity naming --iam-server-id, replayed
               to --iam-sts-endpoint (default the regional STS); the principal
               is the caller's ARN
  --no-auth    every client is this host's $USER (loopback addresses only)
One of them is required. Beyond loopback, plaintext ws:// also needs
--insecure-plaintext (use --tls-cert/--tls-key). The principal, the method and
the client's address go into each recording's header.

Then the access policy decides (docs/policy.md): --policy FILE.cedar is a Cedar
policy over the principal and its groups, the action (OpenShell for a shell,
RunCommand for one command), the runtime with its --environment, and the
break-glass reason a client states (X-Termtrail-Break-Glass, attach
--break-glass). Denied: HTTP 403 naming the deciding policies. A shell allowed
only through break-glass ends after --break-glass-duration. Only the principal
that opened a shell may re-attach. SIGHUP re-reads the policy.
GET /healthz and /metrics (Prometheus) are served too (not authenticated).

Limits that hold before any token is checked (docs/protocol.md §1.1, §3.1):
a connection must send its request head within --header-timeout (10s); at
--max-connections (default from the open-files limit, raised to its hard limit
at start) the oldest connection with no request under way is closed for the
newcomer, so floods of silent or half-sent connections never keep out shells,
/healthz or /metrics. Resizes are reduced to --max-terminal-size (1000x1000).
Output of a shell no client reads pauses once its 256 KiB replay buffer is
full (nothing lost, nothing more recorded); a shell whose recorded output passes
--max-recording-bytes (2G) is ended. Per-connection log lines are
limited to --log-rate per kind and second. A shell frees its --max-shells slot
the moment its program exits. Each limit hit is counted in /metrics.
SIGTERM/SIGINT: stop accepting, close clients (1001), end shells, kill running
commands, and seal their recordings as interrupted.

One-shot commands (POST /runtimes/<arn>/commands, `termtrail exec`) run `sh -c`
under a supervisor that keeps every process they start (setsid and double forks
included) in their tree: a command ends when all of it has exited, and all of it
is killed at its timeout, when its client goes away, and at shutdown. At most
--max-commands run at once (the next gets HTTP 429 TooManyCommands); see
docs/protocol.md §9.

Secrets: input is not recorded while the shell's terminal has echo off (password
prompts), and recorded output is redacted (AWS secret access keys, Authorization:
Bearer tokens, PEM private keys; --redact NAME=REGEX adds a rule,
--no-default-redactions drops these); clients see output unchanged. See
docs/recording.md (Secrets).

Examples:
  termtrail serve --listen 127.0.0.1:8765 --no-auth
  termtrail serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem \\
      --auth jwt --jwt-discovery-url https://idp.example.com/.well-known/openid-configuration \\
      --jwt-audience termtrail
  termtrail serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem \\
      --auth jwt --jwt-jwks jwks.json --policy team.cedar --environment production
  termtrail serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem \\
      --auth jwt,iam --jwt-jwks jwks.json --iam-server-id shells.example.com --iam-region eu-west-1
  termtrail serve --listen 127.0.0.1:8765 --no-auth --audit /var/log/termtrail/audit.jsonl
  termtrail serve --listen 127.0.0.1:8765 --no-auth --max-shells 50 --idle-timeout 30m -- bash -l
  termtrail serve --listen 127.0.0.1:8765 --no-auth --max-commands 4
  termtrail serve --listen 127.0.0.1:8765 --no-auth --redact 'ghp=ghp_[A-Za-z0-9]{36}'
  termtrail serve --listen 127.0.0.1:8765 --no-auth --header-timeout 5s --max-connections 2000 \\
      --max-terminal-size 500x200 --log-rate 50";

/// `serve` arguments. `--listen` and `--max-shells` are not a shared group:
/// their defaults and texts differ from `proxy`'s.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8765", value_parser = super::args::parse_listen)]
    #[arg(help_heading = super::headings::LISTENING)]
    pub listen: String,
    #[command(flatten, next_help_heading = super::headings::STORAGE)]
    pub host: HostFlags,
    /// At most this many live shells; the next connection is refused (HTTP 429).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    #[arg(help_heading = super::headings::LIMITS)]
    pub max_shells: u16,
    /// Command for new shells (default: $SHELL).
    #[arg(last = true, value_name = "CMD")]
    #[arg(help_heading = super::headings::GENERAL)]
    pub command: Vec<String>,
}

/// Runs `serve` until SIGTERM or SIGINT.
pub fn run(a: ServeArgs) -> Result<Exit> {
    if a.host.access.environments.is_some() {
        // The runtime in a client's URL is the client's choice on serve: it
        // must not choose its environment too.
        anyhow::bail!(
            "serve hosts one runtime: give its environment with --environment NAME (--environments FILE is for proxy)"
        );
    }
    fix_malloc_threshold();
    let backend = Backend::Local { command: a.command };
    run_host("serve", &a.listen, a.max_shells, a.host, backend)
}
