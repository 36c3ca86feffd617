//! A policy that can be re-read while requests are being decided (SIGHUP):
//! [`Reloadable`] hands out the current [`Policy`] and swaps in a new one
//! only when it loads completely.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::{Policy, PolicyError};

// Hosts share one policy between connection tasks.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Reloadable>();
    shared::<Arc<Policy>>();
};

/// The current policy, reloadable from its files.
///
/// Readers take an `Arc` of the current policy (a read lock held only for
/// the clone), so a decision in progress keeps the policy it started with
/// and a reload never waits for decisions.
#[derive(Debug)]
pub struct Reloadable {
    policy: PathBuf,
    schema: Option<PathBuf>,
    current: RwLock<Arc<Policy>>,
}

impl Reloadable {
    /// Loads the policy (and schema) a first time; see [`Policy::load`].
    pub fn load(policy: &Path, schema: Option<&Path>) -> Result<Reloadable, PolicyError> {
        let loaded = Policy::load(policy, schema)?;
        Ok(Reloadable {
            policy: policy.to_path_buf(),
            schema: schema.map(Path::to_path_buf),
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        // A panic while holding the lock cannot leave a half-written Arc:
        // the value is replaced in one assignment.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the files. On success the new policy is in force for every
    /// later [`Reloadable::current`] and is returned; on failure the old
    /// one stays in force and the error says why (for the log). Blocking
    /// (file reads and validation, milliseconds): from async code, call it
    /// in `spawn_blocking`.
    pub fn reload(&self) -> Result<Arc<Policy>, PolicyError> {
        let loaded = Arc::new(Policy::load(&self.policy, self.schema.as_deref())?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded.clone();
        Ok(loaded)
    }

    /// The policy file.
    pub fn policy_path(&self) -> &Path {
        &self.policy
    }

    /// The schema file, when there is one.
    pub fn schema_path(&self) -> Option<&Path> {
        self.schema.as_deref()
    }
}
