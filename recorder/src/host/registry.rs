//! The host's live shells, keyed by (runtime session id, shell id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::backend::Shell;

type Key = (String, String);

/// The live shells. The lock is held only to look up, add or remove.
#[derive(Default)]
pub(crate) struct Registry {
    shells: Mutex<HashMap<Key, Arc<dyn Shell>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Arc<dyn Shell>>> {
        // A poisoned lock means a panic elsewhere; the map is still usable.
        self.shells.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shell `shell` of session `session`, unless it has exited.
    pub(crate) fn live(&self, session: &str, shell: &str) -> Option<Arc<dyn Shell>> {
        self.lock()
            .get(&(session.to_string(), shell.to_string()))
            .cloned()
            .filter(|s| !s.att().exited())
    }

    /// Adds a shell (replacing an exited one with the same ids).
    pub(crate) fn insert(&self, shell: Arc<dyn Shell>) {
        let key = (shell.session_id().to_string(), shell.shell_id().to_string());
        self.lock().insert(key, shell);
    }

    /// Removes `shell`, unless another shell has taken its ids since.
    pub(crate) fn remove(&self, shell: &Arc<dyn Shell>) {
        let key = (shell.session_id().to_string(), shell.shell_id().to_string());
        let mut shells = self.lock();
        if shells.get(&key).is_some_and(|s| Arc::ptr_eq(s, shell)) {
            shells.remove(&key);
        }
    }

    /// Every live shell, at this moment.
    pub(crate) fn all(&self) -> Vec<Arc<dyn Shell>> {
        self.lock().values().cloned().collect()
    }

    /// How many shells there are.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
