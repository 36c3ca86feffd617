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

There is no authentication yet: --no-auth is required, and accepted only on a
loopback address. GET /healthz and /metrics (Prometheus) are served too.
SIGTERM/SIGINT: stop accepting, close clients (1001), end shells and seal their
recordings as interrupted.

Examples:
  termtrail serve --listen 127.0.0.1:8765 --no-auth
  termtrail serve --listen 127.0.0.1:8765 --no-auth --audit /var/log/termtrail/audit.jsonl
  termtrail serve --listen 127.0.0.1:8443 --no-auth --tls-cert cert.pem --tls-key key.pem
  termtrail serve --listen 127.0.0.1:8765 --no-auth --max-shells 50 --idle-timeout 30m -- bash -l";

/// `serve` arguments. `--listen` and `--max-shells` are not a shared group:
/// their defaults and texts differ from `proxy`'s.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8765")]
    pub listen: String,
    /// At most this many live shells; the next connection is refused (HTTP 429).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_shells: u16,
    #[command(flatten)]
    pub host: HostFlags,
    /// Command for new shells (default: $SHELL).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Runs `serve` until SIGTERM or SIGINT.
pub fn run(a: ServeArgs) -> Result<Exit> {
    fix_malloc_threshold();
    let backend = Backend::Local { command: a.command };
    run_host("serve", &a.listen, a.max_shells, a.host, backend)
}
