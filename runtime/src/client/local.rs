//! The in-process client: this process owns the store, so each call goes straight to the
//! [`Service`] as the command's caller.

use super::{BoxFuture, Client, ClientResult, EventStream, SecretsAnswer, SecretsOp, TokensAnswer, TokensOp};
use crate::model::{Millis, RunId, RunSummary, RunView};
use crate::scheduler::{Explanation, GcSummary, RepairRequest, Verification};
use crate::secrets::{AuditFilter, AuditRecord, SecretString};
use crate::service::{
    Caller, CancelOutcome, Repaired, RunFilter, Service, StreamItem, Submission, Submitted, Subscription,
};

/// Calls on the service this process runs, as `caller`.
pub struct LocalClient {
    pub service: Service,
    pub caller: Caller,
}

struct LocalStream(Subscription);

impl EventStream for LocalStream {
    fn next(&mut self) -> BoxFuture<'_, ClientResult<Option<StreamItem>>> {
        Box::pin(async move { Ok(self.0.next().await) })
    }
}

impl Client for LocalClient {
    fn submit(&self, sub: Submission) -> BoxFuture<'_, ClientResult<Submitted>> {
        Box::pin(async move { Ok(self.service.submit(&self.caller, sub).await?) })
    }

    fn view(&self, run: RunId) -> BoxFuture<'_, ClientResult<RunView>> {
        Box::pin(async move { Ok(self.service.visible(&self.caller, run)?) })
    }

    fn list(&self, filter: RunFilter) -> BoxFuture<'_, ClientResult<Vec<RunSummary>>> {
        Box::pin(async move { Ok(self.service.list_runs(&self.caller, &filter)?) })
    }

    fn events(&self, run: RunId, from: u64) -> BoxFuture<'_, ClientResult<Box<dyn EventStream>>> {
        Box::pin(async move {
            let sub = self.service.subscribe(&self.caller, run, from)?;
            Ok(Box::new(LocalStream(sub)) as Box<dyn EventStream>)
        })
    }

    fn cancel(&self, run: RunId) -> BoxFuture<'_, ClientResult<CancelOutcome>> {
        Box::pin(async move { Ok(self.service.cancel(&self.caller, run).await?) })
    }

    fn repair(&self, run: RunId, req: RepairRequest, no_cache: bool) -> BoxFuture<'_, ClientResult<Repaired>> {
        Box::pin(async move { Ok(self.service.repair(&self.caller, run, req, no_cache).await?) })
    }

    fn resume(&self, run: Option<RunId>) -> BoxFuture<'_, ClientResult<Vec<(RunId, u64)>>> {
        Box::pin(async move { Ok(self.service.resume(&self.caller, run).await?) })
    }

    fn take_over(&self) -> BoxFuture<'_, ClientResult<Vec<(RunId, String)>>> {
        Box::pin(async move { Ok(self.service.take_over().await?) })
    }

    fn backup(&self, dest: std::path::PathBuf) -> BoxFuture<'_, ClientResult<crate::store::backup::DirBackupReport>> {
        let service = self.service.clone();
        let caller = self.caller.clone();
        Box::pin(async move {
            let copy = tokio::task::spawn_blocking(move || service.backup(&caller, &dest));
            Ok(copy.await.map_err(|e| crate::service::ServiceError::Internal(format!("the backup failed: {e}")))??)
        })
    }

    fn triggers(
        &self,
        action: crate::service::TriggerAction,
    ) -> BoxFuture<'_, ClientResult<crate::service::TriggerAnswer>> {
        Box::pin(async move { Ok(self.service.triggers_do(&self.caller, action).await?) })
    }

    fn audit(&self, filter: AuditFilter) -> BoxFuture<'_, ClientResult<Vec<AuditRecord>>> {
        Box::pin(async move { Ok(self.service.audit(&self.caller, &filter)?) })
    }

    fn explain(&self, run: RunId, task: String) -> BoxFuture<'_, ClientResult<Explanation>> {
        Box::pin(async move { Ok(self.service.explain(&self.caller, run, &task)?) })
    }

    fn gc(&self, keep: Option<usize>, before: Option<Millis>) -> BoxFuture<'_, ClientResult<GcSummary>> {
        Box::pin(async move { Ok(self.service.gc(&self.caller, keep, before)?) })
    }

    fn verify(&self, run: RunId, task: Option<String>) -> BoxFuture<'_, ClientResult<Vec<Verification>>> {
        Box::pin(async move { Ok(self.service.verify(&self.caller, run, task.as_deref()).await?) })
    }

    fn secrets(&self, op: SecretsOp) -> BoxFuture<'_, ClientResult<SecretsAnswer>> {
        Box::pin(async move {
            let (s, c) = (&self.service, &self.caller);
            Ok(match op {
                SecretsOp::CreateScope(id) => SecretsAnswer::Scope(s.create_scope(c, &id)?),
                SecretsOp::Scopes { workspace, target } => {
                    SecretsAnswer::Scopes(s.scopes(c, workspace.as_deref(), target.as_deref())?)
                }
                SecretsOp::DeleteScope(id) => s.delete_scope(c, &id).map(|()| SecretsAnswer::Done)?,
                SecretsOp::Put { scope, key, value } => {
                    SecretsAnswer::Version(s.put_secret(c, &scope, &key, &SecretString::from(value))?)
                }
                SecretsOp::List(id) => SecretsAnswer::Secrets(s.secrets(c, &id)?),
                SecretsOp::Delete { scope, key } => s.delete_secret(c, &scope, &key).map(|()| SecretsAnswer::Done)?,
                SecretsOp::AclPut { scope, principal, permission } => {
                    s.acl_put(c, &scope, &principal, permission).map(|()| SecretsAnswer::Done)?
                }
                SecretsOp::AclList(id) => SecretsAnswer::Acl(s.acl_list(c, &id)?),
                SecretsOp::AclDelete { scope, principal } => {
                    s.acl_delete(c, &scope, &principal).map(|()| SecretsAnswer::Done)?
                }
            })
        })
    }

    fn deployments(&self, op: crate::service::DeployOp) -> BoxFuture<'_, ClientResult<crate::service::DeployAnswer>> {
        let service = self.service.clone();
        let caller = self.caller.clone();
        Box::pin(async move {
            let answer = tokio::task::spawn_blocking(move || service.deployments(&caller, op));
            Ok(answer.await.map_err(|e| crate::service::ServiceError::Internal(format!("deployments: {e}")))??)
        })
    }

    fn tokens(&self, op: TokensOp) -> BoxFuture<'_, ClientResult<TokensAnswer>> {
        Box::pin(async move {
            let (s, c) = (&self.service, &self.caller);
            Ok(match op {
                TokensOp::Create { principal, workspace, expires_in_secs } => {
                    let expires = expires_in_secs.map(std::time::Duration::from_secs);
                    TokensAnswer::Created(Box::new(s.create_token(c, &principal, &workspace, expires)?))
                }
                TokensOp::List => TokensAnswer::Listed(s.tokens(c)?),
                TokensOp::Revoke(id) => s.revoke_token(c, &id).map(|()| TokensAnswer::Revoked)?,
                TokensOp::Group { name, add, remove } => TokensAnswer::Group(s.update_group(c, &name, &add, &remove)?),
                TokensOp::Groups => TokensAnswer::Groups(s.groups(c)?),
            })
        })
    }
}
