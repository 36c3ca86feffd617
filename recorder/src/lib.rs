//! termtrail's recorders.
//!
//! This crate owns turning live terminals into recordings: the one
//! recording engine every source uses ([`recording`]) with the header every
//! recording starts with ([`header`]); the local PTY recorder behind
//! `termtrail rec` ([`rec`]) with the terminal handling it needs ([`tty`]);
//! the shell host behind `serve` and `proxy` ([`host`], speaking the
//! AgentCore shell protocol of [`protocol`]) over a local PTY or a relay to
//! an upstream host ([`upstream`]: AgentCore, terminado); the clients
//! `attach` and `exec` ([`client`], [`exec`], [`tls`], [`sigv4`]); the
//! command call's wire formats ([`command_wire`]); who a
//! client is ([`auth`]) and what it may do ([`policy`]: Cedar decisions,
//! the proxy's environments file); the host's hash-chained audit log
//! ([`audit`]); the supervisor every one-shot command runs under
//! ([`supervise`]). Where recordings go is the store crate's
//! ([`termtrail_store::destination::Destination`]).
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

pub mod audit;
pub mod audit_ship;
pub mod auth;
pub mod client;
pub mod command_wire;
pub mod exec;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod host;
pub mod newfile;
pub mod policy;
pub mod protocol;
pub mod rec;
pub mod recording;
pub mod secrets;
pub mod sigv4;
pub mod supervise;
pub mod tls;
pub mod tty;
pub mod upstream;
