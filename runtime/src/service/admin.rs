//! What a caller reads and manages besides starting runs: runs (one, listed, followed),
//! the secrets (scopes, values, ACLs) and the audit trail, the result cache (explain,
//! gc) and verification. Each goes through the caller's workspace: a token's caller sees
//! its own workspace only; a local caller names the workspace it works in.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::records::{RunRecord, TaskRunRef, decode_task_run_id};
use super::{Caller, Service, ServiceError, Subscription, run_not_found};
use crate::model::{Millis, RunId, RunSummary};
use crate::scheduler::{Explanation, GcSummary, Verification};
use crate::secrets::{AclEntry, AuditFilter, AuditRecord, Permission, ScopeId, ScopeRecord, SecretInfo, SecretString};
use crate::store::backup::DirBackupReport;

/// Which runs to list (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    pub job_id: Option<u64>,
    /// Only runs not finished (queued, pending, running).
    #[serde(default)]
    pub active_only: bool,
    /// Only finished runs.
    #[serde(default)]
    pub completed_only: bool,
    #[serde(default)]
    pub offset: usize,
    pub limit: usize,
}

impl Service {
    /// A run (or, by a task run id, the run holding that task run) of the caller's workspace.
    pub fn record(&self, caller: &Caller, id: u64) -> Result<(Arc<RunRecord>, Option<TaskRunRef>), ServiceError> {
        let (run, slot) = match decode_task_run_id(id) {
            Some((run, slot)) => (run, Some(slot)),
            None => (id, None),
        };
        let not_found = || ServiceError::NotFound(run_not_found(id));
        let record = self.folded(run)?.ok_or_else(not_found)?;
        if record.view.workspace != caller.workspace {
            return Err(not_found());
        }
        self.check_run_permission(caller, run, crate::deploy::rules::Level::CanView, "see runs of")?;
        match slot {
            None => Ok((record, None)),
            Some(slot) => {
                let task = record.resolve(slot).ok_or_else(not_found)?;
                Ok((record, Some(task)))
            }
        }
    }

    /// The caller's runs, newest first.
    pub fn list_runs(&self, caller: &Caller, filter: &RunFilter) -> Result<Vec<RunSummary>, ServiceError> {
        if filter.active_only && filter.completed_only {
            return Err(ServiceError::Invalid("active_only and completed_only cannot both be true".into()));
        }
        let runs = self
            .inner
            .rt
            .store()
            .list_summaries(usize::MAX)?
            .into_iter()
            .filter(|r| r.workspace == caller.workspace)
            .filter(|r| filter.job_id.is_none() || r.job_id == filter.job_id)
            .filter(|r| !filter.active_only || r.result.is_none())
            .filter(|r| !filter.completed_only || r.result.is_some())
            .skip(filter.offset)
            .take(filter.limit)
            .map(|mut r| {
                r.status = Some(self.status(r.run_id, r.result));
                r
            })
            .collect();
        Ok(runs)
    }

    /// Follow a run's flushed events (from position `from` on; earlier ones as history).
    pub fn subscribe(&self, caller: &Caller, run: RunId, from: u64) -> Result<Subscription, ServiceError> {
        self.visible(caller, run)?;
        Ok(self.inner.hub.subscribe(self.inner.rt.store().clone(), run, from))
    }

    fn vault(&self) -> Result<&std::sync::Arc<crate::secrets::Vault>, ServiceError> {
        self.inner.rt.vault().ok_or_else(|| ServiceError::Internal("this runtime keeps no secrets".into()))
    }

