//! The audit log's writer ([`AuditLog`]): appends one hash-chained line per
//! event to `--audit FILE` (format: `termtrail_format::audit`,
//! `docs/audit.md`), fsynced before the caller hears it is written.
//!
//! One thread owns the file and writes the events in the order they were
//! handed over, from any number of callers; async callers wait without
//! blocking the runtime ([`AuditLog::record`]) or do not wait at all
//! ([`AuditLog::submit`]). Opening continues the chain of an existing log,
//! and a torn tail (a crash mid-write) is kept and accounted for by a
//! `recovered` line, never cut away.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use sha2::{Digest, Sha256};
use termtrail_format::audit::{
    AuditEvent, AuditVerdict, EncodeError, Head, Recovered, TamperReason, encode_line, genesis,
    line_hash, new_log_id, verify,
};
use termtrail_format::chain::Hash;
use tokio::sync::oneshot;

/// Why the audit log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file cannot be opened, read or created.
    #[error("cannot open the audit log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an audit log (it is not empty, and no line of it is
    /// an audit line).
    #[error("{path} is not an audit log ({reason}); name another file with --audit")]
    NotAuditLog {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The log does not verify: it is not continued, so its damage stays
    /// visible and new lines do not pass for a continuation.
    #[error(
        "the audit log {}:{line} does not verify: {reason}; check it with `termtrail verify --audit`, and move it aside to start a new log",
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The first bad line.
        line: u64,
        /// What is wrong with it.
        reason: TamperReason,
    },
    /// A line could not be written or fsynced.
    #[error("cannot write the audit log {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The event cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// No random log id could be made.
    #[error("cannot make a random audit log id: {0}")]
    Random(String),
    /// The writer thread is gone.
    #[error("the audit log writer has stopped")]
    Closed,
}

/// Where the chain stands: what the next line links to.
struct Chain {
    log: String,
    seq: u64,
    prev: Hash,
}

/// The open file and its chain (the writer thread's own).
struct Open {
    file: File,
    path: PathBuf,
    chain: Chain,
}

struct Job {
    event: AuditEvent,
    done: Option<oneshot::Sender<Result<Head, AuditError>>>,
}

struct Shared {
    path: PathBuf,
    failures: AtomicU64,
    head: Mutex<Option<Head>>,
    /// Asks the shipping thread to ship now (and answer whether all is).
    ship: Mutex<Option<mpsc::Sender<mpsc::Sender<bool>>>>,
}

