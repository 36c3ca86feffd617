//! The literal prefilter: for a pattern every match of which holds one of a
//! few literals, the stored lines that can hold a match are found by
//! looking for a piece of a literal in a chunk's event lines as stored (one
//! pass per piece, before any unescaping or stripping); only those lines
//! are unescaped, stripped and searched.
//!
//! Why a line without such a place holds no match. A match holds one of
//! the literals, so the stripped line holds, contiguously, a piece of it:
//! the needle `N` (printable ASCII, not a space first, no `"` nor `\`).
//! Each of the needle's bytes was written by a token of the stored JSON
//! string: the byte itself, or an escape (`\X` for a byte X other than `n r
//! t b f u` writes X; `\u00XX` writes the byte XX; `\u001b[nC` writes
//! spaces). Only a backspace takes written text back, so in a line without
//! backspace escapes (`\b`, `\u0008`) every stored byte between the tokens
//! of two neighbouring needle bytes writes nothing; and a run of stored
//! bytes that writes nothing starts, in the stripper's ground state (where
//! it is after writing a byte), with a backslash (an escape: colours,
//! controls), a quote (the string ends: the JSON between events, other
//! events), DEL (the one raw byte the stripper drops) or, in an event line
//! whose string is not closed, the line feed ending it. The token of
//! `N[0]` ends with the byte `N[0]` unless it is `\u00XX`. So, with `k`
//! the first place where the stored bytes after `N[0]`'s token are not the
//! next of `N`'s in a row, a line that holds a match holds one of:
//! - `N[..=k]` followed by `\`, `"`, DEL or a line feed, or all of `N` (no
//!   such `k`);
//! - a backspace escape;
//! - `N[0]` written as `\u00XX` (either case of hex digits).
//!
//! Lines here are what an escaped line feed ends (the stripper ends any
//! sequence at a line feed: see [`super::pattern::Prefilter`]); a line
//! feed between a match's tokens would end the line in the text too.

use memchr::memmem::Finder;

use super::pattern::Pattern;

/// More literals than this: lines are not looked for pieces of each (a
/// pass each).
const MAX_NEEDLES: usize = 3;

/// Backspaces as JSON writes them: they take back text, so a line holding
/// one is always read.
const BACKSPACES: [&[u8]; 2] = [b"\\b", b"\\u0008"];

/// Which stored lines can hold a match (see the module's text).
#[derive(Debug)]
pub(super) struct LiteralFilter {
    /// A piece of each literal.
    needles: Vec<Vec<u8>>,
    /// Escapes a line holding one of which is always read: backspaces,
    /// and each needle's first byte as `\u00XX`.
    escapes: Vec<Finder<'static>>,
}

/// Whether `b` may be in a needle: printable ASCII whose JSON form is
/// itself (not `"` nor `\`).
fn plain(b: u8) -> bool {
    (b.is_ascii_graphic() || b == b' ') && b != b'"' && b != b'\\'
}

/// The needle for `literal`: the piece of a run of [`plain`] bytes (at
/// least two) that starts at its byte rarest by `count` (not a space), the
/// longer on a tie.
fn needle(literal: &[u8], count: &[usize; 256]) -> Option<Vec<u8>> {
    let mut best: Option<(usize, usize, usize)> = None;
    let mut run_end = literal.len();
    for i in (0..literal.len()).rev() {
        let b = literal[i];
        if !plain(b) {
            run_end = i;
            continue;
        }
        if b == b' ' || run_end - i < 2 {
            continue;
        }
        let key = (count[usize::from(b)], usize::MAX - (run_end - i));
        if best.is_none_or(|(c, l, _)| key < (c, l)) {
            best = Some((key.0, key.1, i));
        }
    }
    let (_, len, start) = best?;
    Some(literal[start..start + (usize::MAX - len)].to_vec())
}

/// `\u00XX` for `b`, each way of writing its hex digits.
fn unicode_escapes(b: u8) -> Vec<Vec<u8>> {
    let lower = format!("\\u00{b:02x}").into_bytes();
    let upper = format!("\\u00{b:02X}").into_bytes();
    if lower == upper {
        vec![lower]
    } else {
        vec![lower, upper]
    }
}

impl LiteralFilter {
    /// The filter for `pattern`, its needles picked by byte counts in
    /// `sample` (a chunk's event lines); None when the pattern's matches
    /// need not hold one of a few literals with a usable piece (then
    /// [`super::pattern::Prefilter`] may serve), or when more than a
    /// quarter of the sample's lines would be read anyway.
    pub(super) fn new(pattern: &Pattern, sample: &[u8]) -> Option<LiteralFilter> {
        let filter = LiteralFilter::from_counts(pattern, sample)?;
        let mut ends = Vec::new();
        termtrail_format::scan::escaped_line_feeds(sample, |e| ends.push(e));
        let mut marks = Vec::new();
        filter.marks(sample, &mut marks);
        marks.sort_unstable();
        let mut lines: Vec<usize> = marks
            .iter()
            .map(|&m| ends.partition_point(|&e| e <= m))
            .collect();
        lines.dedup();
        (lines.len() * 4 <= ends.len() + 1).then_some(filter)
    }

