//! The audit log's verifier: reads a log line by line (memory bounded by
//! one line, however long the log), checks the chain on the exact bytes,
//! and tells an intact log from a torn tail (a crash mid-write) and from
//! tampering. The numbered checks are in `docs/audit.md`.

use std::io::BufRead;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Head, MAX_LINE, genesis, is_rfc3339_micros, line_hash};

/// What the verifier found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Lines read (a torn last line included).
    pub lines: u64,
    /// The verdict.
    pub verdict: AuditVerdict,
    /// The last intact line of the chain (None: no intact line).
    pub head: Option<Head>,
    /// Byte offset just past the head line: a writer continues there.
    pub end_offset: u64,
    /// `recovered` lines accepted (torn writes the writer kept).
    pub recovered: u64,
    /// `time` of the first and of the last intact line.
    pub first_time: Option<String>,
    /// See `first_time`.
    pub last_time: Option<String>,
    /// `event` of the last intact line (text from the log: make it visible
    /// before printing it).
    pub last_event: Option<String>,
}

/// The verdict on a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every line is in the chain.
    Intact,
    /// Intact up to a torn tail: the last bytes are not a complete line (a
    /// crash mid-write), and no complete line follows them.
    Torn(Torn),
    /// A line is not where the chain says it must be, or not an audit line.
    Tampered {
        /// The first bad line (1-based, counting the file's lines).
        line: u64,
        /// What is wrong with it.
        reason: TamperReason,
    },
    /// Not an audit log at all: empty, or no line of it is an audit line.
    NotAuditLog {
        /// Why.
        reason: String,
    },
    /// Reading failed.
    Unreadable {
        /// The read error.
        error: String,
    },
}

/// A line the log must hold, recorded elsewhere (`SEQ:SHA256` in text):
/// the line with this `seq` must hash to `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The line's `seq`.
    pub seq: u64,
    /// SHA-256 of its bytes, newline included (lower-case hex).
    pub hash: String,
}

/// Text that is not an [`Anchor`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected SEQ:SHA256 (a line number and 64 hex characters), not {0:?}")]
pub struct BadAnchor(pub String);

impl std::str::FromStr for Anchor {
    type Err = BadAnchor;

    /// `SEQ:SHA256`, e.g. `42:9f86d0…` (64 hex characters).
    fn from_str(s: &str) -> Result<Anchor, BadAnchor> {
        let bad = || BadAnchor(s.to_string());
        let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        let hash = hash.to_ascii_lowercase();
        if seq == 0 || !is_hex(&hash, 64) {
            return Err(bad());
        }
        Ok(Anchor { seq, hash })
    }
}

/// A torn tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// `seq` of the last intact line (0: none).
    pub intact_up_to: u64,
    /// Bytes after it.
    pub bytes: u64,
    /// Whether those bytes are a whole line but for its newline (adding
    /// `\n` completes the chain).
    pub completable: bool,
}

/// Why a line breaks the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TamperReason {
    /// Longer than [`MAX_LINE`].
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    /// Not a JSON object with the head fields.
    #[error("not an audit line: {0}")]
    NotAuditLine(String),
    /// A head field has the wrong shape.
    #[error("field {0} is malformed")]
    BadField(&'static str),
    /// `log` differs from the log's id.
    #[error("line of another log ({found}, this log is {expected}): spliced in from another log")]
    ForeignLog {
        /// This log's id.
        expected: String,
        /// The line's.
        found: String,
    },
    /// `seq` is not the next number.
    #[error(
        "seq {found} where {expected} was expected: lines were removed, inserted, duplicated or reordered"
    )]
    Seq {
        /// The next number.
        expected: u64,
        /// The line's.
        found: u64,
    },
    /// `prev` is not the hash of the line before.
    #[error(
        "prev is not the hash of the line before: that line was changed, or lines were removed or inserted before this one"
    )]
    BrokenLink,
    /// `prev` of line 1 is not the genesis value of its log id.
    #[error("prev of the first line is not the genesis value of its log id")]
    BadGenesis,
    /// A `recovered` line that does not account for the bytes before it.
    #[error("a recovered line that does not match the torn bytes before it")]
    BadRecovery,
    /// The line at the anchor's `seq` has another hash.
    #[error("line seq {0} is not the anchored line (its hash differs): it was changed")]
    AnchorDiffers(u64),
    /// The chain ends before the anchor's `seq`.
    #[error(
        "the log ends at seq {last}, before the anchored seq {anchor}: lines were cut from the end"
    )]
    AnchorMissing {
        /// The anchor's seq.
        anchor: u64,
        /// The last intact seq.
        last: u64,
    },
}

