//! Secrets kept out of recordings: output redaction rules applied by the
//! recording engine before events are written ([`redact`]), and the
//! password-prompt rule of the proxy, which withholds input typed after a
//! prompt it saw in the output ([`prompt`]). The echo-off rule of sources
//! that own their PTY lives with them (`rec`, the host's PTY backend).

pub mod prompt;
pub mod redact;

pub use prompt::{Filtered, PromptRules, PromptWatch};
pub use redact::{Redaction, Redactor, Rule};

/// Why a secrets rule (`--redact`, `--secret-prompt`) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// `--redact` takes `NAME=REGEX`.
    #[error("{flag} {spec:?}: expected NAME=REGEX (NAME: letters, digits, '-', '_', '.')")]
    Spec {
        /// The flag.
        flag: &'static str,
        /// What was given.
        spec: String,
    },
    /// The regular expression does not compile.
    #[error("{flag} {name}: bad regular expression: {source}")]
    Regex {
        /// The flag.
        flag: &'static str,
        /// The rule's name (or the pattern, for prompts).
        name: String,
        /// The regex crate's reason.
        source: Box<regex::Error>,
    },
    /// The regular expression matches the empty string, so it would match
    /// everywhere.
    #[error("{flag} {name}: the regular expression matches the empty string")]
    Empty {
        /// The flag.
        flag: &'static str,
        /// The rule's name (or the pattern, for prompts).
        name: String,
    },
}
