//! Key pinning for `verify`: which key a recording names or was signed by,
//! and whether that key is one the user pinned (`--key`, `--keyring`); the
//! rules are `docs/format.md` §9.3.

use termtrail_format::reader::{Report, Signature, Status};
use termtrail_format::sign::{Keyring, PublicKey};

use crate::verify::Verdict;

/// What the key check found for one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// No keys were pinned: who signed is reported, nothing is required.
    NotRequired,
    /// Sealed, and the seal's signature verifies with a pinned key.
    Pinned,
    /// Unsealed, and its header names a pinned key: there is no signature
    /// yet, so none can be checked (`recover --sign-key` seals and signs
    /// it). Also a file cut inside its header: no key is known to check.
    Unchecked,
    /// A valid signature by a key that is not pinned; or, unsealed, a header
    /// naming a key that is not pinned (only that key could ever sign it).
    NotPinned,
    /// Keys are pinned and the recording names no key: sealed unsigned, or
    /// unsealed with no key in its header (it can never be signed).
    Unsigned,
    /// The recording is tampered (a bad signature included): that verdict
    /// stands, whatever the keys.
    NotChecked,
}

impl KeyCheck {
    /// The stable token in `verify --json`'s `key_check`; the two that fail
    /// a pin are also the verdict's reason class.
    pub fn token(self) -> &'static str {
        match self {
            KeyCheck::NotRequired => "not-required",
            KeyCheck::Pinned => "pinned",
            KeyCheck::Unchecked => "unchecked-unsealed",
            KeyCheck::NotPinned => "key-not-pinned",
            KeyCheck::Unsigned => "unsigned",
            KeyCheck::NotChecked => "not-checked",
        }
    }

    /// The reason class when the key check decides the verdict (exit 1):
    /// `key-not-pinned` or `unsigned`.
    pub fn reason_class(self) -> Option<&'static str> {
        match self {
            KeyCheck::NotPinned | KeyCheck::Unsigned => Some(self.token()),
            _ => None,
        }
    }
}

/// The key side of a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFinding {
    /// The check's outcome.
    pub check: KeyCheck,
    /// The key the recording names: the signer's id when the signature
    /// verifies, else the id its header claims (None: it names no key).
    pub key_id: Option<String>,
    /// Whether the signature verified (false when there is none).
    pub signed: bool,
    /// Whether `key_id` is among the pinned keys.
    pub pinned: bool,
    /// The chain and seal's verdict the check was made on.
    pub status: Status,
}

/// Judges `report` against the pinned keys (None or an empty keyring: no
/// key is required).
pub fn check(report: &Report, keys: Option<&Keyring>) -> KeyFinding {
    let header_key = report
        .header
        .as_ref()
        .and_then(|h| h.termtrail.as_ref())
        .and_then(|m| m.key.as_ref());
    let (key_id, signed) = match &report.signature {
        Signature::Valid { key_id } => (Some(key_id.clone()), true),
        Signature::Invalid { key_id } => (Some(key_id.clone()), false),
        Signature::Unsigned => (header_key.map(|k| k.id.clone()), false),
    };
    let keys = keys.filter(|k| !k.is_empty());
    // The header's key when well-formed and named by its own id: the key a
    // valid signature verified with, or, unsealed, a claim no signature
    // backs yet. Pinned means its 32 bytes are pinned, not just its id.
    let header_public =
        header_key.and_then(|k| PublicKey::from_hex(&k.public).filter(|pk| pk.id() == k.id));
    let pinned = match (keys, &report.signature, &header_public) {
        (Some(keys), Signature::Valid { .. } | Signature::Unsigned, Some(pk)) => keys.contains(pk),
        _ => false,
    };
    let check = match (keys, report.status) {
        (None, _) => KeyCheck::NotRequired,
        (Some(_), Status::Tampered) => KeyCheck::NotChecked,
        (Some(_), _) if pinned && signed => KeyCheck::Pinned,
        (Some(_), Status::Unsealed) if pinned => KeyCheck::Unchecked,
        // Cut inside the header: which key it names is not known.
        (Some(_), Status::Unsealed) if report.header.is_none() => KeyCheck::Unchecked,
        (Some(_), _) if key_id.is_some() => KeyCheck::NotPinned,
        (Some(_), _) => KeyCheck::Unsigned,
    };
    KeyFinding {
        check,
        key_id,
        signed,
        pinned,
        status: report.status,
    }
}

impl KeyFinding {
    /// The verdict once the key check is applied to `base` (the verdict of
    /// the chain and seal): a failed pin turns intact or unsealed into
    /// tampered (exit 1); everything else keeps `base`.
    pub fn apply(&self, base: Verdict) -> Verdict {
        match self.check {
            KeyCheck::NotPinned | KeyCheck::Unsigned if base != Verdict::Error => Verdict::Tampered,
            _ => base,
        }
    }

