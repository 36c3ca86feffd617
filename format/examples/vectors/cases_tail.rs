//! The conformance vectors of index frames, the seal, signatures and
//! truncation points.

use crate::cases::{
    Case, base_with_layout, case, flip_after as flip, index_of, seal_body, sealed_with, tampered,
    unsealed,
};
use crate::forge::{Index, Recording, Seal, default_header, key_json};

/// Index frames, seal and signature.
pub fn index_and_seal(v: &mut Vec<Case>) {
    v.push(case(
        "index-missing",
        "V22",
        "segment 0 is followed by segment 1, not by its index frame",
        index_of(0, Index::Omit).build().0,
        tampered("index-missing", None),
    ));
    v.push(case(
        "index-missing-before-seal",
        "V22",
        "the last segment is followed by the seal, not by its index frame",
        index_of(1, Index::Omit).build().0,
        tampered("index-missing", None),
    ));
    v.push(case(
        "index-twice",
        "V22",
        "segment 0's index frame written twice",
        index_of(0, Index::Twice).build().0,
        tampered("index-missing", None),
    ));
    v.push(case(
        "index-offset",
        "V23",
        "segment 1's index frame gives another offset",
        index_of(1, Index::Edit(|p| flip(p, "\"length\":")))
            .build()
            .0,
        tampered("index-mismatch", None),
    ));
    v.push(case(
        "index-link",
        "V23",
        "segment 0's index frame gives another link_out",
        index_of(0, Index::Edit(|p| flip(p, "\"link_out\":\"")))
            .build()
            .0,
        tampered("index-mismatch", None),
    ));
    v.push(case(
        "index-not-canonical",
        "V23",
        "segment 0's index entry with a space after each comma (same values)",
        index_of(0, Index::Edit(|p| p.replace(",\"", ", \"")))
            .build()
            .0,
        tampered("index-mismatch", None),
    ));
    v.push(case(
        "index-unknown-member",
        "V23",
        "segment 0's index entry with an extra member",
        index_of(0, Index::Edit(|p| p.replace("}\n", ",\"x\":1}\n")))
            .build()
            .0,
        tampered("index-mismatch", None),
    ));
    v.push(case(
        "index-prefix",
        "V23",
        "segment 0's index frame starts TTSEG2",
        index_of(0, Index::Edit(|p| p.replace("TTSEG1", "TTSEG2")))
            .build()
            .0,
        tampered("index-mismatch", None),
    ));

    let frame = |f: fn(Vec<u8>) -> Vec<u8>| {
        sealed_with(Seal {
            frame: Some(f),
            ..Seal::default()
        })
        .build()
        .0
    };
    let text = |f: fn(String) -> String| {
        sealed_with(Seal {
            text: Some(f),
            ..Seal::default()
        })
        .build()
        .0
    };
    v.push(case(
        "seal-prefix",
        "V24",
        "the seal payload starts TTSEAL2",
        frame(|mut f| {
            f[14] = b'2';
            f
        }),
        tampered("seal-invalid", None),
    ));
    v.push(case(
        "seal-trailer-length",
        "V24",
        "the seal trailer's length is one too many",
        frame(|mut f| {
            let at = f.len() - 12;
            f[at] = f[at].wrapping_add(1);
            f
        }),
        tampered("seal-invalid", None),
    ));
    v.push(case(
        "seal-hash-uppercase",
        "V24",
        "the seal= line in uppercase hex",
        text(|t| {
            let (body, rest) = t.split_once("\nseal=").unwrap();
            format!("{body}\nseal={}", rest.to_uppercase())
        }),
        tampered("seal-invalid", None),
    ));
    v.push(case(
        "seal-trailing-line",
        "V24",
        "a line after the seal= line that is not sig=",
        text(|t| t + "x=1\n"),
        tampered("seal-invalid", None),
    ));
    v.push(case(
        "seal-body-missing-member",
        "V24",
        "the seal body without sealed_at (hash recomputed)",
        seal_body(|b| b.replace(r#""sealed_at":1790000100,"#, ""))
            .build()
            .0,
        tampered("seal-invalid", None),
    ));
    v.push(case(
        "seal-body-duplicate-member",
        "V24",
        "the seal body with format twice (hash recomputed)",
        seal_body(|b| b.replacen(r#""format":1,"#, r#""format":1,"format":1,"#, 1))
            .build()
            .0,
        tampered("seal-invalid", None),
    ));
    let array = sealed_with(Seal {
        // Each value serialised on its own (a `json!` array would go
        // through serde_json's map, whose member order depends on features
        // a workspace build unifies).
        body_from: Some(|b| {
            let j = |v: &dyn erased::Json| v.json();
            format!(
                "[{}]",
                [
                    j(&b.format),
                    j(&b.id),
                    j(&b.chunks),
                    j(&b.lines),
                    j(&b.duration),
                    j(&b.bytes),
                    j(&b.end),
                    j(&b.sealed_at),
                    j(&b.last_link),
                    j(&b.segments),
                ]
                .join(",")
            )
        }),
        ..Seal::default()
    });
    v.push(case(
        "seal-body-array",
        "V24",
        "the seal body written as an array of its values in member order (hash recomputed)",
        array.build().0,
        tampered("seal-invalid", None),
    ));
    v.push(case(
        "seal-unknown-end",
        "V24",
        "an end reason the spec does not list (hash recomputed)",
        seal_body(|b| {
            b.replace(
                r#"{"reason":"exited","code":0}"#,
                r#"{"reason":"vanished"}"#,
            )
        })
        .build()
        .0,
        tampered("seal-invalid", None),
    ));
    v.push(case(
        "seal-format-2",
        "V25",
        "the seal body says format 2 (hash recomputed)",
        seal_body(|b| b.replacen(r#""format":1,"#, r#""format":2,"#, 1))
            .build()
            .0,
        tampered("seal-mismatch", None),
    ));
    v.push(case(
        "seal-id",
        "V25",
        "the seal body names another recording id (hash recomputed)",
        seal_body(|b| flip(b, "\"id\":\"")).build().0,
        tampered("seal-mismatch", None),
    ));
    v.push(case(
        "seal-chunks",
        "V25",
        "the seal body counts 5 chunks (hash recomputed)",
        seal_body(|b| b.replacen(r#""chunks":4,"#, r#""chunks":5,"#, 1))
            .build()
            .0,
        tampered("seal-mismatch", None),
    ));
    v.push(case(
        "seal-duration",
        "V25",
        "the seal body's duration 1 µs longer (hash recomputed)",
        seal_body(|b| {
            let (a, rest) = b.split_once("\"duration\":").unwrap();
            let (n, rest) = rest.split_once(',').unwrap();
            format!("{a}\"duration\":{},{rest}", n.parse::<u64>().unwrap() + 1)
        })
        .build()
        .0,
        tampered("seal-mismatch", None),
    ));
    v.push(case(
        "seal-last-link",
        "V25",
        "the seal body's last_link changed (hash recomputed)",
        seal_body(|b| flip(b, "\"last_link\":\"")).build().0,
        tampered("seal-mismatch", None),
    ));
    v.push(case(
        "seal-segments",
        "V25",
        "the seal body's copy of segment 0's entry changed (hash recomputed)",
        seal_body(|b| flip(b, "\"link_out\":\"")).build().0,
        tampered("seal-mismatch", None),
    ));
    v.push(case(
        "seal-hash",
        "V25",
        "the seal= hash changed",
        text(|t| flip(t, "\nseal=")),
        tampered("seal-mismatch", None),
    ));

    let signed = |seal: Seal, key: bool, header: Option<String>| {
        Recording {
            key,
            header,
            seal,
            ..crate::cases::sealed_with(Seal::default())
        }
        .build()
        .0
    };
    let sign = Seal {
        sign: true,
        ..Seal::default()
    };
    v.push(case(
        "signature-bad",
        "V26",
        "the signature changed",
        signed(
            Seal {
                text: Some(|t| flip(t, "\nsig=")),
                ..sign.clone()
            },
            true,
            None,
        ),
        tampered("signature-invalid", None),
    ));
    v.push(case(
        "signature-missing",
        "V26",
        "the header names a key, the seal has no sig= line",
        signed(Seal::default(), true, None),
        tampered("signature-invalid", None),
    ));
    v.push(case(
        "signature-without-key",
        "V26",
        "the seal is signed, the header names no key",
        signed(sign.clone(), false, None),
        tampered("signature-invalid", None),
    ));
    let wrong_id = default_header(false).replace(
        r#""input":true"#,
        &format!(r#""input":true,{}"#, flip(key_json(), r#""id":""#)),
    );
    v.push(case(
        "signature-key-id",
        "V26",
        "the header's key id is not the id of its public key",
        signed(sign, false, Some(wrong_id)),
        tampered("signature-invalid", None),
    ));
}

/// A file cut at every class of point.
pub fn truncations(v: &mut Vec<Case>) {
    let (file, l) = base_with_layout();
    let cut = |n: usize| file[..n].to_vec();
    let (s0, _, ref f0) = l.segments[0];
    let (s1, len1, ref f1) = l.segments[1];
    let (i0, _) = l.index[0];
    let (i1, ilen1) = l.index[1];
    let seal = l.seal.unwrap_or(file.len());
    let cuts: [(&'static str, &'static str, usize); 17] = [
        (
            "cut-in-first-magic",
            "2 bytes: a cut inside segment 0's magic",
            s0 + 2,
        ),
        (
            "cut-in-frame-header",
            "5 bytes: a cut inside segment 0's frame header",
            s0 + 5,
        ),
        (
            "cut-in-header-line",
            "a cut before the header line's flush ends",
            f0[0] - 2,
        ),
        (
            "cut-after-header",
            "a cut right after the header line's flush",
            f0[0],
        ),
        (
            "cut-in-chunk",
            "a cut inside chunk 1",
            f0[1] + (f0[2] - f0[1]) / 2,
        ),
        (
            "cut-between-chunks",
            "a cut right after chunk 0's flush",
            f0[1],
        ),
        (
            "cut-at-segment-end",
            "a cut right after segment 0's frame, before its index frame",
            i0,
        ),
        (
            "cut-in-index-magic-1",
            "1 byte into segment 0's index frame",
            i0 + 1,
        ),
        (
            "cut-in-index-magic-3",
            "3 bytes into segment 0's index frame",
            i0 + 3,
        ),
        (
            "cut-in-index-size",
            "6 bytes into segment 0's index frame",
            i0 + 6,
        ),
        (
            "cut-in-index-body",
            "inside segment 0's index entry",
            i0 + 30,
        ),
        (
            "cut-after-index",
            "right after segment 0's index frame (a frame boundary)",
            s1,
        ),
        ("cut-in-segment-1", "inside chunk 3 in segment 1", f1[1] - 3),
        (
            "cut-after-last-index",
            "right after segment 1's index frame: no seal",
            i1 + ilen1,
        ),
        ("cut-in-seal-magic", "2 bytes into the seal frame", seal + 2),
        ("cut-in-seal-body", "inside the seal's body", seal + 40),
        (
            "cut-before-last-byte",
            "the whole file but its last byte",
            file.len() - 1,
        ),
    ];
    let _ = len1;
    for (name, description, at) in cuts {
        v.push(case(name, "V28", description, cut(at), unsealed()));
    }
    // No cut makes this: segment 0 complete, its index frame skipped, and
    // the start of segment 1's magic (§7.1 step 7: checked as in step 3,
    // so the missing index frame is found).
    let mut skipped = file[..i0].to_vec();
    skipped.extend_from_slice(&file[s1..s1 + 3]);
    v.push(case(
        "cut-in-next-magic-without-index",
        "V22",
        "segment 0, then 3 bytes of segment 1's magic: the index frame between is missing",
        skipped,
        tampered("index-missing", None),
    ));
}

/// One value as JSON text, through `serde::Serialize` directly (a struct
/// keeps its members' declared order).
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}
