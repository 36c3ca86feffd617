//! Who may do what on this host: after authentication, every request is a
//! decision of the Cedar policy (`--policy`) over the principal, its
//! groups, the action, the runtime (with its environment) and the context
//! (break-glass reason, source address, time). A grant that holds only
//! because of break-glass is time-boxed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::attachment::Deadline;
use super::backend::Shell;
use super::http::refuse;
use super::metrics::add;
use super::state::HostState;
use crate::auth::Identity;
use crate::header::unix_now;
use crate::policy::{Action, Environments, PolicyError, Reloadable, Request, Verdict};
use termtrail_format::audit::{AuditEvent, Decision};

/// The header a client states a break-glass reason in.
pub const BREAK_GLASS_HEADER: &str = "x-termtrail-break-glass";
/// Longest break-glass reason accepted, in bytes.
pub const MAX_REASON: usize = 1024;

/// How the host decides (the binary builds it from `--policy` and friends).
#[derive(Debug)]
pub struct AccessOptions {
    /// The Cedar policy; None: every authenticated client may do anything
    /// (the host warns at start).
    pub policy: Option<Reloadable>,
    /// The environment of every runtime not matched by `environments`.
    pub environment: Option<String>,
    /// Runtime patterns → environment names (`--environments`).
    pub environments: Option<Environments>,
    /// How long a shell granted only through break-glass may run.
    pub break_glass_duration: Duration,
}

impl AccessOptions {
    /// No policy: everything is allowed (for `--no-auth` on loopback).
    pub fn open() -> AccessOptions {
        AccessOptions {
            policy: None,
            environment: None,
            environments: None,
            break_glass_duration: Duration::from_secs(30 * 60),
        }
    }

    /// The environment `runtime` is in.
    pub fn environment_of<'a>(&'a self, runtime: &str) -> Option<&'a str> {
        self.environments
            .as_ref()
            .and_then(|e| e.environment_of(runtime))
            .or(self.environment.as_deref())
    }

    /// Re-reads the policy files (SIGHUP); the old policy stays on failure.
    pub fn reload(&self) -> Option<Result<(), PolicyError>> {
        self.policy.as_ref().map(|p| p.reload().map(|_| ()))
    }

    /// The policy file, for log lines.
    pub fn policy_path(&self) -> Option<PathBuf> {
        self.policy.as_ref().map(|p| p.policy_path().to_path_buf())
    }
}

/// What a client was granted.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// The break-glass reason the client stated, if any.
    pub(crate) break_glass: Option<String>,
    /// When the grant ends: set when it holds only because of break-glass.
    pub(crate) until: Option<Duration>,
}

/// The break-glass reason the client stated, if any; a refusal when it is
/// empty, too long or holds control characters.
fn stated_reason(headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    let bad = |why: &str| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("the {BREAK_GLASS_HEADER} header {why}"),
        ))
    };
    let mut values = headers.get_all(BREAK_GLASS_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(bad("is given more than once"));
    }
    if value.len() > MAX_REASON {
        return Err(bad(&format!("is longer than {MAX_REASON} bytes")));
    }
    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| bad("is not UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(bad("holds control characters"));
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("must state a reason"));
    }
    Ok(Some(text.to_string()))
}

/// What one request asks for.
pub(crate) struct Ask<'a> {
    pub(crate) identity: &'a Identity,
    pub(crate) action: Action,
    pub(crate) runtime: &'a str,
    pub(crate) session: Option<&'a str>,
    pub(crate) shell: Option<&'a str>,
    pub(crate) peer: SocketAddr,
    pub(crate) headers: &'a HeaderMap,
}

/// Decides `ask`: the grant, or the client's refusal (403, or 400 for a
/// malformed break-glass header). Every decision goes to the audit log.
pub(crate) fn decide(host: &HostState, ask: &Ask<'_>) -> Result<Grant, Box<Response>> {
    let access = &host.opts.access;
    let reason = match stated_reason(ask.headers) {
        Ok(r) => r,
        Err(resp) => {
            let why = "malformed break-glass header";
            audit(host, ask, None, false, Vec::new(), Some(why), None);
            return Err(resp);
        }
    };
    let Some(policy) = access.policy.as_ref().map(Reloadable::current) else {
        let environment = access.environment_of(ask.runtime);
        audit(
            host,
            ask,
            environment,
            true,
            Vec::new(),
            None,
            reason.as_deref(),
        );
        return Ok(Grant {
            break_glass: reason,
            until: None,
        });
    };
    let environment = access.environment_of(ask.runtime);
    let request = Request {
        environment,
        session: ask.session,
        break_glass: reason.as_deref(),
        source_ip: Some(ask.peer.ip()),
        ..Request::new(ask.identity, ask.action, ask.runtime, unix_now())
    };
    let verdict = policy.decide_for(&request);
    if !verdict.decision.errors.is_empty() {
        // Policies Cedar skipped for this request: the operator should know.
        tracing::warn!(errors = ?verdict.decision.errors, "policies could not be evaluated for a request (skipped)");
    }
    if verdict.decision.allowed {
        let glass = verdict.needs_break_glass;
        let policies = verdict.decision.policies.clone();
        audit(
            host,
            ask,
            environment,
            true,
            policies,
            None,
            reason.as_deref(),
        );
        if glass {
            add(&host.metrics.break_glass, 1);
            tracing::warn!(principal = %ask.identity.principal, action = ask.action.as_str(), runtime = ask.runtime, "break-glass grant");
        }
        return Ok(Grant {
            // A reason given is recorded even when it was not needed.
            break_glass: reason,
            until: glass.then_some(access.break_glass_duration),
        });
    }
    add(&host.metrics.denied, 1);
    let message = denial(&verdict, ask, environment, reason.is_some());
    let policies = verdict.decision.policies.clone();
    audit(
        host,
        ask,
        environment,
        false,
        policies,
        Some(&message),
        reason.as_deref(),
    );
    if super::lograte::allow(super::lograte::Kind::Refusal) {
        tracing::info!(principal = %ask.identity.principal, action = ask.action.as_str(), runtime = ask.runtime, "denied: {message}");
    }
    Err(Box::new(refuse(
        StatusCode::FORBIDDEN,
        "AccessDenied",
        &message,
    )))
}

