//! Measures the container in-process on a real byte stream (run by
//! `bench/run.py`): write cost (events → chunks → zstd → chain) and read cost
//! (verify only, and verify + decode events), in MB/s of uncompressed
//! asciicast, best of N runs.
//!
//!     cargo run --release -p termtrail-format --example container_bench -- FILE [RUNS]

use std::time::Instant;

use termtrail_format::cast::Header;
use termtrail_format::event::{Event, EventData, TermSize};
use termtrail_format::reader::{ReadOptions, Status, read_recording};
use termtrail_format::seal::EndReason;
use termtrail_format::utf8::Utf8Stitcher;
use termtrail_format::writer::{ChainWriter, WriterOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: container_bench FILE [RUNS]");
    let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
    let data = std::fs::read(path).expect("read input");
    // Split the way a PTY delivers output: ~4 KiB reads, 25 µs apart.
    let mut stitch = Utf8Stitcher::new();
    let mut events = Vec::new();
    for (i, piece) in data.chunks(4095).enumerate() {
        let ready = stitch.push(piece);
        if !ready.is_empty() {
            events.push(Event::new(i as u64 * 25, EventData::Output(ready)));
        }
    }
    let mut file = Vec::new();
    let mut best_write = f64::MAX;
    let mut ulen = 0;
    for _ in 0..runs {
        file = Vec::with_capacity(data.len() / 8);
        let t = Instant::now();
        let mut w = ChainWriter::new(
            &mut file,
            Header::new(TermSize::DEFAULT),
            WriterOptions::default().sync(false),
            None,
        )
        .expect("writer");
        for e in &events {
            w.push(e).expect("push");
        }
        ulen = w.seal(EndReason::Closed).expect("seal").bytes;
        best_write = best_write.min(t.elapsed().as_secs_f64());
    }
    let mb = ulen as f64 / 1e6;
    println!(
        "input {} bytes in {} events -> asciicast {} bytes -> file {} bytes",
        data.len(),
        events.len(),
        ulen,
        file.len()
    );
    println!(
        "write (events -> chunks -> zstd -> chain): {:8.1} MB/s of asciicast",
        mb / best_write
    );
    for (label, threads, decode) in [
        ("verify, 1 thread", 1, false),
        ("verify, 2 threads", 2, false),
        ("read + decode events, 2 threads", 2, true),
    ] {
        let mut best = f64::MAX;
        for _ in 0..runs {
            let opts = ReadOptions {
                events: decode,
                threads,
                ..ReadOptions::default()
            };
            let t = Instant::now();
            let report = read_recording(&file[..], &opts, &mut ()).expect("read");
            assert_eq!(report.status, Status::Intact);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{label:32}: {:8.1} MB/s of asciicast", mb / best);
    }
}
