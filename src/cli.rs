//! Command-line definitions (clap derive). Value validation only; each
//! subcommand's arguments are turned into the crates' option types in main.rs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use termtrail_format::event::TermSize;
use termtrail_format::store::Location;

/// A flight recorder for interactive shells: tamper-evident, compressed
/// asciicast recordings you can verify, replay and export.
#[derive(Parser, Debug)]
#[command(name = "termtrail", version, about, propagate_version = true)]
#[command(
    after_help = "Examples:\n  termtrail rec                         record your shell to the local store\n  termtrail rec -o demo.cast.zst -- htop\n  termtrail verify demo.cast.zst\n  termtrail export demo.cast.zst --format txt\n\nRecordings go to $XDG_DATA_HOME/termtrail/recordings (default ~/.local/share/termtrail/recordings) unless -o or --store says otherwise."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Record a command (default: your shell) in a pseudo-terminal.
    #[command(after_help = REC_HELP)]
    Rec(RecArgs),
    /// Verify recordings: hash chain, seal and signature.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Export a recording as plain asciicast v3/v2 or a text transcript.
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// List recordings: when, how long, whose, how they ended, verified or not.
    #[command(after_help = LS_HELP)]
    Ls(LsArgs),
    /// Seal recordings a recorder left unsealed (killed, crashed) as interrupted.
    #[command(after_help = RECOVER_HELP)]
    Recover(RecoverArgs),
    /// Upload recordings left in the local spool of an S3 store (after a crash or an outage).
    #[command(after_help = UPLOAD_HELP)]
    Upload(UploadArgs),
    /// Search what appeared on the terminal (or was typed) across recordings.
    #[command(after_help = GREP_HELP)]
    Grep(GrepArgs),
    /// Replay a recording in this terminal: pause, step, seek, markers, speed.
    #[command(after_help = PLAY_HELP)]
    Play(PlayArgs),
    /// Print the screen exactly as it looked at a moment of a recording.
    #[command(after_help = SNAPSHOT_HELP)]
    Snapshot(SnapshotArgs),
    /// Seal an existing asciinema recording (.cast v2/v3) into a .cast.zst.
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Create an Ed25519 key pair for signing seals.
    #[command(after_help = KEYGEN_HELP)]
    Keygen(KeygenArgs),
    /// Host shells over WebSocket (AgentCore shell protocol), recording each.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Open (or re-attach to) a remote shell in this terminal.
    #[command(after_help = ATTACH_HELP)]
    Attach(AttachArgs),
    /// A recording proxy in front of a shell host (AgentCore protocol or terminado).
    #[command(after_help = PROXY_HELP)]
    Proxy(ProxyArgs),
    /// Run one command on a shell host and print its output (no terminal).
    #[command(after_help = EXEC_HELP)]
    Exec(ExecArgs),
}

const EXEC_HELP: &str = "\
Runs CMD with `sh -c` on the host (POST /runtimes/<arn>/commands, recorded like
every shell), streams its stdout and stderr here, and exits with its exit code
(124 when the host stopped it at --timeout).

Examples:
  termtrail exec ws://127.0.0.1:8765 -- uname -a
  termtrail exec ws://127.0.0.1:8765 --timeout 10 -- 'make test 2>&1 | tail'";

/// `exec` arguments.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The host: ws://, wss://, http:// or https://HOST:PORT.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Runtime session id (default: a new random one).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Runtime ARN in the request path.
    #[arg(long, value_name = "ARN", default_value = "local")]
    pub runtime: String,
    /// Seconds after which the host stops the command (1-3600).
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Extra trusted CA certificate (PEM) for wss:// hosts with a private or self-signed certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The command (joined with spaces and run by sh -c).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

const PROXY_HELP: &str = "\
Clients speak the AgentCore shell protocol to the proxy exactly as to
`termtrail serve` (docs/protocol.md); the proxy opens the same (session, shell)
upstream, relays both ways and records every shell to the store under
YYYY/MM/DD/proxy/<session>/<shell>/. If the client drops, the upstream shell and
its recording carry on until the client re-attaches or --grace ends. If the
upstream link drops, the proxy re-attaches with the same ids and records the
host's replay only where it is new; bytes the host dropped become a gap marker.

