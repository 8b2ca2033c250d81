//! Who may act on a job and its runs: the job's `permissions` (Databricks' levels) applied
//! to a caller. Reading a run needs only its workspace (a token sees its workspace's runs);
//! starting, canceling and repairing need `CAN_MANAGE_RUN` when the job lists permissions.
//!
//! A deployed job follows its deployment's rules (`deploy::rules`: the job's, its target's
//! and the override's permissions, the deployer as owner). Otherwise the rules, in order: a local caller (the owner's own user over the Unix socket, or in
//! process) is trusted as the CLI always was — `IS_OWNER`; a job that lists no permissions
//! lets everyone of its workspace manage its runs (`CAN_MANAGE`, as before permissions
//! existed); otherwise a token's principal holds the highest level listed for it as a user
//! or service principal or for one of its groups (`sluice groups`), and `CAN_VIEW` when
//! none is listed.
//!
//! It decides only; it must never change a run, and never reveal a job of another
//! workspace (that is a "not found", as everywhere).

use super::{Caller, Service, ServiceError};
use crate::model::RunId;
use crate::spec::{Permission, PermissionLevel, Principal, level_of};

/// The level `caller`, a member of `groups`, holds on a job with `permissions`.
pub fn caller_level(caller: &Caller, groups: &[String], permissions: &[Permission]) -> PermissionLevel {
    if caller.is_local() {
        return PermissionLevel::IsOwner;
    }
    if permissions.is_empty() {
        return PermissionLevel::CanManage;
    }
    let mut me = vec![Principal::User(caller.principal.clone()), Principal::ServicePrincipal(caller.principal.clone())];
    me.extend(groups.iter().cloned().map(Principal::Group));
    level_of(permissions, me.iter()).unwrap_or(PermissionLevel::CanView)
}

/// `Ok` when `held` allows `needed`, else a 403 naming who, what and the level missing.
fn require(caller: &Caller, held: PermissionLevel, needed: PermissionLevel, what: &str) -> Result<(), ServiceError> {
    if held.allows(needed) {
        return Ok(());
    }
    Err(ServiceError::PermissionDenied(format!("{} holds {held} on {what}; this needs {needed}", caller.principal)))
}

/// The level `caller` holds on `job` of deployment `d`, by the deployment's rules (the
/// job's, its target's and the override's permissions; the deployer owns it; local callers
/// are not trusted beyond them). Named nowhere: not found.
fn deployed_level(
    caller: &Caller,
    groups: &[String],
    d: &crate::deploy::Deployment,
    job: &str,
    not_found: impl FnOnce() -> String,
) -> Result<PermissionLevel, ServiceError> {
    let who = crate::deploy::rules::Member { principal: &caller.principal, groups };
    crate::deploy::rules::level(d, job, who).ok_or_else(|| ServiceError::NotFound(not_found()))
}

impl Service {
    /// The level `caller` holds on the job `run` belongs to (the permissions of the plan it
    /// runs with). A run of another workspace, or none: not found.
    pub fn run_level(&self, caller: &Caller, run: RunId) -> Result<PermissionLevel, ServiceError> {
        self.visible(caller, run)?;
        let groups = self.groups_of(&caller.principal)?;
        if let Some((d, job)) = self.deployment_of_run(run)? {
            return deployed_level(caller, &groups, &d, &job, || super::run_not_found(run));
        }
        let record = self.folded(run)?.ok_or_else(|| ServiceError::NotFound(super::run_not_found(run)))?;
        let permissions = record.plan.as_ref().map(|p| p.job.permissions.as_slice()).unwrap_or_default();
        Ok(caller_level(caller, &groups, permissions))
    }

    /// The level `caller` holds on served job `job_id`.
    pub fn job_level(&self, caller: &Caller, job_id: u64) -> Result<PermissionLevel, ServiceError> {
        let groups = self.groups_of(&caller.principal)?;
        if let Some((d, job)) = self.deployment_of_job(job_id)? {
            return deployed_level(caller, &groups, &d, &job, || format!("Job {job_id} does not exist."));
        }
        let (info, _) = self.job(caller, job_id)?;
        Ok(caller_level(caller, &groups, &info.spec.permissions))
    }

    /// Refuse (403) unless `caller` may cancel or repair `run`.
    pub(crate) fn require_manage_run(&self, caller: &Caller, run: RunId) -> Result<(), ServiceError> {
        let held = self.run_level(caller, run)?;
        require(caller, held, PermissionLevel::CanManageRun, &format!("the job of run {run}"))
    }

    /// Refuse (403) unless `caller` may start a run of job `job_id`.
    pub fn require_run_job(&self, caller: &Caller, job_id: u64) -> Result<(), ServiceError> {
        let held = self.job_level(caller, job_id)?;
        require(caller, held, PermissionLevel::CanManageRun, &format!("job {job_id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Via;

    fn token(principal: &str) -> Caller {
        Caller { principal: principal.into(), workspace: "default".into(), via: Via::Token("t".into()) }
    }

    fn perm(level: PermissionLevel, principal: Principal) -> Permission {
        Permission { level, principal }
    }

    #[test]
    fn levels_follow_the_jobs_permissions() {
        let perms = [
            perm(PermissionLevel::CanManageRun, Principal::User("alice".into())),
            perm(PermissionLevel::CanView, Principal::User("viewer".into())),
            perm(PermissionLevel::CanManage, Principal::ServicePrincipal("bot".into())),
            perm(PermissionLevel::CanManage, Principal::Group("viewer".into())),
        ];
        let none: &[String] = &[];
        let in_viewer = ["viewer".to_string()];
        assert_eq!(caller_level(&token("alice"), none, &perms), PermissionLevel::CanManageRun);
        assert_eq!(
            caller_level(&token("viewer"), none, &perms),
            PermissionLevel::CanView,
            "a user is not its namesake group"
        );
        assert_eq!(caller_level(&token("cy"), &in_viewer, &perms), PermissionLevel::CanManage, "through the group");
        assert_eq!(caller_level(&token("bot"), none, &perms), PermissionLevel::CanManage);
        assert_eq!(caller_level(&token("stranger"), none, &perms), PermissionLevel::CanView);
        assert_eq!(
            caller_level(&token("stranger"), none, &[]),
            PermissionLevel::CanManage,
            "no permissions: as before"
        );
        assert_eq!(caller_level(&Caller::local("viewer", "default"), none, &perms), PermissionLevel::IsOwner);
        let refused = require(&token("viewer"), PermissionLevel::CanView, PermissionLevel::CanManageRun, "run 3");
        let text = refused.unwrap_err().to_string();
        assert!(text.contains("viewer holds CAN_VIEW on run 3; this needs CAN_MANAGE_RUN"), "{text}");
    }
}
