//! `termtrail attach`: open (or re-attach to) a remote shell in this
//! terminal.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use termtrail_recorder::client::{AttachOptions, AttachOutcome, DETACH_KEY, attach, endpoint_for};

use super::args::{CaCertArg, SessionArg, random_id};
use super::authn::ClientAuthArgs;
use crate::exit::Exit;

/// Text after `attach --help`'s options.
pub const HELP: &str = "\
Keys: Ctrl+] detaches (the shell keeps running; the command to re-attach is
printed); everything else, Ctrl+C included, goes to the remote shell.
A lost connection is retried with exponential backoff and jitter; the output
produced meanwhile is replayed on re-attach.

Exit status: the remote shell's; 0 after a detach; 1 when another client took
the shell over; 2 when the host refused or could not be reached.

Authentication: a bearer token (JWT) from --token-file FILE or the
TERMTRAIL_TOKEN environment variable (never a command-line value: it would
show in `ps`), or --auth iam --iam-server-id ID, which signs an
sts:GetCallerIdentity request with the standard AWS credential chain for each
connection. A refusal (HTTP 401) names the reason, e.g. TokenExpired.

Examples:
  termtrail attach ws://127.0.0.1:8765
  termtrail attach ws://127.0.0.1:8765 --session 3f1c…e9 --shell debug
  termtrail attach wss://shells.example.com:8443 --token-file ~/.cache/idp-token
  termtrail attach wss://shells.example.com:8443 --auth iam --iam-server-id shells.example.com --iam-region eu-west-1";

/// `attach` arguments.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The host: ws://HOST:PORT or wss://HOST:PORT, or the full shell endpoint URL.
    #[arg(value_name = "URL")]
    pub url: String,
    #[command(flatten)]
    pub session: SessionArg,
    /// Shell id (default: a new random one, i.e. a new shell).
    #[arg(long, value_name = "ID")]
    pub shell: Option<String>,
    /// Runtime ARN used in the endpoint path when URL has no path.
    #[arg(long, value_name = "ARN", default_value = "local")]
    pub runtime: String,
    /// Reconnect attempts after a lost connection.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub retries: u32,
    #[command(flatten)]
    pub ca_cert: CaCertArg,
    #[command(flatten)]
    pub auth: ClientAuthArgs,
}

/// Runs `attach`: the remote shell's status, or how the session ended.
pub fn run(a: AttachArgs) -> Result<Exit> {
    let session = a.session.or_random()?;
    let shell = match a.shell {
        Some(s) => s,
        None => random_id()?.replace('-', ""),
    };
    let tls = a.ca_cert.client_tls(&a.url)?;
    let opts = AttachOptions {
        tls,
        auth: a.auth.client_auth()?,
        break_glass: a.auth.break_glass.clone(),
        endpoint: endpoint_for(&a.url, &a.runtime),
        session: session.clone(),
        shell: shell.clone(),
        detach_key: Some(DETACH_KEY),
        max_retries: a.retries,
        base_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(15),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(attach(&opts));
    // The stdin thread may still be blocked reading; do not wait for it.
    runtime.shutdown_background();
    match outcome? {
        AttachOutcome::Exited(code) => Ok(Exit::of_child(code)),
        AttachOutcome::Detached => {
            eprintln!(
                "\r\n::: detached; the shell keeps running. Re-attach with:\r\n    termtrail attach {} --session {session} --shell {shell}",
                a.url
            );
            Ok(Exit::SUCCESS)
        }
        AttachOutcome::TakenOver => {
            eprintln!(
                "\r\n::: another client took this shell over (session {session}, shell {shell})"
            );
            Ok(Exit::TAKEN_OVER)
        }
    }
}
