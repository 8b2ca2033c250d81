//! [`Vault`]: every secrets operation, its permission check and its audit record.
//!
//! Owns the rules: who may create, read, write, manage and delete (see
//! [`super::acl`]); that a value is sealed before it is stored and opened only
//! to hand it to a caller allowed to have it; that each put adds a version;
//! that a wrong master key is refused before anything is written with it;
//! that every reveal, every denial and every change is appended to the audit
//! trail (and flushed) before the caller hears the answer. A reveal that
//! cannot be audited is refused. It never logs, audits or returns a value to
//! anyone but the allowed caller, and never names a storage engine.

use std::sync::{Arc, Mutex, PoisonError};

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;

use super::acl::{self, Permission};
use super::crypto::secret_aad;
use super::{
    AclEntry, AuditAction, AuditRecord, KeySource, MAX_VALUE_BYTES, MasterKey, Resolver, RevealRequest, ScopeId,
    ScopeRecord, SealedVersion, SecretStore, SecretsError, check_name, check_principal, shown, split_name,
};
use crate::model::{Clock, Millis, RunId};

/// What `list` shows of a secret: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SecretInfo {
    pub key: String,
    /// The newest version (what a reveal returns).
    pub version: u32,
    /// How many versions are kept.
    pub versions: usize,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub updated_by: String,
}

/// Which audit records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    pub scope: Option<String>,
    pub run: Option<RunId>,
    pub task: Option<String>,
    pub principal: Option<String>,
    /// Only denials.
    pub denied_only: bool,
}

impl AuditFilter {
    fn matches(&self, r: &AuditRecord) -> bool {
        self.scope.as_ref().is_none_or(|s| *s == r.scope)
            && self.run.is_none_or(|run| r.run == Some(run))
            && self.task.as_ref().is_none_or(|t| r.task.as_ref() == Some(t))
            && self.principal.as_ref().is_none_or(|p| *p == r.principal)
            && (!self.denied_only || !r.granted)
    }
}

/// The secrets of one store, under one master key.
pub struct Vault {
    store: Arc<dyn SecretStore>,
    keys: Arc<dyn KeySource>,
    clock: Arc<dyn Clock>,
    /// The master key once loaded and checked, for reads.
    unlocked: Mutex<Option<MasterKey>>,
}

impl Vault {
    pub fn new(store: Arc<dyn SecretStore>, keys: Arc<dyn KeySource>, clock: Arc<dyn Clock>) -> Vault {
        Vault { store, keys, clock, unlocked: Mutex::new(None) }
    }

    /// Create a scope; `who` gets `manage` on it.
    pub fn create_scope(&self, who: &str, id: &ScopeId) -> Result<ScopeRecord, SecretsError> {
        check_principal(who)?;
        let record = ScopeRecord { id: id.clone(), created_at: self.clock.now_millis(), created_by: who.to_string() };
        let first = AclEntry { principal: who.to_string(), permission: Permission::Manage };
        if !self.store.create_scope(&record, &first)? {
            return Err(SecretsError::ScopeExists(id.clone()));
        }
        self.record(self.entry(AuditAction::ScopeCreate, who, id, None, true, format!("created; {who} has manage")))?;
        Ok(record)
    }

    /// Every scope (optionally of one workspace and/or target) with the permission `who` holds on it.
    pub fn scopes(
        &self,
        who: &str,
        workspace: Option<&str>,
        target: Option<&str>,
    ) -> Result<Vec<(ScopeRecord, Option<Permission>)>, SecretsError> {
        let mut out = Vec::new();
        for scope in self.store.scopes()? {
            if workspace.is_some_and(|w| w != scope.id.workspace) || target.is_some_and(|t| t != scope.id.target) {
                continue;
            }
            let held = acl::permission_of(&self.store.acl(&scope.id)?, who);
            out.push((scope, held));
        }
        Ok(out)
    }

    /// Delete a scope with every secret and grant in it (`manage`).
    pub fn delete_scope(&self, who: &str, id: &ScopeId) -> Result<(), SecretsError> {
        self.authorize(who, id, Permission::Manage, AuditAction::ScopeDelete, None)?;
        self.store.delete_scope(id)?;
        self.record(self.entry(
            AuditAction::ScopeDelete,
            who,
            id,
            None,
            true,
            "deleted with its secrets and ACL".into(),
        ))
    }