/// The head fields of a line (and a `recovered` line's own).
#[derive(Deserialize)]
struct LineHead {
    seq: u64,
    time: String,
    log: String,
    prev: String,
    event: String,
    #[serde(default)]
    torn_bytes: Option<u64>,
    #[serde(default)]
    torn_sha256: Option<String>,
}

/// What the next line must link to.
enum Expect {
    Genesis,
    After(Head),
}

/// Bytes after the last intact line that no line has accounted for yet.
struct Suspect {
    first_line: u64,
    reason: TamperReason,
    bytes: u64,
    hasher: Sha256,
    /// Every line in it is a broken line (not even an audit line's JSON),
    /// as a torn write leaves: only such bytes count as torn.
    torn_like: bool,
}

/// A line checked against the chain.
struct Good {
    head: Head,
    time: String,
    event: String,
    recovered: Option<(u64, String)>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks one line (newline included) against what the chain expects.
fn check(line: &[u8], expect: &Expect) -> Result<Good, TamperReason> {
    if line.first() != Some(&b'{') {
        return Err(TamperReason::NotAuditLine("not a JSON object".into()));
    }
    let h: LineHead =
        serde_json::from_slice(line).map_err(|e| TamperReason::NotAuditLine(e.to_string()))?;
    if !is_hex(&h.log, 32) {
        return Err(TamperReason::BadField("log"));
    }
    if !is_hex(&h.prev, 64) {
        return Err(TamperReason::BadField("prev"));
    }
    if !is_rfc3339_micros(&h.time) {
        return Err(TamperReason::BadField("time"));
    }
    match expect {
        Expect::Genesis => {
            if h.seq != 1 {
                return Err(TamperReason::Seq {
                    expected: 1,
                    found: h.seq,
                });
            }
            if h.prev != hex::encode(genesis(&h.log)) {
                return Err(TamperReason::BadGenesis);
            }
        }
        Expect::After(head) => {
            if h.log != head.log {
                return Err(TamperReason::ForeignLog {
                    expected: head.log.clone(),
                    found: h.log,
                });
            }
            if h.seq != head.seq.wrapping_add(1) {
                return Err(TamperReason::Seq {
                    expected: head.seq.wrapping_add(1),
                    found: h.seq,
                });
            }
            if h.prev != head.hash {
                return Err(TamperReason::BrokenLink);
            }
        }
    }
    let recovered = if h.event == "recovered" {
        match (h.torn_bytes, h.torn_sha256) {
            (Some(n), Some(s)) if is_hex(&s, 64) => Some((n, s)),
            _ => return Err(TamperReason::BadField("torn_bytes/torn_sha256")),
        }
    } else {
        None
    };
    Ok(Good {
        head: Head {
            seq: h.seq,
            hash: line_hash(line),
            log: h.log,
        },
        time: h.time,
        event: h.event,
        recovered,
    })
}

/// Verifies a log ([`verify_with`] without an anchor).
pub fn verify(reader: impl BufRead) -> AuditReport {
    verify_with(reader, None)
}

/// Verifies a log; with `anchor` (a head recorded elsewhere: a shipped
/// copy, a recording, an operator's note), the log must also hold line
/// `anchor.seq` with exactly that hash, which finds lines cut from the end
/// up to the anchor and an edited last line.
pub fn verify_with(mut reader: impl BufRead, anchor: Option<&Anchor>) -> AuditReport {
    let mut report = AuditReport {
        lines: 0,
        verdict: AuditVerdict::Intact,
        head: None,
        end_offset: 0,
        recovered: 0,
        first_time: None,
        last_time: None,
        last_event: None,
    };
    let mut expect = Expect::Genesis;
    let mut suspect: Option<Suspect> = None;
    let mut saw_audit_line = false;
    let mut anchor_seen = false;
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = <&mut _ as std::io::Read>::take(&mut reader, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line);
        if let Err(e) = read {
            report.verdict = AuditVerdict::Unreadable {
                error: e.to_string(),
            };
            return report;
        }
        if line.is_empty() {
            break;
        }
        report.lines += 1;
        offset += line.len() as u64;
        if line.len() > MAX_LINE {
            report.verdict = AuditVerdict::Tampered {
                line: report.lines,
                reason: TamperReason::TooLong,
            };
            return report;
        }
        if line.last() != Some(&b'\n') {
            let head_seq = report.head.as_ref().map_or(0, |h| h.seq);
            report.verdict =
                torn_verdict(suspect.as_ref(), &line, &expect, head_seq, saw_audit_line);
            return finish_anchor(report, anchor, anchor_seen);
        }
        let checked = check(&line, &expect);
        let broken = matches!(checked, Err(TamperReason::NotAuditLine(_)));
        saw_audit_line |= !broken;
        let accepted = match (checked, &mut suspect) {
            (Ok(good), None) if good.recovered.is_none() => Some(good),
            (Ok(good), Some(s)) if s.torn_like && accounts_for(&good, s) => {
                report.recovered += 1;
                Some(good)
            }
            (Ok(_), None) => {
                suspect = Some(Suspect::new(report.lines, TamperReason::BadRecovery));
                None
            }
            (Err(reason), None) => {
                suspect = Some(Suspect::new(report.lines, reason));
                None
            }
            (_, Some(_)) => None,
        };
        match accepted {
            Some(good) => {
                suspect = None;
                if let Some(a) = anchor
                    && a.seq == good.head.seq
                {
                    if a.hash != good.head.hash {
                        report.verdict = AuditVerdict::Tampered {
                            line: report.lines,
                            reason: TamperReason::AnchorDiffers(a.seq),
                        };
                        return report;
                    }
                    anchor_seen = true;
                }
                expect = Expect::After(good.head.clone());
                report.accept(good, offset);
            }
            None => {
                if let Some(s) = &mut suspect {
                    s.bytes += line.len() as u64;
                    s.hasher.update(&line);
                    s.torn_like &= broken;
                }
            }
        }
    }
    report.verdict = end_verdict(suspect, report.lines, saw_audit_line);
    if report.verdict != AuditVerdict::Intact {
        return report;
    }
    finish_anchor(report, anchor, anchor_seen)
}

