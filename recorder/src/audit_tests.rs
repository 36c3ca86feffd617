//! The audit writer's tests: chains continue across opens, torn tails are
//! kept and accounted for, damaged logs are refused, and concurrent callers
//! are written in order.

use std::io::Write;

use termtrail_format::audit::{AuditReport, AuditVerdict, ServerStop, Terminate, verify};

use super::*;

fn stop(n: u64) -> AuditEvent {
    AuditEvent::Stop(ServerStop { shells_left: n })
}

fn check(path: &Path) -> AuditReport {
    verify(BufReader::new(File::open(path).unwrap()))
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn a_new_log_is_chained_and_a_reopened_one_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head(), None);
    for i in 0..3 {
        log.record(stop(i)).await.unwrap();
    }
    let head = log.head().unwrap();
    assert_eq!(head.seq, 3);
    drop(log);
    let again = AuditLog::open(&path).unwrap();
    assert_eq!(again.head(), Some(head.clone()), "the head is read back");
    let next = again.record(stop(9)).await.unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(next.log, head.log, "the same log id");
    let r = check(&path);
    assert_eq!(r.verdict, AuditVerdict::Intact);
    assert_eq!(r.head, Some(next));
}

#[tokio::test]
async fn a_torn_tail_is_kept_and_a_recovered_line_accounts_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    log.record(stop(1)).await.unwrap();
    drop(log);
    let torn = b"{\"seq\":2,\"time\":\"2026-";
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(torn)
        .unwrap();
    assert!(matches!(check(&path).verdict, AuditVerdict::Torn(_)));
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().unwrap().seq, 2, "the recovered line");
    log.record(stop(3)).await.unwrap();
    let r = check(&path);
    assert_eq!(r.verdict, AuditVerdict::Intact);
    assert_eq!(r.recovered, 1);
    let text = std::fs::read(&path).unwrap();
    assert!(
        text.windows(torn.len()).any(|w| w == torn),
        "the torn bytes are still there"
    );
    let all = lines(&path);
    assert_eq!(all[1]["event"], "recovered");
    assert_eq!(all[1]["torn_bytes"], torn.len() as u64 + 1);
}

#[tokio::test]
async fn a_last_line_missing_only_its_newline_is_completed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    log.record(stop(1)).await.unwrap();
    log.record(stop(2)).await.unwrap();
    drop(log);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.pop();
    std::fs::write(&path, &bytes).unwrap();
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().unwrap().seq, 2);
    log.record(stop(3)).await.unwrap();
    let r = check(&path);
    assert_eq!(r.verdict, AuditVerdict::Intact);
    assert_eq!(r.recovered, 0);
    assert_eq!(r.head.unwrap().seq, 3);
}

#[tokio::test]
async fn a_damaged_log_or_another_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for i in 0..3 {
        log.record(stop(i)).await.unwrap();
    }
    drop(log);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"shells_left\":1", "\"shells_left\":7", 1);
    std::fs::write(&path, &edited).unwrap();
    let e = AuditLog::open(&path).unwrap_err();
    assert!(matches!(e, AuditError::Damaged { line: 3, .. }), "{e:?}");
    assert!(
        e.to_string().contains("audit.jsonl:3 does not verify"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited, "untouched");
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "hello\n").unwrap();
    assert!(matches!(
        AuditLog::open(&other),
        Err(AuditError::NotAuditLog { .. })
    ));
    let missing = dir.path().join("no/such/dir/audit.jsonl");
    assert!(matches!(
        AuditLog::open(&missing),
        Err(AuditError::Open { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_are_written_in_order_of_handing_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20u64 {
                if i % 2 == 0 {
                    log.submit(stop(t * 100 + i));
                } else {
                    log.record(stop(t * 100 + i)).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A record after submits returns once they are written too.
    log.submit(AuditEvent::Terminate(Terminate {
        session: "s".into(),
        shell: "x".into(),
        by: None,
        reason: "test".into(),
    }));
    let last = log.record(stop(999)).await.unwrap();
    assert_eq!(last.seq, 162);
    let r = check(&path);
    assert_eq!(r.verdict, AuditVerdict::Intact);
    assert_eq!(r.lines, 162);
    // Each task's events are in its own order.
    let all = lines(&path);
    for t in 0..8u64 {
        let mine: Vec<u64> = all
            .iter()
            .filter_map(|l| l["shells_left"].as_u64())
            .filter(|n| (t * 100..t * 100 + 20).contains(n))
            .collect();
        assert_eq!(mine, (t * 100..t * 100 + 20).collect::<Vec<_>>());
    }
    assert_eq!(log.failures(), 0);
}

#[tokio::test]
async fn shipping_puts_new_lines_in_new_pieces_and_resumes_where_the_store_stands() {
    use crate::audit_ship::{ShipError, Shipper, piece_key};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store: Arc<dyn termtrail_store::Store> = Arc::new(termtrail_store::local::LocalStore::new(
        dir.path().join("store"),
    ));
    let log = AuditLog::open(&path).unwrap();
    let id = log.record(stop(1)).await.unwrap().log;
    log.record(stop(2)).await.unwrap();
    let mut shipper = Shipper::new(Arc::clone(&store), &path);
    assert_eq!(shipper.ship(&id).unwrap(), 1);
    assert_eq!(shipper.ship(&id).unwrap(), 0, "nothing new");
    log.record(stop(3)).await.unwrap();
    // A torn tail is not shipped until it is a line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"seq\":4,")
        .unwrap();
    // A new shipper (a restart) skips what the store holds.
    let mut again = Shipper::new(Arc::clone(&store), &path);
    assert_eq!(again.ship(&id).unwrap(), 1);
    let mut second = Vec::new();
    store.read(&piece_key(&id, 3), &mut second).unwrap();
    assert_eq!(lines_of_bytes(&second), 1, "line 3 only: {second:?}");
    // A piece changed in the store is a conflict, never overwritten.
    let first = dir.path().join("store").join(piece_key(&id, 1));
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::remove_file(&first).unwrap();
    std::fs::write(&first, text.replace("shells_left\":1", "shells_left\":9")).unwrap();
    let e = Shipper::new(Arc::clone(&store), &path)
        .ship(&id)
        .unwrap_err();
    assert!(matches!(e, ShipError::Conflict { offset: 0, .. }), "{e:?}");
}

fn lines_of_bytes(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}
