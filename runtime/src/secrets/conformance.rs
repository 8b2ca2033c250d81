//! The behaviour every [`SecretStore`] backend must show; run against
//! [`super::MemorySecretStore`] and `store::sled_secrets::SledSecretStore`.
//! Test-only.

use super::{AclEntry, AuditAction, AuditRecord, Permission, ScopeId, ScopeRecord, SealedVersion, SecretStore};
use crate::secrets::MasterKey;

fn id(target: &str, name: &str) -> ScopeId {
    ScopeId::new("default", target, name).expect("valid test scope")
}

fn scope(id: &ScopeId) -> ScopeRecord {
    ScopeRecord { id: id.clone(), created_at: 1, created_by: "alice".into() }
}

fn entry(p: &str, permission: Permission) -> AclEntry {
    AclEntry { principal: p.into(), permission }
}

fn version(key: &MasterKey, n: u32) -> SealedVersion {
    SealedVersion {
        version: n,
        sealed: key.seal(format!("v{n}").as_bytes(), b"aad").expect("seal"),
        created_at: u64::from(n),
        created_by: "alice".into(),
    }
}

fn audit(action: AuditAction, granted: bool) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: 5,
        action,
        principal: "alice".into(),
        workspace: "default".into(),
        target: "prod".into(),
        scope: "db".into(),
        key: Some("pw".into()),
        run: Some(3),
        task: Some("t".into()),
        attempt: Some(0),
        version: None,
        granted,
        reason: "because".into(),
        via: None,
    }
}

/// Every check, in order.
pub(crate) fn run_all(store: &dyn SecretStore) {
    scopes_are_created_once_with_their_first_manager(store);
    targets_and_workspaces_are_separate(store);
    versions_are_kept_in_order_and_never_overwritten(store);
    deleting_a_scope_removes_everything_in_it(store);
    acl_entries_replace_and_delete(store);
    the_audit_trail_appends_in_order(store);
    the_key_check_is_set_once(store);
    store.flush().expect("flush");
}

fn scopes_are_created_once_with_their_first_manager(store: &dyn SecretStore) {
    let db = id("prod", "c1");
    assert!(store.create_scope(&scope(&db), &entry("alice", Permission::Manage)).unwrap());
    assert!(
        !store
            .create_scope(&ScopeRecord { created_by: "bob".into(), ..scope(&db) }, &entry("bob", Permission::Manage))
            .unwrap()
    );
    assert_eq!(store.scope(&db).unwrap().unwrap().created_by, "alice");
    assert_eq!(store.acl(&db).unwrap(), vec![entry("alice", Permission::Manage)]);
    assert!(store.scopes().unwrap().iter().any(|s| s.id == db));
}

fn targets_and_workspaces_are_separate(store: &dyn SecretStore) {
    let key = MasterKey::generate("test");
    let prod = id("prod", "c2");
    let test = id("test", "c2");
    let other_ws = ScopeId::new("team-b", "prod", "c2").unwrap();
    for s in [&prod, &test, &other_ws] {
        assert!(store.create_scope(&scope(s), &entry("alice", Permission::Manage)).unwrap());
    }
    assert!(store.add_version(&prod, "pw", &version(&key, 1)).unwrap());
    assert!(store.latest(&test, "pw").unwrap().is_none());
    assert!(store.latest(&other_ws, "pw").unwrap().is_none());
    assert!(store.secret_keys(&test).unwrap().is_empty());
    // a scope name that extends another's must not see its records
    let longer = id("prod", "c2x");
    assert!(store.create_scope(&scope(&longer), &entry("alice", Permission::Manage)).unwrap());
    assert!(store.secret_keys(&longer).unwrap().is_empty());
    assert_eq!(store.secret_keys(&prod).unwrap(), vec!["pw".to_string()]);
}

