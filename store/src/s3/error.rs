//! S3 failures classified from the SDK's error kinds, S3's error codes and
//! HTTP statuses, worded as one line naming the bucket or key and what to
//! check.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::{ErrorKind, StoreError};

/// Classifies and words an SDK failure of request `what` on `target`.
pub(crate) fn from_sdk<E>(what: &str, target: &str, e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let service_code = e.as_service_error().and_then(|s| s.code());
    // HEAD answers carry no body, so no error code: the status says it.
    let code = match (service_code, status) {
        (Some(c), _) => c,
        (None, Some(403)) => "Forbidden",
        (None, Some(404)) => "NotFound",
        (None, _) => "",
    };
    let (kind, hint) = match code {
        "NoSuchBucket" => (
            ErrorKind::NoSuchBucket,
            "the bucket does not exist: check the name and the region",
        ),
        "AccessDenied" | "Forbidden" | "AllAccessDisabled" => (
            ErrorKind::AccessDenied,
            "access denied: check the credentials' IAM policy (docs/storage.md)",
        ),
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" => (
            ErrorKind::BadCredentials,
            "the credentials were refused: check AWS_ACCESS_KEY_ID/AWS_PROFILE",
        ),
        "NoSuchKey" | "NotFound" => (ErrorKind::NotFound, "no such object"),
        "NoSuchUpload" => (ErrorKind::NotFound, ""),
        "PreconditionFailed" => (ErrorKind::AlreadyExists, ""),
        _ if credentials_missing(e) => (
            ErrorKind::NoCredentials,
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ),
        _ if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => (
            ErrorKind::Unreachable,
            "cannot reach S3: check AWS_ENDPOINT_URL, the network and the region",
        ),
        _ => (ErrorKind::Service, ""),
    };
    // A service error's own code and message; else the error's source
    // chain, without the SDK's debug dumps.
    let detail = match e.as_service_error() {
        Some(s) if s.code().is_some() => {
            format!("{}: {}", code, s.message().unwrap_or("no message"))
        }
        _ if !code.is_empty() => format!("HTTP {}", status.unwrap_or(0)),
        _ => source_chain(e),
    };
    let text = if hint.is_empty() {
        format!("S3 {what} {target}: {detail}")
    } else {
        format!("S3 {what} {target}: {hint} ({detail})")
    };
    StoreError::new(kind, text).with_answer(service_code, status)
}

/// Whether the request failed because credentials could not be loaded: a
/// [`CredentialsError`] (from AWS's provider chain) in its source chain.
fn credentials_missing(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<CredentialsError>() {
            return true;
        }
        src = s.source();
    }
    false
}

/// The error and its sources, one `: `-joined line without the SDK's debug
/// dumps (texts with `{`) or repeats.
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !t.contains('{') && !parts.contains(&t) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    type Sdk = SdkError<GetObjectError, HttpResponse>;

    fn answer(status: u16, code: Option<&str>) -> Sdk {
        let mut meta = ErrorMetadata::builder().message("the server's words");
        if let Some(c) = code {
            meta = meta.code(c);
        }
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(GetObjectError::generic(meta.build()), raw)
    }

    #[test]
    fn answers_are_classified_by_code_and_status() {
        let cases = [
            (403, Some("AccessDenied"), ErrorKind::AccessDenied, false),
            (404, Some("NoSuchBucket"), ErrorKind::NoSuchBucket, false),
            (
                403,
                Some("InvalidAccessKeyId"),
                ErrorKind::BadCredentials,
                false,
            ),
            (404, Some("NoSuchKey"), ErrorKind::NotFound, true),
            (404, Some("NoSuchUpload"), ErrorKind::NotFound, true),
            (
                412,
                Some("PreconditionFailed"),
                ErrorKind::AlreadyExists,
                true,
            ),
            (503, Some("SlowDown"), ErrorKind::Service, true),
            // HEAD answers have no body: the status says it.
            (404, None, ErrorKind::NotFound, true),
            (403, None, ErrorKind::AccessDenied, false),
        ];
        for (status, code, kind, transient) in cases {
            let e = from_sdk("get", "s3://b/k", &answer(status, code));
            assert_eq!(e.kind(), kind, "{status} {code:?}: {e}");
            assert_eq!(e.is_transient(), transient, "{status} {code:?}");
            assert_eq!(e.status(), Some(status));
            assert_eq!(e.code(), code);
            assert!(e.to_string().starts_with("S3 get s3://b/k: "), "{e}");
        }
        let e = from_sdk("get", "s3://b/k", &answer(403, Some("AccessDenied")));
        assert_eq!(
            e.to_string(),
            "S3 get s3://b/k: access denied: check the credentials' IAM policy (docs/storage.md) (AccessDenied: the server's words)"
        );
    }

    #[test]
    fn missing_credentials_are_found_in_the_source_chain_not_the_text() {
        let no_creds = CredentialsError::not_loaded("nothing in the chain");
        let e: Sdk = SdkError::dispatch_failure(ConnectorError::other(Box::new(no_creds), None));
        let err = from_sdk("bucket", "s3://b", &e);
        assert_eq!(err.kind(), ErrorKind::NoCredentials, "{err}");
        assert!(!err.is_transient());
        assert!(
            err.to_string().contains("no AWS credentials found"),
            "{err}"
        );
        // The same words from elsewhere are only a network failure.
        let words = std::io::Error::other("no credentials");
        let e: Sdk = SdkError::dispatch_failure(ConnectorError::io(Box::new(words)));
        let err = from_sdk("bucket", "s3://b", &e);
        assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
        assert!(err.is_transient());
    }
}
