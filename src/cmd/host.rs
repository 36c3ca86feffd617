//! What `serve` and `proxy` share: their host flags, and running a shell
//! host on a listener until SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use termtrail_format::writer::WriterOptions;
use termtrail_recorder::auth::Authenticator;
use termtrail_recorder::host::{Backend, ServeOptions};
use termtrail_store::RecordingOptions;
use termtrail_store::destination::Destination;

use super::access::HostAccessArgs;
use super::args::{ProtectArgs, RedactArgs, StoreArg, TimeoutArgs, TlsArgs, parse_duration};
use super::authn::HostAuthArgs;
use super::limits::LimitArgs;
use super::upload::report_pending;
use crate::exit::Exit;

/// What `serve` and `proxy` share: where recordings go, how long shells
/// live, TLS and authentication. The fields' order is `--help`'s: what a
/// host needs first (TLS, who may connect, where recordings go), tuning
/// after (limits), S3 last; each group names its heading, so the flags
/// declared after this group (S3's, under `next_help_heading`) say theirs.
#[derive(Args, Debug)]
pub struct HostFlags {
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub auth: HostAuthArgs,
    #[command(flatten)]
    pub access: HostAccessArgs,
    #[command(flatten, next_help_heading = super::headings::STORAGE)]
    pub store: StoreArg,
    /// Append every shell start and end, re-attach, takeover and recording
    /// seal (and the host's start and stop) to this hash-chained audit log,
    /// fsynced line by line; an existing log is continued, and a copy goes
    /// to the store every --upload-interval (see `termtrail verify --audit`,
    /// docs/audit.md).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = super::headings::STORAGE)]
    pub audit: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub redact: RedactArgs,
    #[command(flatten)]
    pub commands: CommandLimitArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// With an S3 store: most time the bucket may lag a live recording.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    #[arg(help_heading = super::headings::S3)]
    pub upload_interval: Duration,
    /// Refuse to start when recordings cannot be made durable (S3 unreachable at the start), and end a shell whose recording fails.
    #[arg(long)]
    #[arg(help_heading = super::headings::S3)]
    pub strict: bool,
    #[command(flatten)]
    pub protect: ProtectArgs,
}

/// Bounds on the one-shot command endpoint (`POST /runtimes/<arn>/commands`).
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::LIMITS)]
pub struct CommandLimitArgs {
    /// At most this many one-shot commands at once (each holds a supervisor,
    /// `sh`, three pipes and a recording); the next call is refused at once
    /// with HTTP 429 TooManyCommands and counted in
    /// termtrail_commands_refused_total. Protects the host's memory, process
    /// and descriptor limits, so shells can still start during a command flood.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_commands: u16,
}