    /// What the human line says about the key, appended to the chain's
    /// verdict (empty when there is nothing to say): who signed or which key
    /// the header names, whether that key is pinned, and why a failed pin
    /// rejects the recording.
    pub fn describe(&self, keys: Option<&Keyring>) -> String {
        let pin = if self.pinned {
            " (pinned)"
        } else {
            ", not pinned"
        };
        let unsealed = self.status == Status::Unsealed;
        let mut s = match &self.key_id {
            Some(id) if self.signed => format!(", signed by key {id}{pin}"),
            Some(id) if unsealed => format!(", header names key {id}{pin}"),
            _ => String::new(),
        };
        let pinned = keys.map_or_else(String::new, |k| pinned_list(&k.ids()));
        let why = match self.check {
            KeyCheck::Unchecked | KeyCheck::NotRequired if unsealed && self.key_id.is_some() => {
                s.push_str(": no seal yet, so no signature to check");
                return s;
            }
            KeyCheck::Unchecked if self.key_id.is_none() => {
                s.push_str(", cut inside its header: no key to check");
                return s;
            }
            KeyCheck::NotPinned if unsealed => "only that key could ever sign it".to_string(),
            KeyCheck::NotPinned => "not signed by a pinned key".to_string(),
            KeyCheck::Unsigned if unsealed => {
                "unsealed, and its header names no key: it can never be signed".to_string()
            }
            KeyCheck::Unsigned => "not signed".to_string(),
            _ => return s,
        };
        s.push_str(&format!(
            "; REJECTED ({}): {why} ({pinned})",
            self.check.token()
        ));
        s
    }

    /// Why a failed pin rejects the recording, in one sentence naming the
    /// pinned keys (`verify --json`'s `key_rejected`).
    pub fn rejection(&self, keys: Option<&Keyring>) -> Option<String> {
        let pinned = keys.map_or_else(String::new, |k| pinned_list(&k.ids()));
        let id = self.key_id.as_deref().unwrap_or("-");
        let unsealed = self.status == Status::Unsealed;
        match self.check {
            KeyCheck::NotPinned if unsealed => Some(format!(
                "unsealed, and its header names key {id}, which is not pinned: \
                 only that key could ever sign it ({pinned})"
            )),
            KeyCheck::NotPinned => Some(format!(
                "signed by key {id}, which is not pinned ({pinned})"
            )),
            KeyCheck::Unsigned if unsealed => Some(format!(
                "unsealed, and its header names no key: it can never be signed ({pinned})"
            )),
            KeyCheck::Unsigned => Some(format!("not signed ({pinned})")),
            _ => None,
        }
    }
}

