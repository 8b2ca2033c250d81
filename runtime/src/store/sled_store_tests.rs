//! Tests of sled_store.rs.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;
use crate::store::conformance::{finished_summary, numbered_event, running_summary};

fn open_in(dir: &tempfile::TempDir) -> SledStore {
    SledStore::open(dir.path()).expect("open store")
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::Corrupt { .. })), "expected Corrupt, got {result:?}");
}

#[test]
fn reopen_after_flush_keeps_data_and_run_id_counter() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open_in(&dir);
        assert_eq!(store.next_run_id().unwrap(), 1);
        assert_eq!(store.next_run_id().unwrap(), 2);
        store.append(2, &[numbered_event(0), numbered_event(1)]).unwrap();
        store.put_summary(&running_summary(1)).unwrap();
        store.put_summary(&finished_summary(2)).unwrap();
        store.put_value(2, "task", "out", "{\"n\":1}").unwrap();
        store.save_checkpoint(2, "task", "cursor", b"\x00\xffdata").unwrap();
        store.flush().unwrap();
    }
    let store = open_in(&dir);
    assert_eq!(store.next_run_id().unwrap(), 3, "the counter survives reopen");
    assert_eq!(store.events(2).unwrap(), vec![numbered_event(0), numbered_event(1)]);
    store.append(2, &[numbered_event(2)]).unwrap();
    assert_eq!(store.events(2).unwrap().len(), 3, "appends continue after the stored log");
    assert_eq!(store.events(2).unwrap()[2], numbered_event(2));
    assert_eq!(store.summary(2).unwrap(), Some(finished_summary(2)));
    assert_eq!(store.unfinished_runs().unwrap(), vec![1]);
    assert_eq!(store.value(2, "task", "out").unwrap().as_deref(), Some("{\"n\":1}"));
    assert_eq!(store.load_checkpoint(2, "task", "cursor").unwrap().as_deref(), Some(&b"\x00\xffdata"[..]));
}

#[test]
fn second_open_of_a_held_store_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let _held = open_in(&dir);
    let err = SledStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. } | StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn opening_a_file_as_a_store_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"hello").unwrap();
    let err = SledStore::open(&file).unwrap_err();
    assert!(matches!(err, StoreError::Open { ref path, .. } if path == &file), "{err:?}");
}

#[test]
fn garbage_event_is_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir);
    store.append(7, &[numbered_event(0)]).unwrap();
    store.events.insert(event_key(7, 1), &b"\xde\xad not json"[..]).unwrap();
    assert_corrupt(store.events(7));
    // A well-formed event of valid JSON but the wrong shape is just as corrupt.
    store.events.insert(event_key(8, 0), &b"{\"event\":\"no_such_event\"}"[..]).unwrap();
    assert_corrupt(store.events(8));
}

#[test]
fn malformed_event_key_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir);
    let mut short = run_key(9).to_vec();
    short.push(1);
    store.events.insert(short, &b"{}"[..]).unwrap();
    assert_corrupt(store.events(9));
    assert_corrupt(store.append(9, &[numbered_event(0)]));
}

#[test]
fn garbage_summaries_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir);
    store.summaries.insert(run_key(3), &b"\x00\x01\x02"[..]).unwrap();
    assert_corrupt(store.summary(3));
    assert_corrupt(store.list_summaries(10));
    // A summary filed under another run's key.
    let moved = encode_json(&running_summary(5), "summary").unwrap();
    store.summaries.insert(run_key(4), moved).unwrap();
    assert_corrupt(store.summary(4));
    // A key that is not a run id.
    store.summaries.insert(&b"odd"[..], &b"{}"[..]).unwrap();
    assert_corrupt(store.list_summaries(100));
    store.unfinished.insert(&b"odd"[..], &b""[..]).unwrap();
    assert_corrupt(store.unfinished_runs());
}

