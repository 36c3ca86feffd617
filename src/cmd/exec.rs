//! `termtrail exec`: run one command on a shell host and print its output.

use std::io;

use anyhow::{Context, Result};
use clap::Args;
use termtrail_recorder::exec::{ExecRequest, authority, exec};

use super::args::{CaCertArg, SessionArg};
use super::authn::ClientAuthArgs;
use crate::exit::Exit;

/// Text after `exec --help`'s options.
pub const HELP: &str = "\
Runs CMD with `sh -c` on the host (POST /runtimes/<arn>/commands, recorded like
every shell), streams its stdout and stderr here, and exits with its exit code
(124 when the host stopped it at --timeout).

It asks for termtrail's JSON Lines (Accept: application/x-ndjson), which carry
output bytes exactly, even those that are not UTF-8, and reads the service's
event stream (application/vnd.amazon.eventstream) too when that is what the
host answers (there, bytes that are not UTF-8 arrive as U+FFFD). A failure
after the output started (an exception event, e.g. ThrottlingException) is an
error here (exit 2) naming the error type.

Authentication as for `attach`: --token-file FILE or TERMTRAIL_TOKEN (a JWT),
or --auth iam --iam-server-id ID (AWS credential chain).

Examples:
  termtrail exec ws://127.0.0.1:8765 -- uname -a
  TERMTRAIL_TOKEN=$(cat token) termtrail exec wss://shells.example.com:8443 -- id
  termtrail exec ws://127.0.0.1:8765 --timeout 10 -- 'make test 2>&1 | tail'";

/// `exec` arguments.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The host: ws://, wss://, http:// or https://HOST:PORT.
    #[arg(value_name = "URL")]
    pub url: String,
    #[command(flatten)]
    pub session: SessionArg,
    /// Runtime ARN in the request path.
    #[arg(long, value_name = "ARN", default_value = "local")]
    pub runtime: String,
    /// How long the host lets the command run before stopping it: seconds (300) or a duration (5m, 90s); 1s to 1h, whole seconds.
    #[arg(long, value_name = "DURATION", default_value = "300", value_parser = timeout_secs)]
    pub timeout: u64,
    #[command(flatten)]
    pub ca_cert: CaCertArg,
    #[command(flatten)]
    pub auth: ClientAuthArgs,
    /// The command (joined with spaces and run by sh -c).
    #[arg(last = true, required = true, value_name = "CMD")]
    #[arg(help_heading = super::headings::GENERAL)]
    pub command: Vec<String>,
}

/// Runs `exec`: the remote command's exit status.
pub fn run(a: ExecArgs) -> Result<Exit> {
    let (auth, uses_tls) = authority(&a.url)?;
    let tls = if uses_tls {
        a.ca_cert.client_tls("wss://")?
    } else {
        None
    };
    let session = a.session.or_random()?;
    let client_auth = a.auth.client_auth()?;
    let arn = termtrail_recorder::client::runtime_path(&a.runtime);
    let command = a.command.join(" ");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let (mut out, mut err) = (super::stdout::lock(), io::stderr());
        let req = ExecRequest {
            authority: &auth,
            arn_path: &arn,
            session: &session,
            command: &command,
            timeout_secs: a.timeout,
            tls: tls.as_ref(),
            auth: client_auth.as_ref(),
            break_glass: a.auth.break_glass.as_deref(),
        };
        exec(&req, &mut out, &mut err).await
    })?;
    if outcome.timed_out {
        eprintln!(
            "termtrail: the host stopped the command after {} s",
            a.timeout
        );
    }
    Ok(Exit::of_child(outcome.exit_code))
}

/// `--timeout`: a duration of whole seconds from 1 to 3600.
fn timeout_secs(s: &str) -> Result<u64, super::args::BadValue> {
    let d = super::args::parse_duration(s)?;
    match d.as_secs() {
        secs @ 1..=3600 if d.subsec_nanos() == 0 => Ok(secs),
        _ if d > std::time::Duration::from_secs(3600) => Err(super::args::BadValue(format!(
            "{s}: at most 1h (the longest a host runs one command)"
        ))),
        _ => Err(super::args::BadValue(format!(
            "{s}: whole seconds from 1s to 1h"
        ))),
    }
}
