//! Splitting a `.cast.zst` file into its zstd frames without decompressing:
//! compressed segments, skippable segment-index frames and the seal.
//!
//! Frame boundaries come from the frame header and the 3-byte block headers
//! (RFC 8878 §3.1.1), so an unsealed file's index can be rebuilt by reading
//! headers only.

use std::io::{self, Read};

/// Magic number of a zstd frame (little-endian on disk).
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frame holding one segment's index entry.
pub const SEGMENT_INDEX_MAGIC: u32 = 0x184D_2A5D;
/// Skippable frame holding the seal.
pub const SEAL_MAGIC: u32 = 0x184D_2A5C;
/// Largest compressed frame accepted (a segment is ~4 MiB uncompressed).
pub const MAX_FRAME: usize = 64 << 20;

/// What kind of frame was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A zstd compressed frame (a segment).
    Zstd,
    /// A skippable frame with the given magic.
    Skippable(u32),
}

/// One frame as read from the file.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Byte offset of the frame in the file.
    pub offset: u64,
    /// Its kind.
    pub kind: FrameKind,
    /// For zstd frames the whole frame; for skippable frames the payload.
    pub bytes: Vec<u8>,
    /// Total bytes the frame occupies in the file (as read).
    pub len: u64,
    /// False when the file ended inside the frame.
    pub complete: bool,
}

/// Why the frame structure could not be followed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// Bytes that are neither a zstd nor a skippable frame.
    #[error("no zstd frame at byte {offset} (magic {magic:#010x})")]
    Garbage {
        /// Where.
        offset: u64,
        /// The four bytes found.
        magic: u32,
    },
    /// A frame larger than [`MAX_FRAME`].
    #[error("frame at byte {offset} is larger than {} MiB", MAX_FRAME >> 20)]
    TooLarge {
        /// Where.
        offset: u64,
    },
    /// A zstd frame header or block header that is invalid.
    #[error("corrupt zstd frame at byte {offset}: {reason}")]
    Corrupt {
        /// Where the frame starts.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Reads frames one after another from any reader.
pub struct FrameScanner<R> {
    r: R,
    offset: u64,
}

impl<R: Read> FrameScanner<R> {
    /// Starts at byte 0 of `r`.
    pub fn new(r: R) -> FrameScanner<R> {
        FrameScanner { r, offset: 0 }
    }

    /// The offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads up to `n` bytes, appending to `buf`; returns how many arrived.
    fn fill(&mut self, buf: &mut Vec<u8>, n: usize) -> io::Result<usize> {
        let start = buf.len();
        let got = (&mut self.r).take(n as u64).read_to_end(buf)?;
        debug_assert_eq!(buf.len() - start, got);
        Ok(got)
    }

    /// The next frame, or None at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let offset = self.offset;
        let mut buf = Vec::new();
        let got = self.fill(&mut buf, 4)?;
        if got == 0 {
            return Ok(None);
        }
        if got < 4 {
            // A file cut inside a frame's magic number. The bytes that came
            // say which kind it was starting to be: a skippable frame (an
            // index or the seal) starts `5x 2A 4D`, a zstd frame `28 B5 2F`;
            // anything else is no frame at all.
            let skippable = [0x50, 0x2A, 0x4D];
            let is_skippable = buf
                .iter()
                .zip(skippable)
                .enumerate()
                .all(|(i, (&b, want))| if i == 0 { b & 0xF0 == want } else { b == want });
            let kind = if is_skippable {
                FrameKind::Skippable(0x184D_2A50 | u32::from(buf[0] & 0x0F))
            } else if ZSTD_MAGIC.to_le_bytes().starts_with(&buf) {
                FrameKind::Zstd
            } else {
                // No cut leaves these bytes: they start no frame.
                let mut m = [0u8; 4];
                m[..got].copy_from_slice(&buf);
                return Err(FrameError::Garbage {
                    offset,
                    magic: u32::from_le_bytes(m),
                });
            };
            self.offset += got as u64;
            return Ok(Some(Frame {
                offset,
                kind,
                len: got as u64,
                bytes: if is_skippable { Vec::new() } else { buf },
                complete: false,
            }));
        }
        let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let frame = if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            self.skippable(offset, magic)?
        } else if magic == ZSTD_MAGIC {
            self.zstd(offset, buf)?
        } else {
            return Err(FrameError::Garbage { offset, magic });
        };
        self.offset += frame.len;
        Ok(Some(frame))
    }

    fn skippable(&mut self, offset: u64, magic: u32) -> Result<Frame, FrameError> {
        let mut size = Vec::new();
        let got = self.fill(&mut size, 4)?;
        if got < 4 {
            return Ok(Frame {
                offset,
                kind: FrameKind::Skippable(magic),
                len: 4 + got as u64,
                bytes: Vec::new(),
                complete: false,
            });
        }
        let n = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        if n > MAX_FRAME {
            return Err(FrameError::TooLarge { offset });
        }
        let mut payload = Vec::with_capacity(n.min(1 << 20));
        let got = self.fill(&mut payload, n)?;
        Ok(Frame {
            offset,
            kind: FrameKind::Skippable(magic),
            len: 8 + got as u64,
            bytes: payload,
            complete: got == n,
        })
    }

    fn zstd(&mut self, offset: u64, mut buf: Vec<u8>) -> Result<Frame, FrameError> {
        let partial = |buf: Vec<u8>| Frame {
            offset,
            kind: FrameKind::Zstd,
            len: buf.len() as u64,
            bytes: buf,
            complete: false,
        };
        if self.fill(&mut buf, 1)? < 1 {
            return Ok(partial(buf));
        }
        let fhd = buf[4];
        if fhd & 0x08 != 0 {
            return Err(FrameError::Corrupt {
                offset,
                reason: "reserved header bit set",
            });
        }
        let single_segment = fhd & 0x20 != 0;
        let checksum = fhd & 0x04 != 0;
        let dict_len = [0, 1, 2, 4][(fhd & 0x03) as usize];
        let fcs_len = match fhd >> 6 {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let rest = usize::from(!single_segment) + dict_len + fcs_len;
        if self.fill(&mut buf, rest)? < rest {
            return Ok(partial(buf));
        }
        loop {
            let at = buf.len();
            if self.fill(&mut buf, 3)? < 3 {
                return Ok(partial(buf));
            }
            let h = u32::from(buf[at]) | u32::from(buf[at + 1]) << 8 | u32::from(buf[at + 2]) << 16;
            let last = h & 1 != 0;
            let size = (h >> 3) as usize;
            let stored = match (h >> 1) & 3 {
                0 | 2 => size,
                1 => 1,
                _ => {
                    return Err(FrameError::Corrupt {
                        offset,
                        reason: "reserved block type",
                    });
                }
            };
            if buf.len() + stored > MAX_FRAME {
                return Err(FrameError::TooLarge { offset });
            }
            if self.fill(&mut buf, stored)? < stored {
                return Ok(partial(buf));
            }
            if last {
                break;
            }
        }
        if checksum && self.fill(&mut buf, 4)? < 4 {
            return Ok(partial(buf));
        }
        Ok(Frame {
            offset,
            kind: FrameKind::Zstd,
            len: buf.len() as u64,
            bytes: buf,
            complete: true,
        })
    }
}

