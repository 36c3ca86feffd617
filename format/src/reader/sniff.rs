//! What kind of recording a file holds, from its first bytes, and what to
//! say of a file that is none.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// What kind of recording a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A termtrail recording (zstd frames): read with [`super::read_path`].
    Chained,
    /// A plain asciicast file (`{` first): read with [`crate::plain`].
    Plain,
}

/// What kind of file starts with `head` (its first four bytes, or all of a
/// shorter file); None: not a recording.
pub fn sniff(head: &[u8]) -> Option<FileKind> {
    if head.first() == Some(&b'{') {
        return Some(FileKind::Plain);
    }
    let zstd = head.len() >= 4 && head[..4] == [0x28, 0xb5, 0x2f, 0xfd];
    let skippable = head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18];
    (zstd || skippable).then_some(FileKind::Chained)
}

/// What kind of file `path` is, from its first bytes (None: not a
/// recording).
pub fn sniff_path(path: &Path) -> io::Result<Option<FileKind>> {
    let mut head = [0u8; 4];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(sniff(&head[..n]))
}

/// What a file whose first four bytes (little-endian) are `magic` holds,
/// said to someone who gave it as a recording.
pub(super) fn describe_magic(magic: u32) -> String {
    let bytes = magic.to_le_bytes();
    if bytes[0] == b'{' {
        "this looks like a plain asciicast file (use `termtrail import` to seal it)".into()
    } else if bytes[..2] == [0x1f, 0x8b] {
        "this is a gzip file".into()
    } else {
        format!(
            "unknown file type (starts with {:02x} {:02x} {:02x} {:02x})",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_first_bytes() {
        assert_eq!(sniff(b"{\"version\": 2}"), Some(FileKind::Plain));
        assert_eq!(sniff(b"{"), Some(FileKind::Plain));
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(FileKind::Chained));
        assert_eq!(sniff(&[0x5e, 0x2a, 0x4d, 0x18]), Some(FileKind::Chained));
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f]), None);
        assert_eq!(sniff(&[0x1f, 0x8b, 0x08, 0x00]), None);
        assert_eq!(sniff(b""), None);
    }
}
