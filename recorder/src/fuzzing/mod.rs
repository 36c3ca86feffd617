//! Entry points for fuzzing the recorder's parsers of what clients,
//! upstream hosts and operators hand it — not part of the API (hidden from
//! the docs; `fuzz/` and the replay tests call them). As in
//! `termtrail_format::fuzzing`, each target checks invariants with
//! `assert!` and any panic is a finding:
//!
//! - `ws`: the WebSocket message decoders — the AgentCore shell
//!   protocol's channel frames, resize and status payloads (as the host and
//!   the AgentCore upstream read them) and terminado's JSON messages.
//! - `policy`: the Cedar policy and schema files as the host loads them
//!   (then decisions on them), and the proxy's environments file.
//! - `auth`: bearer tokens as requests carry them (headers, the
//!   subprotocol), JWTs against a JWKS file, IAM tokens (the signed STS
//!   request's JSON, its SigV4 `Authorization` and `X-Amz-Date`), JWKS
//!   documents, base64url.

mod auth;
mod policy;
mod ws;

pub use auth::auth;
pub use policy::policy;
pub use ws::ws;

use termtrail_format::fuzzing::Target;

/// This crate's targets.
pub const TARGETS: &[Target] = &[("ws", ws), ("policy", policy), ("auth", auth)];
