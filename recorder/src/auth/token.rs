//! Where a client's token travels (`docs/protocol.md` §8): the
//! `Authorization: Bearer` header, or — for browsers, which cannot set
//! headers on a WebSocket upgrade — the subprotocol
//! `base64UrlBearerAuthorization.<base64url(token)>` offered next to the
//! bare `base64UrlBearerAuthorization`, which the host selects in its answer
//! (the token itself is never echoed). Also the small base64url codec the
//! token formats need.

use axum::http::HeaderMap;

use super::AuthError;

/// Largest token accepted, in bytes (after base64url decoding for the
/// subprotocol carriage); anything longer is refused before it is parsed.
pub const MAX_TOKEN: usize = 16 << 10;

/// The subprotocol a browser client offers next to the one carrying its
/// token, and the one the host selects in its `101` answer (browsers fail
/// an upgrade whose answer selects none of the offered subprotocols).
pub const BEARER_PROTOCOL: &str = "base64UrlBearerAuthorization";

/// Prefix of the subprotocol that carries the token.
const BEARER_PROTOCOL_PREFIX: &str = "base64UrlBearerAuthorization.";

/// How a token arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carriage {
    /// `Authorization: Bearer <token>`.
    Header,
    /// The WebSocket subprotocol `base64UrlBearerAuthorization.<b64url>`.
    Subprotocol,
}

/// A token taken from a request, not yet checked.
pub struct Bearer {
    /// The token text.
    pub token: String,
    /// Where it was found.
    pub carriage: Carriage,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("Bearer")
            .field("len", &self.token.len())
            .field("carriage", &self.carriage)
            .finish()
    }
}

