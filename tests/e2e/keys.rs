//! Key pinning through the real binary: the re-sign attack, `verify --key`
//! (repeatable) and `--keyring`, their exit codes for every case of
//! docs/format.md §9.3, bad key files, `--store` with keys, and the key id
//! in `keygen`, `verify` and `ls` (text and JSON).

use std::path::Path;

use serde_json::Value;
use termtrail_format::cast::Header;
use termtrail_format::event::{Event, EventData};
use termtrail_format::pipeline::Flow;
use termtrail_format::reader::{ReadOptions, ReadSink, Status, read_path};
use termtrail_format::seal::{SEAL_TRAILER, decode_seal, encode_seal};
use termtrail_format::sign::SecretKey;
use termtrail_format::writer::{ChainWriter, WriterOptions};

use crate::util::*;

/// `keygen NAME` in `d`; returns the key id it prints.
fn keygen(d: &Dir, name: &str) -> String {
    let r = d.run(&["keygen", name]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r
        .stderr
        .split("(id ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no key id in {r:?}"))
        .to_string();
    // The id is the first 16 hex digits of SHA-256 of the 32 public key
    // bytes (docs/format.md §9.2), computed here from the .pub file.
    let text = std::fs::read_to_string(d.join(&format!("{name}.pub"))).unwrap();
    let hex_key = text
        .trim()
        .strip_prefix("termtrail-ed25519-public ")
        .unwrap();
    let bytes = hex::decode(hex_key).unwrap();
    let sha = termtrail_format::chain::sha256(&bytes);
    assert_eq!(id, hex::encode(&sha[..8]), "keygen's id");
    id
}

/// Records `script` in `d` into `file`, signed with the secret key `key`.
fn rec_signed(d: &Dir, file: &str, key: &str, script: &str) {
    let r = d.rec_with(file, &["--sign-key", key], script);
    assert_eq!(r.code, 0, "{r:?}");
}

