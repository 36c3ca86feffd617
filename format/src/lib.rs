//! termtrail's recording format.
//!
//! This crate owns everything about the bytes of a recording and nothing
//! about where they come from or how they are shown:
//!
//! - [`cast`] and [`plain`]: asciicast v2/v3 headers, event lines, streaming
//!   readers and writers, with the lossless rule for non-UTF-8 output
//!   ([`utf8`]).
//! - [`scan`]: stored event lines read in place, without JSON values — the
//!   line parser's fast path, and what search reads chunks with.
//! - [`writer::ChainWriter`]: events → chunks with SHA-256 hash-chain records
//!   → flushed zstd segments → segment index frames → the seal
//!   ([`seal`], [`chain`], optional Ed25519 signature via [`sign`]).
//! - [`header`]: a recording's header line as a verifier reads it (required
//!   members checked, informative ones read leniently).
//! - [`stored`]: the checks of a stored chunk's event lines.
//! - [`reader`]: the one verifying reader every consumer uses; it pushes only
//!   verified events into a [`reader::ReadSink`] and reports damage.
//!
//! - [`audit`]: the hash-chained audit log of a shell host (JSON Lines),
//!   its events and its streaming verifier (specified in `docs/audit.md`).
//! - [`text`]: text from a recording made safe to show (controls visible,
//!   JSON with C1 and bidi characters escaped).
//!
//! The byte-level specification is `docs/format.md`.
//!
//! ```
//! use termtrail_format::{cast::Header, event::*, reader::*, seal::EndReason, writer::*};
//!
//! let mut file = Vec::new();
//! let mut w = ChainWriter::new(&mut file, Header::new(TermSize::DEFAULT), WriterOptions::default(), None)?;
//! w.push(&Event::new(0, EventData::Output(b"hello\r\n".to_vec())))?;
//! w.seal(EndReason::Exited { code: 0 })?;
//!
//! struct Count(usize);
//! impl ReadSink for Count {
//!     fn event(&mut self, _: &Event) -> termtrail_format::pipeline::Flow {
//!         self.0 += 1;
//!         termtrail_format::pipeline::Flow::Continue
//!     }
//! }
//! let mut count = Count(0);
//! let report = read_recording(&file[..], &ReadOptions::default(), &mut count)?;
//! assert_eq!(report.status, Status::Intact);
//! assert_eq!(count.0, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod audit;
pub mod cast;
pub mod chain;
pub mod civil;
pub mod event;
pub mod frames;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod import;
pub mod index;
pub mod journal;
mod json_str;
pub mod pipeline;
pub mod plain;
pub mod reader;
pub mod recover;
pub mod scan;
pub mod seal;
pub mod segment;
pub mod sign;
pub mod stored;
pub mod text;
pub mod utf8;
pub mod writer;
