//! termtrail's recorders.
//!
//! This crate owns turning live terminals into events for the format crate's
//! [`ChainWriter`](termtrail_format::writer::ChainWriter): the local PTY
//! recorder behind `termtrail rec` ([`rec`]) with the terminal handling it
//! needs ([`tty`]); the shell host behind `serve` ([`serve`], speaking the
//! AgentCore shell protocol of [`protocol`]) and the recording proxy
//! ([`proxy`]) with their recordings ([`recording`]); the clients `attach`
//! and `exec` ([`client`], [`exec`], [`tls`], [`sigv4`]); and where
//! recordings go ([`store`]: a local directory, or a spool streamed to S3).
//!
//! ```no_run
//! use termtrail_recorder::rec::{RecOptions, record};
//! let opts = RecOptions {
//!     command: vec!["echo".into(), "hello".into()],
//!     headless: true,
//!     ..RecOptions::default()
//! };
//! let outcome = record(&opts, std::path::Path::new("/tmp/hello.cast.zst"))?;
//! assert_eq!(outcome.exit_code, 0);
//! # Ok::<(), termtrail_recorder::rec::RecError>(())
//! ```

pub mod client;
pub mod exec;
pub mod header;
pub mod journal;
pub mod protocol;
pub mod proxy;
pub mod rec;
pub mod recording;
pub mod serve;
pub mod sigv4;
pub mod store;
pub mod tls;
pub mod tty;