Upstreams:
  --upstream-protocol agentcore  ws[s]://HOST:PORT or the full shell endpoint URL
                                 (termtrail serve, or an AgentCore runtime:
                                 wss://bedrock-agentcore.REGION.amazonaws.com with
                                 --runtime ARN; the upgrade is SigV4-signed)
  --upstream-protocol terminado  a NamedTermManager URL; {shell} is replaced by
                                 the shell id (else appended), e.g.
                                 ws://127.0.0.1:8888/websocket/{shell}

Examples:
  termtrail proxy --listen 127.0.0.1:9000 --upstream ws://127.0.0.1:8765 --no-auth
  termtrail proxy --listen 127.0.0.1:9000 --upstream-protocol terminado \\
      --upstream 'ws://127.0.0.1:8888/websocket/{shell}' --no-auth";

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

/// `proxy` arguments.
#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub listen: String,
    /// The upstream shell host.
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// The upstream's protocol.
    #[arg(long, value_enum, default_value = "agentcore")]
    pub upstream_protocol: UpstreamProtocol,
    /// Extra trusted CA certificate (PEM) for wss:// hosts with a private or self-signed certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Authentication towards the upstream (agentcore).
    #[arg(long, value_enum, default_value = "auto")]
    pub upstream_auth: UpstreamAuth,
    /// AWS region for SigV4 (default: from --runtime's ARN).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Runtime ARN used in the upstream path when --upstream has no path (agentcore).
    #[arg(long, value_name = "ARN", default_value = "local")]
    pub runtime: String,
    /// At most this many live shells through the proxy; the next is refused (HTTP 429).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_shells: u16,
    #[command(flatten)]
    pub host: HostFlags,
}

/// What `serve` and `proxy` share: where recordings go, how long shells
/// live, TLS and authentication.
#[derive(Args, Debug)]
pub struct HostFlags {
    /// Store: a directory, or s3://BUCKET/PREFIX (default: $XDG_DATA_HOME/termtrail/recordings).
    #[arg(long, value_name = "DIR|URL", value_parser = parse_location)]
    pub store: Option<Location>,
    /// With an S3 store: most time the bucket may lag a live recording.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub upload_interval: Duration,
    /// Refuse to start when recordings cannot be made durable (S3 unreachable at the start), and end a shell whose recording fails.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub protect: ProtectArgs,
    /// End shells without traffic (heartbeats excepted) after this long.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// End a shell (and seal its recording) this long after its last client left.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub grace: Duration,
    /// TLS certificate chain (PEM); with --tls-key, clients connect with wss://.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Run without authentication (loopback addresses only).
    #[arg(long)]
    pub no_auth: bool,
}

const ATTACH_HELP: &str = "\
Keys: Ctrl+] detaches (the shell keeps running; the command to re-attach is
printed); everything else, Ctrl+C included, goes to the remote shell.
A lost connection is retried with exponential backoff and jitter; the output
produced meanwhile is replayed on re-attach.

Exit status: the remote shell's; 0 after a detach; 1 when another client took
the shell over; 2 when the host refused or could not be reached.

Examples:
  termtrail attach ws://127.0.0.1:8765
  termtrail attach ws://127.0.0.1:8765 --session 3f1c…e9 --shell debug";

/// `attach` arguments.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The host: ws://HOST:PORT or wss://HOST:PORT, or the full shell endpoint URL.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Runtime session id (default: a new random one).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Shell id (default: a new random one, i.e. a new shell).
    #[arg(long, value_name = "ID")]
    pub shell: Option<String>,
    /// Runtime ARN used in the endpoint path when URL has no path.
    #[arg(long, value_name = "ARN", default_value = "local")]
    pub runtime: String,
    /// Reconnect attempts after a lost connection.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub retries: u32,
    /// Extra trusted CA certificate (PEM) for wss:// hosts with a private or self-signed certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

