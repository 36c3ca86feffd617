//! Shipping the audit log to the store: the complete lines not shipped yet
//! go, every interval and at stop, as immutable create-only pieces
//! `audit/<log id>/<seq of their first line, 20 digits>.jsonl` (see
//! `docs/audit.md`). Concatenated in key order, the pieces are the log.
//!
//! Nothing is kept locally about what was shipped: a shipper starts at the
//! file's first byte and skips each piece the store already holds (it must
//! be a prefix of what is left to ship, else shipping stops with an error),
//! so a restart or a failed put resumes where the store stands.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use termtrail_store::{Store, StoreError};

/// Largest piece, in bytes (a piece holds whole lines; a line is at most
/// 1 MiB).
const MAX_PIECE: usize = 8 << 20;

/// Why shipping stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The local log could not be read.
    #[error("cannot read the audit log {path} to ship it: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store refused a piece, and holds no copy of it.
    #[error("cannot ship audit piece {key}: {source}")]
    Put {
        /// The piece's key.
        key: String,
        /// Why.
        source: StoreError,
    },
    /// The store holds a piece under this key that is not the log's bytes.
    #[error(
        "the store's audit piece {key} differs from the local log at byte {offset}: one of them was changed"
    )]
    Conflict {
        /// The piece's key.
        key: String,
        /// Where the piece starts in the local log.
        offset: u64,
    },
}

/// The key of the piece of log `log` starting at line `seq`.
pub fn piece_key(log: &str, seq: u64) -> String {
    format!("audit/{log}/{seq:020}.jsonl")
}

/// Ships one audit log's lines to a store.
pub struct Shipper {
    store: Arc<dyn Store>,
    path: PathBuf,
    /// Bytes of the file shipped (or found shipped).
    offset: u64,
    /// `seq` of the line after them.
    next_seq: u64,
}

impl Shipper {
    /// A shipper of the log at `path` into `store`, from its start.
    pub fn new(store: Arc<dyn Store>, path: &Path) -> Shipper {
        Shipper {
            store,
            path: path.to_path_buf(),
            offset: 0,
            next_seq: 1,
        }
    }

    /// Ships the complete lines of log `log` not shipped yet; the number of
    /// pieces put.
    pub fn ship(&mut self, log: &str) -> Result<u64, ShipError> {
        let mut put = 0;
        loop {
            let bytes = self.unshipped()?;
            if bytes.is_empty() {
                return Ok(put);
            }
            let key = piece_key(log, self.next_seq);
            match self.store.put_new(&key, &bytes) {
                Ok(()) => {
                    put += 1;
                    self.advance(&bytes);
                }
                Err(source) => {
                    // Shipped before (a restart, or a put whose answer was
                    // lost)? Then it is a prefix of what is left.
                    let mut there = Vec::new();
                    if self.store.read(&key, &mut there).is_err() {
                        return Err(ShipError::Put { key, source });
                    }
                    if there.is_empty() || !bytes.starts_with(&there) || !there.ends_with(b"\n") {
                        return Err(ShipError::Conflict {
                            key,
                            offset: self.offset,
                        });
                    }
                    self.advance(&there);
                }
            }
        }
    }

    /// Complete lines after `offset`, at most [`MAX_PIECE`] bytes.
    fn unshipped(&self) -> Result<Vec<u8>, ShipError> {
        let io = |source| ShipError::Read {
            path: self.path.clone(),
            source,
        };
        let mut f = std::fs::File::open(&self.path).map_err(io)?;
        f.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut bytes = Vec::new();
        f.take(MAX_PIECE as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
        Ok(bytes)
    }

    /// `piece` is shipped: the offset moves past it, and the next seq
    /// follows its last line that has one.
    fn advance(&mut self, piece: &[u8]) {
        self.offset += piece.len() as u64;
        #[derive(serde::Deserialize)]
        struct Seq {
            seq: u64,
        }
        if let Some(seq) = piece
            .split(|&b| b == b'\n')
            .rev()
            .find_map(|l| serde_json::from_slice::<Seq>(l).ok())
        {
            self.next_seq = seq.seq + 1;
        }
    }
}
