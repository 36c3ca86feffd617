//! What goes wrong loading a policy, a schema or an environments file:
//! [`PolicyError`] and [`EnvironmentsError`], each naming the file and,
//! where there is one, the line and column ([`Problem`]).

use std::fmt;
use std::path::PathBuf;

/// One problem found in a file, at a place when the source says where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line and column (in characters), when known.
    pub at: Option<(usize, usize)>,
    /// What is wrong, in Cedar's words where Cedar found it.
    pub message: String,
}

impl Problem {
    /// A problem at a byte offset of `src` (clamped to its length).
    pub(crate) fn at_offset(src: &str, offset: usize, message: String) -> Problem {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        Problem {
            at: Some((line, col)),
            message,
        }
    }

    /// A problem with no place in the file.
    pub(crate) fn whole_file(message: String) -> Problem {
        Problem { at: None, message }
    }
}

/// `file:line:col: message` lines, one per problem (`file: message` for a
/// problem without a place).
pub(crate) struct Listing<'a> {
    pub(crate) path: &'a std::path::Path,
    pub(crate) problems: &'a [Problem],
}

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.at {
                Some((line, col)) => {
                    write!(f, "{}:{line}:{col}: {}", self.path.display(), p.message)?
                }
                None => write!(f, "{}: {}", self.path.display(), p.message)?,
            }
        }
        Ok(())
    }
}

/// Why a policy (with its schema) could not be loaded. Every variant names
/// the file; its `Display` is one `file:line:col: reason` line per problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy or schema file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy file is not valid Cedar.
    #[error("{}", Listing { path, problems })]
    Syntax {
        /// The policy file.
        path: PathBuf,
        /// Every syntax error Cedar reported.
        problems: Vec<Problem>,
    },
    /// The policy file uses something termtrail does not take: a template
    /// (`?principal`, `?resource`) or two policies with the same `@id`.
    #[error("{}", Listing { path, problems })]
    Unsupported {
        /// The policy file.
        path: PathBuf,
        /// What and where.
        problems: Vec<Problem>,
    },
    /// The schema file is not a valid Cedar schema (human syntax).
    #[error("{}", Listing { path, problems })]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// Every error Cedar reported.
        problems: Vec<Problem>,
    },
    /// The schema does not describe termtrail's requests (a missing action,
    /// entity type or attribute, or one of another type).
    #[error("{}: the schema does not describe termtrail's requests: {reason}", path.display())]
    Model {
        /// The schema file.
        path: PathBuf,
        /// Cedar's reason, for the first request it refused.
        reason: String,
    },
    /// The policies do not validate against the schema (strict mode): a
    /// misspelt attribute or action, a type error, an attribute used
    /// without `has` where it may be absent.
    #[error("{}", Listing { path, problems })]
    Invalid {
        /// The policy file.
        path: PathBuf,
        /// Every validation error, placed in the policy file.
        problems: Vec<Problem>,
    },
}

/// Why an environments file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvironmentsError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `PATTERN ENVIRONMENT`.
    #[error("{}:{line}: {reason}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let src = "ab\ncdé\nf";
        assert_eq!(Problem::at_offset(src, 0, String::new()).at, Some((1, 1)));
        assert_eq!(Problem::at_offset(src, 3, String::new()).at, Some((2, 1)));
        // 'é' is two bytes: the column after it counts characters.
        assert_eq!(Problem::at_offset(src, 7, String::new()).at, Some((2, 4)));
        assert_eq!(Problem::at_offset(src, 99, String::new()).at, Some((3, 2)));
    }
}
