//! The search pattern: the regex compiled from `grep`'s patterns and flags,
//! and the prefilter that picks, from the literals every match starts with,
//! the bytes a stored line must hold to be worth reading.

use regex::bytes::{Regex, RegexBuilder};

/// A pattern that does not compile: the patterns as given (joined by
/// ` | `) and the regex library's one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regex {pattern:?}: {problem}")]
pub struct PatternError {
    /// The patterns, joined by ` | `.
    pub pattern: String,
    /// What is wrong (the last line of the regex library's message).
    pub problem: String,
}

/// A compiled search pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub(super) re: Regex,
    /// Literals every match starts with (one of them), when there is such
    /// a finite set of non-empty ones: what the prefilter looks for.
    pub(super) prefixes: Option<Vec<Vec<u8>>>,
    /// Case-insensitive (`-i`).
    pub(super) fold: bool,
}

/// How to read the pattern.
#[derive(Debug, Clone, Copy, Default)]
pub struct PatternOptions {
    /// `-i`: case-insensitive.
    pub ignore_case: bool,
    /// `-w`: only whole words.
    pub word: bool,
    /// `-F`: a literal string, not a regex.
    pub fixed: bool,
}

impl Pattern {
    /// Compiles `patterns` (any of them matches); the error is one line.
    pub fn new(patterns: &[String], o: PatternOptions) -> Result<Pattern, PatternError> {
        let alternatives: Vec<String> = patterns
            .iter()
            .map(|p| if o.fixed { regex::escape(p) } else { p.clone() })
            .collect();
        let pattern = patterns.join(" | ");
        let mut p = match alternatives.as_slice() {
            [one] => one.clone(),
            many => many
                .iter()
                .map(|a| format!("(?:{a})"))
                .collect::<Vec<_>>()
                .join("|"),
        };
        if o.word {
            p = format!(r"\b{{start-half}}(?:{p})\b{{end-half}}");
        }
        let re = RegexBuilder::new(&p)
            .case_insensitive(o.ignore_case)
            .multi_line(true)
            .build()
            .map_err(|e| {
                let msg = e.to_string();
                // The syntax error's last line says what is wrong; the lines
                // before it draw a caret under the pattern.
                let last = msg
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let last = last.trim().trim_start_matches("error: ");
                PatternError {
                    pattern: pattern.clone(),
                    problem: last.to_string(),
                }
            })?;
        Ok(Pattern {
            re,
            prefixes: prefixes(&p, o.ignore_case),
            fold: o.ignore_case,
        })
    }

    /// Matches in `line` (byte ranges).
    pub fn find_all(&self, line: &[u8]) -> Vec<(usize, usize)> {
        self.re
            .find_iter(line)
            .map(|m| (m.start(), m.end()))
            .collect()
    }
}

/// The literals one of which starts every match of `pattern`, when they are
/// a finite set of non-empty byte strings (None otherwise: then nothing can
/// be skipped).
fn prefixes(pattern: &str, ignore_case: bool) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(ignore_case)
        .multi_line(true)
        .build()
        .parse(pattern)
        .ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// Which lines of a recording's output can hold a match, judged from the
/// event lines as stored, before any unescaping or stripping (most of a
/// search's work): a match holds one of the pattern's prefix literals, so a
/// line of output holding none of the bytes picked from them (one per
/// literal, the rarest in the recording's first chunk) has none; and a line
/// holding one is read only when it also holds the printable bytes of one
/// of the literals in their order (with others between: escape sequences,
/// the JSON between events). Most lines of ordinary output hold any one
/// letter; very few hold a word's letters in order.
///
/// Lines here are what a line feed ends: the stripper ends any escape
/// sequence or string at a line feed, so a line can be read alone, from a
/// known state. The bytes looked for are printable ASCII other than the
/// space (which cursor movement also writes): what the stripper makes of a
/// line is its stored bytes in order, less escape sequences and taken-back
/// characters, and JSON leaves printable ASCII as it is (`"`, `\` and `/`
/// keep their byte after a backslash), unless written as `\u00XX`: a line
/// holding such an escape of any of the literals' bytes is always read. A
/// line counts as holding a byte when its stored text does anywhere: in an
/// escape sequence, an input event between its output events, or the JSON
/// around them — more lines are read than need be, never fewer.
#[derive(Debug)]
pub(super) struct Prefilter {
    /// The bytes (one to three).
    bytes: Vec<u8>,
    /// `\u00` followed by the high hex digit of a byte looked for: where a
    /// JSON encoder escaped one (checked no further: rare).
    escaped: Vec<memchr::memmem::Finder<'static>>,
    /// Each literal's printable bytes, in order, each with its other case
    /// (itself without `-i`); empty when there are too many literals.
    in_order: Vec<Vec<[u8; 2]>>,
}

/// Whether `line` holds the bytes of `seq` in order (each as either of its
/// two cases), others between.
fn holds_in_order(seq: &[[u8; 2]], line: &[u8]) -> bool {
    let mut at = 0;
    for &[a, b] in seq {
        let rest = &line[at..];
        let found = if a == b {
            memchr::memchr(a, rest)
        } else {
            memchr::memchr2(a, b, rest)
        };
        match found {
            Some(p) => at += p + 1,
            None => return false,
        }
    }
    true
}

/// More literals than this: lines are not checked for one in order (each
/// would cost a pass over the line).
const MAX_IN_ORDER: usize = 8;

