//! Tests of sled_open.rs: the on-disk states a killed open leaves behind.
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::*;
use crate::model::Event;
use crate::store::conformance::{finished_summary, numbered_event};
use crate::store::{SledStore, Store};

/// A store with runs 1..=3 (3 events each, finished), flushed and closed: runs 1 and 2
/// in a first session, run 3 in a second one, whose open wrote a snapshot; so its log
/// grew since its last snapshot, and its next open writes a new one.
fn store_with_runs(dir: &Path) {
    for runs in [2, 1] {
        let store = SledStore::open(dir).unwrap();
        for _ in 0..runs {
            let run = store.next_run_id().unwrap();
            store.append(run, &[numbered_event(0), numbered_event(1), numbered_event(2)]).unwrap();
            store.put_summary(&finished_summary(run)).unwrap();
        }
        store.flush().unwrap();
    }
}

fn assert_runs_intact(store: &SledStore) {
    for run in 1..=3 {
        let expected: Vec<Event> = (0..3).map(numbered_event).collect();
        assert_eq!(store.events(run).unwrap(), expected, "run {run}");
        assert_eq!(store.summary(run).unwrap(), Some(finished_summary(run)));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn published_snapshots(dir: &Path) -> Vec<PathBuf> {
    snapshot_files(dir).unwrap().into_iter().filter(|p| !p.to_string_lossy().ends_with(UNPUBLISHED_SUFFIX)).collect()
}

/// What plain sled (no sluice defence) says when it opens a copy of `dir`.
fn plain_sled_opens(dir: &Path, scratch: &Path) -> Result<(), String> {
    let copy = scratch.join(format!("plain-{}", rand_suffix()));
    copy_dir(dir, &copy);
    let _ = fs::remove_file(copy.join(LOCK_FILE));
    sled::Config::new().path(&copy).flush_every_ms(None).open().map(drop).map_err(|e| e.to_string())
}

fn rand_suffix() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The on-disk state of a process killed while sled wrote the snapshot of a store whose
/// log grew since its last one: the old `snap.A`, the grown log, and a partial
/// `snap.B.generating` (B > A). Made from the very file sled writes for that store.
fn killed_mid_snapshot(dir: &Path, scratch: &Path, keep: impl Fn(usize) -> usize) -> String {
    store_with_runs(dir);
    // the next open of a copy writes the snapshot this store's next open would write
    let twin = scratch.join("twin");
    copy_dir(dir, &twin);
    let _ = fs::remove_file(twin.join(LOCK_FILE));
    drop(sled::Config::new().path(&twin).flush_every_ms(None).open().unwrap());
    let theirs = published_snapshots(&twin).pop().expect("the twin has a snapshot");
    let name = theirs.file_name().unwrap().to_string_lossy().into_owned();
    let ours: Vec<_> = published_snapshots(dir).iter().map(|p| p.file_name().unwrap().to_owned()).collect();
    assert_eq!(ours.len(), 1, "the second session's open wrote a snapshot");
    assert!(ours[0].to_string_lossy().as_ref() < name.as_str(), "the log grew: a newer snapshot is due");
    let bytes = fs::read(&theirs).unwrap();
    let partial = format!("{name}{UNPUBLISHED_SUFFIX}");
    fs::write(dir.join(&partial), &bytes[..keep(bytes.len())]).unwrap();
    partial
}

#[test]
fn a_partial_unpublished_snapshot_is_removed_and_the_store_opens_intact() {
    let scratch = tempfile::tempdir().unwrap();
    for (case, keep) in
        [("half", (|len| len / 2) as fn(usize) -> usize), ("empty", |_| 0), ("all but crc", |len| len - 4)]
    {
        let dir = scratch.path().join(case);
        let partial = killed_mid_snapshot(&dir, &scratch.path().join(format!("{case}-scratch")), keep);
        // plain sled takes the partial file for the newest snapshot: the bug
        let plain = plain_sled_opens(&dir, scratch.path());
        assert!(plain.as_ref().is_err_and(|e| e.contains("corrupt")), "{case}: plain sled said {plain:?}");

        let store = SledStore::open(&dir).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_runs_intact(&store);
        assert_eq!(store.next_run_id().unwrap(), 4, "{case}: the run-id counter survives");
        assert!(!dir.join(&partial).exists(), "{case}: the partial snapshot is gone");
        drop(store);
        assert_runs_intact(&SledStore::open(&dir).unwrap());
    }
}

#[test]
fn a_second_open_in_the_same_process_is_refused_by_sluices_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _held = StoreLock::acquire(dir.path()).unwrap();
    let err = SledStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    // nothing was touched before the lock was taken
    assert!(!dir.path().join(crate::store::format::FORMAT_FILE).exists());
}

#[test]
fn only_unpublished_snapshots_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    store_with_runs(dir.path());
    let before = published_snapshots(dir.path());
    assert!(!before.is_empty());
    fs::write(dir.path().join("snap.00000000000000FF.in___motion"), b"sled ignores these").unwrap();
    fs::write(dir.path().join("snapshot-notes.txt"), b"not sled's").unwrap();
    let removed = remove_unpublished_snapshots(dir.path()).unwrap();
    assert!(removed.is_empty());
    assert_eq!(published_snapshots(dir.path()), before);
    assert!(dir.path().join("snapshot-notes.txt").exists());
}

