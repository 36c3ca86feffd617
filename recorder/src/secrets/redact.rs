//! Output redaction: rules ([`Rule`], a set of them is a [`Redaction`])
//! that replace secrets in recorded output before it is written, each
//! match by `[REDACTED:<rule>]` followed by a marker event naming the rule
//! (never the secret). The [`Redactor`] is the streaming stage the
//! recording engine runs events through: it holds back the unfinished last
//! line of output (bounded in size and age) so that a secret split across
//! output frames is still caught, and keeps each frame's timestamp.
//!
//! Only recorded output is redacted: what the client sees is not changed,
//! and input is not redacted (input typed at password prompts is withheld
//! by the echo-off and prompt rules instead).

use std::sync::{Arc, LazyLock};

use regex::bytes::Regex;
use termtrail_format::event::{Event, EventData, Micros};

use super::SecretsError;

/// A held-back unfinished line is released once its first byte is this old
/// (the engine's tick checks): a secret whose line pauses longer than this
/// mid-way may be missed.
pub const HOLD: Micros = 1_000_000;
/// An unfinished line longer than this is released but for its last
/// [`KEEP`] bytes (so a rule's match up to [`KEEP`] bytes long is still
/// seen whole).
const MAX_HOLD: usize = 8 << 10;
/// What an over-long unfinished line keeps held back.
const KEEP: usize = 1 << 10;
/// A private-key block without an END line after this many bytes is taken
/// as unterminated: what follows is recorded again.
const MAX_BLOCK: usize = 64 << 10;

/// The name of the built-in private-key block rule.
pub const PRIVATE_KEY: &str = "private-key";

/// The default line rules: (name, pattern). A group named `secret` is the
/// part replaced (the key's name stays readable).
const DEFAULTS: &[(&str, &str)] = &[
    (
        "aws-secret-key",
        r#"(?i)(?:aws_?)?secret_?access_?key["']?\s*[:=]\s*["']?(?P<secret>[A-Za-z0-9/+=]{16,})"#,
    ),
    (
        "bearer-token",
        r#"(?i)authorization["']?\s*[:=]\s*["']?bearer\s+(?P<secret>[A-Za-z0-9\-._~+/]+=*)"#,
    ),
];

static PEM_BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----").expect("valid pattern")
});
/// Where the first complete line after `pos` (and before `limit`) starts
/// that a private-key block cannot hold: only base64 (`A-Za-z0-9+/=`),
/// `Name: value` headers (`Proc-Type: 4,ENCRYPTED`) and blank lines can.
fn first_foreign_line(buf: &[u8], pos: usize, limit: usize, at_line: bool) -> Option<usize> {
    if pos >= limit {
        return None;
    }
    // Unless `pos` starts a line, the line it is in is the BEGIN line.
    let mut start = if at_line {
        pos
    } else {
        pos + memchr::memchr(b'\n', &buf[pos..limit])? + 1
    };
    while start < limit {
        let len = memchr::memchr(b'\n', &buf[start..limit])?;
        let line = &buf[start..start + len];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !key_block_line(line) {
            return Some(start);
        }
        start += len + 1;
    }
    None
}

/// Whether a private-key block can hold `line`.
fn key_block_line(line: &[u8]) -> bool {
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || b"+/=".contains(b);
    if line.iter().all(base64) {
        return true;
    }
    // `Name: value`, the name letters, digits and dashes.
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => {
            line[..colon]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && line.get(colon + 1) == Some(&b' ')
        }
        _ => false,
    }
}

static PEM_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----").expect("valid pattern")
});