impl AuditReport {
    /// `good` is the new head, its line ending at `offset`.
    fn accept(&mut self, good: Good, offset: u64) {
        self.first_time.get_or_insert_with(|| good.time.clone());
        self.last_time = Some(good.time);
        self.last_event = Some(good.event);
        self.end_offset = offset;
        self.head = Some(good.head);
    }
}

/// The verdict when the file ends in `line`, bytes without a newline: a
/// torn write, unless complete lines before them are not (after `head_seq`,
/// the last intact line; `saw` whether any line looked like an audit line).
fn torn_verdict(
    suspect: Option<&Suspect>,
    line: &[u8],
    expect: &Expect,
    head_seq: u64,
    saw: bool,
) -> AuditVerdict {
    match suspect {
        Some(s) if !saw => AuditVerdict::NotAuditLog {
            reason: format!("line {} is not an audit line ({})", s.first_line, s.reason),
        },
        Some(s) if !s.torn_like => AuditVerdict::Tampered {
            line: s.first_line,
            reason: s.reason.clone(),
        },
        Some(s) => AuditVerdict::Torn(Torn {
            intact_up_to: head_seq,
            bytes: s.bytes + line.len() as u64,
            completable: false,
        }),
        // Not even the start of a line: another kind of file.
        None if head_seq == 0 && line.first() != Some(&b'{') => AuditVerdict::NotAuditLog {
            reason: "its only line is not an audit line".into(),
        },
        None => {
            let mut whole = line.to_vec();
            whole.push(b'\n');
            AuditVerdict::Torn(Torn {
                intact_up_to: head_seq,
                bytes: line.len() as u64,
                completable: check(&whole, expect).is_ok(),
            })
        }
    }
}

/// The verdict at the end of a file of `lines` lines, all complete.
fn end_verdict(suspect: Option<Suspect>, lines: u64, saw: bool) -> AuditVerdict {
    match suspect {
        None if lines == 0 => AuditVerdict::NotAuditLog {
            reason: "the file is empty".into(),
        },
        None => AuditVerdict::Intact,
        Some(s) if !saw => AuditVerdict::NotAuditLog {
            reason: format!("line {} is not an audit line ({})", s.first_line, s.reason),
        },
        Some(s) => AuditVerdict::Tampered {
            line: s.first_line,
            reason: s.reason,
        },
    }
}

impl Suspect {
    fn new(first_line: u64, reason: TamperReason) -> Suspect {
        Suspect {
            first_line,
            reason,
            bytes: 0,
            hasher: Sha256::new(),
            torn_like: true,
        }
    }
}

/// Whether `good` is a `recovered` line naming exactly the bytes of `s`.
fn accounts_for(good: &Good, s: &Suspect) -> bool {
    good.recovered
        .as_ref()
        .is_some_and(|(n, sha)| *n == s.bytes && *sha == hex::encode(s.hasher.clone().finalize()))
}

/// An anchor the chain never reached: lines were cut from the end.
fn finish_anchor(mut report: AuditReport, anchor: Option<&Anchor>, seen: bool) -> AuditReport {
    let checked = matches!(report.verdict, AuditVerdict::Intact | AuditVerdict::Torn(_));
    if let Some(a) = anchor
        && checked
        && !seen
    {
        let last = report.head.as_ref().map_or(0, |h| h.seq);
        report.verdict = AuditVerdict::Tampered {
            line: report.lines,
            reason: TamperReason::AnchorMissing {
                anchor: a.seq,
                last,
            },
        };
    }
    report
}
