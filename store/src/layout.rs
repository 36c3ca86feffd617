//! The key layout of a store (stable, documented in `docs/format.md` §8):
//! `YYYY/MM/DD/<source>/<session-id>/<shell-id>/<start>.cast.zst`, with the
//! date and `<start>` (`YYYYMMDDTHHMMSSZ`) in UTC; in S3 under the URL's
//! prefix. Keys sort by the day they begin with, so a listing can start at a
//! day.

/// The parts of a recording's key.
#[derive(Debug, Clone)]
pub struct KeyParts<'a> {
    /// `local`, `serve`, `proxy`, `import`.
    pub source: &'a str,
    /// Session id.
    pub session: &'a str,
    /// Shell id.
    pub shell: &'a str,
    /// Start, Unix seconds.
    pub start: u64,
}

/// The key of a recording, relative to the store.
pub fn key(parts: &KeyParts<'_>) -> String {
    let (y, mo, d, h, mi, s) = civil(parts.start);
    format!(
        "{}/{}/{}/{}/{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z.cast.zst",
        day_prefix(parts.start),
        sanitize(parts.source),
        sanitize(parts.session),
        sanitize(parts.shell),
    )
}

/// Keeps key components to a safe alphabet: no separators, no dot-dot.
fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') {
        "_".into()
    } else {
        out
    }
}

/// The start of every key of a recording started at `secs` (Unix seconds):
/// its UTC day, `YYYY/MM/DD`. Keys sort by it, so a listing can start at a
/// day.
pub fn day_prefix(secs: u64) -> String {
    let (y, m, d, ..) = civil(secs);
    format!("{y:04}/{m:02}/{d:02}")
}

/// Unix seconds → (year, month, day, hour, minute, second) in UTC.
pub use termtrail_format::civil::civil;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let k = key(&KeyParts {
            source: "local",
            session: "host/../x",
            shell: "abc",
            start: 1_795_543_826,
        });
        assert_eq!(
            k,
            "2026/11/24/local/host_.._x/abc/20261124T181026Z.cast.zst"
        );
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }
}