const SERVE_HELP: &str = "\
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
  termtrail serve --listen 127.0.0.1:8443 --no-auth --tls-cert cert.pem --tls-key key.pem
  termtrail serve --listen 127.0.0.1:8765 --no-auth --max-shells 50 --idle-timeout 30m -- bash -l";

/// `serve` arguments.
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

/// Parses a store location (a directory or s3://BUCKET/PREFIX).
pub fn parse_location(s: &str) -> Result<Location, String> {
    Location::parse(s)
}

/// Parses `500ms`, `30s`, `15m`, `2h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| format!("expected a duration like 30s, 15m or 2h, got {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

const REC_HELP: &str = "\
While recording:
  Ctrl+\\        add a marker (interactive mode; --no-marker-key passes Ctrl+\\ through)
  exit / Ctrl+D  end the session (the recorded command exits)
  SIGUSR1        add a marker (useful with --headless)

Exit status: the recorded command's (128+N if it was killed by signal N);
125 when termtrail itself fails (the file then keeps every chunk written so far
and verifies as unsealed); 2 for usage errors.

Input (keystrokes) is recorded only with --input, and never while the terminal
has echo off in line mode (password prompts: sudo, ssh, getpass, read -s): a
marker says that input was withheld. Line editors such as readline turn echo off
in raw mode and echo themselves; what is typed there is recorded.

Examples:
  termtrail rec                                  your shell, to the local store
  termtrail rec -o session.cast.zst --title 'db migration'
  termtrail rec --input --sign-key ~/.termtrail/key -- bash -l
  printf 'ls\\nexit\\n' | termtrail rec --headless -o out.cast.zst -- bash";

const VERIFY_HELP: &str = "\
Exit status (the worst over all files):
  0  intact and sealed (and, when signed, the signature is valid)
  1  tampered: a changed, missing, duplicated, reordered or foreign chunk or
     segment, a forged seal or index, a bad signature, or not signed by --key
  2  not a readable recording, or a usage error
  3  intact but unsealed (truncated, or the recorder crashed): everything up to
     the reported time is verified

With --store, every recording in the store is verified, and the journals of
seals the recorders kept there are checked against it: a recording whose
journaled seal is missing (deleted), different (replaced), or journal entries
missing or edited make the exit status 1. Recordings no journal names (made
by an older termtrail, or whose journal entry could not be written) are
counted, not failed.