impl Prefilter {
    /// The prefilter for `pattern`, picking bytes by their counts in
    /// `sample`; None when the pattern has no usable literals, or its bytes
    /// are too common for skipping lines to pay.
    pub(super) fn new(pattern: &Pattern, sample: &[u8]) -> Option<Prefilter> {
        let pre = Prefilter::with_limit(pattern, sample, sample.len() / 64)?;
        // Skipping lines costs a few finds per line: it pays only when most
        // lines are skipped (dense hits read most lines anyway, and reading
        // every line is faster than finding which).
        let mut ends = Vec::new();
        termtrail_format::scan::escaped_line_feeds(sample, |e| ends.push(e));
        let mut hot = vec![false; ends.len() + 1];
        pre.mark_lines(sample, &ends, &mut hot);
        let read = hot.iter().filter(|&&h| h).count();
        (read * 4 <= hot.len()).then_some(pre)
    }

    /// [`Prefilter::new`], refusing bytes that occur more than `limit`
    /// times in `sample`.
    pub(super) fn with_limit(pattern: &Pattern, sample: &[u8], limit: usize) -> Option<Prefilter> {
        let lits = pattern.prefixes.as_ref()?;
        let mut count = [0usize; 256];
        for &b in sample {
            count[usize::from(b)] += 1;
        }
        let folded = |b: u8| {
            if pattern.fold && b.is_ascii_alphabetic() {
                count[usize::from(b.to_ascii_lowercase())]
                    + count[usize::from(b.to_ascii_uppercase())]
            } else {
                count[usize::from(b)]
            }
        };
        let class = |b: u8| {
            if pattern.fold {
                b.to_ascii_lowercase()
            } else {
                b
            }
        };
        let mut bytes = Vec::new();
        // Best: one byte (with -i, either case of it) in every literal —
        // the rarest of those; case variants of one word all share one.
        let mut shared: Vec<u8> = lits[0]
            .iter()
            .copied()
            .filter(u8::is_ascii_graphic)
            .map(class)
            .filter(|&c| lits.iter().all(|l| l.iter().any(|&b| class(b) == c)))
            .collect();
        shared.sort_unstable_by_key(|&c| (folded(c), c));
        let mut in_order: Vec<Vec<[u8; 2]>> = lits
            .iter()
            .map(|l| {
                l.iter()
                    .copied()
                    .filter(u8::is_ascii_graphic)
                    .map(|b| {
                        if pattern.fold {
                            [b.to_ascii_lowercase(), b.to_ascii_uppercase()]
                        } else {
                            [b, b]
                        }
                    })
                    .collect()
            })
            .collect();
        in_order.sort_unstable();
        in_order.dedup();
        if in_order.len() > MAX_IN_ORDER || in_order.iter().any(Vec::is_empty) {
            in_order.clear();
        }
        if let Some(&c) = shared.first() {
            bytes.push(c);
        } else {
            // Else the rarest of each literal.
            for lit in lits {
                let b = lit
                    .iter()
                    .copied()
                    .filter(u8::is_ascii_graphic)
                    .min_by_key(|&b| folded(b))?;
                bytes.push(class(b));
            }
        }
        // A common byte costs a find per line; checking the literals in
        // order may then skip most lines anyway (see `Prefilter::new`).
        if in_order.is_empty() && bytes.iter().any(|&b| folded(b) > limit) {
            return None;
        }
        if pattern.fold {
            bytes = bytes
                .iter()
                .flat_map(|b| [b.to_ascii_lowercase(), b.to_ascii_uppercase()])
                .collect();
        }
        bytes.sort_unstable();
        bytes.dedup();
        if bytes.len() > 3 {
            return None;
        }
        let mut highs: Vec<u8> = bytes
            .iter()
            .chain(in_order.iter().flatten().flatten())
            .map(|b| b"0123456789abcdef"[usize::from(b >> 4)])
            .collect();
        highs.sort_unstable();
        highs.dedup();
        let escaped = highs
            .into_iter()
            .map(|h| memchr::memmem::Finder::new(&[b'\\', b'u', b'0', b'0', h]).into_owned())
            .collect();
        Some(Prefilter {
            bytes,
            escaped,
            in_order,
        })
    }

    /// Marks in `hot` every line of `text` that holds a picked byte (or a
    /// `\u00` escape that may be one). Line `k` is `text[ends[k - 1]..ends[k]]`
    /// (from 0, to the end for the last): `hot` has `ends.len() + 1` entries.
    ///
    /// Once a line is marked the search goes on at the next line, so a
    /// common byte costs one find per line, not one per occurrence.
    pub(super) fn mark_lines(&self, text: &[u8], ends: &[usize], hot: &mut [bool]) {
        let find = |from: usize| -> Option<usize> {
            let rest = &text[from..];
            let at = match *self.bytes.as_slice() {
                [a] => memchr::memchr(a, rest),
                [a, b] => memchr::memchr2(a, b, rest),
                [a, b, c] => memchr::memchr3(a, b, c, rest),
                _ => Some(0),
            };
            at.map(|n| from + n)
        };
        // Lines and finds both go forward.
        let (mut from, mut k) = (0, 0);
        while from < text.len()
            && let Some(q) = find(from)
        {
            while k < ends.len() && ends[k] <= q {
                k += 1;
            }
            let line =
                &text[if k == 0 { 0 } else { ends[k - 1] }..ends.get(k).map_or(text.len(), |&e| e)];
            if self.in_order.is_empty() || self.in_order.iter().any(|seq| holds_in_order(seq, line))
            {
                hot[k] = true;
            }
            match ends.get(k) {
                Some(&next) => from = next,
                None => break,
            }
        }
        for f in &self.escaped {
            for q in f.find_iter(text) {
                hot[ends.partition_point(|&e| e <= q)] = true;
            }
        }
    }
}
