//! Checks of the frames after segments: each segment's index frame against
//! the segment, and the seal (totals, last link, index, hash, signature).

use crate::chain::seal_hash;
use crate::frames::{Frame, FrameKind, SEAL_MAGIC, SEGMENT_INDEX_MAGIC};
use crate::pipeline::Flow;
use crate::seal::{SegmentEntry, decode_seal};
use crate::sign::PublicKey;

use super::walk::Verifier;
use super::{ProblemKind, Reason, Signature};

impl Verifier<'_> {
    pub(super) fn skippable(&mut self, f: Frame) -> Flow {
        let FrameKind::Skippable(magic) = f.kind else {
            return Flow::Continue;
        };
        if !f.complete {
            if self.opts.claims_sealed {
                self.problem(
                    ProblemKind::FrameStructure,
                    Reason::FrameStructure,
                    f.offset,
                    None,
                    "a skippable frame runs past the end of the file".into(),
                );
            } else {
                self.truncated = true;
            }
            return Flow::Continue;
        }
        match magic {
            SEGMENT_INDEX_MAGIC => {
                // Byte for byte what the writer writes for the recomputed
                // entry: every byte of the file is covered.
                match self.pending_entry.take() {
                    Some(expected) if expected.to_payload() == f.bytes => self.index.push(expected),
                    Some(expected) => {
                        let found = SegmentEntry::from_payload(&f.bytes);
                        // One short line: which members differ, never the
                        // entries themselves.
                        let what = match &found {
                            Some(f) if f == &expected => "is not in canonical form".to_string(),
                            Some(f) => {
                                let names = expected.differences(f);
                                let verb = if names.len() == 1 {
                                    "differs"
                                } else {
                                    "differ"
                                };
                                format!("does not match: {} {verb}", names.join(", "))
                            }
                            None => "does not match: it is not a valid index entry".to_string(),
                        };
                        self.problem(
                            ProblemKind::IndexMismatch,
                            Reason::IndexMismatch,
                            f.offset,
                            None,
                            format!("index frame of segment {} {what}", expected.segment),
                        )
                    }
                    None => {
                        if !self.tampered {
                            self.problem(
                                ProblemKind::IndexMismatch,
                                Reason::IndexMissing,
                                f.offset,
                                None,
                                "index frame without a segment".into(),
                            );
                        }
                    }
                }
                Flow::Continue
            }
            SEAL_MAGIC => {
                self.sealed_frame_seen = true;
                self.seal(&f);
                Flow::Continue
            }
            other => {
                self.problem(
                    ProblemKind::FrameStructure,
                    Reason::FrameStructure,
                    f.offset,
                    None,
                    format!("unexpected skippable frame {other:#010x}"),
                );
                Flow::Continue
            }
        }
    }

    fn seal(&mut self, f: &Frame) {
        if let Some(entry) = self.pending_entry.take() {
            self.problem(
                ProblemKind::IndexMismatch,
                Reason::IndexMissing,
                f.offset,
                None,
                format!("index frame of segment {} is missing", entry.segment),
            );
        }
        let seal = match decode_seal(&f.bytes) {
            Ok(s) => s,
            Err(e) => {
                self.problem(
                    ProblemKind::SealInvalid,
                    Reason::SealInvalid,
                    f.offset,
                    None,
                    format!("seal is malformed: {e}"),
                );
                return;
            }
        };
        self.report.end = Some(seal.body.end.clone());
        if self.tampered {
            return;
        }
        let b = &seal.body;
        let mismatch = if b.format != 1 {
            Some("format")
        } else if Some(&b.id) != self.report.id.as_ref() {
            Some("recording id")
        } else if b.chunks != self.next_seq {
            Some("chunk count")
        } else if b.lines != self.report.lines {
            Some("line count")
        } else if b.duration != self.last_t {
            Some("duration")
        } else if b.bytes != self.report.bytes {
            Some("byte count")
        } else if b.last_link != hex::encode(self.link) {
            Some("last link")
        } else if b.segments != self.index {
            Some("segment index")
        } else if seal_hash(&self.link, &seal.body_bytes) != seal.hash {
            Some("seal hash")
        } else {
            None
        };
        if let Some(what) = mismatch {
            self.problem(
                ProblemKind::SealInvalid,
                Reason::SealMismatch,
                f.offset,
                None,
                format!("seal does not match the recording ({what})"),
            );
            return;
        }
        let key = self
            .report
            .header
            .as_ref()
            .and_then(|h| h.termtrail.as_ref())
            .and_then(|m| m.key.clone());
        match (key, seal.signature) {
            (None, None) => {}
            (None, Some(_)) => {
                self.problem(
                    ProblemKind::SignatureInvalid,
                    Reason::SignatureInvalid,
                    f.offset,
                    None,
                    "seal is signed but the header names no key".into(),
                );
                return;
            }
            (Some(k), sig) => {
                let ok = match (PublicKey::from_hex(&k.public), sig) {
                    (Some(pk), Some(sig)) => pk.id() == k.id && pk.verify(&seal.hash, &sig),
                    _ => false,
                };
                if ok {
                    self.report.signature = Signature::Valid { key_id: k.id };
                } else {
                    self.report.signature = Signature::Invalid { key_id: k.id };
                    self.problem(
                        ProblemKind::SignatureInvalid,
                        Reason::SignatureInvalid,
                        f.offset,
                        None,
                        "seal signature does not verify".into(),
                    );
                    return;
                }
            }
        }
        self.report.sealed = true;
    }
}
