//! The proxy's environments file: which environment (`dev`, `production`,
//! …) a runtime belongs to, by ARN pattern.
//!
//! One rule a line, `PATTERN ENVIRONMENT`, separated by spaces or tabs; `*`
//! in a pattern matches any run of characters (`/` and `:` included, none
//! at all too), every other character only itself. Blank lines and lines
//! starting with `#` are ignored. The first rule whose pattern matches the
//! whole runtime ARN (or name) wins:
//!
//! ```text
//! # runtime ARN pattern                                            environment
//! arn:aws:bedrock-agentcore:*:111111111111:runtime/*               production
//! arn:aws:bedrock-agentcore:*:222222222222:runtime/*-staging-*     staging
//! arn:aws:bedrock-agentcore:*:222222222222:runtime/*               dev
//! ```

use std::path::{Path, PathBuf};

use super::error::EnvironmentsError;

/// The rules of an environments file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environments {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: String,
    environment: String,
}

impl Environments {
    /// Reads an environments file (format: the module's documentation).
    pub fn load(path: &Path) -> Result<Environments, EnvironmentsError> {
        let text = std::fs::read_to_string(path).map_err(|source| EnvironmentsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Environments::parse(path, &text)
    }

    /// Parses the text of an environments file; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Environments, EnvironmentsError> {
        let syntax = |line: usize, reason: String| EnvironmentsError::Syntax {
            path: PathBuf::from(path),
            line,
            reason,
        };
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            match fields[..] {
                [pattern, environment] => rules.push(Rule {
                    pattern: pattern.to_string(),
                    environment: environment.to_string(),
                }),
                [_] => {
                    return Err(syntax(
                        i + 1,
                        "expected PATTERN ENVIRONMENT, found only a pattern".to_string(),
                    ));
                }
                _ => {
                    return Err(syntax(
                        i + 1,
                        format!(
                            "expected PATTERN ENVIRONMENT, found {} fields (patterns and names have no spaces)",
                            fields.len()
                        ),
                    ));
                }
            }
        }
        Ok(Environments { rules })
    }

    /// The environment of the first rule matching `runtime`, if any.
    pub fn environment_of(&self, runtime: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| glob_matches(&r.pattern, runtime))
            .map(|r| r.environment.as_str())
    }

    /// How many rules the file has.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the file has no rules (nothing gets an environment).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Whether `pattern` (with `*` matching any run of characters) matches all
/// of `text`. Linear backtracking: on a mismatch, the last `*` takes one
/// more character.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_strings() {
        assert!(glob_matches("abc", "abc"));
        assert!(!glob_matches("abc", "abcd"));
        assert!(!glob_matches("abcd", "abc"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*", "arn:aws:x/y"));
        assert!(glob_matches("a*c", "abbbc"));
        assert!(glob_matches("a*c", "ac"));
        assert!(!glob_matches("a*c", "abcd"));
        assert!(glob_matches("*-staging-*", "runtime/shop-staging-1"));
        assert!(glob_matches("a*b*c", "a-b-b-c"));
        assert!(!glob_matches("a*b*c", "a-c-b"));
        assert!(glob_matches("**x", "yyx"));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let text = "\
# comment
arn:aws:*:111:runtime/*            production

arn:aws:*:222:runtime/*-staging-*  staging
arn:aws:*:222:runtime/*            dev
";
        let env = Environments::parse(Path::new("envs"), text).unwrap();
        assert_eq!(env.len(), 3);
        assert_eq!(
            env.environment_of("arn:aws:x:111:runtime/a"),
            Some("production")
        );
        assert_eq!(
            env.environment_of("arn:aws:x:222:runtime/shop-staging-2"),
            Some("staging")
        );
        assert_eq!(
            env.environment_of("arn:aws:x:222:runtime/shop"),
            Some("dev")
        );
        assert_eq!(env.environment_of("arn:aws:x:333:runtime/shop"), None);
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        let e = Environments::parse(Path::new("envs.txt"), "# ok\na b\nlonely\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "envs.txt:3: expected PATTERN ENVIRONMENT, found only a pattern"
        );
        let e = Environments::parse(Path::new("envs.txt"), "a b c\n").unwrap_err();
        assert!(e.to_string().starts_with("envs.txt:1: "), "{e}");
        let e = Environments::load(Path::new("/nonexistent/envs")).unwrap_err();
        assert!(matches!(e, EnvironmentsError::Read { .. }), "{e}");
    }
}
