//! Times `Stripper::feed_json` over the output events of a decompressed
//! recording: `cargo run --release -p termtrail-player --example strip_bench -- FILE.cast`
use std::time::Instant;
use termtrail_player::grep::Stripper;

fn main() {
    let path = std::env::args().nth(1).expect("a decompressed .cast file");
    let text = std::fs::read(&path).expect("readable");
    // The data strings of output events: `[t, "o", "…"]`.
    let mut datas: Vec<&[u8]> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        if let Some(p) = line.windows(6).position(|w| w == b"\"o\", \"") {
            let d = &line[p + 6..];
            datas.push(d);
        }
    }
    let bytes: usize = datas.iter().map(|d| d.len()).sum();
    let mut best = f64::MAX;
    let mut out = Vec::with_capacity(1 << 20);
    let mut total = 0usize;
    for _ in 0..7 {
        let t = Instant::now();
        let mut s = Stripper::default();
        for d in &datas {
            s.feed_json(d, &mut out);
            total += out.len();
            out.clear();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{} MB of event data: {:.0} MB/s (best of 7), {} bytes of text per run",
        bytes / 1_000_000,
        bytes as f64 / best / 1e6,
        total / 7
    );
}
