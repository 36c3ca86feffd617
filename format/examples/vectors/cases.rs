//! The conformance vectors: one small recording per check of
//! docs/format.md §7 (and per truncation class), each with the verdict the
//! spec gives it.

use termtrail_format::cast::{write_event, write_line};
use termtrail_format::event::EventData;
use termtrail_format::seal::EndReason;

use crate::forge::{Chunk, Index, Layout, Recording, Seal, Segment, default_header, skippable};

/// What a verifier must say of a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// `termtrail verify`'s exit code.
    pub exit_code: i32,
    /// `intact`, `unsealed`, `tampered` or `error`.
    pub verdict: &'static str,
    /// The first bad chunk, when the reason names one.
    pub first_bad_chunk: Option<u64>,
    /// The reason class (None when intact).
    pub reason: Option<&'static str>,
}

/// One vector.
pub struct Case {
    /// File name without extension.
    pub name: &'static str,
    /// The check it exercises (`V14`, or `valid`).
    pub check: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The file.
    pub bytes: Vec<u8>,
    /// The verdict.
    pub expect: Expect,
}

pub(crate) fn intact() -> Expect {
    Expect {
        exit_code: 0,
        verdict: "intact",
        first_bad_chunk: None,
        reason: None,
    }
}

pub(crate) fn unsealed() -> Expect {
    Expect {
        exit_code: 3,
        verdict: "unsealed",
        first_bad_chunk: None,
        reason: Some("truncated"),
    }
}

fn error(reason: &'static str) -> Expect {
    Expect {
        exit_code: 2,
        verdict: "error",
        first_bad_chunk: None,
        reason: Some(reason),
    }
}

pub(crate) fn tampered(reason: &'static str, chunk: Option<u64>) -> Expect {
    Expect {
        exit_code: 1,
        verdict: "tampered",
        first_bad_chunk: chunk,
        reason: Some(reason),
    }
}

fn line(t: u64, code: &str, data: &str) -> String {
    let mut b = Vec::new();
    write_line(&mut b, t, code, data);
    String::from_utf8(b).unwrap()
}

fn output(t: u64, bytes: &[u8]) -> String {
    let mut b = Vec::new();
    write_event(&mut b, t, &EventData::Output(bytes.to_vec()), false);
    String::from_utf8(b).unwrap()
}

/// The four chunks of the base recording.
fn chunks() -> Vec<Chunk> {
    vec![
        Chunk::of(
            &(line(250_000, "o", "$ ")
                + &line(1_000_000, "i", "echo hi\r")
                + &line(5_000, "o", "echo hi\r\nhi\r\n$ ")),
        ),
        Chunk::of(
            &(line(800_000, "r", "100x30")
                + &line(100_000, "m", "checkpoint")
                + &output(50_000, b"caf\xc3\xa9 \xff\xfe")),
        ),
        Chunk::of(&(line(1_500_000, "o", "ls\r\n") + &line(20_000, "o", "a  b  c\r\n$ "))),
        Chunk::of(&(line(900_000, "o", "exit\r\n") + &line(1_000, "x", "0"))),
    ]
}

/// Two segments of two chunks each, sealed.
fn base() -> Recording {
    let c = chunks();
    Recording {
        segments: vec![
            Segment {
                chunks: c[..2].to_vec(),
                ..Segment::default()
            },
            Segment {
                chunks: c[2..].to_vec(),
                ..Segment::default()
            },
        ],
        ..Recording::default()
    }
}

/// The base recording with chunk 2 replaced.
fn with_chunk2(c: Chunk) -> Recording {
    let mut r = base();
    r.segments[1].chunks[0] = c;
    r
}

/// The base recording with `extra` lines after chunk 2's.
fn chunk2_plus(extra: &str) -> Recording {
    let mut c = chunks().remove(2);
    c.lines.extend(extra.as_bytes());
    with_chunk2(c)
}

/// The base recording with chunk 2's record edited before linking.
fn record2(edit: fn(&mut termtrail_format::chain::ChunkRecord)) -> Recording {
    let mut c = chunks().remove(2);
    c.record = Some(edit);
    with_chunk2(c)
}

