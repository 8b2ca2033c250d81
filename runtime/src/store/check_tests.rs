//! Tests of check.rs against a real sled store and blob store.
use std::collections::BTreeMap;

use super::*;
use crate::cache::{BlobStore, CacheEntry, Hash, KeyParts, TreeEntry, TreeManifest, store_tree};
use crate::model::{AttemptCache, Event, PlannedTask, RunResult, TaskResult};
use crate::secrets::{AclEntry, Permission, ScopeId, ScopeRecord, SealedVersion};
use crate::store::SledStore;
use crate::store::sled_secrets::SledSecretStore;

/// A finished one-task run whose attempt wrote `/out` files (manifest blob `artifacts`).
fn run_events(run: RunId, artifacts: Option<Hash>) -> Vec<Event> {
    vec![
        Event::RunCreated {
            run_id: run,
            job: "j".into(),
            source: "./b".into(),
            target: "dev".into(),
            parameters: BTreeMap::new(),
            tasks: vec![PlannedTask {
                key: "t".into(),
                component: "c".into(),
                component_hash: "ab".repeat(32),
                depends_on: vec![],
            }],
            at: 1,
            plan: None,
        },
        Event::AttemptStarted { task: "t".into(), attempt: 0, at: 2 },
        Event::AttemptFinished {
            task: "t".into(),
            attempt: 0,
            at: 3,
            result: TaskResult::Success,
            output: Some("{}".into()),
            error: None,
            log: String::new(),
            log_truncated: false,
            elapsed_us: 1,
            outcome: None,
            cache: artifacts.map(|h| Box::new(AttemptCache { artifacts: Some(h.to_string()), ..Default::default() })),
            error_code: None,
        },
        Event::RunFinished { result: RunResult::Success, at: 4 },
    ]
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: SledStore,
    blobs: BlobStore,
    /// The `/out` tree of run 1.
    tree: TreeManifest,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let blobs = BlobStore::open(dir.path().join("blobs")).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("sub")).unwrap();
    std::fs::write(out.join("a.txt"), b"alpha").unwrap();
    std::fs::write(out.join("sub/b.txt"), b"beta").unwrap();
    let tree = store_tree(&blobs, &out).unwrap();
    let manifest = blobs.put_bytes(&serde_json::to_vec(&tree).unwrap()).unwrap();
    store.append(1, &run_events(1, Some(manifest))).unwrap();
    store.append(2, &run_events(2, None)).unwrap();
    Fixture { _dir: dir, store, blobs, tree }
}

fn run_check(f: &Fixture) -> CheckReport {
    check(&f.store, &f.store.inventory().unwrap(), Some(&f.blobs), None)
}

fn writable(path: &std::path::Path) {
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).unwrap();
}

#[test]
fn a_sound_store_checks_clean() {
    let f = fixture();
    let report = run_check(&f);
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.runs, report.events, report.blobs), (2, 8, 3), "{report:?}");
}

#[test]
fn undecodable_and_unfoldable_logs_are_reported_per_run_and_the_check_goes_on() {
    let f = fixture();
    // run 3: an event that is not JSON; run 4: a log that does not start with RunCreated
    f.store.insert_raw_event(3, 0, b"\xff not json");
    f.store.append(4, &[Event::RunResumed { at: 1 }]).unwrap();
    let report = run_check(&f);
    let whats: Vec<&str> = report.problems.iter().map(|p| p.what.as_str()).collect();
    assert_eq!(whats, ["run 3 event log", "run 4 event log"], "{report:?}");
    assert!(report.problems[0].message.contains("corrupt"), "{report:?}");
    assert_eq!(report.runs, 4);
}

