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
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::chain::{Hash, sha256};
use crate::index::IndexError;

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
    pub fn parse(bytes: &[u8]) -> Result<Entry, MalformedEntry> {
        serde_json::from_slice(bytes).map_err(MalformedEntry)
    }

    /// Whether a check from `since` on looks at this entry's recording
    /// (an entry sealed before is read only as the anchor of the chain).
    pub fn in_range(&self, since: Option<u64>) -> bool {
        since.is_none_or(|s| self.sealed_at >= s)
    }

    /// What the next entry's `prev` must be: the hash of these bytes.
    pub fn hash(&self) -> Hash {
        sha256(&self.to_bytes())
    }
}

/// Stored bytes that are not a journal entry.
#[derive(Debug, thiserror::Error)]
#[error("malformed journal entry: {0}")]
pub struct MalformedEntry(serde_json::Error);

/// Why a journal entry listed in a store was not taken. `E` is the store's
/// read error.
#[derive(Debug, thiserror::Error)]
pub enum EntryError<E> {
    /// The store could not read it.
    #[error("{0}")]
    Unreadable(E),
    /// The reader answered for fewer keys than it was given.
    #[error("not read")]
    NotRead,
    /// Its bytes are not an entry.
    #[error(transparent)]
    Malformed(#[from] MalformedEntry),
    /// It is another entry, copied under this entry's key.
    #[error("it is entry {seq} of recorder {recorder}, stored under another entry's key")]
    Misplaced {
        /// The recorder the entry names.
        recorder: String,
        /// The sequence number the entry names.
        seq: u64,
    },
}

/// Why [`check`] could not read a journaled recording's seal. `E` is the
/// store's read error.
#[derive(Debug, thiserror::Error)]
pub enum SealLookupError<E> {
    /// The store could not open the recording.
    #[error("it is not in the store")]
    NotInStore(E),
    /// Its index (where the seal's hash is read) is unreadable.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// A recording's seal hash as [`check`] asks for it: None when the
/// recording is unsealed.
pub type SealLookup<E> = Result<Option<Hash>, SealLookupError<E>>;

/// The field of a header's `termtrail` block that names the journal's head
/// when the recording started (`termtrail.after`, docs/format.md §8.1).
pub const AFTER_FIELD: &str = "after";

/// Where an entry is stored, relative to the store's prefix.
pub fn entry_key(recorder: &str, seq: u64) -> String {
    format!("journal/{recorder}/{seq:012}.json")
}

/// The `prev` of entry 0.
pub const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A journal entry as found in a store: parsed, or its key and why not.
pub type Found<E> = Result<Entry, (String, EntryError<E>)>;

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

/// The journal entries a check reads: those read and parsed (or the key and
/// why not), and, per recorder, the sequence numbers of entries only listed
/// (older than a `--since` bound: their presence is checked, not their
/// content).
#[derive(Debug)]
pub struct JournalRead<E> {
    /// Entries read.
    pub entries: Vec<Found<E>>,
    /// Entries listed but not read, per recorder.
    pub listed_only: BTreeMap<String, Vec<u64>>,
}

impl<E> Default for JournalRead<E> {
    fn default() -> JournalRead<E> {
        JournalRead {
            entries: Vec::new(),
            listed_only: BTreeMap::new(),
        }
    }
}

/// A recorder and sequence number from an entry's key (see [`entry_key`]).
pub fn parse_entry_key(key: &str) -> Option<(&str, u64)> {
    let rest = key.strip_suffix(".json")?;
    let (dir, seq) = rest.rsplit_once('/')?;
    let recorder = dir.rsplit('/').next()?;
    Some((recorder, seq.parse().ok()?))
}

/// One entry's stored bytes, or the store's error reading them.
pub type Fetched<E> = Result<Vec<u8>, E>;

/// Reads a store's journal. `keys` are the entry keys listed; `read(keys)`
/// fetches a batch of them (in parallel, where that helps), one result per
/// key in order. Without `since` every entry is read. With it, each
/// recorder's entries are read newest first down to the first one sealed
/// before `since` (kept as the anchor its successor's `prev` is checked
/// against); older ones are only listed.
pub fn read_journal<E>(
    keys: Vec<String>,
    since: Option<u64>,
    read: &mut dyn FnMut(&[String]) -> Vec<Fetched<E>>,
) -> JournalRead<E> {
    let mut out = JournalRead::default();
    let mut every = Vec::new();
    let mut by_recorder: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for key in keys {
        match parse_entry_key(&key) {
            Some((recorder, seq)) if since.is_some() => by_recorder
                .entry(recorder.to_string())
                .or_default()
                .push((seq, key)),
            // Every entry is read (a stray key gets its error from there).
            _ => every.push(key),
        }
    }
    let mut fetch = |batch: &[String]| {
        let mut got = read(batch).into_iter();
        batch
            .iter()
            .map(|key| {
                let entry = match got.next() {
                    Some(bytes) => entry_at(key, bytes),
                    None => Err(EntryError::NotRead),
                };
                entry.map_err(|e| (key.clone(), e))
            })
            .collect::<Vec<Found<E>>>()
    };
    for batch in every.chunks(64) {
        out.entries.extend(fetch(batch));
    }
    for (recorder, mut list) in by_recorder {
        list.sort();
        list.reverse();
        // Newest first, a few at a time: a day's entries are usually few.
        let mut done = 0;
        let mut older = false;
        while done < list.len() && !older {
            let batch: Vec<String> = list[done..]
                .iter()
                .take(16)
                .map(|(_, k)| k.clone())
                .collect();
            for found in fetch(&batch) {
                done += 1;
                older = matches!(&found, Ok(e) if !e.in_range(since));
                out.entries.push(found);
                if older {
                    break;
                }
            }
        }
        let rest = list[done..].iter().map(|&(seq, _)| seq);
        out.listed_only.entry(recorder).or_default().extend(rest);
    }
    out.listed_only.retain(|_, seqs| !seqs.is_empty());
    for seqs in out.listed_only.values_mut() {
        seqs.sort_unstable();
    }
    out
}

/// One entry from its stored bytes; it must be stored where its recorder
/// and sequence number say (an entry copied to another key is not taken
/// for that one).
fn entry_at<E>(key: &str, bytes: Fetched<E>) -> Result<Entry, EntryError<E>> {
    let e = Entry::parse(&bytes.map_err(EntryError::Unreadable)?)?;
    match parse_entry_key(key) {
        Some((recorder, seq)) if (recorder, seq) != (e.recorder.as_str(), e.seq) => {
            Err(EntryError::Misplaced {
                recorder: e.recorder,
                seq: e.seq,
            })
        }
        _ => Ok(e),
    }
}

/// Checks journals against a store. `journal` is what [`read_journal`] read;
/// `recordings` the recording keys in the store (from `since` on, when a
/// bound is given); `seal_of(key)` reads a recording's seal hash (None:
/// unsealed; Err: missing or unreadable). Entries sealed before `since` are
/// checked for their place in the chain only.
pub fn check<E: fmt::Display>(
    journal: JournalRead<E>,
    since: Option<u64>,
    recordings: &[String],
    seal_of: &mut dyn FnMut(&str) -> SealLookup<E>,
) -> JournalReport {
    let mut report = JournalReport::default();
    let mut by_recorder: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in journal.entries {
        match e {
            Ok(e) => by_recorder.entry(e.recorder.clone()).or_default().push(e),
            Err((key, why)) => report.problems.push(format!("journal entry {key}: {why}")),
        }
    }
    let mut named = std::collections::BTreeSet::new();
    for (recorder, mut list) in by_recorder {
        list.sort_by_key(|e| e.seq);
        let listed: &[u64] = journal.listed_only.get(&recorder).map_or(&[], |v| v);
        report.recorders.insert(recorder.clone(), list.len() as u64);
        // Every sequence number, listed or read, in order: gaps are deletions.
        let mut expect_seq = 0;
        for &seq in listed.iter().chain(list.iter().map(|e| &e.seq)) {
            if seq < expect_seq {
                report.problems.push(format!(
                    "recorder {recorder}: journal entry {seq} appears twice"
                ));
            } else if seq > expect_seq {
                report.problems.push(format!(
                    "recorder {recorder}: journal entries {expect_seq}..{} are missing (deleted)",
                    seq - 1
                ));
            }
            expect_seq = expect_seq.max(seq + 1);
        }
        let mut prev: Option<&Entry> = None;
        for e in &list {
            if let Some(p) = prev
                && p.seq + 1 == e.seq
                && e.prev != hex::encode(p.hash())
            {
                report.problems.push(format!(
                    "recorder {recorder}: journal entry {} does not follow entry {} (the journal was edited)",
                    e.seq, p.seq
                ));
            } else if e.seq == 0 && e.prev != ZERO {
                report.problems.push(format!(
                    "recorder {recorder}: journal entry 0 does not start the journal"
                ));
            }
            prev = Some(e);
            named.insert(e.key.clone());
            if !e.in_range(since) {
                continue; // an anchor: its recording is outside the range
            }
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

    /// A store's read error, for these tests.
    type StoreError = &'static str;

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
        let mut seal_of = |k: &str| -> SealLookup<StoreError> {
            let seq: u64 = k[1..k.len() - 9].parse().unwrap();
            if !present.contains(&seq) {
                return Err(SealLookupError::NotInStore("no such key"));
            }
            Ok(Some(if replaced.contains(&seq) {
                [99; 32]
            } else {
                [seq as u8; 32]
            }))
        };
        let journal = JournalRead {
            entries: entries.into_iter().map(Ok).collect(),
            ..JournalRead::default()
        };
        check(journal, None, &keys, &mut seal_of)
    }

    fn assert_problem(r: &JournalReport, text: &str) {
        assert!(
            r.problems.iter().any(|p| p.contains(text)),
            "no problem saying {text:?} in {:?}",
            r.problems
        );
    }

    /// The seal `chain` gives entry N's recording `kN.cast.zst`.
    fn seal_by_key(k: &str) -> SealLookup<StoreError> {
        let seq: u64 = k[1..k.len() - 9].parse().unwrap();
        Ok(Some([seq as u8; 32]))
    }

    /// Reads `chain` (sealed_at 1000 + seq) as stored, from `since` on.
    fn read_since(c: &[Entry], since: Option<u64>) -> (JournalRead<StoreError>, Vec<String>) {
        let keys: Vec<String> = c.iter().map(|e| entry_key(&e.recorder, e.seq)).collect();
        let mut fetched = Vec::new();
        let journal = read_journal(keys, since, &mut |batch| {
            fetched.extend(batch.iter().cloned());
            batch
                .iter()
                .map(|k| {
                    let (_, seq) = parse_entry_key(k).unwrap();
                    Ok(c.iter().find(|e| e.seq == seq).unwrap().to_bytes())
                })
                .collect()
        });
        (journal, fetched)
    }

    #[test]
    fn since_reads_the_newest_entries_and_one_anchor_and_still_sees_gaps() {
        let c = chain(6);
        let (j, fetched) = read_since(&c, Some(1004));
        // Entries 4 and 5 are in range, 3 anchors them; 0..2 only listed
        // (fetched in the same batch, newest first, but not taken).
        assert_eq!(fetched[0], entry_key("r1", 5), "{fetched:?}");
        let read: Vec<u64> = j.entries.iter().map(|e| e.as_ref().unwrap().seq).collect();
        assert_eq!(read, [5, 4, 3]);
        assert_eq!(j.listed_only["r1"], vec![0, 1, 2]);
        let mut seals = Vec::new();
        let keys = vec!["k4.cast.zst".to_string(), "k5.cast.zst".to_string()];
        let r = check(j, Some(1004), &keys, &mut |k| {
            seals.push(k.to_string());
            seal_by_key(k)
        });
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.journaled, 2);
        assert_eq!(seals, ["k4.cast.zst", "k5.cast.zst"]);
        assert!(r.unjournaled.is_empty());

        // An old entry deleted: seen from the listing alone.
        let mut gap = chain(6);
        gap.remove(1);
        let (j, _) = read_since(&gap, Some(1004));
        let r = check(j, Some(1004), &[], &mut |_| Ok(Some([0; 32])));
        assert_problem(&r, "entries 1..1 are missing");
        // The anchor edited: its successor no longer follows it.
        let mut edited = chain(6);
        edited[3].end = "killed".into();
        let (j, _) = read_since(&edited, Some(1004));
        let r = check(j, Some(1004), &[], &mut seal_by_key);
        assert_problem(&r, "entry 4 does not follow entry 3");
    }

    #[test]
    fn since_reads_across_batches_and_a_short_reader_is_not_trusted() {
        let c = chain(40);
        let (j, _) = read_since(&c, Some(1003));
        let read: Vec<u64> = j.entries.iter().map(|e| e.as_ref().unwrap().seq).collect();
        assert_eq!(read, (2..40).rev().collect::<Vec<_>>());
        assert_eq!(j.listed_only["r1"], vec![0, 1]);
        // A reader that answers nothing: every entry is an error, and
        // reading ends (no endless retry).
        let keys: Vec<String> = (0..20).map(|s| entry_key("r1", s)).collect();
        let j = read_journal::<StoreError>(keys, Some(1003), &mut |_| Vec::new());
        assert_eq!(j.entries.len(), 20);
        assert!(j.entries.iter().all(|e| e.is_err()));
    }

    #[test]
    fn an_entry_under_another_entrys_key_is_refused() {
        let c = chain(3);
        let keys: Vec<String> = (0..3).map(|s| entry_key("r1", s)).collect();
        // Entry 2's key holds entry 1's bytes.
        let j = read_journal::<StoreError>(keys, None, &mut |batch| {
            batch
                .iter()
                .map(|k| {
                    let (_, seq) = parse_entry_key(k).unwrap();
                    Ok(c[seq.min(1) as usize].to_bytes())
                })
                .collect()
        });
        let r = check(j, None, &[], &mut |_| Ok(None));
        assert_problem(&r, "stored under another entry's key");
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
        assert_problem(&r, "k2.cast.zst: MISSING");
        let r = run(chain(5), &[0, 1, 2, 3, 4], &[3]);
        assert_problem(&r, "k3.cast.zst: REPLACED");
        let mut c = chain(5);
        c.remove(2);
        let r = run(c, &[0, 1, 3, 4], &[]);
        assert_problem(&r, "entries 2..2 are missing");
        let mut c = chain(5);
        c[3].end = "closed".into(); // edited: entry 4's prev no longer matches
        let r = run(c, &[0, 1, 2, 3, 4], &[]);
        assert_problem(&r, "entry 4 does not follow entry 3");
        let r = run(chain(3), &[0, 1, 2, 7], &[]);
        assert_eq!(r.unjournaled, ["k7.cast.zst"]);
    }

    #[test]
    fn each_error_reads_as_the_problem_line_users_see() {
        let c = chain(3);
        let keys: Vec<String> = (0..4).map(|s| entry_key("r1", s)).collect();
        // Entry 0 unreadable, 1 malformed, 2 entry 1's bytes, 3 never answered.
        let j = read_journal(keys, None, &mut |batch| {
            vec![Err("access denied"), Ok(b"{".to_vec()), Ok(c[1].to_bytes())]
                .into_iter()
                .take(batch.len())
                .collect()
        });
        let why: Vec<String> = j
            .entries
            .iter()
            .map(|e| e.as_ref().unwrap_err().1.to_string())
            .collect();
        assert_eq!(why[0], "access denied");
        assert!(
            why[1].starts_with("malformed journal entry: EOF"),
            "{}",
            why[1]
        );
        assert_eq!(
            why[2],
            "it is entry 1 of recorder r1, stored under another entry's key"
        );
        assert_eq!(why[3], "not read");
        let r = check(j, None, &[], &mut |_| Ok(None));
        assert_eq!(
            r.problems[0],
            "journal entry journal/r1/000000000000.json: access denied"
        );

        let r = run(chain(3), &[0, 2], &[]);
        assert_eq!(
            r.problems,
            ["k1.cast.zst: MISSING: journaled by recorder r1 (entry 1) but it is not in the store"]
        );
        let journal = JournalRead {
            entries: chain(1).into_iter().map(Ok).collect(),
            ..JournalRead::default()
        };
        let mut unreadable = |_: &str| -> SealLookup<StoreError> {
            Err(IndexError::Invalid("seal frame magic missing".into()).into())
        };
        let r = check(journal, None, &[], &mut unreadable);
        assert_eq!(
            r.problems,
            [
                "k0.cast.zst: MISSING: journaled by recorder r1 (entry 0) but cannot index: seal frame magic missing"
            ]
        );
    }
}
