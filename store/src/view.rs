//! A whole store read back for checking its journal (`verify --store`):
//! every recording key, every journal entry, and each recording's seal hash
//! read from its index without reading the recording.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use termtrail_format::index::load_index;
use termtrail_format::journal::{JournalRead, SealLookup, SealLookupError, read_journal};

use crate::layout::day_prefix;
use crate::par::par_map;
use crate::{Location, Object, Store, StoreError};

/// A store, with the sizes its listing gave (so reading an object needs no
/// request for its size first).
pub struct StoreView {
    store: Arc<dyn Store>,
    sizes: Mutex<HashMap<String, u64>>,
}

impl StoreView {
    /// Opens a store location (a directory or `s3://BUCKET/PREFIX`).
    pub fn open(location: &Location) -> Result<StoreView, StoreError> {
        Ok(StoreView {
            store: location.open()?,
            sizes: Default::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Recording keys, relative to the store, sorted; with `since` (Unix
    /// seconds), those that sort from its day on (a store's keys begin with
    /// their recording's UTC date, `YYYY/MM/DD/`).
    pub fn recordings(&self, since: Option<u64>) -> Result<Vec<String>, StoreError> {
        let day = since.map(day_prefix);
        let listed = self.store.list("", day.as_deref())?;
        let mut sizes = self.sizes.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = listed
            .into_iter()
            .filter(|o| o.key.ends_with(".cast.zst") && !o.key.starts_with("journal/"))
            .map(|o| {
                sizes.insert(o.key.clone(), o.size);
                o.key
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// The journal's entries: all of them, or with `since` (Unix seconds)
    /// those sealed from then on and one before per recorder, the older ones
    /// only listed (see [`termtrail_format::journal::read_journal`]).
    pub fn journal(&self, since: Option<u64>) -> Result<JournalRead<StoreError>, StoreError> {
        let keys = self
            .store
            .list("journal/", None)?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.ends_with(".json"))
            .collect();
        // Entries are small objects: a batch is fetched several at a time.
        let threads = self.store.read_threads();
        Ok(read_journal(keys, since, &mut |batch| {
            par_map(batch, threads, |k| {
                let mut bytes = Vec::new();
                self.store.read(k, &mut bytes).map(|_| bytes)
            })
        }))
    }

    /// An object's size: from the listing, else asked.
    fn size_of(&self, rel: &str) -> Result<u64, StoreError> {
        if let Some(n) = self.sizes.lock().ok().and_then(|m| m.get(rel).copied()) {
            return Ok(n);
        }
        self.store.size(rel)
    }

    /// A recording's seal hash from its index (None: unsealed).
    pub fn seal_of(&self, rel: &str) -> SealLookup<StoreError> {
        let size = self.size_of(rel).map_err(SealLookupError::NotInStore)?;
        let mut reader = self
            .store
            .open(rel, size, 256 << 10)
            .map_err(SealLookupError::NotInStore)?;
        Ok(load_index(&mut reader)?.seal_hash)
    }

    /// [`StoreView::seal_of`] for many recordings at once (as many in
    /// flight as the store reads well), by key.
    pub fn seals_of(&self, rels: &[String]) -> HashMap<String, SealLookup<StoreError>> {
        let seals = par_map(rels, self.store.read_threads(), |rel| self.seal_of(rel));
        rels.iter().cloned().zip(seals).collect()
    }

    /// A recording as an object of the store (for verifying its content).
    pub fn object(&self, rel: &str) -> Object {
        Object {
            key: rel.to_string(),
            size: self.size_of(rel).unwrap_or(0),
        }
    }
}