    /// Store a new version of `key` (`write`); returns its version number.
    /// The value is sealed under the master key; the first put creates the key
    /// (see [`KeySource`]) and records its check, later ones must use the same key.
    pub fn put(&self, who: &str, id: &ScopeId, key: &str, value: &SecretString) -> Result<u32, SecretsError> {
        check_name("secret key", key)?;
        let bytes = value.expose_secret().as_bytes();
        if bytes.is_empty() {
            return Err(SecretsError::InvalidValue("the value is empty".into()));
        }
        if bytes.len() > MAX_VALUE_BYTES {
            return Err(SecretsError::InvalidValue(format!(
                "the value is {} bytes, over the limit of {MAX_VALUE_BYTES}",
                bytes.len()
            )));
        }
        self.authorize(who, id, Permission::Write, AuditAction::Put, Some(key))?;
        let master = self.key_for_write()?;
        let version = loop {
            let next = match self.store.latest(id, key)? {
                Some(v) => v
                    .version
                    .checked_add(1)
                    .ok_or_else(|| SecretsError::Refused(format!("secret `{key}` has no version numbers left")))?,
                None => 1,
            };
            let sealed = master.seal(bytes, &secret_aad(id, key, next))?;
            let record = SealedVersion {
                version: next,
                sealed,
                created_at: self.clock.now_millis(),
                created_by: who.to_string(),
            };
            if self.store.add_version(id, key, &record)? {
                break next;
            }
        };
        let mut entry = self.entry(AuditAction::Put, who, id, Some(key), true, format!("version {version} stored"));
        entry.version = Some(version);
        self.record(entry)?;
        Ok(version)
    }

    /// The scope's secrets: names, versions, times (`read`). Never values.
    pub fn list(&self, who: &str, id: &ScopeId) -> Result<Vec<SecretInfo>, SecretsError> {
        self.authorize(who, id, Permission::Read, AuditAction::List, None)?;
        let mut out = Vec::new();
        for key in self.store.secret_keys(id)? {
            let versions = self.store.versions(id, &key)?;
            let (Some(first), Some(last)) = (versions.first(), versions.last()) else { continue };
            out.push(SecretInfo {
                key,
                version: last.version,
                versions: versions.len(),
                created_at: first.created_at,
                updated_at: last.created_at,
                updated_by: last.created_by.clone(),
            });
        }
        Ok(out)
    }

    /// Delete every version of a secret (`write`).
    pub fn delete(&self, who: &str, id: &ScopeId, key: &str) -> Result<(), SecretsError> {
        check_name("secret key", key)?;
        self.authorize(who, id, Permission::Write, AuditAction::Delete, Some(key))?;
        if !self.store.delete_secret(id, key)? {
            return Err(SecretsError::NoSuchSecret { scope: id.clone(), key: key.to_string() });
        }
        self.record(self.entry(AuditAction::Delete, who, id, Some(key), true, "deleted with every version".into()))
    }

    /// Give `principal` `permission` on the scope (`manage`).
    pub fn acl_put(
        &self,
        who: &str,
        id: &ScopeId,
        principal: &str,
        permission: Permission,
    ) -> Result<(), SecretsError> {
        check_principal(principal)?;
        self.authorize(who, id, Permission::Manage, AuditAction::AclPut, None)?;
        if !acl::keeps_a_manager(&self.store.acl(id)?, principal, Some(permission)) {
            return Err(SecretsError::Refused(format!(
                "`{principal}` is the last manager of scope `{id}`; give someone else manage first"
            )));
        }
        self.store.put_acl(id, &AclEntry { principal: principal.to_string(), permission })?;
        self.record(self.entry(AuditAction::AclPut, who, id, None, true, format!("{principal} has {permission}")))
    }

