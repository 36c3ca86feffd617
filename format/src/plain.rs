//! Streaming readers and writers for plain asciicast v2/v3 files (what other
//! tools produce and consume). Constant memory: one line at a time, with a
//! bound on line length.

use std::collections::VecDeque;
use std::io::{self, BufRead, Write};

use crate::cast::{
    CastVersion, EventAssembler, Header, HeaderError, MAX_TIME, parse_line, write_event,
};
use crate::event::{Event, Micros};

/// Longest line accepted in a plain file.
pub const MAX_LINE: usize = 64 << 20;

/// Errors reading a plain asciicast file.
#[derive(Debug, thiserror::Error)]
pub enum CastError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// The first line is not a usable header.
    #[error("line 1: {0}")]
    Header(#[from] HeaderError),
    /// An event line is malformed.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A line is longer than [`MAX_LINE`].
    #[error("line {0} is longer than 64 MiB")]
    TooLong(u64),
}

/// Reads a plain asciicast v2 or v3 file event by event.
pub struct CastReader<R> {
    r: R,
    version: CastVersion,
    header: Header,
    asm: EventAssembler,
    time: Micros,
    line_no: u64,
    buf: Vec<u8>,
    queue: VecDeque<Event>,
    ready: Vec<Event>,
    eof: bool,
}

fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, line_no: u64) -> Result<usize, CastError> {
    buf.clear();
    let n = io::Read::take(r, MAX_LINE as u64 + 1).read_until(b'\n', buf)?;
    if n > MAX_LINE {
        return Err(CastError::TooLong(line_no));
    }
    Ok(n)
}

impl<R: BufRead> CastReader<R> {
    /// Reads the header.
    pub fn new(mut r: R) -> Result<CastReader<R>, CastError> {
        let mut buf = Vec::new();
        if read_line(&mut r, &mut buf, 1)? == 0 {
            return Err(CastError::Empty);
        }
        let (header, version) = Header::parse(&buf)?;
        Ok(CastReader {
            r,
            version,
            header,
            asm: EventAssembler::new(),
            time: 0,
            line_no: 1,
            buf,
            queue: VecDeque::new(),
            ready: Vec::new(),
            eof: false,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's version.
    pub fn version(&self) -> CastVersion {
        self.version
    }

    /// The next event, or None at the end.
    pub fn next_event(&mut self) -> Result<Option<Event>, CastError> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Ok(Some(e));
            }
            if self.eof {
                return Ok(None);
            }
            self.line_no += 1;
            let n = read_line(&mut self.r, &mut self.buf, self.line_no)?;
            if n == 0 {
                self.eof = true;
                self.asm.finish(&mut self.ready);
                self.queue.extend(self.ready.drain(..));
                continue;
            }
            let complete = self.buf.ends_with(b"\n");
            let trimmed = crate::cast::trim_newline(&self.buf);
            if trimmed.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.version == CastVersion::V3 && trimmed.starts_with(b"#") {
                continue;
            }
            let line = match parse_line(trimmed) {
                Ok(l) => l,
                // A cut last line (a crash mid-write) ends the file quietly.
                Err(_) if !complete => {
                    self.eof = true;
                    self.asm.finish(&mut self.ready);
                    self.queue.extend(self.ready.drain(..));
                    continue;
                }
                Err(e) => {
                    return Err(CastError::Line {
                        line: self.line_no,
                        message: e.0,
                    });
                }
            };
            self.time = match self.version {
                CastVersion::V3 => self.time.saturating_add(line.time),
                CastVersion::V2 => line.time.max(self.time),
            };
            if self.time > MAX_TIME {
                return Err(CastError::Line {
                    line: self.line_no,
                    message: "events run past 999999999.999999 seconds".into(),
                });
            }
            self.asm
                .push(self.time, &line.code, line.data, &mut self.ready)
                .map_err(|e| CastError::Line {
                    line: self.line_no,
                    message: e.0,
                })?;
            self.queue.extend(self.ready.drain(..));
        }
    }
}

/// Writes a plain asciicast file.
pub struct CastWriter<W: Write> {
    w: W,
    version: CastVersion,
    lossy: bool,
    last: Micros,
    buf: Vec<u8>,
}