/// Whether `identity` may re-attach to (or take over) `shell`: only the
/// principal that opened it may.
pub(crate) fn may_rejoin(
    host: &HostState,
    shell: &dyn Shell,
    ask: &Ask<'_>,
) -> Result<(), Box<Response>> {
    let identity = ask.identity;
    match shell.att().owner() {
        Some(owner) if owner != identity.key() => {
            add(&host.metrics.denied, 1);
            let why = "the shell was opened by another principal";
            let environment = host.opts.access.environment_of(ask.runtime);
            audit(host, ask, environment, false, Vec::new(), Some(why), None);
            if super::lograte::allow(super::lograte::Kind::Refusal) {
                tracing::info!(principal = %identity.principal, session = %shell.session_id(), shell = %shell.shell_id(), "denied: the shell belongs to another principal");
            }
            Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "this shell was opened by another principal; only it may re-attach",
            )))
        }
        _ => Ok(()),
    }
}

/// When a shell opened on `grant` must end, if it must.
pub(crate) fn deadline_of(grant: &Grant) -> Option<Deadline> {
    let until = grant.until?;
    Some(Deadline {
        at: tokio::time::Instant::now() + until,
        why: format!(
            "the break-glass period of {} is over; the shell was ended",
            human(until)
        ),
    })
}

/// `90s`, `30m`, `2h`, `1h30m`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (h, 0, 0) => format!("{h}h"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Audits a request refused before it had an identity (HTTP 401/503).
pub(crate) fn audit_unauthenticated(
    host: &HostState,
    action: Action,
    runtime: &str,
    peer: SocketAddr,
    why: &str,
) {
    host.audit(AuditEvent::Decision(Decision {
        principal: String::new(),
        auth: String::new(),
        groups: Vec::new(),
        action: action.as_str().into(),
        runtime: runtime.to_string(),
        environment: None,
        session: None,
        shell: None,
        source: Some(peer.to_string()),
        allowed: false,
        policies: Vec::new(),
        reason: Some(format!("not authenticated: {why}")),
        break_glass: None,
    }));
}

/// Writes the decision on `ask` to the audit log.
fn audit(
    host: &HostState,
    ask: &Ask<'_>,
    environment: Option<&str>,
    allowed: bool,
    policies: Vec<String>,
    reason: Option<&str>,
    break_glass: Option<&str>,
) {
    host.audit(AuditEvent::Decision(Decision {
        principal: ask.identity.principal.clone(),
        auth: ask.identity.method.as_str().into(),
        groups: ask.identity.groups.clone(),
        action: ask.action.as_str().into(),
        runtime: ask.runtime.to_string(),
        environment: environment.map(str::to_string),
        session: ask.session.map(str::to_string),
        shell: ask.shell.map(str::to_string),
        source: Some(ask.peer.to_string()),
        allowed,
        policies,
        reason: reason.map(str::to_string),
        break_glass: break_glass.map(str::to_string),
    }));
}

/// Why a request was denied, and what would help.
fn denial(
    verdict: &Verdict,
    ask: &Ask<'_>,
    environment: Option<&str>,
    asked_glass: bool,
) -> String {
    let who = &ask.identity.principal;
    let what = ask.action.as_str();
    let env = environment
        .map(|e| format!(" (environment {e:?})"))
        .unwrap_or_default();
    let why = if verdict.decision.policies.is_empty() {
        "no policy permits it".to_string()
    } else {
        format!("forbidden by {}", verdict.decision.policies.join(", "))
    };
    let mut message = format!(
        "{who} may not {what} on runtime {:?}{env}: {why}",
        ask.runtime
    );
    if verdict.needs_break_glass && !asked_glass {
        message.push_str(&format!(
            "; it is allowed with break-glass: state a reason in the {BREAK_GLASS_HEADER} header (termtrail attach --break-glass REASON)"
        ));
    }
    message
}

/// Re-reads the policy at each SIGHUP (off the runtime's threads); a policy
/// that no longer loads leaves the old one in force, and the log says why.
/// Without a policy SIGHUP keeps its default action.
pub(crate) async fn reload_on_hangup(host: std::sync::Arc<HostState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(path) = host.opts.access.policy_path() else {
        return;
    };
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP: the policy will not be reloaded");
            return;
        }
    };
    while hup.recv().await.is_some() {
        let h = std::sync::Arc::clone(&host);
        match tokio::task::spawn_blocking(move || h.opts.access.reload()).await {
            Ok(Some(Ok(()))) => tracing::info!(policy = %path.display(), "policy reloaded"),
            Ok(Some(Err(e))) => tracing::error!(
                policy = %path.display(),
                "policy reload failed; the previous policy stays in force: {e}"
            ),
            Ok(None) | Err(_) => {}
        }
    }
}
