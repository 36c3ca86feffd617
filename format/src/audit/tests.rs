//! The audit format's tests: every tamper class is found, a torn tail is
//! told apart from garbage, and recovery is accepted only in its own form.

use proptest::prelude::*;

use super::*;
use crate::seal::EndReason;

const LOG: &str = "00112233445566778899aabbccddeeff";

fn event(i: u64) -> AuditEvent {
    match i % 4 {
        0 => AuditEvent::ShellStart(ShellStart {
            session: format!("s-{i}"),
            shell: format!("sh{i}"),
            principal: "alice".into(),
            auth: "none".into(),
            source: Some("127.0.0.1:5000".into()),
            recording: "r.cast.zst".into(),
            break_glass: None,
        }),
        1 => AuditEvent::Decision(Decision {
            principal: "bob".into(),
            auth: "jwt".into(),
            groups: vec!["dev".into()],
            action: "OpenShell".into(),
            runtime: "rt".into(),
            allowed: false,
            reason: Some("no policy permits it".into()),
            ..Decision::default()
        }),
        2 => AuditEvent::ShellEnd(ShellEnd {
            session: format!("s-{i}"),
            shell: format!("sh{i}"),
            end: EndReason::Exited { code: 0 },
        }),
        _ => AuditEvent::Start(ServerStart {
            version: "0.1.0".into(),
            pid: 42,
            listen: None,
        }),
    }
}

/// The lines of a log `log` of `n` events, continuing from `after`.
fn lines_of(log: &str, n: u64) -> Vec<Vec<u8>> {
    let mut prev = genesis(log);
    (1..=n)
        .map(|seq| {
            let line = encode_line(
                seq,
                1_764_936_000_000_000 + seq as i64,
                log,
                &prev,
                &event(seq),
            )
            .unwrap();
            prev = crate::chain::sha256(&line);
            line
        })
        .collect()
}

fn run(lines: &[Vec<u8>]) -> AuditReport {
    verify(&lines.concat()[..])
}

fn tampered_at(r: &AuditReport) -> u64 {
    match &r.verdict {
        AuditVerdict::Tampered { line, .. } => *line,
        v => panic!("not tampered: {v:?}"),
    }
}

#[test]
fn an_untouched_log_is_intact_with_its_head() {
    let lines = lines_of(LOG, 5);
    let r = run(&lines);
    assert_eq!(r.verdict, AuditVerdict::Intact);
    assert_eq!(r.lines, 5);
    let head = r.head.unwrap();
    assert_eq!(head.seq, 5);
    assert_eq!(head.hash, line_hash(&lines[4]));
    assert_eq!(r.last_event.as_deref(), Some("decision"));
    assert_eq!(r.end_offset, lines.concat().len() as u64);
    assert_eq!(
        r.first_time.as_deref(),
        Some("2025-12-05T12:00:00.000001Z"),
        "RFC 3339 UTC with microseconds"
    );
}

#[test]
fn lines_start_with_the_head_fields_in_order() {
    let line = &lines_of(LOG, 1)[0];
    let text = std::str::from_utf8(line).unwrap();
    let want = format!(
        "{{\"seq\":1,\"time\":\"2025-12-05T12:00:00.000001Z\",\"log\":\"{LOG}\",\"prev\":\"{}\",\"event\":\"decision\",",
        hex::encode(genesis(LOG))
    );
    assert!(text.starts_with(&want), "{text}");
    assert!(text.ends_with("}\n"));
    let back: AuditEvent = serde_json::from_str(text).unwrap();
    assert_eq!(back, event(1), "the event reads back (head fields ignored)");
}

#[test]
fn an_edited_byte_in_any_field_of_a_middle_line_is_found() {
    let lines = lines_of(LOG, 4);
    for at in 0..3 {
        for pos in 0..lines[at].len() - 1 {
            let mut edited = lines.clone();
            let b = edited[at][pos];
            edited[at][pos] = if b == b'0' { b'1' } else { b'0' };
            let r = run(&edited);
            let line = tampered_at(&r);
            assert!(
                line == at as u64 + 1 || line == at as u64 + 2,
                "edit at line {} byte {pos} reported at line {line}",
                at + 1
            );
        }
    }
}

#[test]
fn removed_first_or_middle_lines_are_found() {
    let lines = lines_of(LOG, 5);
    let mut no_first = lines.clone();
    no_first.remove(0);
    let r = run(&no_first);
    assert_eq!(tampered_at(&r), 1);
    assert!(matches!(
        r.verdict,
        AuditVerdict::Tampered {
            reason: TamperReason::Seq {
                expected: 1,
                found: 2
            },
            ..
        }
    ));
    let mut no_middle = lines.clone();
    no_middle.remove(2);
    assert_eq!(tampered_at(&run(&no_middle)), 3);
}