/// The request's token: from `Authorization: Bearer`, else from the
/// subprotocol list. `NoToken` when neither carries one; `TooLarge` past
/// [`MAX_TOKEN`]; `Malformed` for an `Authorization` header of another
/// scheme, or a subprotocol that is not base64url of UTF-8 text.
pub fn extract(headers: &HeaderMap) -> Result<Bearer, AuthError> {
    // One credential per request: with two, which one counts would depend on
    // the order intermediaries keep.
    if headers.get_all(http::header::AUTHORIZATION).iter().count() > 1 {
        return Err(AuthError::Malformed(
            "more than one Authorization header".into(),
        ));
    }
    let offered = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter(|p| p.trim().starts_with(BEARER_PROTOCOL_PREFIX))
        .count();
    if offered > 1 {
        return Err(AuthError::Malformed(
            "more than one bearer subprotocol".into(),
        ));
    }
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        if value.len() > MAX_TOKEN + 64 {
            return Err(AuthError::TooLarge);
        }
        let text = value
            .to_str()
            .map_err(|_| AuthError::Malformed("the Authorization header is not ASCII".into()))?;
        let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed(
                "the Authorization header is not of the Bearer scheme".into(),
            ));
        }
        let token = token.trim();
        if token.len() > MAX_TOKEN {
            return Err(AuthError::TooLarge);
        }
        if token.is_empty() {
            return Err(AuthError::NoToken);
        }
        return Ok(Bearer {
            token: token.to_string(),
            carriage: Carriage::Header,
        });
    }
    for value in headers.get_all(http::header::SEC_WEBSOCKET_PROTOCOL) {
        // Base64url grows the token by 4/3: bound the header before reading.
        if value.len() > MAX_TOKEN * 4 / 3 + 256 {
            return Err(AuthError::TooLarge);
        }
        let Ok(list) = value.to_str() else { continue };
        for proto in list.split(',').map(str::trim) {
            let Some(encoded) = proto.strip_prefix(BEARER_PROTOCOL_PREFIX) else {
                continue;
            };
            if encoded.len() > MAX_TOKEN * 4 / 3 + 4 {
                return Err(AuthError::TooLarge);
            }
            let bytes = b64url_decode(encoded).ok_or_else(|| {
                AuthError::Malformed("the bearer subprotocol is not base64url".into())
            })?;
            if bytes.len() > MAX_TOKEN {
                return Err(AuthError::TooLarge);
            }
            let token = String::from_utf8(bytes).map_err(|_| {
                AuthError::Malformed("the bearer subprotocol does not hold UTF-8 text".into())
            })?;
            if token.is_empty() {
                return Err(AuthError::NoToken);
            }
            return Ok(Bearer {
                token,
                carriage: Carriage::Subprotocol,
            });
        }
    }
    Err(AuthError::NoToken)
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url (RFC 4648 §5) without padding.
pub fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(B64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decodes base64url, padded or not; None when it is not base64url.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero (a canonical encoding).
    (acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn two_credentials_in_one_request_are_refused() {
        let two = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert!(matches!(extract(&two), Err(AuthError::Malformed(_))));
        let a = b64url_encode(b"a");
        let b = b64url_encode(b"b");
        let list = format!("base64UrlBearerAuthorization.{a}, base64UrlBearerAuthorization.{b}");
        let two = headers(&[("sec-websocket-protocol", &list)]);
        assert!(matches!(extract(&two), Err(AuthError::Malformed(_))));
        let one = format!("base64UrlBearerAuthorization.{a}, base64UrlBearerAuthorization");
        let ok = extract(&headers(&[("sec-websocket-protocol", &one)])).unwrap();
        assert_eq!(ok.token, "a");
    }

    #[test]
    fn base64url_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..40 {
            let enc = b64url_encode(&data[..n]);
            assert!(!enc.contains('='), "{enc}");
            assert_eq!(b64url_decode(&enc).unwrap(), &data[..n]);
        }
        assert_eq!(b64url_encode(b"mytoken"), "bXl0b2tlbg");
        assert_eq!(b64url_decode("bXl0b2tlbg==").unwrap(), b"mytoken");
        assert_eq!(b64url_decode("bXl0b2tlbh"), None, "non-zero trailing bits");
        assert_eq!(b64url_decode("a+b/"), None, "standard alphabet");
        assert_eq!(b64url_decode("abcde"), None);
    }

    #[test]
    fn tokens_come_from_the_header_or_the_subprotocol() {
        let b = extract(&headers(&[("authorization", "Bearer abc.def")])).unwrap();
        assert_eq!(
            (b.token.as_str(), b.carriage),
            ("abc.def", Carriage::Header)
        );
        let b = extract(&headers(&[(
            "sec-websocket-protocol",
            "base64UrlBearerAuthorization.bXl0b2tlbg, base64UrlBearerAuthorization",
        )]))
        .unwrap();
        assert_eq!(
            (b.token.as_str(), b.carriage),
            ("mytoken", Carriage::Subprotocol)
        );
        assert!(matches!(
            extract(&headers(&[(
                "sec-websocket-protocol",
                "base64UrlBearerAuthorization"
            )])),
            Err(AuthError::NoToken)
        ));
        assert!(matches!(
            extract(&HeaderMap::new()),
            Err(AuthError::NoToken)
        ));
        assert!(matches!(
            extract(&headers(&[("authorization", "Basic dXNlcjpwdw==")])),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            extract(&headers(&[(
                "sec-websocket-protocol",
                "base64UrlBearerAuthorization.***"
            )])),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn huge_tokens_are_refused_in_either_carriage() {
        let big = "a".repeat(MAX_TOKEN + 1);
        assert!(matches!(
            extract(&headers(&[("authorization", &format!("Bearer {big}"))])),
            Err(AuthError::TooLarge)
        ));
        let proto = format!("{BEARER_PROTOCOL_PREFIX}{}", b64url_encode(big.as_bytes()));
        assert!(matches!(
            extract(&headers(&[("sec-websocket-protocol", &proto)])),
            Err(AuthError::TooLarge)
        ));
        let fits = "a".repeat(MAX_TOKEN);
        assert!(extract(&headers(&[("authorization", &format!("Bearer {fits}"))])).is_ok());
    }
}