/// One redaction rule: a name and a regular expression over output bytes.
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    regex: Regex,
    /// The `secret` capture group, when the pattern has one: only it is
    /// replaced.
    group: Option<usize>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Rule {
    /// A rule named `name` (letters, digits, `-`, `_`, `.`) matching
    /// `pattern` (the `regex` crate's syntax, over bytes). When the pattern
    /// has a group named `secret`, only that group is replaced.
    pub fn new(name: &str, pattern: &str) -> Result<Rule, SecretsError> {
        const FLAG: &str = "--redact";
        if !valid_name(name) {
            return Err(SecretsError::Spec {
                flag: FLAG,
                spec: format!("{name}={pattern}"),
            });
        }
        let regex = Regex::new(pattern).map_err(|e| SecretsError::Regex {
            flag: FLAG,
            name: name.to_string(),
            source: Box::new(e),
        })?;
        if regex.is_match(b"") {
            return Err(SecretsError::Empty {
                flag: FLAG,
                name: name.to_string(),
            });
        }
        let group = regex.capture_names().position(|n| n == Some("secret"));
        Ok(Rule {
            name: name.to_string(),
            regex,
            group,
        })
    }

    /// Parses `NAME=REGEX` (the value of `--redact`).
    pub fn parse(spec: &str) -> Result<Rule, SecretsError> {
        match spec.split_once('=') {
            Some((name, pattern)) if valid_name(name) && !pattern.is_empty() => {
                Rule::new(name, pattern)
            }
            _ => Err(SecretsError::Spec {
                flag: "--redact",
                spec: spec.to_string(),
            }),
        }
    }

    /// The rule's name (in `[REDACTED:<name>]` and the marker).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls `f` with each match in `hay`, in order: the whole match's
    /// range, and the range to replace.
    fn each(&self, hay: &[u8], mut f: impl FnMut((usize, usize), (usize, usize))) {
        match self.group {
            None => {
                for m in self.regex.find_iter(hay) {
                    f((m.start(), m.end()), (m.start(), m.end()));
                }
            }
            Some(g) => {
                for c in self.regex.captures_iter(hay) {
                    let (Some(whole), Some(part)) = (c.get(0), c.get(g)) else {
                        continue;
                    };
                    if !part.is_empty() {
                        f((whole.start(), whole.end()), (part.start(), part.end()));
                    }
                }
            }
        }
    }
}

/// The built-in line rules.
fn default_rules() -> Vec<Rule> {
    DEFAULTS
        .iter()
        .map(|(name, pattern)| Rule::new(name, pattern).expect("valid default rule"))
        .collect()
}

struct Rules {
    line: Vec<Rule>,
    /// The private-key block rule (a default).
    pem: bool,
}

impl Rules {
    fn name(&self, rule: usize) -> &str {
        self.line.get(rule).map_or(PRIVATE_KEY, |r| r.name())
    }
}

/// A set of redaction rules, cheap to clone: what a source is configured
/// with. [`Redaction::none`] (the default) redacts nothing.
#[derive(Clone, Default)]
pub struct Redaction(Option<Arc<Rules>>);

impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Redaction").field(&self.names()).finish()
    }
}

impl Redaction {
    /// No redaction.
    pub fn none() -> Redaction {
        Redaction(None)
    }

    /// The default rules: `aws-secret-key`, `bearer-token`, `private-key`.
    pub fn defaults() -> Redaction {
        Redaction::new(true, Vec::new())
    }

    /// The default rules (when `defaults`) and `extra`.
    pub fn new(defaults: bool, extra: Vec<Rule>) -> Redaction {
        let mut line = if defaults {
            default_rules()
        } else {
            Vec::new()
        };
        line.extend(extra);
        if line.is_empty() && !defaults {
            return Redaction::none();
        }
        Redaction(Some(Arc::new(Rules {
            line,
            pem: defaults,
        })))
    }

    /// Whether any rule is configured.
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// The rules' names.
    pub fn names(&self) -> Vec<&str> {
        let Some(rules) = &self.0 else {
            return Vec::new();
        };
        let mut names: Vec<&str> = rules.line.iter().map(Rule::name).collect();
        if rules.pem {
            names.push(PRIVATE_KEY);
        }
        names
    }

    /// A streaming redactor for one recording (None without rules).
    pub fn redactor(&self) -> Option<Redactor> {
        let rules = self.0.clone()?;
        Some(Redactor {
            rules,
            buf: Vec::new(),
            pieces: Vec::new(),
            block: None,
            spans: Vec::new(),
        })
    }
}

/// A part of the held-back output to replace.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Index into the line rules; past them, the private-key rule.
    rule: usize,
    /// Whether the replacement text (and a marker) goes at `start`: not for
    /// the continuation of a private-key block begun in earlier output.
    insert: bool,
}

/// The redaction stage of one recording: events go in with
/// [`Redactor::push`] and come out, redacted, into a vector, in order and
/// with their timestamps. Output is held back from the start of the frame
/// its unfinished last line starts in (a frame that ends a line is written
/// at once); [`Redactor::tick`] releases what is held once it is [`HOLD`]
/// old, and any other event, or [`Redactor::flush`], releases everything
/// first.
pub struct Redactor {
    rules: Arc<Rules>,
    /// Output held back (the unfinished last line).
    buf: Vec<u8>,
    /// Where each output frame in `buf` starts, and its time.
    pieces: Vec<(usize, Micros)>,
    /// Inside a private-key block: how many bytes it has suppressed.
    block: Option<usize>,
    /// Scratch: what to replace in the part being released.
    spans: Vec<Span>,
}