fn json(r: &Run) -> Value {
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// Collects what a verified recording holds.
#[derive(Default)]
struct Collect {
    header: Option<Header>,
    events: Vec<Event>,
}

impl ReadSink for Collect {
    fn header(&mut self, header: &Header) -> Flow {
        self.header = Some(header.clone());
        Flow::Continue
    }
    fn event(&mut self, event: &Event) -> Flow {
        self.events.push(event.clone());
        Flow::Continue
    }
}

/// The attack: the recording at `from` read through the verifying reader,
/// `edit` applied to its output, and written anew with the same header
/// (recording id, times, title) and end, every hash recomputed, the seal
/// signed with the attacker's own fresh key.
fn re_sign(from: &Path, to: &Path, attacker: &SecretKey, edit: impl Fn(&[u8]) -> Vec<u8>) {
    let mut got = Collect::default();
    let report = read_path(from, &ReadOptions::default(), &mut got).unwrap();
    assert_eq!(report.status, Status::Intact);
    let file = std::fs::File::create(to).unwrap();
    let mut w = ChainWriter::new(
        file,
        got.header.unwrap(),
        WriterOptions::default(),
        Some(attacker.clone()),
    )
    .unwrap();
    for e in &got.events {
        let data = match &e.data {
            EventData::Output(b) => EventData::Output(edit(b)),
            other => other.clone(),
        };
        w.push(&Event::new(e.time, data)).unwrap();
    }
    w.seal(report.end.unwrap()).unwrap();
}

fn replace(b: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8_lossy(b).replace(from, to).into_bytes()
}

#[test]
fn a_re_signed_recording_is_reported_as_not_pinned_and_fails_with_the_key() {
    let d = Dir::new();
    let k = keygen(&d, "recorder.key");
    rec_signed(
        &d,
        "orig.cast.zst",
        "recorder.key",
        "echo deploying; echo 'rm -rf /srv/data'; echo done",
    );
    // Mallory rewrites what was printed and signs with her own key.
    let mallory = SecretKey::generate().unwrap();
    let m = mallory.public().id();
    re_sign(
        &d.join("orig.cast.zst"),
        &d.join("forged.cast.zst"),
        &mallory,
        |b| replace(b, "rm -rf /srv/data", "ls -la /srv/data"),
    );
    let text = d.run(&["export", "--format", "txt", "forged.cast.zst"]);
    assert!(text.stdout.contains("ls -la /srv/data"), "{text:?}");
    assert!(!text.stdout.contains("rm -rf"), "{text:?}");

    // Without keys the forgery is internally perfect: exit 0, but the line
    // says whose key signed it and that no key vouches for it.
    let r = d.run(&["verify", "forged.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("signed by key {m}, not pinned")),
        "{r:?}"
    );
    let v = json(&d.run(&["verify", "--json", "forged.cast.zst"]));
    assert_eq!(v["key_id"], m.as_str(), "{v}");
    assert_eq!(v["pinned"], false, "{v}");
    assert_eq!(v["key_check"], "not-required", "{v}");
    assert_eq!(v["signature"]["state"], "valid", "{v}");

    // So does the HTML page's verdict.
    let r = d.run(&["export", "forged.cast.zst", "-o", "forged.html"]);
    assert_eq!(r.code, 0, "{r:?}");
    let page = std::fs::read_to_string(d.join("forged.html")).unwrap();
    assert!(
        page.contains(&format!("Seal signed by key {m}, not pinned")),
        "{}",
        &page[..page.len().min(2000)]
    );

    // Pinned to the recorder's key: the original passes, the forgery not.
    let r = d.run(&["verify", "--key", "recorder.key.pub", "orig.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("signed by key {k} (pinned)")),
        "{r:?}"
    );
    let r = d.run(&["verify", "--key", "recorder.key.pub", "forged.cast.zst"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "signed by key {m}, not pinned; REJECTED (key-not-pinned): not signed by a pinned key (pinned key: {k})"
        )),
        "{r:?}"
    );
    let v = json(&d.run(&[
        "verify",
        "--json",
        "--key",
        "recorder.key.pub",
        "forged.cast.zst",
    ]));
    assert_eq!(v["verdict"], "tampered", "{v}");
    assert_eq!(v["exit_code"], 1, "{v}");
    assert_eq!(v["key_check"], "key-not-pinned", "{v}");
    assert_eq!(v["key_id"], m.as_str(), "{v}");
    assert_eq!(v["pinned"], false, "{v}");
    assert!(
        v["key_rejected"]
            .as_str()
            .unwrap()
            .contains(&format!("signed by key {m}, which is not pinned")),
        "{v}"
    );
    let v = json(&d.run(&[
        "verify",
        "--json",
        "--key",
        "recorder.key.pub",
        "orig.cast.zst",
    ]));
    assert_eq!(
        (&v["verdict"], &v["key_check"], &v["pinned"], &v["key_id"]),
        (
            &Value::from("intact"),
            &Value::from("pinned"),
            &Value::from(true),
            &Value::from(k.as_str())
        ),
        "{v}"
    );
    assert!(v.get("key_rejected").is_none(), "{v}");

    // ls shows who signed each, verified or not.
    let r = d.run(&[
        "ls",
        "--verify",
        "--json",
        "orig.cast.zst",
        "forged.cast.zst",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let ids: Vec<(String, String)> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            let path = v["path"].as_str().unwrap().to_string();
            (path, v["key_id"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(
        ids.contains(&("orig.cast.zst".into(), k.clone())),
        "{ids:?}"
    );
    assert!(
        ids.contains(&("forged.cast.zst".into(), m.clone())),
        "{ids:?}"
    );
    // ls --verify with the key pinned: the forgery is NOT-PINNED (exit 1).
    let r = d.run(&[
        "ls",
        "--verify",
        "--key",
        "recorder.key.pub",
        "orig.cast.zst",
        "forged.cast.zst",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let row = |name: &str| {
        r.stdout
            .lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name}: {r:?}"))
            .to_string()
    };
    assert!(
        row("orig.cast.zst").contains("verified+signed+pinned"),
        "{r:?}"
    );
    assert!(
        row("forged.cast.zst").contains("verified+signed+NOT-PINNED"),
        "{r:?}"
    );
    let r = d.run(&[
        "ls",
        "--verify",
        "--json",
        "--key",
        "recorder.key.pub",
        "forged.cast.zst",
    ]);
    let v = json(&r);
    assert_eq!(
        (&v["key_id"], &v["key_check"]),
        (&Value::from(m.as_str()), &Value::from("key-not-pinned")),
        "{v}"
    );
    // Keys need --verify: the index alone proves nothing about a signature.
    let r = d.run(&["ls", "--key", "recorder.key.pub", "forged.cast.zst"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = d.run(&[
        "ls",
        "--long",
        "--verify",
        "orig.cast.zst",
        "forged.cast.zst",
    ]);
    let header = r.stdout.lines().next().unwrap();
    assert!(header.contains("STATE") && header.contains("KEY"), "{r:?}");
    for (name, id) in [("orig.cast.zst", &k), ("forged.cast.zst", &m)] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.ends_with(name) && l.contains(&format!("verified+signed  {id}"))),
            "{name}: {r:?}"
        );
    }
}

/// Removes the signature from a signed recording's seal, re-hashing the
/// seal as a forger would: the header still names the key.
fn strip_signature(file: &[u8]) -> Vec<u8> {
    let n = file.len();
    assert_eq!(&file[n - 8..], SEAL_TRAILER);
    let total = u32::from_le_bytes(file[n - 12..n - 8].try_into().unwrap()) as usize;
    let seal = decode_seal(&file[n - total + 8..]).unwrap();
    assert!(seal.signature.is_some());
    let mut link = [0u8; 32];
    hex::decode_to_slice(&seal.body.last_link, &mut link).unwrap();
    let mut out = file[..n - total].to_vec();
    out.extend(encode_seal(&seal.body, &link, |_| None));
    out
}

#[test]
fn every_pinning_case_has_its_exit_code() {
    let d = Dir::new();
    let k = keygen(&d, "k");
    let o = keygen(&d, "other");
    rec_signed(&d, "signed.cast.zst", "k", "echo one; echo two");
    rec_signed(&d, "foreign.cast.zst", "other", "echo one; echo two");
    d.rec("unsigned.cast.zst", "echo one; echo two");
    let signed = std::fs::read(d.join("signed.cast.zst")).unwrap();
    let unsigned = std::fs::read(d.join("unsigned.cast.zst")).unwrap();
    let foreign = std::fs::read(d.join("foreign.cast.zst")).unwrap();
    // Unsealed: the seal and index cut off (a crash before sealing).
    let cut = |f: &[u8]| f[..f.len() - 200].to_vec();
    std::fs::write(d.join("unsealed-k.cast.zst"), cut(&signed)).unwrap();
    std::fs::write(d.join("unsealed-other.cast.zst"), cut(&foreign)).unwrap();
    std::fs::write(d.join("unsealed-none.cast.zst"), cut(&unsigned)).unwrap();
    // Cut inside the header's frame: no key is known.
    std::fs::write(d.join("no-header.cast.zst"), &signed[..40]).unwrap();
    // A bad signature: one hex digit of `sig=` changed.
    let mut bad = signed.clone();
    let at = bad.windows(4).rposition(|w| w == b"sig=").unwrap() + 4;
    bad[at] = if bad[at] == b'a' { b'b' } else { b'a' };
    std::fs::write(d.join("bad-sig.cast.zst"), bad).unwrap();
    // The header names k, the seal has no signature.
    std::fs::write(d.join("no-sig.cast.zst"), strip_signature(&signed)).unwrap();

    // (file, exit without keys, exit with --key k.pub, key_check with it)
    let cases = [
        ("signed", 0, 0, "pinned"),
        ("foreign", 0, 1, "key-not-pinned"),
        ("unsigned", 0, 1, "unsigned"),
        ("unsealed-k", 3, 3, "unchecked-unsealed"),
        ("unsealed-other", 3, 1, "key-not-pinned"),
        ("unsealed-none", 3, 1, "unsigned"),
        ("no-header", 3, 3, "unchecked-unsealed"),
        ("bad-sig", 1, 1, "not-checked"),
        ("no-sig", 1, 1, "not-checked"),
    ];
    for (name, free, pinned, check) in cases {
        let file = format!("{name}.cast.zst");
        let r = d.run(&["verify", &file]);
        assert_eq!(r.code, free, "{name} without keys: {r:?}");
        let r = d.run(&["verify", "--key", "k.pub", &file]);
        assert_eq!(r.code, pinned, "{name} --key: {r:?}");
        let v = json(&d.run(&["verify", "--json", "--key", "k.pub", &file]));
        assert_eq!(v["exit_code"], pinned, "{name}: {v}");
        assert_eq!(v["key_check"], check, "{name}: {v}");
        if pinned == 1 && check != "not-checked" {
            assert!(v["key_rejected"].is_string(), "{name}: {v}");
            // The failed pin is the verdict's reason class.
            assert_eq!(v["reason"], check, "{name}: {v}");
        }
    }
    // What the lines say.
    let line = |args: &[&str]| d.run(args).stdout;
    assert!(
        line(&["verify", "--key", "k.pub", "unsealed-k.cast.zst"]).contains(&format!(
            "header names key {k} (pinned): no seal yet, so no signature to check"
        ))
    );
    assert!(
        line(&["verify", "--key", "k.pub", "unsealed-other.cast.zst"]).contains(&format!(
            "header names key {o}, not pinned; REJECTED (key-not-pinned): only that key could ever sign it"
        ))
    );
    assert!(
        line(&["verify", "--key", "k.pub", "unsealed-none.cast.zst"])
            .contains("REJECTED (unsigned): unsealed, and its header names no key")
    );
    assert!(
        line(&["verify", "--key", "k.pub", "unsigned.cast.zst"]).contains(&format!(
            "REJECTED (unsigned): not signed (pinned key: {k})"
        ))
    );
    assert!(
        line(&["verify", "no-sig.cast.zst"]).contains("TAMPERED: seal signature does not verify")
    );
    assert!(
        line(&["verify", "--key", "k.pub", "bad-sig.cast.zst"])
            .contains(&format!("INVALID signature for key {k}"))
    );

    // --key is repeatable: any of the keys given will do.
    let r = d.run(&[
        "verify",
        "--key",
        "other.pub",
        "--key",
        "k.pub",
        "signed.cast.zst",
        "foreign.cast.zst",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("(pinned)").count(), 2, "{r:?}");
    // Several files: the worst wins.
    let r = d.run(&[
        "verify",
        "--key",
        "k.pub",
        "signed.cast.zst",
        "foreign.cast.zst",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    // A secret key file gives its public half (as before).
    let r = d.run(&["verify", "--key", "k", "signed.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn keyrings_pin_every_pub_file_and_name_a_bad_one() {
    let d = Dir::new();
    std::fs::create_dir(d.join("ring")).unwrap();
    keygen(&d, "ring/a");
    keygen(&d, "ring/b");
    keygen(&d, "outsider");
    rec_signed(&d, "a.cast.zst", "ring/a", "echo a");
    rec_signed(&d, "b.cast.zst", "ring/b", "echo b");
    rec_signed(&d, "out.cast.zst", "outsider", "echo out");
    // The secret keys in the directory are not *.pub: skipped.
    let r = d.run(&["verify", "--keyring", "ring", "a.cast.zst", "b.cast.zst"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.run(&["verify", "--keyring", "ring", "out.cast.zst"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("pinned keys: "), "{r:?}");
    // With --key too: the union.
    let r = d.run(&[
        "verify",
        "--keyring",
        "ring",
        "--key",
        "outsider.pub",
        "a.cast.zst",
        "out.cast.zst",
    ]);
    assert_eq!(r.code, 0, "{r:?}");

    // Bad key material: a usage error (2) naming the file, nothing verified.
    let bad = |what: &str, args: &[&str], names: &str| {
        let mut all = vec!["verify"];
        all.extend_from_slice(args);
        all.push("a.cast.zst");
        let r = d.run(&all);
        assert_eq!(r.code, 2, "{what}: {r:?}");
        assert!(r.stdout.is_empty(), "{what}: {r:?}");
        assert!(r.stderr.contains(names), "{what}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{what}: {r:?}");
    };
    std::fs::write(d.join("ring/c.pub"), "termtrail-ed25519-public xyz\n").unwrap();
    bad(
        "a malformed file in the keyring",
        &["--keyring", "ring"],
        "ring/c.pub: not a termtrail public key file",
    );
    std::fs::remove_file(d.join("ring/c.pub")).unwrap();
    std::fs::copy(d.join("ring/a"), d.join("ring/leak.pub")).unwrap();
    bad(
        "a secret key named .pub",
        &["--keyring", "ring"],
        "ring/leak.pub: a secret key; a keyring holds public keys only",
    );
    std::fs::remove_file(d.join("ring/leak.pub")).unwrap();
    std::fs::create_dir(d.join("empty")).unwrap();
    bad(
        "an empty keyring",
        &["--keyring", "empty"],
        "empty: no public keys (*.pub) in this keyring directory",
    );
    bad("a missing keyring", &["--keyring", "nowhere"], "nowhere: ");
    std::fs::write(d.join("junk.pub"), vec![b'x'; 10_000]).unwrap();
    bad(
        "a large file",
        &["--key", "junk.pub"],
        "junk.pub: not a termtrail public key file",
    );
    bad(
        "a missing key file",
        &["--key", "missing.pub"],
        "missing.pub: ",
    );
    let r = d.run(&["verify", "--audit", "x.jsonl", "--keyring", "ring"]);
    assert_eq!(r.code, 2, "--audit takes no keys: {r:?}");
}

#[test]
fn verify_store_with_pinned_keys() {
    let d = Dir::new();
    keygen(&d, "k");
    keygen(&d, "other");
    let st = d.join("st").to_string_lossy().into_owned();
    for (i, key) in ["k", "other"].iter().enumerate() {
        let r = d.run(&[
            "rec",
            "-q",
            "--headless",
            "--sign-key",
            key,
            "--store",
            &st,
            "--",
            "echo",
            &format!("rec-{i}"),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let r = d.run(&["verify", "--store", &st]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches(", not pinned").count(), 2, "{r:?}");
    let r = d.run(&["verify", "--store", &st, "--key", "k.pub"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout.matches("(pinned)").count(), 1, "{r:?}");
    assert_eq!(
        r.stdout.matches("REJECTED (key-not-pinned)").count(),
        1,
        "{r:?}"
    );
    assert!(r.stdout.contains("journal: intact"), "{r:?}");
    let r = d.run(&[
        "verify",
        "--store",
        &st,
        "--key",
        "k.pub",
        "--key",
        "other.pub",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
}
