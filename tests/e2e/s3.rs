//! The S3 store against a real S3-compatible server: moto's server (PyPI,
//! installed by scripts/test), started and stopped by each test on a free
//! loopback port, reached directly or through a relay that can take the
//! network down. Buckets are made and objects inspected with boto3.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

#[test]
fn a_recording_goes_to_s3_and_reads_back_from_it() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let d = Dir::new();
    let ep = moto.endpoint();
    let r = run(
        &mut rec_s3(
            &d,
            &ep,
            "s3://recs/team",
            &[],
            "echo error: AccessDenied; echo bye",
        ),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("s3://recs/team/"), "{r:?}");
    // In the bucket under the documented key layout, with metadata; the
    // spool is gone.
    let k = moto.keys("recs");
    assert_eq!(k.len(), 1, "{k:?}");
    assert!(
        k[0].starts_with("team/20") && k[0].contains("/local/") && k[0].ends_with("Z.cast.zst"),
        "{k:?}"
    );
    let meta = moto.py(&format!(
        "print(json.dumps(c.head_object(Bucket='recs', Key='{}')['Metadata']))",
        k[0]
    ));
    let meta: Value = serde_json::from_str(meta.trim()).unwrap();
    assert_eq!(meta["tt-source"], "local");
    assert_eq!(meta["tt-id"].as_str().unwrap().len(), 32);
    assert_eq!(meta["tt-end"], "exited with code 0");
    assert_eq!(meta["tt-last-link"].as_str().unwrap().len(), 64);
    assert!(spooled(&d).is_empty(), "{:?}", spooled(&d));

    // ls, verify, grep, snapshot, export read it from S3.
    let url = format!("s3://recs/{}", k[0]);
    let r = run_s3(&d, &ep, &["ls", "--json", "s3://recs/team"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["path"], url.as_str());
    assert_eq!(v["state"], "sealed");
    assert_eq!(v["end"], "exited with code 0");
    let r = run_s3(&d, &ep, &["verify", "s3://recs/team"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.starts_with(&format!("{url}: intact, sealed")),
        "{r:?}"
    );
    let r = run_s3(&d, &ep, &["grep", "AccessDenied", "s3://recs"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.starts_with(&format!("{url}:")) && r.stdout.contains("error: AccessDenied"),
        "{r:?}"
    );
    let r = run_s3(&d, &ep, &["snapshot", &url, "--at", "60"]);
    assert!(r.stdout.contains("error: AccessDenied\nbye"), "{r:?}");
    let r = run_s3(&d, &ep, &["export", &url, "--format", "txt"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("bye"), "{r:?}");

    // --since narrows the listing by the key's date: a copy filed under
    // 2020 is not even listed (its header says today).
    moto.py(&format!(
        "c.copy_object(Bucket='recs', Key='team/2020/01/01/local/h/s/20200101T000000Z.cast.zst', CopySource={{'Bucket': 'recs', 'Key': '{}'}})",
        k[0]
    ));
    let r = run_s3(&d, &ep, &["ls", "--json", "s3://recs/team"]);
    assert_eq!(r.stdout.lines().count(), 2, "{r:?}");
    let r = run_s3(
        &d,
        &ep,
        &["ls", "--json", "--since", "2026-01-01", "s3://recs/team"],
    );
    assert_eq!(r.stdout.lines().count(), 1, "{r:?}");
    assert!(!r.stdout.contains("/2020/"), "{r:?}");
}

#[test]
fn a_long_recording_streams_as_multipart_and_the_bucket_keeps_up() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let d = Dir::new();
    // ~24 MB of incompressible output over ~5 s: several 8 MiB parts.
    let script = "for i in 1 2 3 4 5 6; do head -c 3000000 /dev/urandom | base64 -w 100; sleep 0.7; done; echo the-end";
    let child = spawn_bg(&mut rec_s3(
        &d,
        &moto.endpoint(),
        "s3://recs/live",
        &["-q", "--upload-interval", "1s"],
        script,
    ));
    // While it runs, parts of an upload in progress are already there.
    let uploaded = || {
        moto.py(
            "u = c.list_multipart_uploads(Bucket='recs').get('Uploads', [])\n\
             print(sum(p['Size'] for x in u for p in c.list_parts(Bucket='recs', Key=x['Key'], UploadId=x['UploadId']).get('Parts', [])))",
        )
        .trim()
        .parse::<u64>()
        .unwrap_or(0)
    };
    let seen = poll_until(20, uploaded, |n| *n > 0);
    assert!(seen > 0, "no part was uploaded while recording");
    wait_ok(child);
    let k = moto.keys("recs");
    assert_eq!(k.len(), 1, "{k:?}");
    let head = moto.py(&format!(
        "h = c.head_object(Bucket='recs', Key='{}'); print(h['ContentLength'], h['ETag'])",
        k[0]
    ));
    let (size, etag) = head.trim().split_once(' ').unwrap();
    assert!(size.parse::<u64>().unwrap() > 16 << 20, "{head}");
    assert!(etag.contains('-'), "not a multipart object: {head}");
    // What only the seal knows comes as tags on a multipart object.
    let tags = moto.py(&format!(
        "print(json.dumps({{t['Key']: t['Value'] for t in c.get_object_tagging(Bucket='recs', Key='{}')['TagSet']}}))",
        k[0]
    ));
    let tags: Value = serde_json::from_str(tags.trim()).unwrap();
    assert_eq!(tags["tt-end"], "exited with code 0", "{tags}");
    assert_eq!(tags["tt-last-link"].as_str().unwrap().len(), 64, "{tags}");
    let r = run_s3(
        &d,
        &moto.endpoint(),
        &["verify", &format!("s3://recs/{}", k[0])],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run_s3(
        &d,
        &moto.endpoint(),
        &["grep", "-c", "the-end", "s3://recs/live"],
    );
    assert!(r.stdout.trim().ends_with(":1"), "{r:?}");
    assert!(spooled(&d).is_empty());
}

#[test]
fn an_s3_outage_loses_nothing() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let relay = Relay::start(&format!("127.0.0.1:{}", moto.port));
    let d = Dir::new();
    let script = "for i in $(seq 1 40); do echo line-$i; sleep 0.1; done";
    let child = spawn_bg(&mut rec_s3(
        &d,
        &relay.endpoint(),
        "s3://recs/o",
        &["-q", "--upload-interval", "500ms"],
        script,
    ));
    // S3 goes down once the uploads have begun...
    poll_until(10, || relay.served(), |n| *n > 0);
    relay.set_down(true);
    // ...for a while (kept: the outage must outlast several upload rounds,
    // 500 ms each, and end before the recording does).
    std::thread::sleep(Duration::from_millis(1500));
    relay.set_down(false);
    wait_ok(child);
    let k = moto.keys("recs");
    assert_eq!(k.len(), 1, "{k:?}");
    let url = format!("s3://recs/{}", k[0]);
    let r = run_s3(&d, &moto.endpoint(), &["verify", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run_s3(&d, &moto.endpoint(), &["grep", "-c", "^line-[0-9]+$", &url]);
    assert_eq!(r.stdout.trim(), format!("{url}:40"), "{r:?}");
}

#[test]
fn a_restarted_server_and_a_down_one_are_caught_up_later() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    moto.make_bucket("recs");
    let d = Dir::new();
    let ep = moto.endpoint();
    // The server restarts mid-recording and forgets the upload in progress:
    // the uploader starts it over from the spool.
    let script = "for i in $(seq 1 30); do echo row-$i; sleep 0.1; done";
    let child = spawn_bg(&mut rec_s3(
        &d,
        &ep,
        "s3://recs/r",
        &["-q", "--upload-interval", "500ms"],
        script,
    ));
    // Once its upload is in progress.
    let uploads = || {
        moto.py("print(len(c.list_multipart_uploads(Bucket='recs').get('Uploads', [])))")
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let open = poll_until(10, uploads, |n| *n > 0);
    assert!(open > 0, "no upload in progress to forget");
    moto.restart();
    moto.make_bucket("recs");
    wait_ok(child);
    let k = moto.keys("recs");
    assert_eq!(k.len(), 1, "{k:?}");
    let url = format!("s3://recs/{}", k[0]);
    let r = run_s3(&d, &ep, &["grep", "-c", "^row-[0-9]+$", &url]);
    assert_eq!(r.stdout.trim(), format!("{url}:30"), "{r:?}");

    // S3 down for the whole recording: it is kept in the spool (exit 2, one
    // line saying where), and `upload` sends it once S3 is back.
    let relay = Relay::start(&format!("127.0.0.1:{}", moto.port));
    relay.set_down(true);
    let r = run(
        &mut rec_s3(
            &d,
            &relay.endpoint(),
            "s3://recs/later",
            &["-q", "--upload-wait", "500ms"],
            "echo kept-safe",
        ),
        b"",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("kept in the spool"), "{r:?}");
    let left: Vec<String> = spooled(&d)
        .into_iter()
        .filter(|p| p.ends_with(".cast.zst"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    relay.set_down(false);
    let r = run_s3(
        &d,
        &relay.endpoint(),
        &["upload", "--store", "s3://recs/later"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("uploaded s3://recs/later/"), "{r:?}");
    assert!(spooled(&d).is_empty(), "{:?}", spooled(&d));
    let r = run_s3(&d, &ep, &["grep", "-l", "kept-safe", "s3://recs/later"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn bad_s3_locations_get_one_line_errors() {
    let Some(moto) = Moto::start() else { return };
    let d = Dir::new();
    let ep = moto.endpoint();
    for (args, want) in [
        (
            vec![
                "rec",
                "--headless",
                "--store",
                "s3://no-such-bucket/x",
                "--",
                "true",
            ],
            "s3://no-such-bucket: the bucket does not exist",
        ),
        (
            vec![
                "rec",
                "--headless",
                "--store",
                "s3://Bad_Name/x",
                "--",
                "true",
            ],
            "bad bucket name",
        ),
        (
            vec!["ls", "s3://no-such-bucket"],
            "the bucket does not exist",
        ),
        (
            vec!["verify", "s3://no-such-bucket/a.cast.zst"],
            "no-such-bucket",
        ),
    ] {
        let r = run_s3(&d, &ep, &args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
        assert!(r.stderr.trim().lines().count() <= 3, "{args:?}: {r:?}");
    }
    // Without credentials at all.
    let mut c = tt(&d, &ep, &["ls", "s3://recs"]);
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let r = run(&mut c, b"");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("credentials"), "{r:?}");
}

#[test]
fn access_denied_is_a_one_line_error_naming_the_bucket() {
    // Three requests go unchecked: the bucket, a user, its key. The user has
    // no policy: every request of it is denied.
    let Some(moto) = Moto::start_enforcing_iam(3) else {
        return;
    };
    let key = moto.py(
        "c.create_bucket(Bucket='denied')\n\
         iam = boto3.client('iam', endpoint_url=c.meta.endpoint_url, region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
         iam.create_user(UserName='nobody')\n\
         k = iam.create_access_key(UserName='nobody')['AccessKey']\n\
         print(k['AccessKeyId'], k['SecretAccessKey'])",
    );
    let (id, secret) = key.trim().split_once(' ').unwrap();
    let d = Dir::new();
    for (args, want) in [
        (
            vec![
                "rec",
                "--headless",
                "--store",
                "s3://denied/x",
                "--",
                "true",
            ],
            "s3://denied: access denied",
        ),
        (vec!["ls", "s3://denied"], "s3://denied"),
        (vec!["verify", "--store", "s3://denied/x"], "s3://denied"),
        // A HEAD: no error body, the status alone says it.
        (
            vec!["snapshot", "s3://denied/a.cast.zst", "--at", "1"],
            "s3://denied/a.cast.zst: access denied",
        ),
    ] {
        let mut c = tt(&d, &moto.endpoint(), &args);
        c.env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret);
        let r = run(&mut c, b"");
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
        assert!(
            r.stderr.to_lowercase().contains("access denied") || r.stderr.contains("AccessDenied"),
            "{args:?}: {r:?}"
        );
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: {r:?}");
    }
    // Nothing was recorded, so nothing is spooled.
    assert!(spooled(&d).is_empty(), "{:?}", spooled(&d));
}

#[test]
fn serve_records_shells_into_s3() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let d = Dir::new();
    let ep = moto.endpoint();
    let serve = tt(
        &d,
        &ep,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--store",
            "s3://recs/hosts",
            "--",
            "bash",
            "--norc",
            "--noprofile",
        ],
    );
    let mut serve = Server::spawn(serve, &d.join("store"));
    let addr = serve.addr.clone();
    let log = serve.log.lock().unwrap().clone();
    assert!(log.contains("s3://recs/hosts/"), "{log}");
    let r = run_s3(
        &d,
        &ep,
        &[
            "exec",
            &format!("ws://{addr}"),
            "--session",
            "s3-session-0123456789-0123456789-ab",
            "--",
            "echo via-serve-$((6*7))",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("via-serve-42"), "{r:?}");
    // The command's recording is uploaded once it is sealed, while serve runs.
    let k = poll_until(20, || moto.keys("recs"), |k| !k.is_empty());
    assert_eq!(k.len(), 1, "{k:?}");
    assert!(
        k[0].starts_with("hosts/20")
            && k[0].contains("/serve/s3-session-0123456789-0123456789-ab/"),
        "{k:?}"
    );
    let r = run_s3(&d, &ep, &["grep", "-c", "via-serve-42", "s3://recs/hosts"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(serve.stop(), 0);
    assert!(spooled(&d).is_empty(), "{:?}", spooled(&d));
}

#[test]
fn a_killed_recorder_s_spool_is_sealed_as_interrupted_and_uploaded() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let d = Dir::new();
    let ep = moto.endpoint();
    // A signing recorder: the recovered seal is signed by its key too.
    assert_eq!(d.run(&["keygen", "k"]).code, 0);
    let key = d.join("k").to_string_lossy().into_owned();
    // The test's directory in the script names its processes, for the
    // pkill below (other runs of this test may be going on beside it).
    let tag = d.join("ticks").to_string_lossy().into_owned();
    let script =
        format!(": {tag}; for i in $(seq 1 100); do echo tick-$i; sleep 0.05; done; sleep 30");
    let mut child = rec_s3(&d, &ep, "s3://recs/k", &["-q", "--sign-key", &key], &script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let open_uploads = || {
        moto.py("print(len(c.list_multipart_uploads(Bucket='recs').get('Uploads', [])))")
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    // Killed once the ticks the test counts below are committed to the
    // spool and the live tail's upload is open.
    let ticks = || {
        let spool = spooled(&d).into_iter().find(|p| p.ends_with(".cast.zst"));
        let r = spool.map(|p| d.run(&["grep", "-c", "^tick-[0-9]+$", &p]));
        r.and_then(|r| r.stdout.trim().rsplit(':').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    poll_until(30, || ticks() >= 90 && open_uploads() == 1, |done| *done);
    child.kill().unwrap(); // SIGKILL: no seal, no upload
    child.wait().unwrap();
    let _ = Command::new("pkill").args(["-f", &tag]).status();
    let left = spooled(&d);
    assert!(left.iter().any(|p| p.ends_with(".cast.zst")), "{left:?}");
    // The killed recorder had a multipart upload open (the live tail).
    assert_eq!(open_uploads(), 1);
    // The next run picks it up: sealed as interrupted, chain intact, every
    // committed chunk there; the dead recorder's upload aborted, not left.
    let r = run_s3(
        &d,
        &ep,
        &["upload", "--store", "s3://recs/k", "--sign-key", &key],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(spooled(&d).is_empty(), "{:?}", spooled(&d));
    assert_eq!(open_uploads(), 0);
    let pubkey = format!("{key}.pub");
    let r = run_s3(
        &d,
        &ep,
        &["verify", "--json", "--key", &pubkey, "s3://recs/k"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["verdict"], "intact", "{v}");
    assert!(v["end"].to_string().contains("interrupted"), "{v}");
    let r = run_s3(&d, &ep, &["grep", "-c", "^tick-[0-9]+$", "s3://recs/k"]);
    let n: u64 = r.stdout.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(n >= 90, "only {n} of 100 lines: {r:?}");
}

#[test]
fn object_lock_and_encryption_protect_uploads() {
    let Some(moto) = Moto::start() else { return };
    moto.py("c.create_bucket(Bucket='locked', ObjectLockEnabledForBucket=True)");
    let d = Dir::new();
    let ep = moto.endpoint();
    // A short recording (one PutObject) and a long one (multipart).
    for (prefix, script) in [
        ("short", "echo locked-short".to_string()),
        (
            "long",
            "head -c 12000000 /dev/urandom | base64 -w 100; echo locked-long".to_string(),
        ),
    ] {
        let r = run(
            &mut rec_s3(
                &d,
                &ep,
                &format!("s3://locked/{prefix}"),
                &[
                    "-q",
                    "--retain-days",
                    "2",
                    "--lock-mode",
                    "compliance",
                    "--sse",
                    "AES256",
                ],
                &script,
            ),
            b"",
        );
        assert_eq!(r.code, 0, "{prefix}: {r:?}");
    }
    let out = moto.py(
        "import datetime\n\
         for o in [o for o in c.list_objects_v2(Bucket='locked')['Contents'] if o['Key'].endswith('.cast.zst')]:\n\
         \x20   h = c.head_object(Bucket='locked', Key=o['Key'])\n\
         \x20   days = (h['ObjectLockRetainUntilDate'] - datetime.datetime.now(datetime.timezone.utc)).days\n\
         \x20   print(o['Key'].split('/')[0], h.get('ObjectLockMode'), days, h.get('ServerSideEncryption'), o['Size'] > 8 << 20)",
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "long COMPLIANCE 1 AES256 True",
            "short COMPLIANCE 1 AES256 False"
        ],
        "{out}"
    );
    // A locked version cannot be deleted.
    let out = moto.py(
        "k = c.list_objects_v2(Bucket='locked')['Contents'][0]['Key']\n\
         v = c.head_object(Bucket='locked', Key=k)['VersionId']\n\
         try:\n\
         \x20   c.delete_object(Bucket='locked', Key=k, VersionId=v)\n\
         \x20   print('deleted')\n\
         except Exception as e:\n\
         \x20   print('refused', type(e).__name__)",
    );
    assert!(out.starts_with("refused"), "{out}");
    let r = run_s3(&d, &ep, &["verify", "s3://locked"]);
    assert_eq!(r.code, 0, "{r:?}");
    // SSE-KMS with a named key.
    moto.make_bucket("kms");
    let r = run(
        &mut rec_s3(
            &d,
            &ep,
            "s3://kms/x",
            &["-q", "--sse", "aws:kms", "--kms-key-id", "alias/recordings"],
            "echo kms",
        ),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = moto.py(
        "k = c.list_objects_v2(Bucket='kms')['Contents'][0]['Key']\n\
         h = c.head_object(Bucket='kms', Key=k)\n\
         print(h.get('ServerSideEncryption'), h.get('SSEKMSKeyId'))",
    );
    assert!(
        out.starts_with("aws:kms") && out.contains("alias/recordings"),
        "{out}"
    );
    // The options need an S3 store.
    let r = d.run(&["rec", "--headless", "--retain-days", "3", "--", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("need an S3 store"), "{r:?}");
}

#[test]
fn snapshot_and_play_seek_in_s3_with_ranged_gets() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let relay = Relay::start(&format!("127.0.0.1:{}", moto.port));
    let d = Dir::new();
    let ep = relay.endpoint();
    // ~12 MB of output: three segments, ~9 MB stored.
    let script = "for i in 1 2 3 4; do head -c 2300000 /dev/urandom | base64 -w 100; echo mark-$i; sleep 1; done";
    let r = run(
        &mut rec_s3(&d, &moto.endpoint(), "s3://recs/seek", &["-q"], script),
        b"",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let k = moto.keys("recs");
    let url = format!("s3://recs/{}", k[0]);
    let size: u64 = moto
        .py(&format!(
            "print(c.head_object(Bucket='recs', Key='{}')['ContentLength'])",
            k[0]
        ))
        .trim()
        .parse()
        .unwrap();
    // The first snapshot builds the keyframes: it reads everything once.
    let r = run_s3(&d, &ep, &["snapshot", &url, "--at", "1.5"]);
    assert_eq!(r.code, 0, "{r:?}");
    // Mid-output at 1.5 s: a screen full of lines.
    assert!(r.stdout.lines().count() > 10, "{r:?}");
    // Later ones read the index and one segment: a fraction of the object,
    // and nothing is downloaded to a temporary file (a copy would go to the
    // fetch directory, made for it, and be deleted when done).
    let fetch_dir = d.join(".cache/termtrail/fetch");
    let _ = std::fs::remove_dir_all(&fetch_dir);
    let before = relay.served();
    let r = run_s3(&d, &ep, &["snapshot", &url, "--at", "60"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("mark-4"), "{r:?}");
    let fetched = relay.served() - before;
    assert!(
        fetched < size / 2,
        "a seek fetched {fetched} bytes of a {size}-byte object"
    );
    assert!(!fetch_dir.exists(), "a temporary copy was made");
}

#[test]
fn the_journal_in_s3_shows_a_deleted_recording() {
    let Some(moto) = Moto::start() else { return };
    moto.make_bucket("recs");
    let d = Dir::new();
    let ep = moto.endpoint();
    for i in 0..3 {
        let r = run(
            &mut rec_s3(&d, &ep, "s3://recs/j", &["-q"], &format!("echo j-{i}")),
            b"",
        );
        // One after the other: their keys differ by the recorder's pid.
        assert_eq!(r.code, 0, "{r:?}");
    }
    let k = moto.all_keys("recs");
    assert_eq!(
        k.iter().filter(|k| k.starts_with("j/journal/")).count(),
        3,
        "{k:?}"
    );
    let r = run_s3(&d, &ep, &["verify", "--store", "s3://recs/j"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("journal: intact — 3 recordings accounted for"),
        "{r:?}"
    );
    let victim = k.iter().find(|k| k.ends_with(".cast.zst")).unwrap();
    moto.py(&format!("c.delete_object(Bucket='recs', Key='{victim}')"));
    let r = run_s3(&d, &ep, &["verify", "--store", "s3://recs/j"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("MISSING"), "{r:?}");
    // --since: today's recordings are listed and checked; from a later day
    // on, none are (the listing starts after them) and the old deletion is
    // not looked for.
    let since = |when: &str| {
        run_s3(
            &d,
            &ep,
            &["verify", "--store", "s3://recs/j", "--since", when],
        )
    };
    let r = since("1d");
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout.matches("intact, sealed").count(), 2, "{r:?}");
    assert!(r.stdout.contains("MISSING"), "{r:?}");
    let r = since("2099-01-01");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .starts_with("journal: intact — 0 recordings since 2099-01-01"),
        "{r:?}"
    );
    // ls and grep over the prefix see recordings only.
    let r = run_s3(&d, &ep, &["grep", "-c", "j-", "s3://recs/j"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");
}
