//! The HTTP(S) requests authentication makes — the OIDC discovery document,
//! JWKS, and the replayed STS call — on the recorder's own hyper + rustls
//! client stack (`crate::tls`), each with a deadline and a size bound.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use tokio_rustls::rustls::ClientConfig;

/// How long one request may take, connection included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read (a JWKS, a discovery document, an STS answer).
const MAX_BODY: usize = 1 << 20;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("not an http:// or https:// URL")]
    Url,
    /// Connecting, the TLS handshake, or the exchange failed.
    #[error("{0}")]
    Io(String),
    /// No answer within the deadline.
    #[error("no answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// The answer's body is larger than the bound.
    #[error("the answer is larger than {} bytes", MAX_BODY)]
    TooLarge,
    /// An answer other than 200.
    #[error("HTTP {0}")]
    Status(u16),
}

/// A parsed absolute URL: `host:port`, whether TLS is used, and the path
/// with its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) authority: String,
    /// The `host` header value (the port only when the URL names one).
    pub(crate) host: String,
    pub(crate) tls: bool,
    pub(crate) path: String,
}

impl Target {
    /// Parses `url`.
    pub(crate) fn parse(url: &str) -> Result<Target, FetchError> {
        let uri: http::Uri = url.parse().map_err(|_| FetchError::Url)?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(FetchError::Url),
        };
        let auth = uri.authority().ok_or(FetchError::Url)?;
        if auth.as_str().contains('@') {
            return Err(FetchError::Url);
        }
        let port = auth.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host = auth.host();
        let path = uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        Ok(Target {
            authority: format!("{host}:{port}"),
            host: auth.as_str().to_ascii_lowercase(),
            tls,
            path: if path.is_empty() { "/".into() } else { path },
        })
    }
}

/// Sends one request and returns the status and body.
pub(crate) async fn request(
    method: http::Method,
    target: &Target,
    headers: &[(String, String)],
    body: Bytes,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<(u16, Bytes), FetchError> {
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        exchange(method, target, headers, body, tls),
    )
    .await
    .map_err(|_| FetchError::Timeout)?
}

async fn exchange(
    method: http::Method,
    target: &Target,
    headers: &[(String, String)],
    body: Bytes,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<(u16, Bytes), FetchError> {
    let io = |e: &dyn std::fmt::Display| FetchError::Io(e.to_string());
    let tls = match (target.tls, tls) {
        (true, None) => {
            return Err(FetchError::Io(
                "no trusted CA certificates for https".into(),
            ));
        }
        (true, Some(c)) => Some(c),
        (false, _) => None,
    };
    let stream = crate::tls::connect_stream(&target.authority, tls)
        .await
        .map_err(|e| io(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| io(&e))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(&target.path)
        .header("host", &target.host);
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("host") {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    let req = req.body(Full::new(body)).map_err(|e| io(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| io(&e))?;
    let status = resp.status().as_u16();
    let bytes = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                FetchError::TooLarge
            } else {
                FetchError::Io(e.to_string())
            }
        })?
        .to_bytes();
    Ok((status, bytes))
}

/// `GET url`: the body of a 200 answer.
pub(crate) async fn get(url: &str, tls: Option<&Arc<ClientConfig>>) -> Result<Bytes, FetchError> {
    let target = Target::parse(url)?;
    let (status, body) = request(http::Method::GET, &target, &[], Bytes::new(), tls).await?;
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_targets() {
        let t = Target::parse("https://sts.us-east-1.amazonaws.com/").unwrap();
        assert_eq!(t.authority, "sts.us-east-1.amazonaws.com:443");
        assert_eq!(t.host, "sts.us-east-1.amazonaws.com");
        assert!(t.tls);
        assert_eq!(t.path, "/");
        let t = Target::parse("http://127.0.0.1:8080/.well-known/openid-configuration").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.path, "/.well-known/openid-configuration");
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("/relative").is_err());
        assert!(Target::parse("http://user:pw@host/").is_err());
    }
}
