//! The chain across recordings: a per-recorder journal of seals.
//!
//! Each recorder (one per host and store, see the recorder crate) appends an
//! [`Entry`] to its journal when it seals a recording: the recording's id,
//! key and seal hash, and the hash of the entry before it. Entries are
//! stored one object per entry, create-only, at
//! `PREFIX/journal/<recorder>/<seq>.json`. A new recording's header names
//! the journal's head when it started (`termtrail.after`), and the chain's
//! genesis binds the header, so a recording is tied to the seals before it.
//!
//! [`check`] then finds what per-file verification cannot: a recording
//! deleted (its entry names a key that is gone), replaced (the object's
//! seal is not the journaled one), or entries deleted (a gap in the
//! sequence) or edited (a broken `prev` link). Deleting the newest entries
//! together with their recordings leaves no gap: the recorder's own state
//! (and Object Lock, which forbids deleting either) covers that.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chain::{Hash, sha256};

/// One sealed recording in a recorder's journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The recorder's id.
    pub recorder: String,
    /// Position in the journal, from 0.
    pub seq: u64,
    /// Hex SHA-256 of the previous entry's bytes (64 zeros for seq 0).
    pub prev: String,
    /// The recording's id.
    pub recording: String,
    /// Its key, relative to the store's prefix.
    pub key: String,
    /// Hex hash of its seal.
    pub seal: String,
    /// Why it ended.
    pub end: String,
    /// When it was sealed (Unix seconds).
    pub sealed_at: u64,
}

impl Entry {
    /// The stored bytes (one JSON line).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses stored bytes.
    pub fn parse(bytes: &[u8]) -> Result<Entry, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("malformed journal entry: {e}"))
    }

    /// What the next entry's `prev` must be: the hash of these bytes.
    pub fn hash(&self) -> Hash {
        sha256(&self.to_bytes())
    }
}

/// Where an entry is stored, relative to the store's prefix.
pub fn entry_key(recorder: &str, seq: u64) -> String {
    format!("journal/{recorder}/{seq:012}.json")
}

/// The `prev` of entry 0.
pub const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A journal entry as found in a store: parsed, or its key and why not.
pub type Found = Result<Entry, (String, String)>;

/// What [`check`] found.
#[derive(Debug, Default, Clone)]
pub struct JournalReport {
    /// Entries checked, per recorder.
    pub recorders: BTreeMap<String, u64>,
    /// Recordings accounted for by an entry.
    pub journaled: u64,
    /// Evidence of deletion or replacement (empty: none found).
    pub problems: Vec<String>,
    /// Recordings in the store that no entry names (older recorders, or a
    /// journal write that failed): not evidence either way.
    pub unjournaled: Vec<String>,
}