Examples:
  termtrail verify session.cast.zst
  termtrail verify --json ~/.local/share/termtrail/recordings/2026/11/*/*/*/*/*.cast.zst
  termtrail verify --key recorder.key.pub session.cast.zst
  termtrail verify --store s3://audit-recordings/prod
  termtrail verify --store s3://audit-recordings/prod --since 7d";

const EXPORT_HELP: &str = "\
The recording is verified first; a tampered one is refused unless --force,
which exports what can be read and marks where verification stops (a marker
event and a comment in casts, a banner line in text, a red verdict and a
marker on a web page). Plain .cast input is converted without verification.

--format html writes one page that needs no network: asciinema-player (its
bundle is built into termtrail), the recording, its metadata and what
verification found. Open it in any browser; the default output format
follows -o's extension (.txt, .html, else cast-v3).

Examples:
  termtrail export session.cast.zst --format txt
  termtrail export session.cast.zst -o session.cast           (v3, for asciinema 3)
  termtrail export session.cast.zst --format cast-v2 -o old.cast  (asciinema 2.x)
  termtrail export session.cast.zst -o session.html           (a page that plays it)";

const IMPORT_HELP: &str = "\
Examples:
  termtrail import demo.cast                 writes demo.cast.zst beside it
  termtrail import demo.cast -o sealed.cast.zst --sign-key key";

const KEYGEN_HELP: &str = "\
Writes the secret key to FILE (mode 0600, never overwritten) and the public
key to FILE.pub. Give the secret key to `rec --sign-key`, the public key to
`verify --key`.

Example:
  termtrail keygen ~/.termtrail/recorder.key";

/// `rec` arguments.
#[derive(Args, Debug)]
pub struct RecArgs {
    /// Write the recording to FILE instead of the store.
    #[arg(short, long, value_name = "FILE", conflicts_with = "store")]
    pub output: Option<PathBuf>,
    /// Store: a directory, or s3://BUCKET/PREFIX (default: $XDG_DATA_HOME/termtrail/recordings).
    #[arg(long, value_name = "DIR|URL", value_parser = parse_location)]
    pub store: Option<Location>,
    /// With an S3 store: most seconds the bucket may lag the live recording.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub upload_interval: Duration,
    /// With an S3 store: how long to wait at the end for the upload (what is left stays in the spool).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub upload_wait: Duration,
    /// Refuse to record when the recording cannot be made durable (S3 unreachable at the start).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub protect: ProtectArgs,
    /// Replace FILE if it exists.
    #[arg(long, requires = "output")]
    pub overwrite: bool,
    /// Also record keystrokes (never while the terminal has echo off).
    #[arg(long)]
    pub input: bool,
    /// Run without a controlling terminal (scripts, CI): fixed size, stdin
    /// forwarded to the command, Ctrl+D sent when stdin ends.
    #[arg(long)]
    pub headless: bool,
    /// Terminal size COLSxROWS (headless default 80x24).
    #[arg(long, value_name = "COLSxROWS", value_parser = parse_size)]
    pub size: Option<TermSize>,
    /// Title stored in the header.
    #[arg(short, long)]
    pub title: Option<String>,
    /// Sign the seal with this Ed25519 secret key (see `termtrail keygen`).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Do not treat Ctrl+\ as the marker key.
    #[arg(long)]
    pub no_marker_key: bool,
    /// Do not print status messages.
    #[arg(short, long)]
    pub quiet: bool,
    /// Longest time a chunk stays open, in milliseconds (crash loses at most this).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 1000,
        hide_short_help = true
    )]
    pub chunk_ms: u64,
    /// The command to record (default: $SHELL).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_size(s: &str) -> Result<TermSize, String> {
    TermSize::parse(s).ok_or_else(|| format!("expected COLSxROWS like 120x40, got {s:?}"))
}

/// `verify` arguments.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Recordings to verify (files or s3:// URLs).
    #[arg(required_unless_present = "store", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Verify a whole store: every recording, and the journals of seals that
    /// show a recording deleted or replaced.
    #[arg(long, value_name = "DIR|URL", value_parser = parse_location, conflicts_with = "files")]
    pub store: Option<Location>,
    /// With --store: from this day (UTC) on — the recordings of that day and
    /// later, and the journal entries sealed since its start (older entries
    /// are checked to be there, not read). A date (2026-11-20), a UTC time or
    /// a time ago (7d).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// One JSON object per file (JSON Lines).
    #[arg(long)]
    pub json: bool,
    /// Require a valid signature by this public key (FILE.pub from keygen).
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<PathBuf>,
}

/// Export formats.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// asciicast v3 (asciinema 3, asciinema-player).
    CastV3,
    /// asciicast v2 (asciinema 2.x).
    CastV2,
    /// Plain text transcript, as the screen showed it.
    Txt,
    /// One self-contained web page that plays it (asciinema-player inside).
    Html,
}

const RECOVER_HELP: &str = "\
A recorder that is killed leaves its recording unsealed: every committed
chunk is there and verifies, but there is no seal (verify says `unsealed`).
This seals it in place with the end reason `interrupted`, keeping the hash
chain: complete segments are kept byte for byte; the unfinished last segment
is rewritten as a finished frame holding its verified chunks unchanged; an
unfinished chunk at the very end (events never committed) is left out. A
recording that does not verify is left untouched (exit 1). Spools of an S3
store are sealed this way automatically before they are uploaded.

The seal is signed when --sign-key gives the key the recording's header
names (the recorder's own); otherwise it is unsigned, and verify reports
an INVALID signature for a recording that names a key.

Examples:
  termtrail recover ~/.local/share/termtrail/recordings/2026/11/28/local/*/*/*.cast.zst";

/// `recover` arguments.
#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Recordings to seal (sealed ones are left alone).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The recorder's Ed25519 secret key: a recording whose header names it
    /// gets a signed seal.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

const UPLOAD_HELP: &str = "\
Recordings for an S3 store are written to a local spool and streamed to the
bucket as they grow. A recording whose upload did not finish (S3 was down when
it ended, or the recorder was killed) stays in the spool; every recorder run
with the same store picks such spools up, and this command does it on demand:
it uploads every spool no running recorder holds, deletes each once S3 has the
whole object, and reports what is left.

The spool is $TERMTRAIL_SPOOL_DIR, else $XDG_STATE_HOME/termtrail/spool, else
~/.local/state/termtrail/spool, then BUCKET/PREFIX.

Exit status: 0 when nothing is left, 2 otherwise.

Examples:
  termtrail upload --store s3://audit-recordings/prod
  termtrail upload --store s3://audit-recordings/prod --wait 10m";

/// `upload` arguments.
#[derive(Args, Debug)]
pub struct UploadArgs {
    /// The S3 store: s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URL", value_parser = parse_location)]
    pub store: Location,
    /// Give up after this long (what is left stays in the spool).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub wait: Duration,
    /// The recorder's Ed25519 secret key: spools left unsealed whose header
    /// names it get a signed seal (others an unsigned one).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    #[command(flatten)]
    pub protect: ProtectArgs,
}

const LS_HELP: &str = "\
One line per recording, sorted by start time: start (UTC), duration, source,
session and shell ids, principal, size, end reason, state, title, path.
Without --verify only the header and the index at the end of each file are
read (fast on any store): STATE is `sealed` or `unsealed` (and `+signed`),
a claim the file makes. --verify reads and checks every chunk, the seal and
the signature: STATE is then `verified`, `verified-unsealed` or `TAMPERED`.
Filters are those of grep; --since/--until select recordings active in the
window.

Exit status: 0; 1 if --verify found a tampered recording; 2 if a file could
not be read.

Examples:
  termtrail ls                                  # the local store
  termtrail ls --since 7d --principal alice
  termtrail ls --verify ./recordings
  termtrail ls --json | jq -r 'select(.end == \"idle timeout\") | .path'";

/// How recordings are protected in an S3 bucket (`rec`, `serve`, `proxy`).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "S3 protection")]
pub struct ProtectArgs {
    /// Keep each recording under S3 Object Lock for DAYS (the bucket needs Object Lock enabled).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retain_days: Option<u32>,
    /// Object Lock mode for --retain-days (default governance; compliance cannot be undone by anyone).
    #[arg(long, value_enum, value_name = "MODE", requires = "retain_days")]
    pub lock_mode: Option<LockModeArg>,
    /// Server-side encryption: AES256 (SSE-S3) or aws:kms (SSE-KMS).
    #[arg(long, value_name = "KIND", value_parser = ["AES256", "aws:kms"])]
    pub sse: Option<String>,
    /// KMS key id or ARN for --sse aws:kms (default: the account's aws/s3 key).
    #[arg(long, value_name = "ID", requires = "sse")]
    pub kms_key_id: Option<String>,
}

/// Object Lock modes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockModeArg {
    /// Deletable early only with s3:BypassGovernanceRetention.
    Governance,
    /// Not deletable by anyone until it expires.
    Compliance,
}

/// Which recordings (`grep`, `ls`).
#[derive(Args, Debug)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// From this time on: a date (2026-11-20), a UTC time (2026-11-20T14:30:00Z) or a time ago (7d, 36h); grep: hits, ls: recordings active then.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Before this time (same forms).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Only recordings of this runtime session id.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Only recordings of this shell id.
    #[arg(long, value_name = "ID")]
    pub shell: Option<String>,
    /// Only recordings opened by this principal.
    #[arg(long, value_name = "WHO")]
    pub principal: Option<String>,
    /// Only recordings whose title contains this (any case).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
}

/// `ls` arguments.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Recordings or directories (default: the local store).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Read and verify every recording fully (chain, seal, signature).
    #[arg(long)]
    pub verify: bool,
    /// JSON Lines: one object per recording (schema in docs/player.md).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Recordings read at once (default: one per CPU; 16 for S3 objects
    /// without --verify, where each read waits on a few ranged GETs).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
}

const GREP_HELP: &str = "\
PATTERN is a Rust regex (https://docs.rs/regex) matched against each line of
text that appeared on the terminal: escape sequences are removed first, so a
match is found even with colour codes between its letters or split across
output events; cursor movements and CR/LF end a line. Each hit prints

  RECORDING:SECONDS:SCREEN LINE

where SECONDS is when the match was complete (give it to `play --start` or
`snapshot --at`) and SCREEN LINE is the terminal row it was on at that moment
(-C adds rows around it). Every recording is verified as it is read: hits come
only from verified chunks, and a damaged recording is reported on stderr. In a
sealed recording, segments whose SHA-256 matches the seal are taken as sealed
and only the chunks hits come from are hashed again; --hash-every-chunk hashes
every chunk, as `termtrail verify` does (see docs/player.md).

PATH is a recording or a directory searched recursively (default: the local
store). Files that are not recordings are reported and skipped. --since and
--until take a date (2026-11-20), a UTC date and time (2026-11-20T14:30:00Z),
or a time ago (90m, 36h, 7d, 2w); they select hits by wall-clock time.

Exit status: 0 if there was a hit, 1 if none, 2 if an error happened (a file
could not be read, was not a recording, or does not verify).

Examples:
  termtrail grep AccessDenied                      # the whole local store
  termtrail grep -i 'access ?denied' --since 7d -C 2
  termtrail grep -F 'rm -rf' --input --principal alice ./recordings
  termtrail grep -l 'panicked at' --session 7f3c…
  termtrail grep --json Traceback | jq .at";

/// `grep` arguments.
#[derive(Args, Debug)]
pub struct GrepArgs {
    /// The regex (or, with -F, the text) to look for.
    #[arg(value_name = "PATTERN", required_unless_present = "regexp")]
    pub pattern: Option<String>,
    /// A pattern (may be repeated: any of them matches); PATTERN is then a PATH.
    #[arg(short = 'e', long, value_name = "PATTERN")]
    pub regexp: Vec<String>,
    /// Recordings or directories (default: the local store).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Ignore case.
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// Match whole words only.
    #[arg(short = 'w', long)]
    pub word_regexp: bool,
    /// PATTERN is a literal string, not a regex.
    #[arg(short = 'F', long)]
    pub fixed_strings: bool,
    /// Print only the names of recordings with hits.
    #[arg(short = 'l', long, conflicts_with_all = ["count", "json"])]
    pub files_with_matches: bool,
    /// Print the number of matching lines per recording.
    #[arg(short = 'c', long, conflicts_with = "json")]
    pub count: bool,
    /// Stop reading a recording after NUM matching lines.
    #[arg(short = 'm', long, value_name = "NUM")]
    pub max_count: Option<u64>,
    /// Show NUM screen rows above and below each hit.
    #[arg(short = 'C', long, value_name = "NUM", default_value = "0")]
    pub context: usize,
    /// Print nothing; only the exit status tells.
    #[arg(short = 'q', long, conflicts_with_all = ["count", "json", "files_with_matches"])]
    pub quiet: bool,
    /// JSON Lines: one object per hit, then a summary (schema in docs/player.md).
    #[arg(long)]
    pub json: bool,
    /// Search what was typed (recordings made with --input) instead of output.
    #[arg(long)]
    pub input: bool,
    /// Hash every chunk against the chain, as `verify` does, instead of
    /// taking segments that match the seal's hashes as sealed (slower).
    #[arg(long)]
    pub hash_every_chunk: bool,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Recordings searched at once (default: one per CPU).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
}

/// When to colour output.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

const PLAY_HELP: &str = "\
Keys:
  space      pause / resume (at the end: play again)
  .          one frame forward (pauses)
  ← →        back / forward 5 seconds (instant, from keyframes)
  [ ]        previous / next marker
  + -        twice / half as fast
  q, Ctrl-C  quit

The recording is drawn from a terminal emulator, never passed through: it
cannot change your terminal's title, clipboard or modes. A status line shows
the position; it has its own row when your terminal is taller than the
recording, otherwise it shows while paused and for a moment after a key.
Segments are verified as they are played: at damage, playback stops with the
verify error (exit 1). An unsealed recording plays up to its verified end.
Without a keyboard (stdin not a terminal) playback ends at the end.

Examples:
  termtrail play session.cast.zst
  termtrail play session.cast.zst --start 1:02:03 --speed 2
  termtrail play demo.cast --idle-time-limit 1     # plain asciinema files too";

/// `play` arguments.
#[derive(Args, Debug)]
pub struct PlayArgs {
    /// The recording (.cast.zst, or a plain .cast v2/v3).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Playback speed (2 = twice as fast).
    #[arg(long, short, value_name = "X", default_value = "1", value_parser = positive_f64)]
    pub speed: f64,
    /// Shorten pauses longer than S seconds to S (default: the recording's own idle_time_limit, if any).
    #[arg(long, short, value_name = "S", value_parser = positive_f64)]
    pub idle_time_limit: Option<f64>,
    /// Start at this moment: seconds (90.5) or m:s / h:m:s (1:02:03.250), as grep prints it.
    #[arg(long, value_name = "T", default_value = "0")]
    pub start: String,
    /// Neither read nor write the keyframe cache.
    #[arg(long)]
    pub no_cache: bool,
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

const SNAPSHOT_HELP: &str = "\
The screen is rebuilt by a terminal emulator (avt, the one asciinema's players
use) from the nearest keyframe: the first snapshot of a recording builds its
keyframes in one pass and caches them (in $TERMTRAIL_CACHE_DIR, else
$XDG_CACHE_HOME/termtrail, else ~/.cache/termtrail); later ones read one
segment. The segments read are verified: a moment after damage is an error
(exit 1); before it, the screen is shown with a warning.

Examples:
  termtrail snapshot session.cast.zst --at 90
  termtrail snapshot session.cast.zst --at 1:02:03.250 --color
  termtrail snapshot demo.cast --at 12.5          # plain asciinema files too";

/// `snapshot` arguments.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// The recording (.cast.zst, or a plain .cast).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The moment: seconds (90, 90.5), m:s or h:m:s, with optional .ms (1:30, 1:02:03.250).
    #[arg(long, value_name = "T")]
    pub at: String,
    /// Keep colours and attributes (SGR escape sequences).
    #[arg(long)]
    pub color: bool,
    /// Neither read nor write the keyframe cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// `export` arguments.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The recording (.cast.zst, or a plain .cast).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format (default: from -o's extension: .txt → txt, .html → html, else cast-v3).
    #[arg(short, long)]
    pub format: Option<Format>,
    /// Output file (default: stdout).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Export a tampered recording anyway, marked as unverified from the damage on.
    #[arg(long)]
    pub force: bool,
}

/// `import` arguments.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// An asciinema recording (.cast, v2 or v3).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output (default: FILE with .cast.zst).
    #[arg(short, long, value_name = "OUT", conflicts_with = "store")]
    pub output: Option<PathBuf>,
    /// Put the sealed recording in this store instead.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Sign the seal with this Ed25519 secret key.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

/// `keygen` arguments.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key (the public key goes to FILE.pub).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}