impl<W: Write> CastWriter<W> {
    /// Writes the header. With `lossy`, non-UTF-8 output is written with
    /// U+FFFD only (no `b` companion), for tools that know nothing of it.
    pub fn new(
        mut w: W,
        header: &Header,
        version: CastVersion,
        lossy: bool,
    ) -> io::Result<CastWriter<W>> {
        w.write_all(&header.to_line(version))?;
        Ok(CastWriter {
            w,
            version,
            lossy,
            last: 0,
            buf: Vec::with_capacity(64 << 10),
        })
    }

    /// Writes one event (times earlier than the previous one are raised).
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        let t = event.time.max(self.last);
        let field = match self.version {
            CastVersion::V3 => t - self.last,
            CastVersion::V2 => t,
        };
        self.last = t;
        self.buf.clear();
        write_event(&mut self.buf, field, &event.data, self.lossy);
        self.w.write_all(&self.buf)
    }

    /// Writes a `#` comment line (v3 only; ignored in v2).
    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        if self.version == CastVersion::V3 {
            for line in text.lines() {
                writeln!(self.w, "# {line}")?;
            }
        }
        Ok(())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventData, TermSize};

    fn read_all(data: &[u8]) -> Result<Vec<Event>, CastError> {
        let mut r = CastReader::new(data)?;
        let mut out = Vec::new();
        while let Some(e) = r.next_event()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn reads_asciinema_v2_and_v3() {
        let v2 = b"{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.006392, \"o\", \"a\"]\n\n[0.221878, \"r\", \"90x20\"]\n";
        let e = read_all(v2).unwrap();
        assert_eq!(e[1].time, 221_878);
        assert_eq!(
            e[1].data,
            EventData::Resize(TermSize { cols: 90, rows: 20 })
        );
        let v3 = b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[0.002, \"o\", \"a\"]\n# note\n[0.202, \"x\", \"0\"]\n";
        let e = read_all(v3).unwrap();
        assert_eq!(e[1].time, 204_000);
        assert_eq!(e[1].data, EventData::Exit(0));
    }

    #[test]
    fn cut_last_line_is_tolerated_but_bad_middle_line_is_not() {
        let cut = b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[0.002, \"o\", \"a\"]\n[0.1, \"o\", \"b";
        assert_eq!(read_all(cut).unwrap().len(), 1);
        let bad = b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[0.002, \"o\"\n[0.1, \"o\", \"b\"]\n";
        assert!(matches!(
            read_all(bad),
            Err(CastError::Line { line: 2, .. })
        ));
        assert!(matches!(read_all(b""), Err(CastError::Empty)));
        assert!(matches!(
            read_all(b"{\"version\":1}\n"),
            Err(CastError::Header(_))
        ));
    }

    /// Fuzzing found events near 10¹² s printed by the writer and read
    /// back 32 µs later; times past [`MAX_TIME`] are refused instead, also
    /// when v3 intervals add up past it.
    #[test]
    fn times_past_the_limit_are_refused() {
        let head = "{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n";
        let ok = format!("{head}[999999999.999999, \"o\", \"a\"]\n");
        assert_eq!(read_all(ok.as_bytes()).unwrap()[0].time, MAX_TIME);
        let sum = format!("{head}[999999999, \"o\", \"a\"]\n[1, \"o\", \"b\"]\n");
        assert!(matches!(
            read_all(sum.as_bytes()),
            Err(CastError::Line { line: 3, .. })
        ));
    }

    #[test]
    fn writer_round_trips_through_reader() {
        let header = Header::new(TermSize::DEFAULT);
        let events = vec![
            Event::new(5, EventData::Output(b"x\xff".to_vec())),
            Event::new(1_000_005, EventData::Marker("m".into())),
            Event::new(2_000_000, EventData::Exit(3)),
        ];
        for version in [CastVersion::V2, CastVersion::V3] {
            let mut w = CastWriter::new(Vec::new(), &header, version, false).unwrap();
            for e in &events {
                w.write(e).unwrap();
            }
            let out = w.finish().unwrap();
            assert_eq!(read_all(&out).unwrap(), events);
        }
    }
}
