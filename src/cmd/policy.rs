//! `termtrail policy`: ask a Cedar policy what `serve` and `proxy` would
//! decide (`check`), or only load and validate it (`validate`).

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use termtrail_recorder::auth::Identity;
use termtrail_recorder::policy::{Action, Environments, Policy, Request, Verdict};

use super::args::unix_now;
use crate::exit::Exit;

/// Text after `policy --help`'s options.
pub const HELP: &str = "\
The model (principal User::\"P\" in Group::\"G\", actions, resource Runtime::\"R\"
with environment and session, context time, source_ip, break_glass) and
example policies: docs/policy.md; the schema: docs/policy/termtrail.cedarschema.

Examples:
  termtrail policy validate --policy team.cedar --policy-schema termtrail.cedarschema
  termtrail policy check --policy team.cedar --principal alice --group developers \\
      --action OpenShell --environment dev";

/// Text after `policy check --help`'s options.
pub const CHECK_HELP: &str = "\
Decides like serve and proxy do: first without break-glass; when that denies
and --break-glass is given, with it. Prints one line, the decision and the ids
of the policies that decided it:
  allow: ID, …                  permitted by these policies
  allow with break-glass: ID, … permitted only because of --break-glass (a host
                                time-boxes such a shell)
  deny: ID, …                   forbidden by these policies
  deny: no policy permits it    (deny by default)
and, when denied without --break-glass but a break-glass reason would allow it,
a second line saying so. Policies Cedar could not evaluate for the request
(skipped) are named on stderr. A policy's id is its @id(\"…\") annotation, else
Cedar's policyN (N counting the file's policies from 0).

With --environments, the environment is the one the proxy would give --runtime
(the first matching line of the file; \"\" when none matches).

Exit status: 0 allow, 1 deny, 2 bad input (a malformed policy or schema, named
as FILE:LINE:COL: reason; a malformed environments file, as FILE:LINE: reason;
a bad flag).

Examples:
  termtrail policy check --policy team.cedar --principal alice --group developers \\
      --action OpenShell --environment dev
  termtrail policy check --policy team.cedar --policy-schema termtrail.cedarschema \\
      --principal carol --group oncall --action OpenShell --environment production \\
      --break-glass \"INC-4211 agent stuck\"
  termtrail policy check --policy team.cedar --principal arn:aws:iam::111111111111:user/ci \\
      --action RunCommand --environment production --source-ip 10.0.3.7 --json
  termtrail policy check --policy team.cedar --principal olga --group operators \\
      --action RunCommand --environments environments.txt \\
      --runtime arn:aws:bedrock-agentcore:us-east-1:111111111111:runtime/shop";

/// Text after `policy validate --help`'s options.
pub const VALIDATE_HELP: &str = "\
Loads the policy like serve and proxy do at start-up: parses it, names its
policies, and with --policy-schema checks that the schema describes termtrail's
requests and validates the policies against it (strict mode: misspelt
attributes or actions, type errors, optional attributes used without `has`).
Prints the policies' ids, and the validator's warnings on stderr.

Exit status: 0 valid, 2 not (each problem named as FILE:LINE:COL: reason).

Example:
  termtrail policy validate --policy team.cedar --policy-schema termtrail.cedarschema";

/// `policy` arguments.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// What to do with the policy.
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// `policy` subcommands.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print what a policy decides for one request (exit 0 allow, 1 deny).
    #[command(after_help = CHECK_HELP)]
    Check(Box<CheckArgs>),
    /// Load a policy (and validate it against a schema) as serve and proxy do.
    #[command(after_help = VALIDATE_HELP)]
    Validate(ValidateArgs),
}

/// The policy files, as serve and proxy take them.
#[derive(Args, Debug)]
pub struct PolicyFiles {
    /// The Cedar policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// A Cedar schema (human syntax) to validate the policy against.
    #[arg(long, value_name = "FILE")]
    pub policy_schema: Option<PathBuf>,
}

impl PolicyFiles {
    fn load(&self) -> Result<Policy> {
        Ok(Policy::load(&self.policy, self.policy_schema.as_deref())?)
    }
}

/// `policy check` arguments: the request.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub files: PolicyFiles,
    /// The principal (a token's sub, an IAM ARN): User::"P".
    #[arg(long, value_name = "P")]
    pub principal: String,
    /// A group of the principal: Group::"G" (repeatable).
    #[arg(long, value_name = "G")]
    pub group: Vec<String>,
    /// OpenShell, RunCommand, Watch, Terminate, ListShells or ReadRecordings.
    #[arg(long, value_name = "A", value_parser = parse_action)]
    pub action: Action,
    /// The runtime's environment: resource.environment ("" for none).
    #[arg(long, value_name = "E", required_unless_present = "environments")]
    pub environment: Option<String>,
    /// Take the environment from a proxy's environments file, by --runtime.
    #[arg(long, value_name = "FILE", conflicts_with = "environment")]
    pub environments: Option<PathBuf>,
    /// The runtime's ARN or name: Runtime::"R".
    #[arg(long, value_name = "R", default_value = "local")]
    pub runtime: String,
    /// The session asked about: resource.session (default "").
    #[arg(long, value_name = "S")]
    pub session: Option<String>,
    /// Ask for break-glass with this reason: context.break_glass.reason.
    #[arg(long, value_name = "REASON")]
    pub break_glass: Option<String>,
    /// The client's address: context.source_ip (default: absent).
    #[arg(long, value_name = "IP")]
    pub source_ip: Option<IpAddr>,
    /// When: context.time (default: now) — seconds since the Unix epoch, or an instant (2026-11-20T14:30:00Z, 2h ago).
    #[arg(long, value_name = "WHEN", value_parser = unix_secs)]
    pub time: Option<u64>,
    /// Print the verdict as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `policy validate` arguments.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub files: PolicyFiles,
}