/// Wraps a payload as a skippable frame.
pub fn skippable_frame(magic: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(data: &[u8]) -> Vec<Frame> {
        let mut s = FrameScanner::new(data);
        let mut out = Vec::new();
        while let Some(f) = s.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn splits_zstd_and_skippable_frames() {
        let a = zstd::encode_all(&b"hello hello hello hello"[..], 3).unwrap();
        let big: Vec<u8> = (0..400_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let b = zstd::encode_all(&big[..], 1).unwrap();
        let mut file = a.clone();
        file.extend(skippable_frame(SEGMENT_INDEX_MAGIC, b"meta"));
        file.extend(&b);
        let fs = frames(&file);
        assert_eq!(fs.len(), 3);
        assert_eq!(fs[0].bytes, a);
        assert_eq!(fs[1].kind, FrameKind::Skippable(SEGMENT_INDEX_MAGIC));
        assert_eq!(fs[1].bytes, b"meta");
        assert_eq!(fs[2].offset as usize, a.len() + 12);
        assert!(fs.iter().all(|f| f.complete));
    }

    #[test]
    fn truncated_frames_are_partial_not_errors() {
        let a = zstd::encode_all(&b"hello world, hello world"[..], 3).unwrap();
        for cut in 1..a.len() {
            let fs = frames(&a[..cut]);
            assert_eq!(fs.len(), 1);
            assert!(!fs[0].complete, "cut {cut}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let mut s = FrameScanner::new(&b"{\"version\": 3}"[..]);
        assert!(matches!(
            s.next_frame(),
            Err(FrameError::Garbage { offset: 0, .. })
        ));
    }
}