#[test]
fn garbage_values_and_counter_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir);
    store.values.insert(named_key(1, "t", "k").unwrap(), &b"\xff\xfe"[..]).unwrap();
    assert_corrupt(store.value(1, "t", "k"));
    assert_corrupt(store.values(1, "t"));
    let mut bad_key = task_prefix(1, "u").unwrap();
    bad_key.push(0xff);
    store.values.insert(bad_key, &b"1"[..]).unwrap();
    assert_corrupt(store.values(1, "u"));
    store.meta.insert(LAST_RUN_ID, &b"abc"[..]).unwrap();
    assert_corrupt(store.next_run_id());
}

#[test]
fn stale_in_flight_index_entries_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir);
    store.put_summary(&finished_summary(1)).unwrap();
    // As if the process died between writing the summary and clearing the index.
    store.unfinished.insert(run_key(1), sled::IVec::default()).unwrap();
    store.unfinished.insert(run_key(2), sled::IVec::default()).unwrap();
    assert_eq!(store.unfinished_runs().unwrap(), Vec::<RunId>::new());
}

/// Where the SIGKILL test tells its child process to open the store.
const KILL_TEST_DIR: &str = "SLUICE_STORE_KILL_TEST_DIR";
/// What the child prints once its first writes are flushed.
const FLUSHED: &str = "sluice-store-flushed";
const CHILD_TEST: &str = "sigkill_child_writer";

/// The child side of `survives_sigkill_mid_write`: opens the store, writes
/// and flushes, says so, then keeps writing (flushing now and then) until
/// it is killed. Does nothing when run on its own.
#[test]
#[ignore = "run by survives_sigkill_mid_write in a child process"]
fn sigkill_child_writer() {
    let Some(dir) = std::env::var_os(KILL_TEST_DIR) else { return };
    let store = SledStore::open(Path::new(&dir)).expect("child opens store");
    let run = store.next_run_id().expect("run id");
    store.put_summary(&running_summary(run)).expect("summary");
    store.append(run, &[numbered_event(0)]).expect("append");
    store.put_value(run, "task", "out", "true").expect("value");
    store.save_checkpoint(run, "task", "cp", &run.to_be_bytes()).expect("checkpoint");
    store.flush().expect("flush");
    println!("{FLUSHED} {run}");
    for i in 1..20_000 {
        store.append(run, &[numbered_event(i)]).expect("append");
        store.save_checkpoint(run, "task", "cp", &i.to_be_bytes()).expect("checkpoint");
        if i % 16 == 0 {
            store.flush().expect("flush");
        }
    }
}

/// The abrupt-kill scenario of sled#1533: a writer killed mid-write
/// (SIGKILL, no destructors), three times over; each time the store must
/// reopen, keep everything flushed, and decode cleanly.
#[test]
fn survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let test_path = module_path!().split_once("::").map_or(module_path!(), |(_, rest)| rest);
    let child_test = format!("{test_path}::{CHILD_TEST}");
    for round in 1..=3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([child_test.as_str(), "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(KILL_TEST_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let run: RunId = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.split_once(FLUSHED).and_then(|(_, rest)| rest.trim().parse().ok()))
            .expect("child reports its flushed run");
        assert_eq!(run, round, "run ids continue across kills");
        std::thread::sleep(Duration::from_millis(30));
        child.kill().expect("kill child");
        child.wait().expect("reap child");

        let store = open_in(&dir);
        let events = store.events(run).expect("events decode after kill");
        assert!(!events.is_empty(), "the flushed event survives");
        let expected: Vec<Event> = (0..events.len() as u64).map(numbered_event).collect();
        assert_eq!(events, expected, "the log is a gap-free prefix");
        assert_eq!(store.summary(run).unwrap(), Some(running_summary(run)));
        assert_eq!(store.value(run, "task", "out").unwrap().as_deref(), Some("true"));
        assert!(store.load_checkpoint(run, "task", "cp").unwrap().is_some());
        assert_eq!(store.unfinished_runs().unwrap(), (1..=round).collect::<Vec<_>>());
    }
}
