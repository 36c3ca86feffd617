//! The events of the audit log, one struct per event, serialised with serde
//! as the `event` name plus the struct's fields (`docs/audit.md` lists them).
//! Optional fields that are absent are left out of the line.

use serde::{Deserialize, Serialize};

use crate::seal::EndReason;

/// One audit event: the `event` field names the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// The host started (or restarted on the same log).
    Start(ServerStart),
    /// The host stopped cleanly.
    Stop(ServerStop),
    /// A policy decision, allowed or denied.
    Decision(Decision),
    /// A shell started (its first client attached).
    ShellStart(ShellStart),
    /// A shell ended.
    ShellEnd(ShellEnd),
    /// A client attached again to a shell that had no client.
    Reattach(Attach),
    /// A client attached to a shell another client was attached to, which
    /// was told to go.
    Takeover(Attach),
    /// A shell was ended on purpose (by a client or the host), not by its
    /// program exiting.
    Terminate(Terminate),
    /// A recording was sealed.
    Seal(Seal),
    /// The writer found a torn tail (a crash mid-write) on opening the log
    /// and kept it: the bytes between the last intact line and this one.
    Recovered(Recovered),
}

impl AuditEvent {
    /// The `event` name of this event.
    pub fn name(&self) -> &'static str {
        match self {
            AuditEvent::Start(_) => "start",
            AuditEvent::Stop(_) => "stop",
            AuditEvent::Decision(_) => "decision",
            AuditEvent::ShellStart(_) => "shell_start",
            AuditEvent::ShellEnd(_) => "shell_end",
            AuditEvent::Reattach(_) => "reattach",
            AuditEvent::Takeover(_) => "takeover",
            AuditEvent::Terminate(_) => "terminate",
            AuditEvent::Seal(_) => "seal",
            AuditEvent::Recovered(_) => "recovered",
        }
    }
}

/// `start`: the host began serving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStart {
    /// termtrail's version.
    pub version: String,
    /// The host's process id.
    pub pid: u32,
    /// The address it listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// `stop`: the host stopped (the last line of a cleanly stopped host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStop {
    /// Shells still running at the shutdown deadline (their recordings stay
    /// unsealed).
    pub shells_left: u64,
}

/// `decision`: what the policy decided for one request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Decision {
    /// Who asked (a token's `sub`, an IAM ARN, or the host's user).
    pub principal: String,
    /// How they were authenticated (`jwt`, `iam`, `none`).
    pub auth: String,
    /// Their groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The Cedar action (`OpenShell`, `RunCommand`, …).
    pub action: String,
    /// The runtime (ARN or name) asked for.
    pub runtime: String,
    /// The runtime's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The runtime session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The shell id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Allowed or denied.
    pub allowed: bool,
    /// Ids of the policies that decided it (empty: denied by default).
    #[serde(default)]
    pub policies: Vec<String>,
    /// Why it was denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The break-glass reason the client gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
}

/// `shell_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellStart {
    /// Runtime session id.
    pub session: String,
    /// Shell id.
    pub shell: String,
    /// Who opened it.
    pub principal: String,
    /// How they were authenticated.
    pub auth: String,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The recording's key relative to its store.
    pub recording: String,
    /// The break-glass reason, when the shell was opened with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
}

/// `shell_end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellEnd {
    /// Runtime session id.
    pub session: String,
    /// Shell id.
    pub shell: String,
    /// Why it ended (the recording's end reason).
    pub end: EndReason,
}

/// `reattach` and `takeover`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attach {
    /// Runtime session id.
    pub session: String,
    /// Shell id.
    pub shell: String,
    /// The host's number for the client connection.
    pub client: u64,
    /// Who attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// How they were authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `terminate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Terminate {
    /// Runtime session id.
    pub session: String,
    /// Shell id.
    pub shell: String,
    /// Who ended it (absent: the host itself, e.g. a timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why.
    pub reason: String,
}

/// `seal`: a recording was sealed; `last_link` and `seal_hash` tie the
/// audit log to the recording's own chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    /// Runtime session id.
    pub session: String,
    /// Shell id (or the command call's id).
    pub shell: String,
    /// The recording's key relative to its store.
    pub recording: String,
    /// The recording id (hex, from its header).
    pub recording_id: String,
    /// The recording's last chain link (hex).
    pub last_link: String,
    /// The recording's seal hash (hex).
    pub seal_hash: String,
    /// Events in the recording.
    pub events: u64,
    /// The end reason the seal carries.
    pub end: EndReason,
}

/// `recovered`: see [`AuditEvent::Recovered`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovered {
    /// How many bytes lie between the last intact line and this one (the
    /// torn bytes and the newline the writer added after them).
    pub torn_bytes: u64,
    /// SHA-256 of exactly those bytes (hex).
    pub torn_sha256: String,
}
