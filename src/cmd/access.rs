//! The access flags of `serve` and `proxy`: the Cedar policy that decides
//! what authenticated clients may do, the environments runtimes are in,
//! and how long a break-glass grant lasts.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use termtrail_recorder::host::access::AccessOptions;
use termtrail_recorder::policy::{Environments, Reloadable};

use super::args::parse_duration;

/// How `serve` and `proxy` decide what clients may do.
#[derive(Args, Debug)]
#[command(next_help_heading = super::headings::ACCESS)]
pub struct HostAccessArgs {
    /// Cedar policy deciding every request (docs/policy.md); SIGHUP re-reads it. Without it every authenticated client may do anything.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Cedar schema the policy is validated against at start-up and reload.
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub policy_schema: Option<PathBuf>,
    /// The environment of this host's runtimes (the resource's `environment`), e.g. production.
    #[arg(long, value_name = "NAME")]
    pub environment: Option<String>,
    /// proxy: file mapping runtime ARN patterns to environments (`PATTERN NAME` lines, first match wins); --environment names the rest.
    #[arg(long, value_name = "FILE")]
    pub environments: Option<PathBuf>,
    /// Longest a shell granted only through break-glass runs before it is ended.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub break_glass_duration: Duration,
}

impl HostAccessArgs {
    /// Loads and validates the files (a malformed one stops start-up,
    /// named with its line).
    pub fn options(&self) -> Result<AccessOptions> {
        if self.break_glass_duration.is_zero() {
            bail!("--break-glass-duration must be more than 0");
        }
        let policy = match &self.policy {
            Some(p) => Some(Reloadable::load(p, self.policy_schema.as_deref())?),
            None => None,
        };
        let environments = match &self.environments {
            Some(p) => Some(Environments::load(p)?),
            None => None,
        };
        Ok(AccessOptions {
            policy,
            environment: self.environment.clone(),
            environments,
            break_glass_duration: self.break_glass_duration,
        })
    }
}
