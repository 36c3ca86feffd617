//! Unit tests of the redactor: each default rule, secrets split across
//! frames at every byte, a private-key block over many frames, no false
//! positives, timestamps and markers.

use super::*;

const KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Runs `frames` (time, bytes) through a redactor with `r`, then a flush.
fn run(r: &Redaction, frames: &[(Micros, &[u8])]) -> Vec<Event> {
    let mut red = r.redactor().expect("rules");
    let mut out = Vec::new();
    for (t, b) in frames {
        red.push(Event::new(*t, EventData::Output(b.to_vec())), &mut out);
    }
    red.flush(&mut out);
    out
}

fn text(events: &[Event]) -> String {
    let mut s = Vec::new();
    for e in events {
        if let EventData::Output(b) = &e.data {
            s.extend_from_slice(b);
        }
    }
    String::from_utf8(s).unwrap()
}

fn markers(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::Marker(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn one(input: &str) -> (String, Vec<String>) {
    let out = run(&Redaction::defaults(), &[(0, input.as_bytes())]);
    (text(&out), markers(&out))
}

#[test]
fn aws_secret_keys_in_the_forms_tools_print_them() {
    for (input, want) in [
        (
            format!("aws_secret_access_key = {KEY}\n"),
            "aws_secret_access_key = [REDACTED:aws-secret-key]\n",
        ),
        (
            format!("    \"SecretAccessKey\": \"{KEY}\",\r\n"),
            "    \"SecretAccessKey\": \"[REDACTED:aws-secret-key]\",\r\n",
        ),
        (
            format!("AWS_SECRET_ACCESS_KEY={KEY}\n"),
            "AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-key]\n",
        ),
        (
            format!("export AWS_SECRET_ACCESS_KEY='{KEY}'\n"),
            "export AWS_SECRET_ACCESS_KEY='[REDACTED:aws-secret-key]'\n",
        ),
    ] {
        let (got, m) = one(&input);
        assert_eq!(got, want);
        assert_eq!(m, ["redacted: aws-secret-key"]);
    }
}

#[test]
fn bearer_tokens_in_authorization_headers() {
    let tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    for (input, want) in [
        (
            format!("> Authorization: Bearer {tok}\r\n"),
            "> Authorization: Bearer [REDACTED:bearer-token]\r\n",
        ),
        (
            format!("{{\"Authorization\": \"Bearer {tok}\"}}\n"),
            "{\"Authorization\": \"Bearer [REDACTED:bearer-token]\"}\n",
        ),
        (
            format!("authorization: bearer {tok}\n"),
            "authorization: bearer [REDACTED:bearer-token]\n",
        ),
    ] {
        let (got, m) = one(&input);
        assert_eq!(got, want);
        assert_eq!(m, ["redacted: bearer-token"]);
    }
}

fn pem() -> String {
    let mut s = String::from("-----BEGIN RSA PRIVATE KEY-----\r\n");
    for i in 0..30 {
        s.push_str(&format!(
            "MIIEpAIBAAKCAQEA{i:02}x7Qv3Tq9bZ1yW0c+XkJ4rP8s2Lh6NfGmUoVdEiCaBt\r\n"
        ));
    }
    s.push_str("-----END RSA PRIVATE KEY-----\r\n");
    s
}

#[test]
fn a_private_key_block_across_many_frames() {
    let block = pem();
    let whole = format!("tt> cat id_rsa\r\n{block}tt> ");
    // 7-byte frames: BEGIN and END lines are cut everywhere.
    let frames: Vec<(Micros, &[u8])> = whole
        .as_bytes()
        .chunks(7)
        .enumerate()
        .map(|(i, c)| (i as Micros * 10, c))
        .collect();
    let out = run(&Redaction::defaults(), &frames);
    assert_eq!(
        text(&out),
        "tt> cat id_rsa\r\n[REDACTED:private-key]\r\ntt> "
    );
    assert_eq!(markers(&out), ["redacted: private-key"]);
    for kinds in [
        "PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "EC PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
    ] {
        let input = format!("-----BEGIN {kinds}-----\nAAAA\n-----END {kinds}-----\nafter\n");
        assert_eq!(one(&input).0, "[REDACTED:private-key]\nafter\n", "{kinds}");
    }
}

#[test]
fn a_public_key_or_certificate_is_left_alone() {
    let input = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
    assert_eq!(one(input), (input.to_string(), vec![]));
}

#[test]
fn a_secret_split_at_every_byte_across_two_frames() {
    let line = format!("tt> aws configure get x\r\naws_secret_access_key = {KEY}\r\ntt> ");
    let want =
        "tt> aws configure get x\r\naws_secret_access_key = [REDACTED:aws-secret-key]\r\ntt> ";
    for cut in 0..=line.len() {
        let (a, b) = line.as_bytes().split_at(cut);
        let out = run(&Redaction::defaults(), &[(1_000, a), (2_000, b)]);
        assert_eq!(text(&out), want, "cut at {cut}");
        assert_eq!(markers(&out), ["redacted: aws-secret-key"], "cut at {cut}");
        assert!(!text(&out).contains(&KEY[..8]), "cut at {cut}");
    }
}

#[test]
fn a_secret_split_over_three_frames_and_a_bearer_token_at_every_byte() {
    let line = "curl -v\r\n> Authorization: Bearer abc.DEF-ghi_123~xyz+/==\r\n< HTTP/1.1 200\r\n";
    for cut in 1..line.len() {
        let (a, rest) = line.as_bytes().split_at(cut);
        let (b, c) = rest.split_at(rest.len() / 2);
        let out = run(&Redaction::defaults(), &[(1, a), (2, b), (3, c)]);
        let got = text(&out);
        assert!(!got.contains("abc.DEF"), "cut at {cut}: {got}");
        assert!(!got.contains("xyz+"), "cut at {cut}: {got}");
        assert_eq!(markers(&out), ["redacted: bearer-token"], "cut at {cut}");
    }
}

#[test]
fn ordinary_text_passes_unchanged_and_unsplit() {
    let input = "total 8\r\n-rw-r--r-- 1 u u  12 secret_notes.txt\r\nThe secret access key rotation is due.\r\nAuthorization: Basic dXNlcjpwYXNz\r\nBearer of bad news: none\r\ntoken=abc\r\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\r\n";
    let out = run(&Redaction::defaults(), &[(5, input.as_bytes())]);
    assert_eq!(
        out,
        vec![Event::new(5, EventData::Output(input.as_bytes().to_vec()))]
    );
}

#[test]
fn each_frame_keeps_its_timestamp_and_the_marker_goes_with_the_match() {
    let out = run(
        &Redaction::defaults(),
        &[
            (100, b"line one\r\naws_secret_access_key"),
            (200, format!(" = {}", &KEY[..10]).as_bytes()),
            (300, format!("{}\r\nnext\r\n", &KEY[10..]).as_bytes()),
        ],
    );
    assert_eq!(
        out,
        vec![
            // The frame is held whole (not split at its line break).
            Event::new(
                100,
                EventData::Output(b"line one\r\naws_secret_access_key".to_vec()),
            ),
            Event::new(
                200,
                EventData::Output(b" = [REDACTED:aws-secret-key]".to_vec())
            ),
            Event::new(200, EventData::Marker("redacted: aws-secret-key".into())),
            Event::new(300, EventData::Output(b"\r\nnext\r\n".to_vec())),
        ]
    );
}

#[test]
fn an_unfinished_line_is_held_until_it_is_old_and_other_events_release_it() {
    let mut red = Redaction::defaults().redactor().unwrap();
    let mut out = Vec::new();
    let ls = Event::new(0, EventData::Output(b"ls\r\n".to_vec()));
    red.push(ls.clone(), &mut out);
    assert_eq!(out, vec![ls], "a frame that ends a line is not held");
    out.clear();
    let done = Event::new(1, EventData::Output(b"done\r\ntt> ".to_vec()));
    red.push(done.clone(), &mut out);
    assert!(out.is_empty());
    assert_eq!(red.held(), 10);
    red.tick(HOLD, &mut out);
    assert!(out.is_empty());
    red.tick(HOLD + 1, &mut out);
    assert_eq!(out, vec![done], "held whole, written by the tick");
    out.clear();
    red.push(Event::new(10, EventData::Output(b"$ ".to_vec())), &mut out);
    red.push(Event::new(20, EventData::Input(b"l".to_vec())), &mut out);
    assert_eq!(
        out,
        vec![
            Event::new(10, EventData::Output(b"$ ".to_vec())),
            Event::new(20, EventData::Input(b"l".to_vec())),
        ]
    );
}

#[test]
fn a_long_line_is_released_but_for_its_tail_and_a_secret_across_the_cut_is_caught() {
    let filler = "x".repeat(MAX_HOLD + 100);
    let secret = format!(" AWS_SECRET_ACCESS_KEY={KEY} ");
    let mut frames: Vec<Vec<u8>> = filler.as_bytes().chunks(4096).map(<[u8]>::to_vec).collect();
    // The secret starts just before where the cut falls.
    frames.push(secret.as_bytes()[..20].to_vec());
    frames.push(secret.as_bytes()[20..].to_vec());
    frames.push("y".repeat(MAX_HOLD).into_bytes());
    let refs: Vec<(Micros, &[u8])> = frames.iter().map(|f| (0, f.as_slice())).collect();
    let out = run(&Redaction::defaults(), &refs);
    let got = text(&out);
    assert!(!got.contains(KEY), "{}", got.len());
    assert!(got.contains("AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-key]"));
    assert_eq!(
        got.len(),
        filler.len() + MAX_HOLD + secret.len() - KEY.len() + 25
    );
}

#[test]
fn frames_are_written_as_they_came_one_event_each() {
    let text = "total 8\r\n-rw-r--r-- 1 u u 12 a.txt\r\n-rw-r--r-- 1 u u 7 b.txt\r\ntt> ";
    let frames: Vec<(Micros, &[u8])> = text
        .as_bytes()
        .chunks(9)
        .enumerate()
        .map(|(i, c)| (i as Micros, c))
        .collect();
    let out = run(&Redaction::defaults(), &frames);
    let want: Vec<Event> = frames
        .iter()
        .map(|(t, b)| Event::new(*t, EventData::Output(b.to_vec())))
        .collect();
    assert_eq!(out, want);
}

#[test]
fn user_rules_add_to_or_replace_the_defaults() {
    let rule = Rule::parse("ticket=TKT-[0-9]{6}").unwrap();
    let r = Redaction::new(true, vec![rule.clone()]);
    assert_eq!(
        r.names(),
        ["aws-secret-key", "bearer-token", "ticket", PRIVATE_KEY]
    );
    let input = format!("TKT-123456 AWS_SECRET_ACCESS_KEY={KEY}\n");
    let out = run(&r, &[(0, input.as_bytes())]);
    assert_eq!(
        text(&out),
        "[REDACTED:ticket] AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-key]\n"
    );
    assert_eq!(
        markers(&out),
        ["redacted: ticket", "redacted: aws-secret-key"]
    );
    let only = Redaction::new(false, vec![rule]);
    assert_eq!(only.names(), ["ticket"]);
    let out = run(&only, &[(0, input.as_bytes())]);
    assert!(text(&out).contains(KEY), "the defaults are off");
    let group = Rule::parse("pin=pin=(?P<secret>[0-9]{4})").unwrap();
    let out = run(&Redaction::new(false, vec![group]), &[(0, b"pin=1234\n")]);
    assert_eq!(text(&out), "pin=[REDACTED:pin]\n");
    assert!(!Redaction::new(false, vec![]).is_active());
}

#[test]
fn bad_rules_are_refused_with_their_reason() {
    assert!(matches!(
        Rule::parse("noequals"),
        Err(SecretsError::Spec { .. })
    ));
    assert!(matches!(Rule::parse("=x"), Err(SecretsError::Spec { .. })));
    assert!(matches!(
        Rule::parse("bad name=x"),
        Err(SecretsError::Spec { .. })
    ));
    assert!(matches!(
        Rule::parse("n=("),
        Err(SecretsError::Regex { .. })
    ));
    let e = Rule::parse("n=a*").unwrap_err();
    assert_eq!(
        e.to_string(),
        "--redact n: the regular expression matches the empty string"
    );
}

#[test]
fn an_unterminated_private_key_block_is_redacted_up_to_its_bound() {
    let mut input = String::from("-----BEGIN PRIVATE KEY-----\n");
    while input.len() < MAX_BLOCK + 1000 {
        input.push_str("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n");
    }
    let frames: Vec<(Micros, &[u8])> = input.as_bytes().chunks(4096).map(|c| (0, c)).collect();
    let mut frames = frames;
    frames.push((1, b"after\n"));
    let got = text(&run(&Redaction::defaults(), &frames));
    assert!(got.starts_with("[REDACTED:private-key]"), "{}", &got[..40]);
    assert!(got.len() < 8192, "{}", got.len());
    assert!(got.ends_with("after\n"));
}

#[test]
fn a_private_key_block_stays_open_across_other_events_and_flushes() {
    let mut red = Redaction::defaults().redactor().unwrap();
    let mut out = Vec::new();
    let out_ev = |t, b: &str| Event::new(t, EventData::Output(b.as_bytes().to_vec()));
    red.push(
        out_ev(1, "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE"),
        &mut out,
    );
    red.push(Event::new(2, EventData::Input(b"q".to_vec())), &mut out);
    red.push(out_ev(3, "IDk2nSecretBits\n"), &mut out);
    red.tick(10 * HOLD, &mut out);
    red.push(out_ev(4, "-----END EC PRIVATE KEY-----\nok\n"), &mut out);
    red.flush(&mut out);
    let got = text(&out);
    assert_eq!(got, "[REDACTED:private-key]\nok\n");
    assert!(!got.contains("MHcC") && !got.contains("Secret"));
    assert_eq!(markers(&out), ["redacted: private-key"]);
    let times: Vec<Micros> = out.iter().map(|e| e.time).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn a_begin_line_alone_does_not_hide_what_follows() {
    // Typed (and echoed) BEGIN line, then ordinary output: the block ends
    // at the first complete line no key block holds.
    let input = "tt> # -----BEGIN PRIVATE KEY-----\r\ntt> id; ls /\r\nuid=0(root) gid=0(root)\r\nbin boot dev\r\ntt> ";
    let frames: Vec<(Micros, &[u8])> = input.as_bytes().chunks(5).map(|c| (0, c)).collect();
    let got = text(&run(&Redaction::defaults(), &frames));
    assert!(got.contains("uid=0(root) gid=0(root)"), "{got}");
    assert!(got.contains("bin boot dev"), "{got}");
    // (The line right after BEGIN may go with it when frames cut it.)
    // A real block with headers is still redacted whole.
    let block = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B\n\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nafter\n";
    assert_eq!(one(block).0, "[REDACTED:private-key]\nafter\n");
}