/// Checks journals against a store. `entries` are every journal entry found
/// (parsed, or the key and why it could not be); `recordings` every
/// recording key in the store; `seal_of(key)` reads a recording's seal hash
/// (None: unsealed; Err: missing or unreadable).
pub fn check(
    entries: Vec<Found>,
    recordings: &[String],
    seal_of: &mut dyn FnMut(&str) -> Result<Option<Hash>, String>,
) -> JournalReport {
    let mut report = JournalReport::default();
    let mut by_recorder: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        match e {
            Ok(e) => by_recorder.entry(e.recorder.clone()).or_default().push(e),
            Err((key, why)) => report.problems.push(format!("journal entry {key}: {why}")),
        }
    }
    let mut named = std::collections::BTreeSet::new();
    for (recorder, mut list) in by_recorder {
        list.sort_by_key(|e| e.seq);
        report.recorders.insert(recorder.clone(), list.len() as u64);
        let mut expect_seq = list.first().map_or(0, |e| e.seq);
        if expect_seq != 0 {
            report.problems.push(format!(
                "recorder {recorder}: journal entries 0..{} are missing (deleted)",
                expect_seq - 1
            ));
        }
        let mut prev: Option<&Entry> = None;
        for e in &list {
            if e.seq != expect_seq {
                report.problems.push(format!(
                    "recorder {recorder}: journal entries {expect_seq}..{} are missing (deleted)",
                    e.seq - 1
                ));
            } else if let Some(p) = prev
                && e.prev != hex::encode(p.hash())
            {
                report.problems.push(format!(
                    "recorder {recorder}: journal entry {} does not follow entry {} (the journal was edited)",
                    e.seq, p.seq
                ));
            } else if prev.is_none() && e.seq == 0 && e.prev != ZERO {
                report.problems.push(format!(
                    "recorder {recorder}: journal entry 0 does not start the journal"
                ));
            }
            expect_seq = e.seq + 1;
            prev = Some(e);
            named.insert(e.key.clone());
            match seal_of(&e.key) {
                Ok(Some(h)) if hex::encode(h) == e.seal => report.journaled += 1,
                Ok(Some(_)) => report.problems.push(format!(
                    "{}: REPLACED: its seal is not the one journaled (recorder {recorder}, entry {})",
                    e.key, e.seq
                )),
                Ok(None) => report.problems.push(format!(
                    "{}: the journal says it was sealed, but it is not (recorder {recorder}, entry {})",
                    e.key, e.seq
                )),
                Err(why) => report.problems.push(format!(
                    "{}: MISSING: journaled by recorder {recorder} (entry {}) but {why}",
                    e.key, e.seq
                )),
            }
        }
    }
    for r in recordings {
        if !named.contains(r) {
            report.unjournaled.push(r.clone());
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for seq in 0..n {
            let prev = out
                .last()
                .map_or(ZERO.to_string(), |p| hex::encode(p.hash()));
            out.push(Entry {
                recorder: "r1".into(),
                seq,
                prev,
                recording: format!("id{seq}"),
                key: format!("k{seq}.cast.zst"),
                seal: hex::encode([seq as u8; 32]),
                end: "exited with code 0".into(),
                sealed_at: 1000 + seq,
            });
        }
        out
    }

    fn run(entries: Vec<Entry>, present: &[u64], replaced: &[u64]) -> JournalReport {
        let keys: Vec<String> = present.iter().map(|s| format!("k{s}.cast.zst")).collect();
        let mut seal_of = |k: &str| -> Result<Option<Hash>, String> {
            let seq: u64 = k[1..k.len() - 9].parse().unwrap();
            if !present.contains(&seq) {
                return Err("it is not in the store".into());
            }
            Ok(Some(if replaced.contains(&seq) {
                [99; 32]
            } else {
                [seq as u8; 32]
            }))
        };
        check(entries.into_iter().map(Ok).collect(), &keys, &mut seal_of)
    }

    #[test]
    fn an_intact_journal_accounts_for_every_recording() {
        let r = run(chain(5), &[0, 1, 2, 3, 4], &[]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.journaled, 5);
        assert!(r.unjournaled.is_empty());
    }

    #[test]
    fn deletions_replacements_and_edits_are_found() {
        let r = run(chain(5), &[0, 1, 3, 4], &[]);
        assert!(
            r.problems
                .iter()
                .any(|p| p.starts_with("k2.cast.zst: MISSING")),
            "{:?}",
            r.problems
        );
        let r = run(chain(5), &[0, 1, 2, 3, 4], &[3]);
        assert!(
            r.problems
                .iter()
                .any(|p| p.starts_with("k3.cast.zst: REPLACED")),
            "{:?}",
            r.problems
        );
        let mut c = chain(5);
        c.remove(2);
        let r = run(c, &[0, 1, 3, 4], &[]);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("entries 2..2 are missing")),
            "{:?}",
            r.problems
        );
        let mut c = chain(5);
        c[3].end = "closed".into(); // edited: entry 4's prev no longer matches
        let r = run(c, &[0, 1, 2, 3, 4], &[]);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("entry 4 does not follow entry 3")),
            "{:?}",
            r.problems
        );
        let r = run(chain(3), &[0, 1, 2, 7], &[]);
        assert_eq!(r.unjournaled, ["k7.cast.zst"]);
    }
}