    /// Take `principal`'s permission away (`manage`).
    pub fn acl_delete(&self, who: &str, id: &ScopeId, principal: &str) -> Result<(), SecretsError> {
        check_principal(principal)?;
        self.authorize(who, id, Permission::Manage, AuditAction::AclDelete, None)?;
        if !acl::keeps_a_manager(&self.store.acl(id)?, principal, None) {
            return Err(SecretsError::Refused(format!(
                "`{principal}` is the last manager of scope `{id}`; give someone else manage first"
            )));
        }
        if !self.store.delete_acl(id, principal)? {
            return Err(SecretsError::Refused(format!("`{principal}` has no permission on scope `{id}`")));
        }
        self.record(self.entry(AuditAction::AclDelete, who, id, None, true, format!("{principal} removed")))
    }

    /// The scope's ACL (`read`).
    pub fn acl_list(&self, who: &str, id: &ScopeId) -> Result<Vec<AclEntry>, SecretsError> {
        self.authorize(who, id, Permission::Read, AuditAction::AclList, None)?;
        Ok(self.store.acl(id)?)
    }

    /// The audit trail, oldest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, SecretsError> {
        Ok(self.store.audit()?.into_iter().filter(|r| filter.matches(r)).collect())
    }

    /// The audit records `who` may read, oldest first: those of the scopes it holds
    /// `manage` on, and its own (its reveals, denials and changes) anywhere.
    pub fn audit_of(&self, who: &str, filter: &AuditFilter) -> Result<Vec<AuditRecord>, SecretsError> {
        check_principal(who)?;
        let managed = self.managed_by(who)?;
        let visible = |r: &AuditRecord| {
            r.principal == who
                || managed.iter().any(|m| m.workspace == r.workspace && m.target == r.target && m.name == r.scope)
        };
        Ok(self.store.audit()?.into_iter().filter(|r| filter.matches(r) && visible(r)).collect())
    }

    /// The scopes `who` holds `manage` on.
    pub fn managed_by(&self, who: &str) -> Result<Vec<ScopeId>, SecretsError> {
        let mut out = Vec::new();
        for scope in self.store.scopes()? {
            if acl::allowed(&self.store.acl(&scope.id)?, who, Permission::Manage) {
                out.push(scope.id);
            }
        }
        Ok(out)
    }

    /// `who` must hold `needed` on an existing scope; a refusal is audited.
    fn authorize(
        &self,
        who: &str,
        id: &ScopeId,
        needed: Permission,
        action: AuditAction,
        key: Option<&str>,
    ) -> Result<(), SecretsError> {
        check_principal(who)?;
        if self.store.scope(id)?.is_none() {
            return Err(SecretsError::NoSuchScope(id.clone()));
        }
        if acl::allowed(&self.store.acl(id)?, who, needed) {
            return Ok(());
        }
        self.record(self.entry(action, who, id, key, false, format!("{who} lacks {needed}")))?;
        Err(SecretsError::Denied { principal: who.to_string(), needed, scope: id.clone() })
    }

    /// The master key for sealing: created on first use, and checked against
    /// (or recorded as) the store's key check before anything is sealed.
    fn key_for_write(&self) -> Result<MasterKey, SecretsError> {
        let key = self.keys.load(true)?;
        let check = match self.store.key_check()? {
            Some(check) => check,
            None => {
                let check = self.store.init_key_check(&key.key_check()?)?;
                self.store.flush()?;
                check
            }
        };
        if !key.matches(&check) {
            return Err(SecretsError::WrongMasterKey { source_name: key.source().to_string() });
        }
        Ok(key)
    }

    /// The master key for opening: never created; checked once, then kept.
    fn key_for_read(&self) -> Result<MasterKey, SecretsError> {
        let mut unlocked = self.unlocked.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = unlocked.as_ref() {
            return Ok(key.clone());
        }
        let key = self.keys.load(false)?;
        if let Some(check) = self.store.key_check()?
            && !key.matches(&check)
        {
            return Err(SecretsError::WrongMasterKey { source_name: key.source().to_string() });
        }
        *unlocked = Some(key.clone());
        Ok(key)
    }

    fn entry(
        &self,
        action: AuditAction,
        who: &str,
        id: &ScopeId,
        key: Option<&str>,
        granted: bool,
        reason: String,
    ) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at: self.clock.now_millis(),
            action,
            principal: who.to_string(),
            workspace: id.workspace.clone(),
            target: id.target.clone(),
            scope: id.name.clone(),
            key: key.map(str::to_string),
            run: None,
            task: None,
            attempt: None,
            version: None,
            granted,
            reason,
            via: None,
        }
    }

    /// Append an audit record and make it durable.
    fn record(&self, record: AuditRecord) -> Result<(), SecretsError> {
        self.store.append_audit(&record)?;
        self.store.flush()?;
        Ok(())
    }

    /// The checks of a reveal, in order; `rec` learns the scope and key as they are known.
    fn try_reveal(&self, req: &RevealRequest, rec: &mut AuditRecord) -> Result<(SecretString, u32), String> {
        if let Ok((scope, key)) = split_name(&req.name) {
            rec.scope = scope.to_string();
            rec.key = Some(key.to_string());
        }
        if !req.granted {
            return Err(format!("secret `{}` is not granted to task `{}`", shown(&req.name), req.task));
        }
        let (scope, key) = split_name(&req.name).map_err(|e| e.to_string())?;
        check_principal(&req.principal).map_err(|e| format!("the run has no usable principal: {e}"))?;
        let id = ScopeId::new(&req.workspace, &req.target, scope).map_err(|e| e.to_string())?;
        if self.store.scope(&id).map_err(|e| e.to_string())?.is_none() {
            let mut elsewhere: Vec<String> = self
                .store
                .scopes()
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|s| s.id.workspace == id.workspace && s.id.name == id.name)
                .map(|s| s.id.target)
                .collect();
            elsewhere.dedup();
            return Err(if elsewhere.is_empty() {
                format!("no scope `{scope}` for target `{}` in workspace `{}`", id.target, id.workspace)
            } else {
                format!(
                    "scope `{scope}` belongs to target {}, not to this run's target `{}`",
                    elsewhere.join(", "),
                    id.target
                )
            });
        }
        let acl = self.store.acl(&id).map_err(|e| e.to_string())?;
        if !acl::allowed(&acl, &req.principal, Permission::Read) {
            return Err(format!(
                "principal `{}` (who started the run) has no read permission on scope `{scope}`",
                req.principal
            ));
        }
        let Some(latest) = self.store.latest(&id, key).map_err(|e| e.to_string())? else {
            return Err(format!("scope `{scope}` has no secret `{key}`"));
        };
        let master = self.key_for_read().map_err(|e| e.to_string())?;
        let plain = master
            .open(&latest.sealed, &secret_aad(&id, key, latest.version))
            .ok_or_else(|| SecretsError::Tampered { name: req.name.clone(), version: latest.version }.to_string())?;
        let text = std::str::from_utf8(&plain).map_err(|_| format!("secret `{}` is not UTF-8 text", req.name))?;
        Ok((SecretString::from(text.to_owned()), latest.version))
    }
}

