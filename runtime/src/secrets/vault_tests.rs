//! Unit tests of [`Vault`] over the in-memory store.

use super::*;
use crate::model::SystemClock;
use crate::secrets::{DEFAULT_WORKSPACE, MemorySecretStore};

const VALUE: &str = "correct horse battery staple";

fn vault_with(store: Arc<dyn SecretStore>, key: &MasterKey) -> Vault {
    Vault::new(store, Arc::new(key.clone()), Arc::new(SystemClock))
}

fn setup() -> (Arc<dyn SecretStore>, MasterKey, Vault, ScopeId) {
    let store: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let key = MasterKey::generate("test key");
    let vault = vault_with(store.clone(), &key);
    let id = ScopeId::new(DEFAULT_WORKSPACE, "prod", "db").unwrap();
    vault.create_scope("alice", &id).unwrap();
    (store, key, vault, id)
}

fn request(principal: &str, target: &str, name: &str, granted: bool) -> RevealRequest {
    RevealRequest {
        run: 7,
        task: "load".into(),
        attempt: 0,
        principal: principal.into(),
        workspace: DEFAULT_WORKSPACE.into(),
        target: target.into(),
        name: name.into(),
        granted,
        via: None,
    }
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn last_audit(vault: &Vault) -> AuditRecord {
    vault.audit(&AuditFilter::default()).unwrap().pop().unwrap()
}

#[test]
fn put_bumps_the_version_and_reveal_returns_the_newest() {
    let (_, _, vault, id) = setup();
    assert_eq!(vault.put("alice", &id, "pw", &secret("old")).unwrap(), 1);
    assert_eq!(vault.put("alice", &id, "pw", &secret(VALUE)).unwrap(), 2);
    let got = vault.reveal(&request("alice", "prod", "db/pw", true)).unwrap();
    assert_eq!(got.expose_secret(), VALUE);
    let rec = last_audit(&vault);
    assert!(
        rec.granted && rec.version == Some(2) && rec.run == Some(7) && rec.task.as_deref() == Some("load"),
        "{rec:?}"
    );
    assert_eq!(vault.version(DEFAULT_WORKSPACE, "prod", "db/pw"), Some(2));
    assert_eq!(vault.version(DEFAULT_WORKSPACE, "test", "db/pw"), None);
    let listed = vault.list("alice", &id).unwrap();
    assert_eq!((listed[0].key.as_str(), listed[0].version, listed[0].versions), ("pw", 2, 2));
    assert_eq!(listed[0].updated_by, "alice");
}

#[test]
fn the_creator_manages_and_others_need_grants() {
    let (_, _, vault, id) = setup();
    vault.put("alice", &id, "pw", &secret(VALUE)).unwrap();
    let denied = vault.reveal(&request("bob", "prod", "db/pw", true)).unwrap_err();
    assert!(denied.contains("`bob`") && denied.contains("no read permission"), "{denied}");
    let rec = last_audit(&vault);
    assert!(!rec.granted && rec.principal == "bob" && rec.scope == "db" && rec.key.as_deref() == Some("pw"), "{rec:?}");
    assert!(matches!(
        vault.put("bob", &id, "pw", &secret("x")),
        Err(SecretsError::Denied { needed: Permission::Write, .. })
    ));
    assert_eq!(last_audit(&vault).action, AuditAction::Put);

    vault.acl_put("alice", &id, "bob", Permission::Read).unwrap();
    assert_eq!(vault.reveal(&request("bob", "prod", "db/pw", true)).unwrap().expose_secret(), VALUE);
    assert!(vault.put("bob", &id, "pw", &secret("x")).is_err(), "read does not allow write");
    assert!(vault.acl_put("bob", &id, "bob", Permission::Manage).is_err(), "nobody grants themselves more");
    assert!(matches!(vault.acl_delete("alice", &id, "alice"), Err(SecretsError::Refused(_))), "the last manager stays");
    vault.acl_delete("alice", &id, "bob").unwrap();
    assert!(vault.reveal(&request("bob", "prod", "db/pw", true)).is_err());
    let acl = vault.acl_list("alice", &id).unwrap();
    assert_eq!(acl, vec![AclEntry { principal: "alice".into(), permission: Permission::Manage }]);
}

#[test]
fn ungranted_names_other_targets_and_missing_things_are_denied_and_audited() {
    let (_, _, vault, id) = setup();
    vault.put("alice", &id, "pw", &secret(VALUE)).unwrap();
    let cases = [
        (request("alice", "prod", "db/pw", false), "not granted to task `load`"),
        (request("alice", "test", "db/pw", true), "belongs to target prod, not to this run's target `test`"),
        (request("alice", "prod", "db/nope", true), "has no secret `nope`"),
        (request("alice", "prod", "nodb/pw", true), "no scope `nodb` for target `prod`"),
        (request("alice", "prod", "not a name", true), "not of the form `scope/key`"),
        (request("", "prod", "db/pw", true), "no usable principal"),
    ];
    for (req, want) in cases {
        let before = vault.audit(&AuditFilter::default()).unwrap().len();
        let err = vault.reveal(&req).unwrap_err();
        assert!(err.contains(want), "{req:?}: {err}");
        let trail = vault.audit(&AuditFilter::default()).unwrap();
        assert_eq!(trail.len(), before + 1, "every denial is audited");
        let rec = trail.last().unwrap();
        assert!(!rec.granted && rec.reason == err && rec.action == AuditAction::Reveal);
    }
    let denied = vault.audit(&AuditFilter { denied_only: true, run: Some(7), ..AuditFilter::default() }).unwrap();
    assert_eq!(denied.len(), 6);
    let trail = serde_json::to_string(&vault.audit(&AuditFilter::default()).unwrap()).unwrap();
    assert!(!trail.contains(VALUE), "the audit trail never holds a value");
}

#[test]
fn a_wrong_master_key_is_refused_before_anything_is_written() {
    let (store, key, vault, id) = setup();
    vault.put("alice", &id, "pw", &secret(VALUE)).unwrap();
    let wrong = vault_with(store.clone(), &MasterKey::generate("SLUICE_MASTER_KEY"));
    let err = wrong.put("alice", &id, "pw", &secret("other")).unwrap_err();
    assert!(matches!(err, SecretsError::WrongMasterKey { .. }), "{err}");
    assert!(err.to_string().contains("SLUICE_MASTER_KEY") && err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(store.versions(&id, "pw").unwrap().len(), 1);
    let denied = wrong.reveal(&request("alice", "prod", "db/pw", true)).unwrap_err();
    assert!(denied.contains("not the key"), "{denied}");
    let right = vault_with(store, &key);
    assert_eq!(right.reveal(&request("alice", "prod", "db/pw", true)).unwrap().expose_secret(), VALUE);
}

#[test]
fn a_record_moved_to_another_secret_does_not_open() {
    let (store, _, vault, id) = setup();
    vault.put("alice", &id, "a", &secret(VALUE)).unwrap();
    vault.put("alice", &id, "b", &secret("harmless")).unwrap();
    let mut moved = store.latest(&id, "a").unwrap().unwrap();
    moved.version = 2;
    assert!(store.add_version(&id, "b", &moved).unwrap());
    let err = vault.reveal(&request("alice", "prod", "db/b", true)).unwrap_err();
    assert!(err.contains("tampered with or moved"), "{err}");
}

#[test]
fn scopes_are_per_target_and_deleting_one_removes_its_secrets() {
    let (_, _, vault, id) = setup();
    let test = ScopeId::new(DEFAULT_WORKSPACE, "test", "db").unwrap();
    vault.create_scope("carol", &test).unwrap();
    assert!(matches!(vault.create_scope("carol", &id), Err(SecretsError::ScopeExists(_))));
    vault.put("carol", &test, "pw", &secret("test-pw")).unwrap();
    let mine = vault.scopes("carol", None, Some("test")).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].1, Some(Permission::Manage));
    assert_eq!(vault.scopes("carol", None, Some("prod")).unwrap()[0].1, None);
    assert!(vault.delete_scope("alice", &test).is_err(), "alice does not manage the test scope");
    vault.delete_scope("carol", &test).unwrap();
    assert!(matches!(vault.list("carol", &test), Err(SecretsError::NoSuchScope(_))));
    assert!(vault.put("alice", &id, "pw", &secret("")).is_err(), "empty values are refused");
    assert!(vault.put("alice", &id, "pw", &secret(&"x".repeat(MAX_VALUE_BYTES + 1))).is_err());
}