fn versions_are_kept_in_order_and_never_overwritten(store: &dyn SecretStore) {
    let key = MasterKey::generate("test");
    let db = id("prod", "c3");
    store.create_scope(&scope(&db), &entry("alice", Permission::Manage)).unwrap();
    assert!(store.latest(&db, "pw").unwrap().is_none());
    for n in [1, 2, 10] {
        assert!(store.add_version(&db, "pw", &version(&key, n)).unwrap());
    }
    let first = store.versions(&db, "pw").unwrap()[0].clone();
    assert!(!store.add_version(&db, "pw", &version(&key, 1)).unwrap(), "version 1 is taken");
    assert_eq!(store.versions(&db, "pw").unwrap()[0], first, "a taken version is not overwritten");
    let numbers: Vec<u32> = store.versions(&db, "pw").unwrap().iter().map(|v| v.version).collect();
    assert_eq!(numbers, vec![1, 2, 10], "numeric order, not text order");
    assert_eq!(store.latest(&db, "pw").unwrap().unwrap().version, 10);
    // "pw" and "pw2" are different secrets
    store.add_version(&db, "pw2", &version(&key, 1)).unwrap();
    assert_eq!(store.versions(&db, "pw").unwrap().len(), 3);
    assert_eq!(store.secret_keys(&db).unwrap(), vec!["pw".to_string(), "pw2".to_string()]);
    assert!(store.delete_secret(&db, "pw").unwrap());
    assert!(!store.delete_secret(&db, "pw").unwrap());
    assert!(store.versions(&db, "pw").unwrap().is_empty());
    assert_eq!(store.secret_keys(&db).unwrap(), vec!["pw2".to_string()]);
}

fn deleting_a_scope_removes_everything_in_it(store: &dyn SecretStore) {
    let key = MasterKey::generate("test");
    let db = id("prod", "c4");
    let neighbour = id("prod", "c4-n");
    for s in [&db, &neighbour] {
        store.create_scope(&scope(s), &entry("alice", Permission::Manage)).unwrap();
        store.add_version(s, "pw", &version(&key, 1)).unwrap();
    }
    store.put_acl(&db, &entry("bob", Permission::Read)).unwrap();
    assert!(store.delete_scope(&db).unwrap());
    assert!(!store.delete_scope(&db).unwrap());
    assert!(store.scope(&db).unwrap().is_none());
    // recreating it must not resurrect old secrets or grants
    assert!(store.create_scope(&scope(&db), &entry("carol", Permission::Manage)).unwrap());
    assert!(store.versions(&db, "pw").unwrap().is_empty());
    assert_eq!(store.acl(&db).unwrap(), vec![entry("carol", Permission::Manage)]);
    assert_eq!(store.versions(&neighbour, "pw").unwrap().len(), 1, "other scopes untouched");
}

fn acl_entries_replace_and_delete(store: &dyn SecretStore) {
    let db = id("prod", "c5");
    store.create_scope(&scope(&db), &entry("alice", Permission::Manage)).unwrap();
    store.put_acl(&db, &entry("bob", Permission::Read)).unwrap();
    store.put_acl(&db, &entry("bob", Permission::Write)).unwrap();
    assert_eq!(store.acl(&db).unwrap(), vec![entry("alice", Permission::Manage), entry("bob", Permission::Write)]);
    assert!(store.delete_acl(&db, "bob").unwrap());
    assert!(!store.delete_acl(&db, "bob").unwrap());
    assert_eq!(store.acl(&db).unwrap(), vec![entry("alice", Permission::Manage)]);
}

fn the_audit_trail_appends_in_order(store: &dyn SecretStore) {
    let before = store.audit().unwrap().len();
    let a = store.append_audit(&audit(AuditAction::Reveal, true)).unwrap();
    let b = store.append_audit(&audit(AuditAction::Reveal, false)).unwrap();
    assert!(b > a);
    let trail = store.audit().unwrap();
    assert_eq!(trail.len(), before + 2);
    assert_eq!(trail[before].seq, a);
    assert_eq!(trail[before + 1], AuditRecord { seq: b, ..audit(AuditAction::Reveal, false) });
}

fn the_key_check_is_set_once(store: &dyn SecretStore) {
    assert!(store.key_check().unwrap().is_none());
    let a = MasterKey::generate("a");
    let b = MasterKey::generate("b");
    let kept = store.init_key_check(&a.key_check().unwrap()).unwrap();
    assert!(a.matches(&kept));
    let still = store.init_key_check(&b.key_check().unwrap()).unwrap();
    assert!(a.matches(&still) && !b.matches(&still), "the first key check stays");
    assert!(a.matches(&store.key_check().unwrap().unwrap()));
}
