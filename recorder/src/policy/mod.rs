//! Who may do what on which runtime: authorization decisions made by the
//! Cedar policy engine over termtrail's model (docs/policy.md), the
//! environments a proxy gives runtimes, and a policy that reloads.
//!
//! A [`Policy`] is a `.cedar` file (optionally validated against a
//! `.cedarschema`, see docs/policy/termtrail.cedarschema) asked about one
//! [`Request`] at a time:
//!
//! - principal `User::"<principal>"`, whose parents are `Group::"<g>"` for
//!   each of the identity's groups;
//! - action `Action::"<Action>"` (one of [`Action::ALL`]);
//! - resource `Runtime::"<runtime ARN or name>"` with the String attributes
//!   `environment` and `session` (`""` when unknown or not about one
//!   session);
//! - context `time` (Long, epoch seconds), `source_ip` (an `ipaddr`, present
//!   when known) and `break_glass` (`{ reason: String }`, present only when
//!   the client asked for it).
//!
//! Deny by default, any matching `forbid` beats every `permit` (Cedar's
//! semantics). [`Policy::decide`] answers the request as given;
//! [`Policy::decide_for`] is what a host asks: allowed without break-glass,
//! only with it (so the shell is time-boxed), or denied (and whether
//! break-glass would have helped).
//!
//! ```
//! use termtrail_recorder::auth::Identity;
//! use termtrail_recorder::policy::{Action, Policy, Request};
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("dev.cedar");
//! std::fs::write(&file, r#"
//!     @id("dev-shells")
//!     permit (principal in Group::"developers", action == Action::"OpenShell", resource)
//!     when { resource.environment == "dev" };
//! "#)?;
//! let policy = Policy::load(&file, None)?;
//! let alice = Identity { groups: vec!["developers".into()], ..Identity::unauthenticated("alice") };
//! let mut request = Request::new(&alice, Action::OpenShell, "runtime-1", 1_800_000_000);
//! request.environment = Some("dev");
//! let decision = policy.decide(&request);
//! assert!(decision.allowed);
//! assert_eq!(decision.policies, ["dev-shells"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod entities;
mod environments;
mod error;
mod load;
mod reload;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use cedar_policy as cedar;

use crate::auth::Identity;

pub use environments::Environments;
pub use error::{EnvironmentsError, PolicyError, Problem};
pub use reload::Reloadable;

/// What a client asks to do; a Cedar `Action::"<name>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Open an interactive shell (or re-attach to one).
    OpenShell,
    /// Run one command (the one-shot call of `exec`).
    RunCommand,
    /// Watch a live shell without typing into it.
    Watch,
    /// End a shell.
    Terminate,
    /// List the live shells.
    ListShells,
    /// Read recordings.
    ReadRecordings,
}

impl Action {
    /// Every action, in the order docs/policy.md lists them.
    pub const ALL: [Action; 6] = [
        Action::OpenShell,
        Action::RunCommand,
        Action::Watch,
        Action::Terminate,
        Action::ListShells,
        Action::ReadRecordings,
    ];

    /// The Cedar action id: `Action::"<this>"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::OpenShell => "OpenShell",
            Action::RunCommand => "RunCommand",
            Action::Watch => "Watch",
            Action::Terminate => "Terminate",
            Action::ListShells => "ListShells",
            Action::ReadRecordings => "ReadRecordings",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Action::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown action {0:?} (one of OpenShell, RunCommand, Watch, Terminate, ListShells, ReadRecordings)"
)]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    /// Parses a Cedar action id, exactly as [`Action::as_str`] spells it.
    fn from_str(s: &str) -> Result<Action, UnknownAction> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}

/// One authorization question: may this identity do this to this runtime,
/// now, from there?
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Who asks (principal and groups).
    pub identity: &'a Identity,
    /// What they ask to do.
    pub action: Action,
    /// The runtime's ARN or name: the resource `Runtime::"<runtime>"`.
    pub runtime: &'a str,
    /// The runtime's environment (`serve --environment`, or the proxy's
    /// environments file); `resource.environment` is `""` when `None`.
    pub environment: Option<&'a str>,
    /// The session the request is about; `resource.session` is `""` when
    /// `None`.
    pub session: Option<&'a str>,
    /// The break-glass reason the client gave (`X-Termtrail-Break-Glass`);
    /// `context.break_glass` exists only when this is `Some`.
    pub break_glass: Option<&'a str>,
    /// The client's address; `context.source_ip` exists only when known.
    pub source_ip: Option<IpAddr>,
    /// When, in seconds since the Unix epoch: `context.time`.
    pub time: u64,
}

