//! Tests of sled_backup.rs: round trips, consistency under concurrent writes, refusals.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::cache::{CacheEntry, KeyParts};
use crate::model::{Event, RunId};
use crate::secrets::{AclEntry, Permission, ScopeId, ScopeRecord, SecretStore};
use crate::store::Store;
use crate::store::conformance::{finished_summary, numbered_event, running_summary};
use crate::store::sled_secrets::SledSecretStore;

fn filled(dir: &Path) -> SledStore {
    let store = SledStore::open(dir).unwrap();
    for _ in 0..3 {
        let run = store.next_run_id().unwrap();
        store.append(run, &(0..5).map(numbered_event).collect::<Vec<_>>()).unwrap();
        store.put_summary(&finished_summary(run)).unwrap();
        store.put_value(run, "t", "k", "{\"v\":1}").unwrap();
        store.save_checkpoint(run, "t", "cp", &[0, 255, run as u8]).unwrap();
    }
    store.put_summary(&running_summary(3)).unwrap();
    let entry = cache_entry();
    store.put_cache_entry(&entry).unwrap();
    store.put_key_parts(&entry.key, &entry.parts).unwrap();
    let secrets = SledSecretStore::open(&store).unwrap();
    let id = ScopeId::new("default", "dev", "db").unwrap();
    let scope = ScopeRecord { id, created_at: 1, created_by: "alice".into() };
    secrets.create_scope(&scope, &AclEntry { principal: "alice".into(), permission: Permission::Manage }).unwrap();
    store.flush().unwrap();
    store
}

/// The one cache entry (and key parts) of a [`filled`] store.
fn cache_entry() -> CacheEntry {
    let parts = KeyParts::new("ab".repeat(32), 1);
    CacheEntry {
        key: parts.key(),
        parts,
        run: 1,
        task: "t".into(),
        output: Some("{}".into()),
        values: vec![],
        out_tree: None,
        created_at: 7,
        attempt: Some(0),
        quality: Vec::new(),
    }
}

fn assert_same(a: &SledStore, b: &SledStore) {
    for run in 1..=3 {
        assert_eq!(a.events(run).unwrap(), b.events(run).unwrap());
        assert_eq!(a.summary(run).unwrap(), b.summary(run).unwrap());
        assert_eq!(a.values(run, "t").unwrap(), b.values(run, "t").unwrap());
        assert_eq!(a.load_checkpoint(run, "t", "cp").unwrap(), b.load_checkpoint(run, "t", "cp").unwrap());
    }
    assert_eq!(a.unfinished_runs().unwrap(), b.unfinished_runs().unwrap());
    assert_eq!(a.cache_entries().unwrap(), b.cache_entries().unwrap());
    assert_eq!(a.cache_entries().unwrap().len(), 1);
    let key = cache_entry().key;
    assert_eq!(a.key_parts(&key).unwrap(), b.key_parts(&key).unwrap());
    assert!(b.key_parts(&key).unwrap().is_some());
    let scopes = |s: &SledStore| SledSecretStore::open(s).unwrap().scopes().unwrap();
    assert_eq!(scopes(a), scopes(b));
    assert_eq!(scopes(b).len(), 1);
}

#[test]
fn a_backup_restores_into_an_equal_store_and_the_replaced_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let source = filled(&dir.path().join("source"));
    let file = dir.path().join("b.sluice-backup");
    let report = source.backup(&file).unwrap();
    assert!(report.records >= 20, "{report:?}");
    assert!(source.backup(&file).is_err(), "a backup never overwrites");

    // into a fresh directory
    let fresh = dir.path().join("fresh");
    let restored = restore(&file, &fresh).unwrap();
    assert_eq!(restored.records, report.records);
    assert_eq!(restored.replaced, None, "nothing was there to keep");
    let reopened = SledStore::open(&fresh).unwrap();
    assert_same(&source, &reopened);
    assert_eq!(reopened.next_run_id().unwrap(), 4, "the run-id counter comes back too");
    drop(reopened);

    // over a store with other data, which is kept aside
    let other = dir.path().join("other");
    let before = SledStore::open(&other).unwrap();
    before.append(77, &[numbered_event(0)]).unwrap();
    before.flush().unwrap();
    assert!(matches!(restore(&file, &other), Err(StoreError::Locked { .. })), "never under an open store");
    drop(before);
    let restored = restore(&file, &other).unwrap();
    let kept = restored.replaced.expect("the replaced store is kept");
    assert_same(&source, &SledStore::open(&other).unwrap());
    assert_eq!(SledStore::open(&kept).unwrap().events(77).unwrap(), vec![numbered_event(0)]);
}