/// An audit log open for appending. Cloneable; every clone writes into the
/// same chain, in the order events are handed over.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditLog({})", self.shared.path.display())
    }
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, verifies what is there and
    /// continues its chain: a new log gets a fresh random id; a torn tail is
    /// completed (when only its newline is missing) or kept and followed by
    /// a `recovered` line; a log that does not verify is refused.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let open = open_file(path)?;
        let head = head_of(&open.chain);
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            failures: AtomicU64::new(0),
            head: Mutex::new(head),
            ship: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_jobs(writer, Some(open), rx))
            .map_err(|source| AuditError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(AuditLog { tx, shared })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Writes `event` and returns once it is fsynced, with the new head
    /// (the runtime is not blocked meanwhile). Events are written in the
    /// order they were handed over, by any caller.
    pub async fn record(&self, event: AuditEvent) -> Result<Head, AuditError> {
        let written = self.enqueue(event)?;
        written.await.map_err(|_| AuditError::Closed)?
    }

    /// [`AuditLog::record`] for a thread outside the async runtime.
    pub fn record_blocking(&self, event: AuditEvent) -> Result<Head, AuditError> {
        let written = self.enqueue(event)?;
        written.blocking_recv().map_err(|_| AuditError::Closed)?
    }

    /// Hands `event` to the writer thread; the receiver gets its outcome.
    fn enqueue(
        &self,
        event: AuditEvent,
    ) -> Result<oneshot::Receiver<Result<Head, AuditError>>, AuditError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Job {
                event,
                done: Some(done),
            })
            .map_err(|_| AuditError::Closed)?;
        Ok(rx)
    }

    /// Hands `event` over without waiting (from sync or async code); a
    /// failure to write it is logged and counted ([`AuditLog::failures`]).
    pub fn submit(&self, event: AuditEvent) {
        if self.tx.send(Job { event, done: None }).is_err() {
            self.failed(&AuditError::Closed);
        }
    }

    /// Events that could not be written.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// The last line written (None before the first).
    pub fn head(&self) -> Option<Head> {
        self.shared
            .head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ships the log's complete lines to `store` every `every` (see
    /// [`crate::audit_ship`]) from a thread of its own, until every handle
    /// is gone; failures are logged and retried at the next interval.
    pub fn ship_to(&self, store: Arc<dyn termtrail_store::Store>, every: std::time::Duration) {
        let (tx, rx) = mpsc::channel::<mpsc::Sender<bool>>();
        let shared = Arc::clone(&self.shared);
        let mut shipper = crate::audit_ship::Shipper::new(store, &shared.path);
        let spawned = std::thread::Builder::new()
            .name("audit-ship".into())
            .spawn(move || {
                loop {
                    let ack = match rx.recv_timeout(every) {
                        Ok(ack) => Some(ack),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    };
                    let log = shared
                        .head
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                        .map(|h| h.log.clone());
                    let ok = match log.map(|log| shipper.ship(&log)) {
                        Some(Err(e)) => {
                            tracing::warn!(audit = %shared.path.display(), error = %e, "the audit log could not be shipped to the store; retrying at the next interval");
                            false
                        }
                        _ => true,
                    };
                    if let Some(ack) = ack {
                        let _ = ack.send(ok);
                    }
                }
            });
        match spawned {
            Ok(_) => *self.shared.ship.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx),
            Err(e) => {
                tracing::error!(error = %e, "cannot start shipping the audit log to the store")
            }
        }
    }

    /// Ships what is written now and waits (up to `deadline`); true when it
    /// is all in the store (or nothing ships). Blocks: not for async code.
    pub fn flush_shipping(&self, deadline: std::time::Duration) -> bool {
        let Some(tx) = self
            .shared
            .ship
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return true;
        };
        let (ack, done) = mpsc::channel();
        tx.send(ack).is_ok() && done.recv_timeout(deadline).unwrap_or(false)
    }

    fn failed(&self, e: &AuditError) {
        fail(&self.shared, e);
    }
}

fn fail(shared: &Shared, e: &AuditError) {
    shared.failures.fetch_add(1, Ordering::Relaxed);
    tracing::error!(audit = %shared.path.display(), error = %e, "an audit event could not be written");
}

fn head_of(chain: &Chain) -> Option<Head> {
    (chain.seq > 0).then(|| Head {
        seq: chain.seq,
        hash: hex::encode(chain.prev),
        log: chain.log.clone(),
    })
}

/// The writer thread: one job at a time, in order. After a failed write the
/// file is opened again (verified, its torn tail recovered) before the next.
fn write_jobs(shared: Arc<Shared>, mut open: Option<Open>, rx: mpsc::Receiver<Job>) {
    for job in rx {
        let result = match open.take() {
            Some(o) => Ok(o),
            None => open_file(&shared.path),
        }
        .and_then(|mut o| {
            let r = append(&mut o, &job.event);
            // After a failed write the file is opened (and checked) again.
            if !matches!(r, Err(AuditError::Write { .. })) {
                open = Some(o);
            }
            r
        })
        .inspect_err(|e| fail(&shared, e));
        if let Ok(head) = &result {
            *shared.head.lock().unwrap_or_else(|p| p.into_inner()) = Some(head.clone());
        }
        if let Some(done) = job.done {
            let _ = done.send(result);
        }
    }
}