impl Resolver for Vault {
    fn reveal(&self, req: &RevealRequest) -> Result<SecretString, String> {
        let mut rec = AuditRecord {
            seq: 0,
            at: self.clock.now_millis(),
            action: AuditAction::Reveal,
            principal: req.principal.clone(),
            workspace: req.workspace.clone(),
            target: req.target.clone(),
            scope: shown(&req.name),
            key: None,
            run: Some(req.run),
            task: Some(req.task.clone()),
            attempt: Some(req.attempt),
            version: None,
            granted: false,
            reason: String::new(),
            via: req.via.clone(),
        };
        match self.try_reveal(req, &mut rec) {
            Ok((value, version)) => {
                rec.granted = true;
                rec.version = Some(version);
                rec.reason = format!("version {version} revealed");
                self.record(rec).map_err(|e| {
                    format!("secret `{}` was not revealed: the reveal could not be audited ({e})", req.name)
                })?;
                Ok(value)
            }
            Err(reason) => {
                rec.reason = reason.clone();
                if let Err(e) = self.record(rec) {
                    tracing::error!(task = %req.task, error = %e, "a denied secret reveal could not be audited");
                }
                Err(reason)
            }
        }
    }

    fn version(&self, workspace: &str, target: &str, name: &str) -> Option<u32> {
        let (scope, key) = split_name(name).ok()?;
        let id = ScopeId::new(workspace, target, scope).ok()?;
        self.store.latest(&id, key).ok().flatten().map(|v| v.version)
    }
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
