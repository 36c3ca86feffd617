//! What can go wrong with a store, as a kind callers match on and the one
//! line users read.

use std::fmt;

/// What went wrong, for callers that act on it (retry, report, exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object (or a multipart upload) is not there.
    NotFound,
    /// The bucket does not exist.
    NoSuchBucket,
    /// The credentials are not allowed to do this.
    AccessDenied,
    /// The credentials were refused (unknown key, bad signature, expired).
    BadCredentials,
    /// No credentials were found at all.
    NoCredentials,
    /// A create-only write found the object already there.
    AlreadyExists,
    /// The store could not be reached (network, timeout, DNS).
    Unreachable,
    /// The store answered with an error retrying may clear (throttling,
    /// server errors, a restarted server).
    Service,
    /// A local file or directory (the store's, or a spool) failed.
    Io,
    /// The location is not a store this build can open.
    BadLocation,
}

/// A store failure: its kind, the line users read (naming the store or
/// object and what to check), and S3's own error code and HTTP status when
/// S3 answered.
#[derive(Debug, Clone)]
pub struct StoreError {
    kind: ErrorKind,
    message: String,
    code: Option<String>,
    status: Option<u16>,
}

impl StoreError {
    /// An error of `kind` with this message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            code: None,
            status: None,
        }
    }

    /// A local I/O failure, the message naming what failed.
    pub fn io(message: impl Into<String>) -> StoreError {
        StoreError::new(ErrorKind::Io, message)
    }

    /// With the service's answer: its error code and HTTP status.
    pub(crate) fn with_answer(mut self, code: Option<&str>, status: Option<u16>) -> StoreError {
        self.code = code.map(str::to_string);
        self.status = status;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The service's error code (`NoSuchUpload`, `PreconditionFailed`, …).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The HTTP status of the store's answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Whether retrying could help (throttling, server errors, a network
    /// that is down), as opposed to a refusal that will not change.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self.kind,
            ErrorKind::AccessDenied
                | ErrorKind::NoSuchBucket
                | ErrorKind::BadCredentials
                | ErrorKind::NoCredentials
                | ErrorKind::BadLocation
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}