/// The base recording with chunk 2's record line edited after linking.
fn record2_line(edit: fn(String) -> String) -> Recording {
    let mut c = chunks().remove(2);
    c.line = Some(edit);
    with_chunk2(c)
}

fn with_header(header: String) -> Recording {
    Recording {
        header: Some(header),
        ..base()
    }
}

fn with_seal(seal: Seal) -> Recording {
    Recording { seal, ..base() }
}

fn body(edit: fn(String) -> String) -> Recording {
    with_seal(Seal {
        body: Some(edit),
        ..Seal::default()
    })
}

/// Changes the first hex digit after `key` in `text` (0 ↔ 1).
pub(crate) fn flip_after(text: String, key: &str) -> String {
    let at = text.find(key).map(|i| i + key.len()).unwrap_or(0);
    let mut b = text.into_bytes();
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).unwrap()
}

pub(crate) fn case(
    name: &'static str,
    check: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
) -> Case {
    Case {
        name,
        check,
        description,
        bytes,
        expect,
    }
}

/// Every vector.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    valid(&mut v);
    not_recordings(&mut v);
    frames(&mut v);
    headers(&mut v);
    records(&mut v);
    events(&mut v);
    crate::cases_tail::index_and_seal(&mut v);
    crate::cases_tail::truncations(&mut v);
    v
}