fn parse_action(s: &str) -> Result<Action, termtrail_recorder::policy::UnknownAction> {
    s.parse()
}

/// Runs `policy`.
pub fn run(a: PolicyArgs) -> Result<Exit> {
    match a.command {
        PolicyCommand::Check(a) => check(*a),
        PolicyCommand::Validate(a) => validate(a),
    }
}

fn check(a: CheckArgs) -> Result<Exit> {
    let policy = a.files.load()?;
    warn(&policy);
    let environment = match (&a.environments, &a.environment) {
        (Some(file), _) => Environments::load(file)?
            .environment_of(&a.runtime)
            .unwrap_or_default()
            .to_string(),
        (None, Some(e)) => e.clone(),
        (None, None) => String::new(),
    };
    let identity = Identity {
        groups: a.group.clone(),
        ..Identity::unauthenticated(&a.principal)
    };
    let request = Request {
        environment: Some(environment.as_str()),
        session: a.session.as_deref(),
        break_glass: a.break_glass.as_deref(),
        source_ip: a.source_ip,
        ..Request::new(
            &identity,
            a.action,
            &a.runtime,
            a.time.unwrap_or_else(unix_now),
        )
    };
    let verdict = policy.decide_for(&request);
    for e in &verdict.decision.errors {
        eprintln!("termtrail: skipped: {e}");
    }
    let mut out = super::stdout::lock();
    if a.json {
        writeln!(out, "{}", json(&verdict, &environment))?;
    } else {
        out.write_all(human(&verdict, a.break_glass.is_some()).as_bytes())?;
    }
    Ok(if verdict.decision.allowed {
        Exit::SUCCESS
    } else {
        Exit::DENIED
    })
}

/// The verdict as `check` prints it (see [`CHECK_HELP`]).
fn human(v: &Verdict, asked_for_break_glass: bool) -> String {
    let d = &v.decision;
    let word = match (d.allowed, v.needs_break_glass) {
        (true, false) => "allow",
        (true, true) => "allow with break-glass",
        (false, _) => "deny",
    };
    let mut text = if d.policies.is_empty() {
        format!("{word}: no policy permits it\n")
    } else {
        format!("{word}: {}\n", d.policies.join(", "))
    };
    if !d.allowed && v.needs_break_glass && !asked_for_break_glass {
        text.push_str("break-glass would allow it: retry with --break-glass REASON\n");
    }
    text
}

/// The verdict as one JSON object: `decision` ("allow" or "deny"),
/// `needs_break_glass`, `policies` and `errors` (see `Verdict`), and the
/// `environment` the request was decided for.
fn json(v: &Verdict, environment: &str) -> serde_json::Value {
    let d = &v.decision;
    serde_json::json!({
        "decision": if d.allowed { "allow" } else { "deny" },
        "environment": environment,
        "needs_break_glass": v.needs_break_glass,
        "policies": d.policies,
        "errors": d.errors,
    })
}

fn validate(a: ValidateArgs) -> Result<Exit> {
    let policy = a.files.load()?;
    warn(&policy);
    let ids = policy.ids();
    let against = match &a.files.policy_schema {
        Some(s) => format!(", valid against {}", s.display()),
        None => " (no schema: parsed only)".to_string(),
    };
    let mut out = super::stdout::lock();
    writeln!(
        out,
        "{}: {} {}{against}",
        a.files.policy.display(),
        ids.len(),
        if ids.len() == 1 { "policy" } else { "policies" },
    )?;
    for id in ids {
        writeln!(out, "  {id}")?;
    }
    Ok(Exit::SUCCESS)
}

/// The validator's warnings, on stderr.
fn warn(policy: &Policy) {
    for w in policy.warnings() {
        eprintln!("termtrail: warning: {w}");
    }
}

/// `--time`: Unix seconds as given, or an instant (cut to the second).
fn unix_secs(s: &str) -> Result<u64, super::args::BadValue> {
    if let Ok(secs) = s.trim().parse::<u64>() {
        return Ok(secs);
    }
    termtrail_player::time::parse_instant(s, termtrail_player::time::now())
        .map(|us| (us.max(0) / 1_000_000) as u64)
        .map_err(|e| super::args::BadValue(e.to_string()))
}