/// "pinned: A, B" (at most five ids, then how many more).
fn pinned_list(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
    let more = ids.len().saturating_sub(5);
    let word = if ids.len() == 1 { "key" } else { "keys" };
    if more > 0 {
        format!("pinned {word}: {} and {more} more", shown.join(", "))
    } else {
        format!("pinned {word}: {}", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use termtrail_format::cast::Header;
    use termtrail_format::event::{Event, EventData, TermSize};
    use termtrail_format::reader::{ReadOptions, read_recording};
    use termtrail_format::seal::EndReason;
    use termtrail_format::sign::SecretKey;
    use termtrail_format::writer::{ChainWriter, WriterOptions};

    /// A recording signed by `key` (if any), sealed or not.
    fn recording(key: Option<&SecretKey>, sealed: bool) -> Report {
        let mut file = Vec::new();
        let mut w = ChainWriter::new(
            &mut file,
            Header::new(TermSize::DEFAULT),
            WriterOptions::default(),
            key.cloned(),
        )
        .unwrap();
        w.push(&Event::new(0, EventData::Output(b"hi\r\n".to_vec())))
            .unwrap();
        if sealed {
            w.seal(EndReason::Exited { code: 0 }).unwrap();
        } else {
            w.abandon().unwrap();
        }
        read_recording(&file[..], &ReadOptions::default(), &mut ()).unwrap()
    }

    #[test]
    fn every_case_of_the_pin_table() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        let mut ring = Keyring::new();
        ring.add(a.public());
        let (ia, ib) = (a.public().id(), b.public().id());
        use KeyCheck::*;
        use Verdict::{Intact, Tampered, Unsealed};
        // (recording, keys?, check, key id, pinned, verdict)
        let cases = [
            (
                recording(Some(&a), true),
                true,
                Pinned,
                Some(&ia),
                true,
                Intact,
            ),
            (
                recording(Some(&b), true),
                true,
                NotPinned,
                Some(&ib),
                false,
                Tampered,
            ),
            (recording(None, true), true, Unsigned, None, false, Tampered),
            (
                recording(Some(&a), false),
                true,
                Unchecked,
                Some(&ia),
                true,
                Unsealed,
            ),
            (
                recording(Some(&b), false),
                true,
                NotPinned,
                Some(&ib),
                false,
                Tampered,
            ),
            (
                recording(None, false),
                true,
                Unsigned,
                None,
                false,
                Tampered,
            ),
            (
                recording(Some(&b), true),
                false,
                NotRequired,
                Some(&ib),
                false,
                Intact,
            ),
            (
                recording(None, true),
                false,
                NotRequired,
                None,
                false,
                Intact,
            ),
            (
                recording(Some(&b), false),
                false,
                NotRequired,
                Some(&ib),
                false,
                Unsealed,
            ),
        ];
        for (i, (report, pin, check_, id, pinned, verdict)) in cases.into_iter().enumerate() {
            let keys = pin.then_some(&ring);
            let f = check(&report, keys);
            assert_eq!(f.check, check_, "case {i}");
            assert_eq!(f.key_id.as_ref(), id, "case {i}");
            assert_eq!(f.pinned, pinned, "case {i}");
            let base = match report.status {
                Status::Intact => Intact,
                Status::Unsealed => Unsealed,
                Status::Tampered => Tampered,
            };
            assert_eq!(f.apply(base), verdict, "case {i}");
            assert_eq!(
                f.rejection(keys).is_some(),
                f.check.reason_class().is_some(),
                "case {i}"
            );
        }
        // An empty keyring pins nothing.
        let f = check(&recording(Some(&b), true), Some(&Keyring::new()));
        assert_eq!(f.check, NotRequired);
    }

    #[test]
    fn a_tampered_recording_keeps_its_verdict_whatever_the_keys() {
        let a = SecretKey::generate().unwrap();
        let mut report = recording(Some(&a), true);
        report.status = Status::Tampered;
        let mut ring = Keyring::new();
        ring.add(SecretKey::generate().unwrap().public());
        let f = check(&report, Some(&ring));
        assert_eq!(f.check, KeyCheck::NotChecked);
        assert_eq!(f.apply(Verdict::Tampered), Verdict::Tampered);
        assert_eq!(f.check.reason_class(), None);
        // Who signed is still said.
        assert!(f.describe(Some(&ring)).contains("not pinned"), "{f:?}");
    }

    #[test]
    fn an_unsealed_header_naming_a_pinned_id_with_another_public_key_is_not_pinned() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        let mut report = recording(Some(&b), false);
        // The header claims a's id but carries b's public key.
        let meta = report.header.as_mut().unwrap().termtrail.as_mut().unwrap();
        meta.key.as_mut().unwrap().id = a.public().id();
        let mut ring = Keyring::new();
        ring.add(a.public());
        let f = check(&report, Some(&ring));
        assert_eq!(f.check, KeyCheck::NotPinned);
        assert_eq!(f.apply(Verdict::Unsealed), Verdict::Tampered);
    }

    #[test]
    fn a_file_cut_inside_its_header_stays_unsealed_with_keys() {
        let a = SecretKey::generate().unwrap();
        let mut report = recording(Some(&a), false);
        report.header = None;
        let mut ring = Keyring::new();
        ring.add(SecretKey::generate().unwrap().public());
        let f = check(&report, Some(&ring));
        assert_eq!(f.check, KeyCheck::Unchecked);
        assert_eq!(f.apply(Verdict::Unsealed), Verdict::Unsealed);
        assert_eq!(
            f.describe(Some(&ring)),
            ", cut inside its header: no key to check"
        );
    }

    #[test]
    fn the_line_says_who_signed() {
        let a = SecretKey::generate().unwrap();
        let id = a.public().id();
        let f = check(&recording(Some(&a), true), None);
        assert_eq!(
            f.describe(None),
            format!(", signed by key {id}, not pinned")
        );
        let mut ring = Keyring::new();
        ring.add(a.public());
        let f = check(&recording(Some(&a), true), Some(&ring));
        assert_eq!(
            f.describe(Some(&ring)),
            format!(", signed by key {id} (pinned)")
        );
        let f = check(&recording(None, true), Some(&ring));
        assert_eq!(
            f.describe(Some(&ring)),
            format!("; REJECTED (unsigned): not signed (pinned key: {id})")
        );
        let ids: Vec<String> = (0..7).map(|i| format!("{i:016x}")).collect();
        assert_eq!(
            pinned_list(&ids),
            "pinned keys: 0000000000000000, 0000000000000001, 0000000000000002, \
             0000000000000003, 0000000000000004 and 2 more"
        );
    }
}