impl Redactor {
    /// Takes the next event; what is ready goes to `out`.
    pub fn push(&mut self, event: Event, out: &mut Vec<Event>) {
        match event.data {
            EventData::Output(bytes) => self.output(event.time, bytes, out),
            data => {
                self.flush(out);
                out.push(Event::new(event.time, data));
            }
        }
    }

    /// Releases the held-back line if it is [`HOLD`] old at `now`.
    pub fn tick(&mut self, now: Micros, out: &mut Vec<Event>) {
        if let Some(&(_, first)) = self.pieces.first()
            && now.saturating_sub(first) >= HOLD
        {
            self.flush(out);
        }
    }

    /// Releases everything held back (before a seal).
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        if !self.buf.is_empty() {
            self.release(self.buf.len(), true, out);
        }
    }

    /// Bytes of output held back.
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    fn output(&mut self, time: Micros, bytes: Vec<u8>, out: &mut Vec<Event>) {
        if bytes.is_empty() {
            return;
        }
        if self.buf.is_empty() {
            self.buf = bytes;
            self.pieces.clear();
            self.pieces.push((0, time));
        } else {
            self.pieces.push((self.buf.len(), time));
            self.buf.extend_from_slice(&bytes);
        }
        let line_end = memchr::memrchr(b'\n', &self.buf).map_or(0, |i| i + 1);
        let end = if self.buf.len() - line_end > MAX_HOLD {
            char_floor(&self.buf, self.buf.len() - KEEP)
        } else if line_end == self.buf.len() {
            line_end
        } else {
            // The frame the unfinished line starts in is held whole, so
            // frames are written as they came (no more events than frames).
            self.pieces
                .iter()
                .rev()
                .map(|&(start, _)| start)
                .find(|&start| start <= line_end)
                .unwrap_or(0)
        };
        if end > 0 {
            // A match that keeps growing is held, but not without bound.
            let forced = self.buf.len() > 4 * MAX_HOLD;
            self.release(end, forced, out);
        }
    }

    /// Writes out `buf[..end]` (or a little more or less, so that no match
    /// is cut), redacted, and keeps the rest held back.
    fn release(&mut self, end: usize, forced: bool, out: &mut Vec<Event>) {
        let end = self.find(end, forced);
        if end == 0 {
            return;
        }
        if self.spans.is_empty() && self.pieces.len() == 1 {
            // The common case: one frame, nothing to replace.
            let rest = self.buf.split_off(end);
            let time = self.pieces[0].1;
            out.push(Event::new(
                time,
                EventData::Output(std::mem::replace(&mut self.buf, rest)),
            ));
            if self.buf.is_empty() {
                self.pieces.clear();
            } else {
                self.pieces[0].0 = 0;
            }
            return;
        }
        self.emit(end, out);
        self.buf.drain(..end);
        if self.buf.is_empty() {
            self.pieces.clear();
            return;
        }
        // The frame `end` falls in (or starts at) is the first kept.
        let first = self
            .pieces
            .iter()
            .rposition(|&(start, _)| start <= end)
            .unwrap_or(0);
        self.pieces.drain(..first);
        for piece in &mut self.pieces {
            piece.0 = piece.0.saturating_sub(end);
        }
    }

    /// Fills `spans` with what to replace when releasing up to `end`, and
    /// returns where the release really ends: past a match that starts
    /// before `end`, or (unless `forced`) before a match that reaches the
    /// end of what has arrived, as it may still grow. Whole matches decide
    /// (not just the part replaced), so a key's name is never written
    /// without its value.
    fn find(&mut self, mut end: usize, forced: bool) -> usize {
        self.spans.clear();
        let buf = &self.buf;
        let rules = Arc::clone(&self.rules);
        // (whole match, what to replace)
        let mut found: Vec<((usize, usize), Span)> = Vec::new();
        for (i, rule) in rules.line.iter().enumerate() {
            rule.each(buf, |whole, (start, stop)| {
                let span = Span {
                    start,
                    end: stop,
                    rule: i,
                    insert: true,
                };
                found.push((whole, span));
            });
        }
        if !forced {
            for &((start, stop), _) in &found {
                if start < end && stop == buf.len() {
                    end = end.min(start);
                }
            }
        }
        found.retain(|&((start, _), _)| start < end);
        end = found
            .iter()
            .map(|&((_, stop), _)| stop)
            .fold(end, usize::max);
        let mut found: Vec<Span> = found.into_iter().map(|(_, span)| span).collect();
        found.sort_by_key(|s| s.start);
        if rules.pem {
            end = self.blocks(end);
        }
        // Blocks first; then line matches that overlap no kept span.
        for s in found {
            if self
                .spans
                .iter()
                .all(|k| s.end <= k.start || s.start >= k.end)
            {
                self.spans.push(s);
            }
        }
        self.spans.sort_by_key(|s| s.start);
        end
    }

    /// Adds the private-key blocks in `buf[..end]` to `spans` (their END
    /// line may extend `end`) and returns the end.
    fn blocks(&mut self, mut end: usize) -> usize {
        let pem = self.rules.line.len();
        let buf = &self.buf;
        let mut pos = 0;
        // The open block: where its span starts, and whether it began here.
        let mut open = self.block.map(|_| (0, false));
        loop {
            match open {
                Some((start, insert)) => match PEM_END.find_at(buf, pos) {
                    // A line no key block holds (a prompt, command output)
                    // ends the block there: a BEGIN line alone (typed, or
                    // echoed) must not hide what follows.
                    m if let Some(at) = first_foreign_line(
                        buf,
                        pos,
                        m.as_ref().map_or(end, |m| m.start().min(end)),
                        // A block carried over starts here at a line.
                        !insert && pos == 0,
                    ) =>
                    {
                        self.spans.push(Span {
                            start,
                            end: at,
                            rule: pem,
                            insert,
                        });
                        pos = at;
                        open = None;
                        self.block = None;
                    }
                    Some(m) if m.start() < end => {
                        self.spans.push(Span {
                            start,
                            end: m.end(),
                            rule: pem,
                            insert,
                        });
                        end = end.max(m.end());
                        pos = m.end();
                        open = None;
                        self.block = None;
                    }
                    _ => {
                        self.spans.push(Span {
                            start,
                            end,
                            rule: pem,
                            insert,
                        });
                        let n = self.block.unwrap_or(0) + (end - start);
                        self.block = (n <= MAX_BLOCK).then_some(n);
                        break;
                    }
                },
                None => match PEM_BEGIN.find_at(buf, pos) {
                    Some(m) if m.start() < end => {
                        open = Some((m.start(), true));
                        self.block = Some(0);
                        pos = m.end();
                    }
                    _ => break,
                },
            }
        }
        end
    }

    /// Emits `buf[..end]` frame by frame with `spans` replaced, each
    /// replacement followed by its marker at the frame's time.
    fn emit(&self, end: usize, out: &mut Vec<Event>) {
        let mut si = 0;
        for (k, &(a, time)) in self.pieces.iter().enumerate() {
            if a >= end {
                break;
            }
            let b = self
                .pieces
                .get(k + 1)
                .map_or(self.buf.len(), |p| p.0)
                .min(end);
            let mut bytes = Vec::with_capacity(b - a);
            let mut markers = Vec::new();
            let mut pos = a;
            while pos < b {
                while si < self.spans.len() && self.spans[si].end <= pos {
                    si += 1;
                }
                match self.spans.get(si) {
                    Some(s) if s.start < b => {
                        if s.start >= pos {
                            bytes.extend_from_slice(&self.buf[pos..s.start]);
                            if s.insert {
                                let name = self.rules.name(s.rule);
                                bytes.extend_from_slice(format!("[REDACTED:{name}]").as_bytes());
                                markers.push(format!("redacted: {name}"));
                            }
                        }
                        pos = s.end.min(b);
                    }
                    _ => {
                        bytes.extend_from_slice(&self.buf[pos..b]);
                        pos = b;
                    }
                }
            }
            if !bytes.is_empty() {
                out.push(Event::new(time, EventData::Output(bytes)));
            }
            out.extend(
                markers
                    .into_iter()
                    .map(|m| Event::new(time, EventData::Marker(m))),
            );
        }
    }
}

/// `i`, moved back to the start of the UTF-8 character it falls in.
fn char_floor(buf: &[u8], mut i: usize) -> usize {
    for _ in 0..3 {
        if i > 0 && i < buf.len() && (0x80..0xC0).contains(&buf[i]) {
            i -= 1;
        }
    }
    i
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
