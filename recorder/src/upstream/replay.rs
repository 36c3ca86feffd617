//! Recognising a replay of output already received: after a re-attach an
//! upstream host sends its buffered output again, and what the relay has
//! seen must be neither recorded nor shown twice.

use std::borrow::Cow;
use std::collections::VecDeque;

/// How much recent upstream output is kept to recognise a replay.
const TAIL_BYTES: usize = 256 << 10;
/// The shortest overlap between output seen and a replay taken as a repeat
/// (unless the replay is that short and wholly seen).
const MIN_OVERLAP: usize = 16;

/// The last bytes received are kept; a replay is held until it is
/// complete, then only the part not seen before is released.
#[derive(Default)]
pub(crate) struct Replay {
    tail: VecDeque<u8>,
    /// Some while a replay is being received.
    pending: Option<Vec<u8>>,
    /// The next output starts a replay (terminado re-attach).
    expecting: bool,
}

impl Replay {
    /// After an upstream re-attach: the host's first output is a replay.
    pub(crate) fn expect(&mut self) {
        self.expecting = true;
    }

    pub(crate) fn in_replay(&self) -> bool {
        self.pending.is_some()
    }

    /// Output passes straight through: no replay under way or expected.
    pub(crate) fn is_live(&self) -> bool {
        self.pending.is_none() && !self.expecting
    }

    /// A replay starts (the host confirmed a re-attach).
    pub(crate) fn start(&mut self) {
        self.pending = Some(Vec::new());
        self.expecting = false;
    }

    /// Live bytes pass through (and are remembered); replay bytes are held.
    /// (Borrowed: the relay's hot path copies output no more than it must.)
    pub(crate) fn filter<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.expecting {
            self.start();
        }
        if let Some(p) = &mut self.pending {
            p.extend_from_slice(bytes);
            return Cow::Borrowed(&[]);
        }
        self.remember(bytes);
        Cow::Borrowed(bytes)
    }

    /// The replay is complete: returns its part not seen before.
    pub(crate) fn done(&mut self) -> Vec<u8> {
        self.expecting = false;
        let Some(p) = self.pending.take() else {
            return Vec::new();
        };
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        let seen = overlap(&tail, &p);
        // A short overlap is as likely chance (a replay of `1152700` after
        // output ending in `1`) as a real repeat: output is dropped only on
        // a long one, or when the whole replay was seen. Showing a few
        // bytes twice beats losing them.
        let seen = if seen >= MIN_OVERLAP || seen == p.len() {
            seen
        } else {
            0
        };
        let fresh = p[seen..].to_vec();
        self.remember(&fresh);
        fresh
    }

    fn remember(&mut self, bytes: &[u8]) {
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
    }
}

/// Length of the longest suffix of `seen` that is a prefix of `replay`
/// (KMP over `replay ‖ sentinel ‖ seen`, linear time).
fn overlap(seen: &[u8], replay: &[u8]) -> usize {
    let pat: Vec<u16> = replay.iter().map(|&b| u16::from(b)).collect();
    let text = seen.iter().map(|&b| u16::from(b));
    let mut fail = vec![0usize; pat.len()];
    let mut k = 0;
    for i in 1..pat.len() {
        while k > 0 && pat[i] != pat[k] {
            k = fail[k - 1];
        }
        if pat[i] == pat[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut k = 0;
    for c in text {
        while k > 0 && (k == pat.len() || c != pat[k]) {
            k = fail[k - 1];
        }
        if k < pat.len() && c == pat[k] {
            k += 1;
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_finds_the_longest_seen_prefix() {
        assert_eq!(overlap(b"hello world", b"world and more"), 5);
        assert_eq!(overlap(b"abcabc", b"abcabcx"), 6);
        assert_eq!(overlap(b"xyz", b"new"), 0);
        assert_eq!(overlap(b"", b"new"), 0);
        assert_eq!(overlap(b"aaaa", b"aa"), 2);
        assert_eq!(overlap(b"abab", b"abab"), 4);
    }

    #[test]
    fn a_replay_releases_only_what_was_not_seen() {
        let mut r = Replay::default();
        assert_eq!(
            &*r.filter(b"one two, a long line "),
            b"one two, a long line "
        );
        r.start();
        assert!(r.filter(b"two, a long line three").is_empty());
        assert_eq!(r.done(), b"three");
        assert_eq!(&*r.filter(b"!"), b"!");
    }

    #[test]
    fn a_short_chance_overlap_is_not_taken_for_a_repeat() {
        // `1` ends what was seen and starts the replay: kept.
        let mut r = Replay::default();
        r.filter(b"tail ending in 1");
        r.start();
        r.filter(b"1152700\r\n");
        assert_eq!(r.done(), b"1152700\r\n");
        // A replay wholly seen, however short, is a repeat.
        let mut r = Replay::default();
        r.filter(b"prompt> ");
        r.start();
        r.filter(b"> ");
        assert_eq!(r.done(), b"");
    }
}
