//! termtrail's player.
//!
//! This crate owns everything that shows, searches or converts a recording
//! once it has been read through the format crate's verifying reader:
//! [`verify`] verdicts, with [`pin`] for pinned signing keys; [`export`] (asciicast v3/v2 for other tools, a
//! plain-text transcript as asciinema 3.2 writes it, on its emulator (avt
//! 0.17), in [`screen`], and a self-contained web page with
//! asciinema-player in [`html`]); the avt emulator behind every other screen
//! ([`term`]); keyframes and instant seeking
//! ([`seek`], behind `snapshot`); terminal replay ([`play`]); and search
//! across recordings ([`grep`], printed by [`hits`]); listing ([`list`]);
//! which recordings a command reads ([`select`]: files, metadata and time
//! filters); and reading recordings named by `s3://` URLs ([`remote`]).
//!
//! ```no_run
//! use termtrail_player::export::{ExportFormat, ExportOptions, export_path};
//! let mut out = Vec::new();
//! let opts = ExportOptions { format: ExportFormat::Txt, allow_tampered: false };
//! let outcome = export_path(std::path::Path::new("session.cast.zst"), &mut out, &opts)?;
//! println!("{} events", outcome.events);
//! # Ok::<(), termtrail_player::export::ExportError>(())
//! ```

pub mod export;
pub mod grep;
pub mod hits;
pub mod html;
pub mod list;
pub mod pin;
pub mod play;
pub mod remote;
pub mod screen;
pub mod seek;
pub mod select;
pub mod term;
pub mod time;
pub mod verify;