#[test]
fn reordered_inserted_and_duplicated_lines_are_found() {
    let lines = lines_of(LOG, 5);
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    assert_eq!(tampered_at(&run(&swapped)), 2);
    let mut dup = lines.clone();
    dup.insert(3, lines[2].clone());
    assert_eq!(tampered_at(&run(&dup)), 4);
    let mut inserted = lines.clone();
    inserted.insert(2, b"{\"seq\":3}\n".to_vec());
    assert_eq!(tampered_at(&run(&inserted)), 3);
}

#[test]
fn a_line_of_another_log_is_found_even_at_the_right_place() {
    let other = "ffeeddccbbaa99887766554433221100";
    let mut lines = lines_of(LOG, 4);
    lines[2] = lines_of(other, 3)[2].clone();
    let r = run(&lines);
    assert_eq!(tampered_at(&r), 3);
    assert!(matches!(
        r.verdict,
        AuditVerdict::Tampered {
            reason: TamperReason::ForeignLog { .. },
            ..
        }
    ));
}

#[test]
fn a_torn_last_line_is_torn_and_a_garbage_last_line_tampered() {
    let mut lines = lines_of(LOG, 4);
    let cut = lines[3].len() / 2;
    lines[3].truncate(cut);
    let r = run(&lines);
    assert_eq!(
        r.verdict,
        AuditVerdict::Torn(Torn {
            intact_up_to: 3,
            bytes: cut as u64,
            completable: false
        })
    );
    assert_eq!(r.head.unwrap().seq, 3);
    // The same bytes with a newline: a line the writer never writes.
    lines[3].push(b'\n');
    assert_eq!(tampered_at(&run(&lines)), 4);
    // A last line missing only its newline can be completed.
    let mut whole = lines_of(LOG, 4);
    whole[3].pop();
    let r = run(&whole);
    assert!(matches!(
        r.verdict,
        AuditVerdict::Torn(Torn {
            completable: true,
            ..
        })
    ));
}

#[test]
fn torn_bytes_after_tampering_are_still_tampering() {
    let mut lines = lines_of(LOG, 5);
    lines.remove(2);
    lines[3].pop();
    assert_eq!(tampered_at(&run(&lines)), 3);
}

/// `lines` followed by torn `bytes`, a newline, and the `recovered` line
/// the writer adds for them.
fn recovered_after(lines: &[Vec<u8>], torn: &[u8]) -> Vec<Vec<u8>> {
    let mut out = lines.to_vec();
    let mut span = torn.to_vec();
    span.push(b'\n');
    let seq = lines.len() as u64 + 1;
    let prev = lines
        .last()
        .map_or(genesis(LOG), |l| crate::chain::sha256(l));
    let ev = AuditEvent::Recovered(Recovered {
        torn_bytes: span.len() as u64,
        torn_sha256: hex::encode(crate::chain::sha256(&span)),
    });
    out.push(span);
    out.push(encode_line(seq, 1_764_936_100_000_000, LOG, &prev, &ev).unwrap());
    out
}

#[test]
fn a_recovered_torn_tail_is_intact_in_exactly_that_form() {
    let lines = lines_of(LOG, 3);
    let log = recovered_after(&lines, b"{\"seq\":4,\"ti");
    let r = run(&log);
    assert_eq!(r.verdict, AuditVerdict::Intact);
    assert_eq!(r.recovered, 1);
    assert_eq!(r.head.as_ref().unwrap().seq, 4);
    assert_eq!(r.last_event.as_deref(), Some("recovered"));
    // The torn bytes changed: the recovered line no longer accounts for them.
    let mut changed = log.clone();
    changed[3][2] = b'x';
    assert_eq!(tampered_at(&run(&changed)), 4);
    // The torn bytes removed.
    let mut removed = log.clone();
    removed.remove(3);
    assert_eq!(tampered_at(&run(&removed)), 4);
    // A first line torn before anything else was written.
    let r = run(&recovered_after(&[], b"{\"seq\":1,"));
    assert_eq!(r.verdict, AuditVerdict::Intact);
}