/// Appends `event` as the next line and fsyncs it.
fn append(o: &mut Open, event: &AuditEvent) -> Result<Head, AuditError> {
    let seq = o.chain.seq + 1;
    let line = encode_line(seq, now_us(), &o.chain.log, &o.chain.prev, event)?;
    o.file
        .write_all(&line)
        .and_then(|()| o.file.sync_data())
        .map_err(|source| AuditError::Write {
            path: o.path.clone(),
            source,
        })?;
    o.chain.seq = seq;
    o.chain.prev = Sha256::digest(&line).into();
    Ok(Head {
        seq,
        hash: line_hash(&line),
        log: o.chain.log.clone(),
    })
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Opens `path` for appending and finds where its chain stands (see
/// [`AuditLog::open`]).
fn open_file(path: &Path) -> Result<Open, AuditError> {
    let io = |source| AuditError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io)?;
    // At most twice: a tail missing only its newline is completed, then
    // the log is read again.
    for _ in 0..2 {
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let report = verify(BufReader::new(&file));
        let chain = match &report.head {
            Some(h) => Chain {
                log: h.log.clone(),
                seq: h.seq,
                prev: decode_hash(&h.hash),
            },
            None => {
                let log = new_log_id().map_err(|e| AuditError::Random(e.to_string()))?;
                Chain {
                    prev: genesis(&log),
                    log,
                    seq: 0,
                }
            }
        };
        match report.verdict {
            AuditVerdict::Intact => {
                return Ok(Open {
                    file,
                    path: path.to_path_buf(),
                    chain,
                });
            }
            AuditVerdict::NotAuditLog { .. } if report.lines == 0 => {
                return Ok(Open {
                    file,
                    path: path.to_path_buf(),
                    chain,
                });
            }
            AuditVerdict::NotAuditLog { reason } => {
                return Err(AuditError::NotAuditLog {
                    path: path.to_path_buf(),
                    reason,
                });
            }
            AuditVerdict::Unreadable { error } => {
                return Err(io(std::io::Error::other(error)));
            }
            AuditVerdict::Tampered { line, reason } => {
                return Err(AuditError::Damaged {
                    path: path.to_path_buf(),
                    line,
                    reason,
                });
            }
            AuditVerdict::Torn(t) if t.completable => {
                tracing::warn!(audit = %path.display(), "the audit log's last line lacked its newline (a crash mid-write); completing it");
                file.write_all(b"\n")
                    .and_then(|()| file.sync_data())
                    .map_err(io)?;
            }
            AuditVerdict::Torn(t) => {
                let mut open = Open {
                    file,
                    path: path.to_path_buf(),
                    chain,
                };
                recover(&mut open, report.end_offset)?;
                tracing::warn!(audit = %path.display(), torn_bytes = t.bytes, intact_up_to = t.intact_up_to, "the audit log ended in a torn write (a crash mid-write); kept it and wrote a recovered line");
                return Ok(open);
            }
        }
    }
    Err(io(std::io::Error::other(
        "its last line still does not verify after completing it",
    )))
}

/// Keeps the torn bytes after `from` and appends (in one write) a newline
/// and a `recovered` line accounting for them.
fn recover(o: &mut Open, from: u64) -> Result<Head, AuditError> {
    let path = o.path.clone();
    let io = |source| AuditError::Open {
        path: path.clone(),
        source,
    };
    o.file.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = o.file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    // The torn bytes never end in a newline (else they would be lines).
    hasher.update(b"\n");
    let event = AuditEvent::Recovered(Recovered {
        torn_bytes: bytes + 1,
        torn_sha256: hex::encode(hasher.finalize()),
    });
    let seq = o.chain.seq + 1;
    let mut line = b"\n".to_vec();
    let body = encode_line(seq, now_us(), &o.chain.log, &o.chain.prev, &event)?;
    line.extend_from_slice(&body);
    o.file
        .write_all(&line)
        .and_then(|()| o.file.sync_data())
        .map_err(io)?;
    o.chain.seq = seq;
    o.chain.prev = Sha256::digest(&body).into();
    Ok(Head {
        seq,
        hash: line_hash(&body),
        log: o.chain.log.clone(),
    })
}

fn decode_hash(hex_hash: &str) -> Hash {
    let mut h = [0u8; 32];
    // The verifier checked it is 64 hex characters.
    let _ = hex::decode_to_slice(hex_hash, &mut h);
    h
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