impl<'a> Request<'a> {
    /// A request with no environment, session, break-glass or source
    /// address; set those fields as known.
    pub fn new(identity: &'a Identity, action: Action, runtime: &'a str, time: u64) -> Self {
        Request {
            identity,
            action,
            runtime,
            environment: None,
            session: None,
            break_glass: None,
            source_ip: None,
            time,
        }
    }
}

/// The answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed: some `permit` matched and no `forbid` did.
    pub allowed: bool,
    /// The ids of the policies that determined it, sorted: the matching
    /// `permit`s of an allow, the matching `forbid`s of a deny; empty for a
    /// deny because no policy permits it. A policy's id is its `@id("…")`,
    /// else Cedar's `policyN` (N counting policies in the file from 0).
    pub policies: Vec<String>,
    /// Policies that could not be evaluated for this request (skipped, as
    /// Cedar does): `policy <id>: <reason>`.
    pub errors: Vec<String>,
}

/// What a host does with a request: [`Policy::decide_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The decision: without break-glass when that allows it (or when no
    /// reason was given), else with the reason given.
    pub decision: Decision,
    /// Break-glass matters: when allowed, it is allowed only because of the
    /// break-glass reason (time-box the shell); when denied, a break-glass
    /// reason would allow it (tell the client to retry with one).
    pub needs_break_glass: bool,
}

/// The reason a denied request without break-glass is re-evaluated with, to
/// tell whether asking for break-glass would help.
pub const STAND_IN_REASON: &str = "(break-glass reason)";

/// A loaded policy set, validated against its schema when one was given.
#[derive(Debug)]
pub struct Policy {
    set: cedar::PolicySet,
    /// The policies' ids in file order.
    ids: Vec<String>,
    schema: Option<cedar::Schema>,
    /// The schema's action entities (for `action in` action groups), the
    /// base every request's entities are added to.
    actions: cedar::Entities,
    authorizer: cedar::Authorizer,
    warnings: Vec<String>,
}

impl Policy {
    /// The ids of the loaded policies, in the order of the file.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Whether the policy was validated against a schema.
    pub fn has_schema(&self) -> bool {
        self.schema.is_some()
    }

    /// The validator's warnings (strict mode), as `file:line:col: message`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Answers `request` exactly as given (`context.break_glass` present
    /// iff `request.break_glass` is).
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        let (cedar_request, entities) = match entities::build(self, request) {
            Ok(built) => built,
            // Only a schema that no longer matches could refuse a request
            // (load checks it does): deny, and say why.
            Err(reason) => {
                return Decision {
                    allowed: false,
                    policies: Vec::new(),
                    errors: vec![reason.to_string()],
                };
            }
        };
        let response = self
            .authorizer
            .is_authorized(&cedar_request, &self.set, &entities);
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            // The id as written: Cedar's `Display` escapes quotes,
            // backslashes and control characters, and would name a policy
            // no listing of `ids` has.
            .map(|id| AsRef::<str>::as_ref(id).to_string())
            .collect();
        policies.sort();
        let errors = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        Decision {
            allowed: response.decision() == cedar::Decision::Allow,
            policies,
            errors,
        }
    }

    /// Answers `request` the way a host does: first without break-glass;
    /// if that denies, with the reason given (or, when none was given, with
    /// [`STAND_IN_REASON`] to tell whether asking for break-glass would
    /// help — a policy that constrains the reason's text may refuse the
    /// stand-in where a real reason would do).
    pub fn decide_for(&self, request: &Request<'_>) -> Verdict {
        let without = Request {
            break_glass: None,
            ..request.clone()
        };
        let plain = self.decide(&without);
        if plain.allowed {
            return Verdict {
                decision: plain,
                needs_break_glass: false,
            };
        }
        let with = Request {
            break_glass: Some(request.break_glass.unwrap_or(STAND_IN_REASON)),
            ..request.clone()
        };
        let glass = self.decide(&with);
        match request.break_glass {
            Some(_) => Verdict {
                needs_break_glass: glass.allowed,
                decision: glass,
            },
            None => Verdict {
                needs_break_glass: glass.allowed,
                decision: plain,
            },
        }
    }
}