#[test]
fn a_recovery_cannot_hide_complete_lines() {
    let lines = lines_of(LOG, 4);
    // Line 4 (a complete audit line) dropped under a "recovered" cover.
    let hidden = std::str::from_utf8(&lines[3])
        .unwrap()
        .trim_end()
        .to_string();
    let log = recovered_after(&lines[..3], hidden.as_bytes());
    let mut cover = log.clone();
    cover[3] = lines[3].clone();
    let r = run(&cover);
    assert!(matches!(r.verdict, AuditVerdict::Tampered { .. }), "{r:?}");
}

#[test]
fn empty_files_and_other_files_are_not_audit_logs() {
    assert!(matches!(
        verify(&b""[..]).verdict,
        AuditVerdict::NotAuditLog { .. }
    ));
    assert!(matches!(
        verify(&b"hello\nworld\n"[..]).verdict,
        AuditVerdict::NotAuditLog { .. }
    ));
    for other in [&b"hello\nworld"[..], b"hello"] {
        assert!(
            matches!(verify(other).verdict, AuditVerdict::NotAuditLog { .. }),
            "{other:?}"
        );
    }
    // A broken first line before intact ones is tampering, not another file.
    let mut lines = lines_of(LOG, 3);
    lines[0] = b"garbage\n".to_vec();
    assert_eq!(tampered_at(&run(&lines)), 1);
}

#[test]
fn over_long_lines_stop_the_check() {
    let mut log = lines_of(LOG, 1).concat();
    log.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
    let r = verify(&log[..]);
    assert_eq!(
        r.verdict,
        AuditVerdict::Tampered {
            line: 2,
            reason: TamperReason::TooLong
        }
    );
}

#[test]
fn an_anchor_finds_a_cut_end_and_an_edited_last_line() {
    let lines = lines_of(LOG, 5);
    let anchor: Anchor = format!("5:{}", line_hash(&lines[4])).parse().unwrap();
    assert!("5:abc".parse::<Anchor>().is_err());
    assert!("x:".parse::<Anchor>().is_err());
    let all = lines.concat();
    assert_eq!(
        verify_with(&all[..], Some(&anchor)).verdict,
        AuditVerdict::Intact
    );
    // Without the anchor, a cut end looks intact.
    let cut = lines[..4].concat();
    assert_eq!(verify(&cut[..]).verdict, AuditVerdict::Intact);
    assert!(matches!(
        verify_with(&cut[..], Some(&anchor)).verdict,
        AuditVerdict::Tampered {
            reason: TamperReason::AnchorMissing { anchor: 5, last: 4 },
            ..
        }
    ));
    let mut edited = lines.clone();
    let at = edited[4].windows(5).position(|w| w == b"\"bob\"").unwrap();
    edited[4][at + 3] = b'p';
    assert_eq!(verify(&edited.concat()[..]).verdict, AuditVerdict::Intact);
    assert!(matches!(
        verify_with(&edited.concat()[..], Some(&anchor)).verdict,
        AuditVerdict::Tampered {
            reason: TamperReason::AnchorDiffers(5),
            ..
        }
    ));
}

#[test]
fn controls_are_made_visible() {
    assert_eq!(visible("a\x1b]52;c;x\x07b"), "a^[]52;c;x^Gb");
    assert_eq!(visible("\u{9b}31m\u{202e}\x7f"), "\\u{009b}31m\\u{202e}^?");
    assert_eq!(visible("plain é"), "plain é");
}

#[test]
fn times_are_rfc3339_utc_microseconds() {
    assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(
        rfc3339_micros(951_782_400_123_456),
        "2000-02-29T00:00:00.123456Z"
    );
    assert!(is_rfc3339_micros(&rfc3339_micros(1_764_936_000_999_999)));
    assert!(!is_rfc3339_micros("2025-12-05T12:00:00Z"));
}

proptest! {
    /// Any change of a log's bytes before its last line (other than none)
    /// is found: never intact, never merely torn.
    #[test]
    fn any_change_before_the_last_line_is_found(
        n in 2u64..6,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        delete in any::<bool>(),
    ) {
        let lines = lines_of(LOG, n);
        let body_len: usize = lines[..lines.len() - 1].iter().map(Vec::len).sum();
        let pos = at.index(body_len);
        let mut log = lines.concat();
        if delete {
            log.remove(pos);
        } else {
            prop_assume!(log[pos] != byte);
            log[pos] = byte;
        }
        let r = verify(&log[..]);
        prop_assert!(
            matches!(r.verdict, AuditVerdict::Tampered { .. } | AuditVerdict::NotAuditLog { .. }),
            "{:?}", r.verdict
        );
    }
}