fn valid(v: &mut Vec<Case>) {
    v.push(case(
        "valid-sealed",
        "valid",
        "two segments of two chunks, sealed (exited 0)",
        base().build().0,
        intact(),
    ));
    let signed = Recording {
        key: true,
        seal: Seal {
            sign: true,
            ..Seal::default()
        },
        ..base()
    };
    v.push(case(
        "valid-signed",
        "valid",
        "signed with the test key (seed 32 bytes of 0x07) named in the header",
        signed.build().0,
        intact(),
    ));
    let mut b = chunks();
    b[3] = Chunk::of(&(output(900_000, b"a\xef\xbf\xbd\xff b\xe2\x82") + &line(1_000, "x", "0")));
    let companions = Recording {
        segments: vec![Segment {
            chunks: b,
            ..Segment::default()
        }],
        ..Recording::default()
    };
    v.push(case(
        "valid-b-companion",
        "valid",
        "`b` companions, one with a U+FFFD that was really in the output (token efbfbd)",
        companions.build().0,
        intact(),
    ));
    let mut three = base();
    three.segments.insert(1, Segment::default());
    three.segments.push(Segment {
        chunks: vec![Chunk::of(&line(0, "m", "end"))],
        ..Segment::default()
    });
    v.push(case(
        "valid-multi-segment",
        "valid",
        "four segments, one of them empty (no chunks)",
        three.build().0,
        intact(),
    ));
    let empty = Recording {
        segments: vec![Segment::default()],
        ..Recording::default()
    };
    v.push(case(
        "valid-empty",
        "valid",
        "no events: segment 0 holds only the header line",
        empty.build().0,
        intact(),
    ));
    let unsealed_rec = with_seal(Seal {
        omit: true,
        ..Seal::default()
    });
    v.push(case(
        "valid-unsealed",
        "V28",
        "both segments and their index frames, no seal: an interrupted recording",
        unsealed_rec.build().0,
        unsealed(),
    ));
    let no_chunk_ms = with_header(default_header(false).replace(r#","chunk_ms":1000"#, ""));
    v.push(case(
        "valid-header-no-chunk-ms",
        "V11",
        "the header has no chunk_ms (informative)",
        no_chunk_ms.build().0,
        intact(),
    ));
    let odd = with_header(
        default_header(false)
            .replace(
                r#""chunk_ms":1000"#,
                r#""chunk_ms":"1s","input":"yes","host":7,"after":[]"#,
            )
            .replace(
                r#""term":{"cols":80,"rows":24}"#,
                r#""term":"wide","title":5,"env":{"A":1}"#,
            ),
    );
    v.push(case("valid-header-informative-types", "V11", "informative header members of the wrong type (term, title, env, chunk_ms, input, host, after)", odd.build().0, intact()));
    let unknown = with_header(
        default_header(false)
            .replace(r#""version":3,"#, r#""version":3,"future":{"x":[1,2]},"#)
            .replace(r#""source":"local""#, r#""source":"local","later":null"#),
    );
    v.push(case(
        "valid-header-unknown-members",
        "V11",
        "unknown members in the header and its termtrail block",
        unknown.build().0,
        intact(),
    ));
    let unusual = chunk2_plus(concat!(
        "[0.000000, \"zz\", \"unknown code\"]\n",
        "[0.000000, \"\\u006f\", \"escaped code \\/ \\ud83d\\ude00 \\u2028 \\t\"]\n",
        "[0.000000, \"r\", \"65535x1\"]\n",
        "[0.000000, \"x\", \"-2147483648\"]\n",
        "[0.000000, \"m\", \"\"]\n",
    ));
    v.push(case("valid-unusual-lines", "V18", "well-formed lines a writer may not write: an unknown code, escapes, extreme r and x data, an empty marker", unusual.build().0, intact()));
    let mut checksum = base();
    checksum.segments[1].checksum = true;
    v.push(case(
        "valid-zstd-checksum",
        "valid",
        "segment 1 is a zstd frame with content size and checksum (any valid frame is accepted)",
        checksum.build().0,
        intact(),
    ));
    v.push(case(
        "valid-seal-unknown-member",
        "V24",
        "an unknown member in the seal body (covered by the seal hash)",
        body(|b| b.replacen(r#"{"format":1,"#, r#"{"format":1,"future":[1],"#, 1))
            .build()
            .0,
        intact(),
    ));
    let ends = with_seal(Seal {
        end: Some(EndReason::Interrupted {
            detail: "recovered".into(),
        }),
        ..Seal::default()
    });
    v.push(case(
        "valid-end-interrupted",
        "valid",
        "sealed by recovery: end reason interrupted",
        ends.build().0,
        intact(),
    ));
}

fn not_recordings(v: &mut Vec<Case>) {
    v.push(case(
        "error-empty",
        "V1",
        "an empty file",
        Vec::new(),
        error("not-a-recording"),
    ));
    v.push(case(
        "error-plain-cast",
        "V2",
        "a plain asciicast v3 file",
        b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[0.100000, \"o\", \"hi\"]\n".to_vec(),
        error("not-a-recording"),
    ));
    v.push(case(
        "error-gzip",
        "V2",
        "a gzip file",
        vec![
            0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        error("not-a-recording"),
    ));
    v.push(case(
        "error-three-bytes",
        "V2",
        "three bytes that start no frame",
        b"abc".to_vec(),
        error("not-a-recording"),
    ));
    let plain = zstd::bulk::compress(
        b"{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n[0.100000, \"o\", \"hi\"]\n",
        3,
    )
    .unwrap();
    v.push(case(
        "error-zstd-asciicast",
        "V9",
        "a zstd-compressed asciicast file without a termtrail block",
        plain,
        error("not-a-recording"),
    ));
    let mut skip_first = skippable(0x184D_2A5D, b"TTSEG1\n{}\n");
    skip_first.extend(
        with_seal(Seal {
            omit: true,
            ..Seal::default()
        })
        .build()
        .0,
    );
    v.push(case(
        "error-starts-with-skippable",
        "V2",
        "an unsealed file whose first frame is a skippable frame",
        skip_first,
        error("not-a-recording"),
    ));
    let not_json = Recording {
        header: Some("not json\n".into()),
        seal: Seal {
            omit: true,
            ..Seal::default()
        },
        ..base()
    };
    v.push(case(
        "error-header-not-json",
        "V9",
        "an unsealed file whose first line is not JSON",
        not_json.build().0,
        error("not-a-recording"),
    ));
    let format2 = with_header(default_header(false).replace(r#""format":1"#, r#""format":2"#));
    v.push(case(
        "error-format-2",
        "V10",
        "termtrail.format 2 in a sealed file",
        format2.build().0,
        error("unsupported-version"),
    ));
    let format2u = Recording {
        seal: Seal {
            omit: true,
            ..Seal::default()
        },
        ..format2
    };
    v.push(case(
        "error-format-2-unsealed",
        "V10",
        "termtrail.format 2, unsealed",
        format2u.build().0,
        error("unsupported-version"),
    ));
    let v2 = with_header(default_header(false).replace(r#""version":3"#, r#""version":2"#));
    v.push(case(
        "error-asciicast-v2",
        "V10",
        "asciicast version 2 with a termtrail block",
        v2.build().0,
        error("unsupported-version"),
    ));
}

fn frames(v: &mut Vec<Case>) {
    let (file, l) = base().build();
    let seal = l.seal.unwrap_or(file.len());
    let insert = |at: usize, what: &[u8]| {
        let mut f = file[..at].to_vec();
        f.extend(what);
        f.extend(&file[at..]);
        f
    };
    v.push(case(
        "frame-garbage",
        "V3",
        "bytes that are no frame between the last index frame and the seal",
        insert(seal, b"GARBAGE!"),
        tampered("frame-structure", None),
    ));
    v.push(case(
        "frame-unknown-skippable",
        "V5",
        "a skippable frame of magic 0x184D2A50 before the seal",
        insert(seal, &skippable(0x184D_2A50, b"x")),
        tampered("frame-structure", None),
    ));
    let mut reserved = base();
    reserved.segments[1].frame = Some(|mut f| {
        f[4] |= 0x08;
        f
    });
    v.push(case(
        "frame-reserved-bit",
        "V4",
        "segment 1's frame header descriptor has its reserved bit set",
        reserved.build().0,
        tampered("frame-structure", None),
    ));
    let mut big = file.clone();
    let (at, _) = l.index[1];
    big[at + 4..at + 8].copy_from_slice(&0xFFFFu32.to_le_bytes());
    v.push(case(
        "frame-skippable-past-end",
        "V6",
        "in a file that ends with the seal trailer, an index frame's size runs past the end",
        big,
        tampered("frame-structure", None),
    ));
    let mut sk = skippable(0x184D_2A5D, b"TTSEG1\n{}\n");
    sk.extend(&file);
    v.push(case(
        "frame-starts-with-skippable-sealed",
        "V2",
        "a sealed file whose first frame is a skippable frame",
        sk,
        tampered("frame-structure", None),
    ));
    let mut after = file.clone();
    after.push(b'x');
    v.push(case(
        "data-after-seal",
        "V27",
        "one byte after the seal",
        after,
        tampered("data-after-seal", None),
    ));
    let mut twice = file.clone();
    twice.extend(&file[seal..]);
    v.push(case(
        "data-after-seal-second-seal",
        "V27",
        "the seal frame twice",
        twice,
        tampered("data-after-seal", None),
    ));
    let mut unsealed_tail = with_seal(Seal {
        omit: true,
        ..Seal::default()
    })
    .build()
    .0;
    unsealed_tail.extend(b"ab");
    v.push(case(
        "frame-garbage-short-tail",
        "V3",
        "an unsealed file followed by two bytes that start no frame",
        unsealed_tail,
        tampered("frame-structure", None),
    ));
    let mut corrupt0 = base();
    corrupt0.segments[0].frame =
        Some(|_| vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 0x0d, 0x00, 0x00, 0xff]);
    v.push(case(
        "segment-0-corrupt",
        "V7",
        "segment 0 is one block no decoder can decode (no header line decodes)",
        corrupt0.build().0,
        tampered("segment-corrupt", None),
    ));
    let mut corrupt = base();
    corrupt.segments[1].undecodable_tail = true;
    v.push(case(
        "segment-corrupt",
        "V7",
        "segment 1 holds chunk 2 in a raw block, then a block no decoder can decode",
        corrupt.build().0,
        tampered("segment-corrupt", None),
    ));
}

fn headers(v: &mut Vec<Case>) {
    let h = default_header(false);
    let no_newline = Recording {
        header: Some(h.trim_end().to_string()),
        segments: vec![Segment::default()],
        ..Recording::default()
    };
    v.push(case(
        "header-no-newline",
        "V8",
        "segment 0 is complete but holds no newline",
        no_newline.build().0,
        tampered("header-invalid", None),
    ));
    v.push(case(
        "header-not-json-sealed",
        "V9",
        "a sealed file whose first line is not JSON",
        with_header("not json\n".into()).build().0,
        tampered("header-invalid", None),
    ));
    v.push(case(
        "header-no-termtrail-sealed",
        "V9",
        "a sealed file whose header has no termtrail block",
        with_header("{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n".into())
            .build()
            .0,
        tampered("header-invalid", None),
    ));
    v.push(case(
        "header-format-string",
        "V11",
        "termtrail.format is the string \"1\"",
        with_header(h.replace(r#""format":1"#, r#""format":"1""#))
            .build()
            .0,
        tampered("header-invalid", None),
    ));
    v.push(case(
        "header-format-missing",
        "V11",
        "termtrail.format is missing",
        with_header(h.replace(r#""format":1,"#, "")).build().0,
        tampered("header-invalid", None),
    ));
    v.push(case(
        "header-id-missing",
        "V11",
        "termtrail.id is missing",
        with_header(h.replace(&format!(r#""id":"{}","#, hex::encode(crate::forge::ID)), ""))
            .build()
            .0,
        tampered("header-invalid", None),
    ));
    v.push(case(
        "header-id-uppercase",
        "V11",
        "termtrail.id in uppercase hex",
        with_header(h.replace("7e57", "7E57")).build().0,
        tampered("header-invalid", None),
    ));
    v.push(case(
        "header-key-malformed",
        "V11",
        "termtrail.key without its public key",
        with_header(h.replace(
            r#""input":true"#,
            r#""input":true,"key":{"alg":"ed25519","id":"0011223344556677"}"#,
        ))
        .build()
        .0,
        tampered("header-invalid", None),
    ));
}

fn records(v: &mut Vec<Case>) {
    v.push(case(
        "record-not-canonical",
        "V12",
        "chunk 2's record writes chunk=02",
        record2_line(|l| l.replace("chunk=2 ", "chunk=02 "))
            .build()
            .0,
        tampered("bad-record", Some(2)),
    ));
    v.push(case(
        "record-uppercase-hex",
        "V12",
        "chunk 2's record has its sha256 in uppercase",
        record2_line(|l| {
            let (a, b) = l.split_once(" sha256=").unwrap();
            let (h, rest) = b.split_once(' ').unwrap();
            format!("{a} sha256={} {rest}", h.to_uppercase())
        })
        .build()
        .0,
        tampered("bad-record", Some(2)),
    ));
    v.push(case(
        "record-extra-field",
        "V12",
        "chunk 2's record has an extra field",
        record2_line(|l| l.replace(" link=", " x=1 link="))
            .build()
            .0,
        tampered("bad-record", Some(2)),
    ));
    v.push(case(
        "record-crlf",
        "V12",
        "chunk 2's record ends in \\r\\n",
        record2_line(|l| l.replace('\n', "\r\n")).build().0,
        tampered("bad-record", Some(2)),
    ));
    v.push(case(
        "sequence-skip",
        "V13",
        "chunk 2's record says chunk=3 (a chunk missing)",
        record2(|r| r.seq = 3).build().0,
        tampered("sequence", Some(2)),
    ));
    v.push(case(
        "sequence-repeat",
        "V13",
        "chunk 2's record says chunk=1 (duplicated)",
        record2(|r| r.seq = 1).build().0,
        tampered("sequence", Some(2)),
    ));
    let mut changed = chunks().remove(2);
    let mut stored = changed.lines.clone();
    stored[22] ^= 0x01;
    changed.stored = Some(stored);
    v.push(case(
        "content-changed",
        "V14",
        "one byte of chunk 2's event lines changed",
        with_chunk2(changed).build().0,
        tampered("content-mismatch", Some(2)),
    ));
    v.push(case(
        "content-len",
        "V14",
        "chunk 2's record gives len one too many (relinked)",
        record2(|r| r.len += 1).build().0,
        tampered("content-mismatch", Some(2)),
    ));
    v.push(case(
        "content-n",
        "V14",
        "chunk 2's record gives n one too many (relinked)",
        record2(|r| r.lines += 1).build().0,
        tampered("content-mismatch", Some(2)),
    ));
    v.push(case(
        "content-sha256",
        "V14",
        "chunk 2's record has another sha256 (relinked)",
        record2(|r| r.sha256[0] ^= 1).build().0,
        tampered("content-mismatch", Some(2)),
    ));
    v.push(case(
        "link-mismatch",
        "V15",
        "chunk 2's link changed",
        record2_line(|l| flip_after(l, " link=")).build().0,
        tampered("link-mismatch", Some(2)),
    ));
    v.push(case(
        "record-time-backwards",
        "V16",
        "chunk 2's record starts before chunk 1's last event",
        record2(|r| r.first = 0).build().0,
        tampered("record-time", Some(2)),
    ));
    v.push(case(
        "record-time-inverted",
        "V16",
        "chunk 2's record has last before first",
        record2(|r| r.last = r.first - 1).build().0,
        tampered("record-time", Some(2)),
    ));
    let mut with_empty = base();
    with_empty.segments[1].chunks.insert(0, Chunk::default());
    v.push(case(
        "empty-chunk",
        "V17",
        "a chunk with no event lines (n=0 len=0) before chunk 3",
        with_empty.build().0,
        tampered("empty-chunk", Some(2)),
    ));
    v.push(case(
        "event-time-first",
        "V20",
        "chunk 2's record puts its first event 1 µs later than its lines do",
        record2(|r| {
            r.first += 1;
            r.last += 1;
        })
        .build()
        .0,
        tampered("event-time", Some(2)),
    ));
    v.push(case(
        "event-time-last",
        "V20",
        "chunk 2's record puts its last event 1 µs later than its lines do",
        record2(|r| r.last += 1).build().0,
        tampered("event-time", Some(2)),
    ));
    let mut open = base();
    open.segments[1].chunks[1].no_record = true;
    v.push(case(
        "unterminated-chunk",
        "V21",
        "segment 1 is complete but ends with chunk 3's lines and no record",
        open.build().0,
        tampered("unterminated-chunk", Some(3)),
    ));
}

fn events(v: &mut Vec<Case>) {
    let bad = |name, description, extra: &str| {
        case(
            name,
            "V18",
            description,
            chunk2_plus(extra).build().0,
            tampered("bad-event", Some(2)),
        )
    };
    v.push(bad(
        "event-time-short",
        "a time with one decimal (0.5)",
        "[0.5, \"o\", \"x\"]\n",
    ));
    v.push(bad(
        "event-time-leading-zero",
        "a time with a leading zero (00.100000)",
        "[00.100000, \"o\", \"x\"]\n",
    ));
    v.push(bad(
        "event-time-exponent",
        "a time in exponent form",
        "[1e-1, \"o\", \"x\"]\n",
    ));
    v.push(bad(
        "event-separator",
        "no space after the first comma",
        "[0.100000,\"o\", \"x\"]\n",
    ));
    v.push(bad(
        "event-space-before-bracket",
        "a space before the closing bracket",
        "[0.100000, \"o\", \"x\" ]\n",
    ));
    v.push(bad(
        "event-data-number",
        "data is a number",
        "[0.100000, \"o\", 5]\n",
    ));
    v.push(bad(
        "event-four-fields",
        "four fields",
        "[0.100000, \"o\", \"x\", \"y\"]\n",
    ));
    v.push(bad(
        "event-empty-code",
        "an empty code",
        "[0.100000, \"\", \"x\"]\n",
    ));
    v.push(bad(
        "event-comment-line",
        "a `#` comment line among the events",
        "#note\n",
    ));
    v.push(bad("event-blank-line", "an empty line", "\n"));
    v.push(bad(
        "event-crlf",
        "a line ending in \\r\\n",
        "[0.100000, \"o\", \"x\"]\r\n",
    ));
    v.push(bad(
        "event-raw-control",
        "a raw tab inside the data string",
        "[0.100000, \"o\", \"a\tb\"]\n",
    ));
    v.push(bad(
        "event-lone-surrogate",
        "an unpaired surrogate escape",
        "[0.100000, \"o\", \"\\ud800\"]\n",
    ));
    v.push(bad(
        "event-bad-escape",
        "an invalid escape",
        "[0.100000, \"o\", \"\\x41\"]\n",
    ));
    v.push(bad(
        "event-resize-bad",
        "r data that is not COLSxROWS",
        "[0.100000, \"r\", \"80x\"]\n",
    ));
    v.push(bad(
        "event-resize-zero",
        "r data with a zero size",
        "[0.100000, \"r\", \"0x24\"]\n",
    ));
    v.push(bad(
        "event-exit-bad",
        "x data that is not a decimal integer",
        "[0.100000, \"x\", \"zero\"]\n",
    ));
    v.push(bad(
        "event-exit-plus",
        "x data with a plus sign",
        "[0.100000, \"x\", \"+1\"]\n",
    ));
    let mut not_utf8 = chunks().remove(2);
    not_utf8.lines.extend(b"[0.100000, \"o\", \"\xff\"]\n");
    v.push(case(
        "event-not-utf8",
        "V18",
        "a line that is not UTF-8",
        with_chunk2(not_utf8).build().0,
        tampered("bad-event", Some(2)),
    ));
    let comp = |name, description, extra: &str| {
        case(
            name,
            "V19",
            description,
            chunk2_plus(extra).build().0,
            tampered("bad-companion", Some(2)),
        )
    };
    let o = "[0.100000, \"o\", \"a\u{FFFD}\"]\n";
    v.push(comp(
        "companion-after-marker",
        "a `b` line after an `m` line",
        "[0.100000, \"m\", \"\u{FFFD}\"]\n[0.000000, \"b\", \"ff\"]\n",
    ));
    v.push(comp(
        "companion-nonzero-interval",
        "a `b` line at interval 0.000001",
        &format!("{o}[0.000001, \"b\", \"ff\"]\n"),
    ));
    v.push(comp(
        "companion-count",
        "two tokens for one U+FFFD",
        &format!("{o}[0.000000, \"b\", \"ff fe\"]\n"),
    ));
    v.push(comp(
        "companion-uppercase",
        "an uppercase hex token",
        &format!("{o}[0.000000, \"b\", \"FF\"]\n"),
    ));
    v.push(comp(
        "companion-odd-token",
        "a token of three hex digits",
        &format!("{o}[0.000000, \"b\", \"fff\"]\n"),
    ));
    v.push(comp(
        "companion-double-space",
        "tokens separated by two spaces",
        &format!(
            "{}[0.000000, \"b\", \"ff  fe\"]\n",
            "[0.100000, \"o\", \"\u{FFFD}\u{FFFD}\"]\n"
        ),
    ));
    v.push(comp(
        "companion-empty",
        "a `b` line with empty data",
        "[0.100000, \"o\", \"a\"]\n[0.000000, \"b\", \"\"]\n",
    ));
    v.push(comp(
        "companion-twice",
        "two `b` lines after one `o` line",
        &format!("{o}[0.000000, \"b\", \"ff\"]\n[0.000000, \"b\", \"ff\"]\n"),
    ));
    let mut first = chunks();
    first[1].lines.extend(o.as_bytes());
    first[2].lines = [b"[0.000000, \"b\", \"ff\"]\n".as_slice(), &first[2].lines].concat();
    let across = Recording {
        segments: vec![
            Segment {
                chunks: first[..2].to_vec(),
                ..Segment::default()
            },
            Segment {
                chunks: first[2..].to_vec(),
                ..Segment::default()
            },
        ],
        ..Recording::default()
    };
    v.push(case(
        "companion-across-chunks",
        "V19",
        "an `o` line ends chunk 1, its `b` line starts chunk 2",
        across.build().0,
        tampered("bad-companion", Some(2)),
    ));
}

/// Offsets of a built file, for the cases that cut or edit it.
pub fn base_with_layout() -> (Vec<u8>, Layout) {
    base().build()
}

/// The base recording with its seal built as given.
pub fn sealed_with(seal: Seal) -> Recording {
    with_seal(seal)
}

/// The base recording with segment `n`'s index frame written as given.
pub fn index_of(n: usize, index: Index) -> Recording {
    let mut r = base();
    r.segments[n].index = index;
    r
}

/// The base recording with a seal body edit.
pub fn seal_body(edit: fn(String) -> String) -> Recording {
    body(edit)
}