/// What the recovery relies on: with every snapshot gone, sled 0.34 rebuilds every record
/// from its log alone, even after heavy segment reuse (values overwritten many times over).
#[test]
fn sled_rebuilds_every_record_from_its_log_alone_after_segment_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let (sessions, runs_per_session) = (10u64, 150u64);
    let mut hot = std::collections::BTreeMap::new();
    for session in 0..sessions {
        let store = SledStore::open(dir.path()).unwrap();
        for i in 0..runs_per_session {
            let run = store.next_run_id().unwrap();
            store.append(run, &[numbered_event(i)]).unwrap();
            store.put_summary(&finished_summary(run)).unwrap();
            let (key, value) = (format!("hot{}", i % 7), format!("{session}-{i}-{}", "x".repeat(20_000)));
            store.put_value(1, "t", &key, &value).unwrap();
            hot.insert(key, value);
        }
        store.flush().unwrap();
    }
    let written = sessions * runs_per_session * 20_000;
    let size = fs::metadata(dir.path().join("db")).unwrap().len();
    assert!(size < written / 2, "segments were reused: {size} bytes on disk for {written} written");
    for snapshot in published_snapshots(dir.path()) {
        fs::remove_file(snapshot).unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.run_ids().unwrap().len() as u64, sessions * runs_per_session);
    assert_eq!(store.events(sessions * runs_per_session).unwrap(), vec![numbered_event(runs_per_session - 1)]);
    for (key, value) in hot {
        assert_eq!(store.value(1, "t", &key).unwrap().as_deref(), Some(value.as_str()), "{key}");
    }
}

/// Overwrites the middle of the store's newest published snapshot.
fn damage_newest_snapshot(dir: &Path) -> PathBuf {
    let newest = published_snapshots(dir).pop().expect("a snapshot");
    let mut bytes = fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 4].copy_from_slice(b"\xde\xad\xbe\xef");
    fs::write(&newest, bytes).unwrap();
    newest
}

fn kept_copies(dir: &Path, kind: &str) -> Vec<PathBuf> {
    let prefix = format!("{}.{kind}", dir.file_name().unwrap().to_string_lossy());
    fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&prefix))
        .collect()
}

#[test]
fn a_damaged_snapshot_is_rebuilt_in_a_copy_and_the_damaged_store_is_kept() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    store_with_runs(&dir);
    let snapshot = damage_newest_snapshot(&dir);
    let damaged_bytes = fs::read(&snapshot).unwrap();
    assert!(plain_sled_opens(&dir, scratch.path()).is_err_and(|e| e.contains("corrupt")));

    let store = SledStore::open(&dir).unwrap();
    assert_runs_intact(&store);
    assert_eq!(store.next_run_id().unwrap(), 4);
    let kept = kept_copies(&dir, "damaged-");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(fs::read(kept[0].join(snapshot.file_name().unwrap())).unwrap(), damaged_bytes, "kept as found");
    assert!(kept_copies(&dir, "recovering").is_empty());
}

#[test]
fn a_rebuild_that_lost_handed_out_runs_is_refused_and_nothing_is_changed() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    store_with_runs(&dir);
    damage_newest_snapshot(&dir);
    // runs up to 9 had been handed out: a rebuild that only finds 3 lost some
    fs::write(dir.join(super::super::sled_recover::RUN_MARK_FILE), 9u64.to_le_bytes()).unwrap();
    let listing = |d: &Path| {
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = listing(&dir);
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Damaged { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("up to 3") && text.contains("9 had been handed out"), "{text}");
    assert!(text.contains("sluice store restore") && text.contains("sluice store check"), "{text}");
    assert_eq!(listing(&dir), before, "the damaged store is exactly as it was");
    assert!(kept_copies(&dir, "recovering").is_empty() && kept_copies(&dir, "damaged-").is_empty());
}
