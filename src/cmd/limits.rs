//! The host limits `serve` and `proxy` share (issue 14): how long a client
//! may take to send its request head, how many connections may be open, the
//! largest terminal a client may ask for, how much output a recording may
//! take, and the log's rate per kind.

use std::time::Duration;

use clap::Args;
use termtrail_format::event::TermSize;

use super::args::{BadValue, parse_duration};

/// Limits that hold before any token is checked.
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::LIMITS)]
pub struct LimitArgs {
    /// Close a connection that has not sent a complete request head (the
    /// HTTP upgrade request) within this long: silent or slow clients
    /// cannot hold connections (counted in termtrail_header_timeouts_total).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Most client connections open at once, WebSockets included. At the
    /// cap the oldest connection without a request under way (silent,
    /// half-sent or idle) is closed for the newcomer, so a flood cannot
    /// keep out shells, /healthz or /metrics (counted in
    /// termtrail_connections_evicted_total / _refused_total). Default: the
    /// open-files limit (the soft limit is raised to the hard one at start)
    /// less 128 for the host and 8 per --max-shells shell.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Largest terminal a client may resize a shell to, COLSxROWS; larger
    /// resizes are reduced to it (the shell and its recording get the
    /// reduced size; counted in termtrail_resizes_clamped_total). Protects
    /// the players: a 65535x65535 screen needs gigabytes to replay.
    #[arg(long, value_name = "COLSxROWS", default_value = "1000x1000", value_parser = parse_size)]
    pub max_terminal_size: TermSize,
    /// Most output one shell's recording may take, in bytes (suffixes K, M,
    /// G: powers of 1024; 0: no bound). Past it the shell is ended: a marker
    /// in the recording, the status RecordingLimitReached to its client,
    /// end reason interrupted, counted in termtrail_recording_limit_total.
    /// Protects the store from a client that floods its own shell while
    /// reading (output nobody reads pauses instead, see docs/protocol.md).
    #[arg(long, value_name = "BYTES", default_value = "2G", value_parser = parse_bytes)]
    pub max_recording_bytes: u64,
    /// Per-connection log lines (refusals, bad requests, client connects
    /// and closes, limits hit) logged per second of each kind; beyond it,
    /// one "suppressed N similar messages" line per kind and second
    /// (counted in termtrail_log_lines_suppressed_total).
    #[arg(long, value_name = "N", default_value_t = termtrail_recorder::host::lograte::DEFAULT_PER_SECOND)]
    pub log_rate: u32,
}

impl LimitArgs {
    /// `--max-connections`, or its default for `max_shells` shells under
    /// the open-files limit (raised to the hard limit here).
    pub fn max_connections(&self, max_shells: usize) -> usize {
        use termtrail_recorder::host::{default_max_connections, raise_open_files_limit};
        let open_files = raise_open_files_limit();
        match self.max_connections {
            Some(n) => n as usize,
            None => default_max_connections(open_files, max_shells),
        }
    }
}

fn parse_bytes(s: &str) -> Result<u64, BadValue> {
    let t = s.trim();
    let (num, shift) = match t.as_bytes().last() {
        Some(b'K' | b'k') => (&t[..t.len() - 1], 10),
        Some(b'M' | b'm') => (&t[..t.len() - 1], 20),
        Some(b'G' | b'g') => (&t[..t.len() - 1], 30),
        Some(b'T' | b't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| {
            BadValue(format!(
                "expected a byte count like 2G, 500M or 1048576, got {s:?}"
            ))
        })
}

fn parse_size(s: &str) -> Result<TermSize, BadValue> {
    match TermSize::parse(s) {
        Some(t) if t.cols > 0 && t.rows > 0 => Ok(t),
        _ => Err(BadValue(format!(
            "expected COLSxROWS like 1000x1000 (each 1-65535), got {s:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_binary_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_bytes("2G").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("500m").unwrap(), 500 << 20);
        assert_eq!(parse_bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("0").unwrap(), 0);
        for bad in ["", "G", "-1", "1.5G", "99999999999T", "2GB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
    }
}