#[test]
fn a_damaged_or_foreign_backup_is_refused_and_the_store_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let source = filled(&dir.path().join("source"));
    let file = dir.path().join("b.sluice-backup");
    source.backup(&file).unwrap();
    let good = fs::read(&file).unwrap();
    let target = dir.path().join("target");
    drop(SledStore::open(&target).unwrap());
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let truncated = good[..good.len() - 40].to_vec();
    let mut newer = good.clone();
    let header = br#""store_format":1"#;
    let at = newer.windows(header.len()).position(|w| w == header).unwrap();
    newer[at + header.len() - 1] = b'9';
    for (case, bytes) in [("flipped", flipped), ("truncated", truncated), ("newer", newer), ("empty", Vec::new())] {
        let bad = dir.path().join(format!("{case}.sluice-backup"));
        fs::write(&bad, bytes).unwrap();
        let err = restore(&bad, &target).unwrap_err().to_string();
        let expected = if case == "newer" { "store format 9" } else { "damaged" };
        assert!(err.contains(expected), "{case}: {err}");
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("target.restoring"));
        assert_eq!(leftovers.count(), 0, "{case}: nothing half-restored is left");
        let store = SledStore::open(&target).unwrap();
        assert_eq!(store.run_ids().unwrap(), Vec::<RunId>::new(), "{case}: the store is unchanged");
    }
}

/// Enough for the first backup rounds to overlap writes, even on a loaded machine.
const WRITES_PER_WRITER: u64 = 20_000;

#[test]
fn backups_taken_while_writers_write_are_consistent_moments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(&dir.path().join("source")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // each writer: event k of its run, then value `k` — two separate writes, so a
    // consistent copy may hold an event without its value, never a value without its event
    let writers: Vec<_> = (1..=3u64)
        .map(|run| {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            std::thread::spawn(move || {
                // paced, so that the store stays small and every backup meets writes in flight
                for k in 0..WRITES_PER_WRITER {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    store.append(run, &[numbered_event(k)]).unwrap();
                    store.put_value(run, "t", &format!("{k:08}"), "true").unwrap();
                    if k % 50 == 49 {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut mid_write = 0;
    for round in 0..5 {
        let file = dir.path().join(format!("{round}.sluice-backup"));
        store.backup(&file).unwrap();
        let restored = dir.path().join(format!("restored-{round}"));
        restore(&file, &restored).unwrap();
        let copy = SledStore::open(&restored).unwrap();
        for run in 1..=3 {
            let events: Vec<Event> = copy.events(run).unwrap();
            let expected: Vec<Event> = (0..events.len() as u64).map(numbered_event).collect();
            assert_eq!(events, expected, "round {round}, run {run}: a gap-free prefix");
            let values = copy.values(run, "t").unwrap();
            assert!(values.len() <= events.len(), "round {round}, run {run}: a value without its event");
            assert!(values.len() + 1 >= events.len(), "round {round}, run {run}: at most one write in between");
            mid_write += usize::from(!events.is_empty() && (events.len() as u64) < WRITES_PER_WRITER);
        }
    }
    assert!(mid_write > 0, "no backup was taken while a writer was writing");
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|w| w.join().unwrap());
}
