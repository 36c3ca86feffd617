//! Helpers shared by the format crate's integration tests.
#![allow(dead_code, missing_docs)]

use termtrail_format::cast::Header;
use termtrail_format::event::{Event, EventData, TermSize};
use termtrail_format::pipeline::Flow;
use termtrail_format::reader::{
    ContentCheck, ReadOptions, ReadSink, Report, read_path, read_recording,
};
use termtrail_format::seal::EndReason;
use termtrail_format::sign::SecretKey;
use termtrail_format::writer::{ChainWriter, WriterOptions};

#[derive(Default)]
pub struct Collect {
    pub header: Option<Header>,
    pub events: Vec<Event>,
    pub problems: usize,
}

impl ReadSink for Collect {
    fn header(&mut self, h: &Header) -> Flow {
        self.header = Some(h.clone());
        Flow::Continue
    }
    fn event(&mut self, e: &Event) -> Flow {
        self.events.push(e.clone());
        Flow::Continue
    }
    fn problem(&mut self, _p: &termtrail_format::reader::Problem) {
        self.problems += 1;
    }
}

pub fn small_opts() -> WriterOptions {
    WriterOptions::default()
        .chunk_bytes(2048)
        .segment_bytes(64 << 10)
        .sync(false)
}

pub fn write(events: &[Event], opts: WriterOptions, key: Option<SecretKey>, seal: bool) -> Vec<u8> {
    let mut file = Vec::new();
    {
        let mut w = ChainWriter::new(&mut file, Header::new(TermSize::DEFAULT), opts, key).unwrap();
        for e in events {
            w.push(e).unwrap();
        }
        if seal {
            w.seal(EndReason::Exited { code: 0 }).unwrap();
        }
    }
    file
}

pub fn read(file: &[u8], threads: usize) -> (Report, Collect) {
    let mut c = Collect::default();
    let opts = ReadOptions {
        threads,
        claims_sealed: file.ends_with(b"TTSEALv1"),
        ..ReadOptions::default()
    };
    let r = read_recording(file, &opts, &mut c).unwrap_or_else(|e| panic!("read failed: {e}"));
    (r, c)
}

/// A session-like stream: colourful output, input, resizes, markers, over
/// `secs` seconds, deterministic.
pub fn session(n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    let mut t = 0u64;
    for i in 0..n {
        t += (i as u64 * 7919) % 400_000;
        let data = match i % 11 {
            0 => EventData::Input(format!("echo {i}\r").into_bytes()),
            1 => EventData::Resize(TermSize {
                cols: 80 + (i % 40) as u16,
                rows: 24,
            }),
            2 => EventData::Marker(format!("mark {i}")),
            3 => EventData::Output(b"caf\xc3\xa9 \xff\xfe raw".to_vec()),
            _ => EventData::Output(
                format!("\x1b[1;3{}mline {i} of output \u{2713}\x1b[0m\r\n", i % 8)
                    .repeat(1 + i % 5)
                    .into_bytes(),
            ),
        };
        out.push(Event::new(t, data));
    }
    out.push(Event::new(t + 1, EventData::Exit(0)));
    out
}

/// Reads `file` from disk (as `read_path` does, seal looked up first) with
/// the given content check; the events read come back too.
pub fn read_file(file: &[u8], content: ContentCheck) -> (Report, Collect) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.cast.zst");
    std::fs::write(&path, file).unwrap();
    let mut c = Collect::default();
    let opts = ReadOptions {
        threads: 2,
        content,
        ..ReadOptions::default()
    };
    let r = read_path(&path, &opts, &mut c).unwrap_or_else(|e| panic!("read failed: {e}"));
    (r, c)
}
