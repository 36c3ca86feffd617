//! The password-prompt rule of the proxy, which cannot see the remote
//! terminal's echo flag: after output whose last line looks like a password
//! prompt ([`PromptRules`]), input is withheld from the recording (it is
//! still sent on) up to and including the next CR or LF; then one marker
//! says how many bytes were withheld and after which prompt
//! ([`PromptWatch`]).

use std::sync::Arc;

use regex::bytes::Regex;

use super::SecretsError;

/// The default prompt patterns, matched (case-insensitive) against the last
/// line of output: each must stand at the end of it, before optional
/// spaces, so that `grep password: file` output (which ends with a line
/// break) does not trigger them.
pub const DEFAULT_PROMPTS: &[&str] = &[
    r"(?i)password:\s*$",
    r"(?i)password for [^\r\n]*:\s*$",
    r"(?i)passphrase[^\r\n]*:\s*$",
    r"(?i)\bPIN\b[^\r\n]*:\s*$",
    r"(?i)token:\s*$",
];

/// The last line is kept up to this many bytes (its end).
const LINE: usize = 1024;
/// The prompt text in the marker is cut to this many characters.
const SHOWN: usize = 80;

/// The patterns that count as a password prompt; cheap to clone.
/// [`PromptRules::none`] (the default) never withholds.
#[derive(Clone, Default)]
pub struct PromptRules(Option<Arc<Vec<Regex>>>);

impl std::fmt::Debug for PromptRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let patterns: Vec<&str> = self
            .0
            .iter()
            .flat_map(|r| r.iter().map(Regex::as_str))
            .collect();
        f.debug_tuple("PromptRules").field(&patterns).finish()
    }
}

impl PromptRules {
    /// No prompt rule.
    pub fn none() -> PromptRules {
        PromptRules(None)
    }

    /// The default patterns ([`DEFAULT_PROMPTS`]).
    pub fn defaults() -> PromptRules {
        PromptRules::new(true, &[]).expect("valid default prompts")
    }

    /// The defaults (when `defaults`) and `extra` patterns (the `regex`
    /// crate's syntax, matched against the last line of output with escape
    /// sequences removed; anchor with `$` to require the end of the line).
    pub fn new(defaults: bool, extra: &[String]) -> Result<PromptRules, SecretsError> {
        let builtin = if defaults { DEFAULT_PROMPTS } else { &[] };
        let mut all = Vec::new();
        for p in builtin
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
        {
            let re = Regex::new(p).map_err(|e| SecretsError::Regex {
                flag: "--secret-prompt",
                name: format!("{p:?}"),
                source: Box::new(e),
            })?;
            if re.is_match(b"") {
                return Err(SecretsError::Empty {
                    flag: "--secret-prompt",
                    name: format!("{p:?}"),
                });
            }
            all.push(re);
        }
        Ok(if all.is_empty() {
            PromptRules::none()
        } else {
            PromptRules(Some(Arc::new(all)))
        })
    }

    /// Whether any pattern is configured.
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// A watch for one shell.
    pub fn watch(&self) -> PromptWatch {
        PromptWatch {
            rules: self.clone(),
            line: Vec::new(),
            check: false,
            withholding: None,
        }
    }

    /// The prompt `line` shows, if any (its text, for the marker).
    fn prompt_in(&self, line: &[u8]) -> Option<String> {
        let rules = self.0.as_ref()?;
        let text = strip_escapes(line);
        rules.iter().any(|r| r.is_match(&text)).then(|| {
            let s = String::from_utf8_lossy(&text);
            let s = s.trim();
            let mut shown: String = s.chars().take(SHOWN).collect();
            if shown.len() < s.len() {
                shown.push('…');
            }
            shown
        })
    }
}

/// What to record of a piece of input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// The bytes to record (possibly empty).
    pub record: Vec<u8>,
    /// A marker to record before them: a withheld answer ended.
    pub marker: Option<String>,
}