/// glibc raises its mmap threshold each time a large block is freed, so with
/// hundreds of shells the zstd contexts (about 1 MiB each, freed when a shell
/// goes idle) end up in a fragmented heap that is never returned: a host kept
/// ~350 KiB per idle shell instead of ~80 KiB (bench/shells.py). A fixed
/// threshold keeps such blocks mmapped, so freeing returns them. The setting
/// is read only at process start, hence the re-exec (before the host says or
/// does anything); an operator's own MALLOC_MMAP_THRESHOLD_ wins.
pub fn fix_malloc_threshold() {
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(VAR, "131072")
        .exec();
    // exec only returns on failure; carry on with the default allocator.
    eprintln!("termtrail: note: could not re-exec with {VAR} set: {err}");
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::field::MakeExt;
    let filter =
        EnvFilter::try_from_env("TERMTRAIL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Fields carry what clients sent (ids, principals, reasons, errors
    // quoting frames): controls and bidi characters in them are made
    // visible, so a log read in a terminal shows them and obeys none.
    let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let shown = termtrail_format::text::visible(&text);
        if field.name() == "message" {
            write!(w, "{shown}")
        } else {
            write!(w, "{}={shown}", field.name())
        }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .fmt_fields(fields)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files,
        // and never when NO_COLOR is set (https://no-color.org).
        .with_ansi(std::io::stderr().is_terminal() && !no_color())
        .try_init();
}

/// Whether NO_COLOR asks for no colour (set and not empty).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

fn principal() -> String {
    std::env::var("USER").unwrap_or_else(|_| "anonymous".into())
}

/// Runs `serve` or `proxy` (`what`) on `listen` with `backend` until
/// SIGTERM or SIGINT, then waits a moment for uploads.
pub fn run_host(
    what: &'static str,
    listen: &str,
    max_shells: u16,
    h: HostFlags,
    backend: Backend,
) -> Result<Exit> {
    init_logging();
    let auth_config = h.auth.config()?;
    let access = h.access.options()?;
    let dest = Arc::new(Destination::open(
        &h.store.location()?,
        &RecordingOptions {
            upload_interval: h.upload_interval,
            strict: h.strict,
            protection: h.protect.protection()?,
            sign_key: None, // serve and proxy do not sign
        },
    )?);
    let where_to = dest.describe_store();
    let audit = h
        .audit
        .as_deref()
        .map(termtrail_recorder::audit::AuditLog::open)
        .transpose()?;
    if let Some(log) = &audit {
        // The store gets a copy, in create-only pieces (docs/audit.md).
        log.ship_to(Arc::clone(dest.store()), h.upload_interval);
    }
    termtrail_recorder::host::lograte::set_per_second(h.limits.log_rate);
    let max_connections = h.limits.max_connections(usize::from(max_shells));
    let opts = ServeOptions {
        header_timeout: h.limits.header_timeout,
        max_connections,
        max_terminal: h.limits.max_terminal_size,
        max_recording_bytes: h.limits.max_recording_bytes,
        destination: dest.clone(),
        max_shells: usize::from(max_shells),
        max_commands: usize::from(h.commands.max_commands),
        // Commands run under `termtrail __supervise`: this very binary,
        // even after an upgrade replaced the file on disk.
        supervisor: std::path::PathBuf::from("/proc/self/exe"),
        idle_timeout: h.timeouts.idle_timeout,
        grace: h.timeouts.grace,
        backend,
        // Replaced below once the authenticator is built.
        auth: Arc::new(Authenticator::disabled(&principal())),
        access: Arc::new(access),
        // Idle shells close their segment and free its compressor.
        writer: WriterOptions::default().segment_idle(Some(Duration::from_secs(10))),
        shutdown_deadline: Duration::from_secs(10),
        strict: h.strict,
        redaction: h.redact.redaction(),
        audit,
    };
    let acceptor = h.tls.acceptor()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut opts = opts;
    if let Some(cfg) = auth_config {
        // Keys are loaded (and discovery fetched) before anything listens.
        opts.auth = Arc::new(runtime.block_on(Authenticator::build(cfg))?);
    }
    runtime.block_on(serve_on(what, listen, &where_to, acceptor, &h.auth, opts))?;
    // Recordings are sealed; give their uploads a moment (what is left stays
    // in the spool for the next start or `termtrail upload`).
    let status = dest.flush(Duration::from_secs(30));
    Ok(report_pending(&status))
}

/// Binds `listen` (beyond loopback only with authentication, and with TLS
/// or `--insecure-plaintext`) and serves until a signal asks to stop.
async fn serve_on(
    what: &'static str,
    listen: &str,
    where_to: &str,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    auth: &HostAuthArgs,
    opts: ServeOptions,
) -> Result<()> {
    use termtrail_recorder::host::run;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    auth.check_address(addr, acceptor.is_some())?;
    if opts.auth.is_enabled() {
        let methods: Vec<&str> = opts.auth.methods().iter().map(|m| m.as_str()).collect();
        eprintln!("::: authentication: {}", methods.join(", "));
        if opts.access.policy.is_none() {
            eprintln!(
                "!!! termtrail {what}: no --policy: every authenticated client may open shells and run commands"
            );
        }
        if acceptor.is_none() && !addr.ip().is_loopback() {
            eprintln!(
                "!!! termtrail {what}: plaintext ws:// on {addr} (--insecure-plaintext): tokens cross the network readable"
            );
        }
    } else {
        eprintln!(
            "!!! termtrail {what}: NO AUTHENTICATION — anyone who can reach {addr} gets a shell"
        );
    }
    if let Some(path) = opts.access.policy_path() {
        eprintln!("::: access policy: {} (SIGHUP re-reads it)", path.display());
    }
    let stop = stop_signal();
    let scheme = if acceptor.is_some() { "wss" } else { "ws" };
    eprintln!(
        "::: listening on {scheme}://{addr}/runtimes/<arn>/ws/shells (recordings in {where_to})"
    );
    match acceptor {
        Some(acceptor) => {
            // Handshakes under way are bounded apart from the connections
            // the host serves: a quarter of --max-connections.
            let max_pending = (opts.max_connections / 4).max(16);
            let tls = termtrail_recorder::tls::TlsListener::new(listener, acceptor, max_pending)?;
            run(tls, opts, stop).await?
        }
        None => run(listener, opts, stop).await?,
    }
    Ok(())
}

/// Resolves at SIGTERM or SIGINT (never, if they cannot be watched). The
/// handlers are installed when this is called, not when it is first polled:
/// a SIGTERM right after the "listening" line must not kill the process.
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match signals {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}