    /// [`LiteralFilter::new`] without the check of how many lines it
    /// reads.
    pub(super) fn from_counts(pattern: &Pattern, sample: &[u8]) -> Option<LiteralFilter> {
        // Case folding would need every case of each piece.
        if pattern.fold {
            return None;
        }
        let lits = pattern.prefixes.as_ref()?;
        if lits.len() > MAX_NEEDLES {
            return None;
        }
        let mut count = [0usize; 256];
        for &b in sample {
            count[usize::from(b)] += 1;
        }
        let mut needles = lits
            .iter()
            .map(|l| needle(l, &count))
            .collect::<Option<Vec<_>>>()?;
        needles.sort_unstable();
        needles.dedup();
        let mut escapes: Vec<Vec<u8>> = BACKSPACES.iter().map(|b| b.to_vec()).collect();
        for n in &needles {
            escapes.extend(unicode_escapes(n[0]));
        }
        escapes.sort_unstable();
        escapes.dedup();
        Some(LiteralFilter {
            needles,
            escapes: escapes
                .iter()
                .map(|e| Finder::new(e).into_owned())
                .collect(),
        })
    }

    /// Adds to `out` a place in each line of `text` (stored event lines,
    /// or any part of them that starts and ends at line ends) that can
    /// hold a match, and maybe places in others; unordered, a line maybe
    /// more than once. Every line that can hold a match has one.
    pub(super) fn marks(&self, text: &[u8], out: &mut Vec<usize>) {
        for n in &self.needles {
            let (&first, rest) = n.split_first().unwrap_or((&0, &[]));
            for p in memchr::memchr_iter(first, text) {
                let after = &text[p + 1..];
                let same = after.iter().zip(rest).take_while(|(a, b)| a == b).count();
                if same == rest.len()
                    || after
                        .get(same)
                        .is_none_or(|b| matches!(b, b'\\' | b'"' | 0x7f | b'\n'))
                {
                    out.push(p);
                }
            }
        }
        for f in &self.escapes {
            out.extend(f.find_iter(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pattern::PatternOptions;
    use super::*;

    #[test]
    fn needles_start_at_the_rarest_byte_of_a_plain_run() {
        let mut count = [0usize; 256];
        for &b in b"eeaattuussrrmmiiddoo  p" {
            count[usize::from(b)] += 1;
        }
        assert_eq!(
            needle(b"upstream timed out", &count).as_deref(),
            Some(&b"pstream timed out"[..])
        );
        // A space does not start one; quotes and backslashes end runs.
        assert_eq!(needle(b"a \"pq\\r", &count).as_deref(), Some(&b"pq"[..]));
        assert_eq!(needle(b"x\"y", &count), None);
        let p = Pattern::new(&["a".into()], PatternOptions::default()).unwrap();
        assert!(LiteralFilter::from_counts(&p, b"").is_none());
    }

    #[test]
    fn marks_every_line_a_match_can_be_in() {
        let p = Pattern::new(&["timed out".into()], PatternOptions::default()).unwrap();
        let f = LiteralFilter::from_counts(&p, b"").unwrap();
        let found = |text: &[u8]| {
            let mut out = Vec::new();
            f.marks(&[text, br" \n"].concat(), &mut out);
            !out.is_empty()
        };
        for yes in [
            &b"a timed out b"[..],
            br"tim\u001b[1med out",
            br#"timed ou", "x"]"#,
            br"x\u0074imed",
            b"timed o\n[1, \"o\", \"ut",
            br"tix\bmed out",
            b"timed\x7f out",
        ] {
            assert!(found(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [&b"a timer out"[..], b"tim ed out", br"x\u001b[1mimed ou"] {
            assert!(!found(no), "{}", String::from_utf8_lossy(no));
        }
    }

    #[test]
    fn a_first_byte_written_as_unicode_escape_is_found_in_either_case() {
        let p = Pattern::new(&["needle".into()], PatternOptions::default()).unwrap();
        let f = LiteralFilter::from_counts(&p, b"").unwrap();
        assert_eq!(f.needles, [b"needle".to_vec()]);
        for (text, at) in [
            (&br"\u006eeedle"[..], 0),
            (br"\u006Eeedle", 0),
            (br"x\by", 1),
        ] {
            let mut out = Vec::new();
            f.marks(text, &mut out);
            assert_eq!(out, [at], "{}", String::from_utf8_lossy(text));
        }
    }
}