/// One shell's prompt state: fed the output the client sees and the input
/// it sends, it says what of the input may be recorded.
pub struct PromptWatch {
    rules: PromptRules,
    /// The end of the last line of output so far.
    line: Vec<u8>,
    /// The last output may end with a prompt: the rules are matched
    /// against `line` when input comes (not on every piece of output: a
    /// flood of output through the proxy would match them thousands of
    /// times a second for nothing).
    check: bool,
    /// Withholding an answer: bytes so far, and the prompt.
    withholding: Option<(usize, String)>,
}

impl PromptWatch {
    /// Output the client sees (after any replay de-duplication).
    pub fn output(&mut self, bytes: &[u8]) {
        if !self.rules.is_active() || bytes.is_empty() {
            return;
        }
        // Only the last LINE bytes of the line count: a long piece of output
        // (a flood through the proxy) is searched for its last line break
        // with memchr and never copied whole.
        fn keep(b: &[u8]) -> &[u8] {
            &b[b.len().saturating_sub(LINE)..]
        }
        match memchr::memrchr2(b'\n', b'\r', bytes) {
            Some(i) => {
                self.line.clear();
                self.line.extend_from_slice(keep(&bytes[i + 1..]));
            }
            None => self.line.extend_from_slice(keep(bytes)),
        }
        if self.line.len() > LINE {
            let cut = self.line.len() - LINE;
            self.line.drain(..cut);
        }
        // Output while an answer is withheld (a bell, a redraw) does not
        // arm for the input after it: only output after the answer does.
        self.check = self.withholding.is_none();
    }

    /// Input the client sent: what of it to record.
    pub fn input(&mut self, bytes: &[u8]) -> Filtered {
        if bytes.is_empty() {
            return Filtered::default();
        }
        // Input is taken as an answer when the output before it (the line
        // it ends with, as it is now) is a prompt.
        if self.withholding.is_none()
            && std::mem::take(&mut self.check)
            && let Some(prompt) = self.rules.prompt_in(&self.line)
        {
            self.withholding = Some((0, prompt));
        }
        let Some((n, prompt)) = &mut self.withholding else {
            return Filtered {
                record: bytes.to_vec(),
                marker: None,
            };
        };
        match bytes.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(i) => {
                let withheld = *n + i + 1;
                let marker = format!(
                    "input withheld: {withheld} bytes after a password prompt ({prompt:?})"
                );
                self.withholding = None;
                Filtered {
                    record: bytes[i + 1..].to_vec(),
                    marker: Some(marker),
                }
            }
            None => {
                *n += bytes.len();
                Filtered::default()
            }
        }
    }

    /// Whether input is being withheld now.
    pub fn withholding(&self) -> bool {
        self.withholding.is_some()
    }

    /// The shell ended: the marker for an answer still being withheld (no
    /// line break came), if there is one.
    pub fn finish(&mut self) -> Option<String> {
        let (n, prompt) = self.withholding.take()?;
        Some(format!(
            "input withheld: {n} bytes after a password prompt ({prompt:?}; no line break before the end)"
        ))
    }
}