#[test]
fn missing_and_damaged_blobs_are_reported_naming_the_attempt() {
    let f = fixture();
    let missing = f.tree.entries.iter().find(|e| e.path == "a.txt").unwrap().hash;
    let damaged = f.tree.entries.iter().find(|e| e.path == "sub/b.txt").unwrap().hash;
    std::fs::remove_file(f.blobs.path(&missing)).unwrap();
    writable(&f.blobs.path(&damaged));
    std::fs::write(f.blobs.path(&damaged), b"BETA").unwrap();
    let report = run_check(&f);
    assert_eq!(report.problems.len(), 2, "{report:?}");
    for p in &report.problems {
        assert_eq!(p.what, "run 1, task t, attempt 0: /out files");
    }
    let messages: String = report.problems.iter().map(|p| p.message.clone()).collect();
    assert!(messages.contains("not in the blob store") && messages.contains("corrupt"), "{messages}");
}

#[test]
fn cache_entries_naming_missing_blobs_and_undecodable_ones_are_reported() {
    let f = fixture();
    let lost = Hash::of(b"never stored");
    let parts = KeyParts::new(Hash::of(b"component").to_string(), 1);
    let out_tree =
        TreeManifest { root: lost, entries: vec![TreeEntry { path: "x".into(), hash: lost, size: 12 }], dirs: vec![] };
    let entry = CacheEntry {
        key: parts.key(),
        parts,
        run: 1,
        task: "t".into(),
        output: None,
        values: vec![],
        out_tree: Some(out_tree),
        created_at: 1,
        quality: Vec::new(),
        attempt: Some(0),
    };
    f.store.put_cache_entry(&entry).unwrap();
    // a record that is no cache entry at all: a run would only miss it, the check reports it
    f.store.insert_raw_cache_entry("k2", b"{\"out_tree\": 3}");
    let report = run_check(&f);
    let whats: Vec<&str> = report.problems.iter().map(|p| p.what.as_str()).collect();
    assert_eq!(whats, [format!("cache entry {}", entry.key).as_str(), "cache entry k2"], "{report:?}");
    assert!(report.problems[0].message.contains("not in the blob store"), "{report:?}");
    assert!(report.problems[1].message.contains("not a cache entry"), "{report:?}");
    assert_eq!(report.cache_entries, 2);
}

#[test]
fn secrets_that_do_not_open_are_reported_and_without_a_key_noted() {
    let f = fixture();
    let secrets = SledSecretStore::open(&f.store).unwrap();
    let key = MasterKey::generate("test key");
    let id = ScopeId::new("default", "dev", "db").unwrap();
    let scope = ScopeRecord { id: id.clone(), created_at: 1, created_by: "alice".into() };
    secrets.create_scope(&scope, &AclEntry { principal: "alice".into(), permission: Permission::Manage }).unwrap();
    secrets.init_key_check(&key.key_check().unwrap()).unwrap();
    let sealed = |version: u32, aad_version: u32| SealedVersion {
        version,
        sealed: key.seal(b"hunter2", &secret_aad(&id, "pw", aad_version)).unwrap(),
        created_at: 1,
        created_by: "alice".into(),
    };
    secrets.add_version(&id, "pw", &sealed(1, 1)).unwrap();
    // version 2 carries version 3's sealing: moved from another record
    secrets.add_version(&id, "pw", &sealed(2, 3)).unwrap();

    let runs = f.store.inventory().unwrap();
    let with_key = check(&f.store, &runs, None, Some(SecretsCheck { store: &secrets, key: Ok(key.clone()) }));
    assert_eq!((with_key.secret_versions, with_key.secrets_opened), (2, 1), "{with_key:?}");
    assert_eq!(with_key.problems.len(), 1, "{with_key:?}");
    assert!(with_key.problems[0].what.contains("secret db/pw") && with_key.problems[0].what.contains("version 2"));

    let wrong = MasterKey::generate("another key");
    let with_wrong = check(&f.store, &runs, None, Some(SecretsCheck { store: &secrets, key: Ok(wrong) }));
    assert!(with_wrong.problems.iter().any(|p| p.message.contains("not the one they were sealed with")));

    let without = check(&f.store, &runs, None, Some(SecretsCheck { store: &secrets, key: Err("no key".into()) }));
    assert!(without.ok(), "{without:?}");
    assert!(without.notes.iter().any(|n| n.contains("no key")), "{without:?}");
}