    /// A scope of a workspace the caller may work in.
    fn scope(&self, caller: &Caller, id: &ScopeId) -> Result<(), ServiceError> {
        if caller.is_local() || id.workspace == caller.workspace {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("no scope `{id}`")))
        }
    }

    pub fn create_scope(&self, caller: &Caller, id: &ScopeId) -> Result<ScopeRecord, ServiceError> {
        self.scope(caller, id)?;
        Ok(self.vault()?.create_scope(&caller.principal, id)?)
    }

    /// Scopes (of one workspace and/or target) with the caller's permission on each.
    pub fn scopes(
        &self,
        caller: &Caller,
        workspace: Option<&str>,
        target: Option<&str>,
    ) -> Result<Vec<(ScopeRecord, Option<Permission>)>, ServiceError> {
        let workspace = if caller.is_local() { workspace } else { Some(caller.workspace.as_str()) };
        Ok(self.vault()?.scopes(&caller.principal, workspace, target)?)
    }

    pub fn delete_scope(&self, caller: &Caller, id: &ScopeId) -> Result<(), ServiceError> {
        self.scope(caller, id)?;
        Ok(self.vault()?.delete_scope(&caller.principal, id)?)
    }

    /// Store a new version of a secret; its version.
    pub fn put_secret(
        &self,
        caller: &Caller,
        id: &ScopeId,
        key: &str,
        value: &SecretString,
    ) -> Result<u32, ServiceError> {
        self.scope(caller, id)?;
        Ok(self.vault()?.put(&caller.principal, id, key, value)?)
    }

    /// A scope's secret names, versions and times (never values).
    pub fn secrets(&self, caller: &Caller, id: &ScopeId) -> Result<Vec<SecretInfo>, ServiceError> {
        self.scope(caller, id)?;
        Ok(self.vault()?.list(&caller.principal, id)?)
    }

    pub fn delete_secret(&self, caller: &Caller, id: &ScopeId, key: &str) -> Result<(), ServiceError> {
        self.scope(caller, id)?;
        Ok(self.vault()?.delete(&caller.principal, id, key)?)
    }

    pub fn acl_put(
        &self,
        caller: &Caller,
        id: &ScopeId,
        principal: &str,
        permission: Permission,
    ) -> Result<(), ServiceError> {
        self.scope(caller, id)?;
        Ok(self.vault()?.acl_put(&caller.principal, id, principal, permission)?)
    }

    pub fn acl_list(&self, caller: &Caller, id: &ScopeId) -> Result<Vec<AclEntry>, ServiceError> {
        self.scope(caller, id)?;
        Ok(self.vault()?.acl_list(&caller.principal, id)?)
    }

    pub fn acl_delete(&self, caller: &Caller, id: &ScopeId, principal: &str) -> Result<(), ServiceError> {
        self.scope(caller, id)?;
        Ok(self.vault()?.acl_delete(&caller.principal, id, principal)?)
    }

    /// The audit trail, oldest first: a token's caller sees its workspace's records only.
    /// The audit records the caller may read: those of scopes it manages, and its own. Asking
    /// for an existing scope it does not manage, or (managing none) for another principal, is
    /// refused.
    pub fn audit(&self, caller: &Caller, filter: &AuditFilter) -> Result<Vec<AuditRecord>, ServiceError> {
        let vault = self.vault()?;
        let who = &caller.principal;
        let scopes = vault.scopes(who, None, None)?;
        let manages = |name: &str| {
            scopes.iter().any(|(s, held)| s.id.name == name && *held == Some(crate::secrets::Permission::Manage))
        };
        if let Some(scope) = &filter.scope
            && filter.principal.as_ref() != Some(who)
            && scopes.iter().any(|(s, _)| s.id.name == *scope)
            && !manages(scope)
        {
            return Err(ServiceError::PermissionDenied(format!(
                "principal `{who}` needs manage on scope `{scope}` to read its audit records; \
                 add `--principal {who}` to see your own"
            )));
        }
        if filter.principal.as_ref().is_some_and(|p| p != who) && !scopes.iter().any(|(s, _)| manages(&s.id.name)) {
            return Err(ServiceError::PermissionDenied(format!(
                "principal `{who}` manages no scope, so it may read only its own audit records"
            )));
        }
        let records = vault.audit_of(who, filter)?;
        Ok(records.into_iter().filter(|r| caller.is_local() || r.workspace == caller.workspace).collect())
    }

    /// Why a task of a run hit or missed the result cache.
    pub fn explain(&self, caller: &Caller, run: RunId, task: &str) -> Result<Explanation, ServiceError> {
        self.visible(caller, run)?;
        Ok(self.inner.rt.explain(run, task)?)
    }

    /// Forget cache entries (the newest `keep`, and/or those before `before`) and unused blobs.
    pub fn gc(&self, caller: &Caller, keep: Option<usize>, before: Option<Millis>) -> Result<GcSummary, ServiceError> {
        self.local_only(caller, "collect the cache")?;
        Ok(self.inner.rt.gc(keep, before)?)
    }

    /// Re-execute a run's tasks in a scratch store and compare.
    pub async fn verify(
        &self,
        caller: &Caller,
        run: RunId,
        task: Option<&str>,
    ) -> Result<Vec<Verification>, ServiceError> {
        self.visible(caller, run)?;
        Ok(self.inner.rt.verify(run, task).await?)
    }

    /// Write a consistent copy of the store and its blobs into the new directory `dest`
    /// (a path on the owner's machine), while runs go on. Local callers only.
    pub fn backup(&self, caller: &Caller, dest: &std::path::Path) -> Result<DirBackupReport, ServiceError> {
        if !caller.is_local() {
            return Err(ServiceError::PermissionDenied("only local callers back up the store".into()));
        }
        if !dest.is_absolute() {
            return Err(ServiceError::Invalid(format!("the backup's directory {} is not absolute", dest.display())));
        }
        self.inner.rt.backup(dest).map_err(|e| match e {
            crate::store::StoreError::Backup(message) => ServiceError::Invalid(message),
            other => other.into(),
        })
    }
}