/// `line` without terminal escape sequences (CSI, OSC, two-byte escapes)
/// and other control characters but tab.
fn strip_escapes(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b != 0x1b {
            if b >= 0x20 || b == b'\t' {
                out.push(b);
            }
            i += 1;
            continue;
        }
        i += 1;
        match line.get(i) {
            // CSI: parameters and intermediates, then a final byte.
            Some(b'[') => {
                i += 1;
                while i < line.len() && !(0x40..=0x7e).contains(&line[i]) {
                    i += 1;
                }
                i += 1;
            }
            // OSC: up to BEL or ESC \.
            Some(b']') => {
                while i < line.len() && line[i] != 0x07 && line[i] != 0x1b {
                    i += 1;
                }
                i += if line.get(i) == Some(&0x1b) { 2 } else { 1 };
            }
            Some(_) => i += 1,
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> PromptWatch {
        PromptRules::defaults().watch()
    }

    #[test]
    fn defaults_match_prompts_at_the_end_of_the_last_line() {
        let r = PromptRules::defaults();
        for p in [
            "Password: ",
            "password:",
            "[sudo] password for x: ",
            "Enter passphrase for key '/root/.ssh/id_rsa': ",
            "Enter PIN for 'YubiKey': ",
            "Token: ",
            "\x1b[1mPassword:\x1b[0m ",
        ] {
            assert!(r.prompt_in(p.as_bytes()).is_some(), "{p:?}");
        }
        for p in [
            "config.ini: password: hunter2",
            "tt> ",
            "Password",
            "spinning: ",
            "the password for x is weird",
        ] {
            assert!(r.prompt_in(p.as_bytes()).is_none(), "{p:?}");
        }
    }

    #[test]
    fn grep_output_ending_with_a_line_break_does_not_arm() {
        let mut w = watch();
        w.output(b"app.conf:password: hunter2\r\napp.conf:db_password:\r\n");
        w.output(b"tt> ");
        assert_eq!(w.input(b"ls\r").record, b"ls\r");
    }

    #[test]
    fn a_prompt_after_a_flood_of_output_arms_and_a_line_break_disarms() {
        // Output longer than the line kept, with and without line breaks:
        // what counts is the end of the last line, however it came.
        let flood = vec![b'x'; 3 * LINE + 7];
        let mut w = watch();
        w.output(&flood);
        w.output(b"\r\nPassword: ");
        assert!(
            w.input(b"s3cret").record.is_empty(),
            "armed after the flood"
        );
        let mut w = watch();
        let mut long = flood.clone();
        long.extend_from_slice(b"Password: ");
        w.output(&long);
        w.output(&flood[..10]);
        assert_eq!(
            w.input(b"ls\r").record,
            b"ls\r",
            "the prompt was not the end"
        );
        let mut w = watch();
        w.output(b"Password: ");
        w.output(&flood);
        w.output(b"\r\n");
        assert_eq!(w.input(b"ls\r").record, b"ls\r", "a line break disarms");
    }

    #[test]
    fn the_answer_is_withheld_up_to_and_including_the_line_break() {
        let mut w = watch();
        w.output(b"tt> read -s -p 'Password: ' PW\r\n");
        w.output(b"Pass");
        w.output(b"word: ");
        assert_eq!(w.input(b"hun"), Filtered::default());
        assert!(w.withholding());
        // Output in between (e.g. a bell) does not end withholding.
        w.output(b"\x07");
        let f = w.input(b"ter2\recho done\r");
        assert_eq!(f.record, b"echo done\r");
        assert_eq!(
            f.marker.as_deref(),
            Some("input withheld: 8 bytes after a password prompt (\"Password:\")")
        );
        assert!(!w.withholding());
        assert_eq!(w.input(b"ls\r").record, b"ls\r", "not armed any more");
    }

    #[test]
    fn an_answer_without_a_line_break_is_counted_at_the_end() {
        let mut w = watch();
        assert_eq!(w.finish(), None);
        w.output(b"Enter PIN for 'card': ");
        assert!(w.input(b"12\x03").record.is_empty());
        assert_eq!(
            w.finish().as_deref(),
            Some(
                "input withheld: 3 bytes after a password prompt (\"Enter PIN for 'card':\"; no line break before the end)"
            )
        );
        assert!(!w.withholding());
    }

    #[test]
    fn output_after_the_prompt_disarms_it() {
        let mut w = watch();
        w.output(b"Password: ");
        w.output(b"\r\nSorry.\r\ntt> ");
        assert_eq!(w.input(b"x").record, b"x");
    }

    #[test]
    fn extra_patterns_and_no_defaults() {
        let r = PromptRules::new(false, &["(?i)secret code\\? *$".into()]).unwrap();
        assert!(r.prompt_in(b"Secret code? ").is_some());
        assert!(r.prompt_in(b"Password: ").is_none());
        assert!(!PromptRules::new(false, &[]).unwrap().is_active());
        assert!(matches!(
            PromptRules::new(true, &["(".into()]),
            Err(SecretsError::Regex { .. })
        ));
        assert!(matches!(
            PromptRules::new(true, &["x*".into()]),
            Err(SecretsError::Empty { .. })
        ));
    }

    #[test]
    fn a_long_prompt_is_cut_in_the_marker() {
        let r = PromptRules::defaults();
        let line = format!("{} password for x: ", "a".repeat(200));
        let shown = r.prompt_in(line.as_bytes()).unwrap();
        assert_eq!(shown.chars().count(), SHOWN + 1);
    }
}
