//! What a bundle's `[targets.T]` says about deploying to it and using its jobs: its mode
//! (development's prefix and pauses, production's Git rules), its promotion gates, and who
//! may do what with a deployed job (Databricks' permission levels).
//!
//! The target's and job's settings are the parser's own types ([`TargetSpec`],
//! [`Permission`]), read from the deployment's resolved spec. It must never read anything
//! but the spec it is given, nor write anything.

use super::model::GitInfo;
use super::{DeployError, Deployment};
use crate::spec::{Bundle, Permission, Principal, TargetMode, TargetSpec};

/// A permission level on a job: the bundle's own type.
pub use crate::spec::PermissionLevel as Level;

/// The settings of target `name` (defaults when the bundle does not declare it).
pub fn target(bundle: &Bundle, name: &str) -> TargetSpec {
    bundle.targets.get(name).cloned().unwrap_or_default()
}

fn mode(bundle: &Bundle, name: &str) -> Option<TargetMode> {
    bundle.targets.get(name).and_then(|t| t.mode)
}

/// The target's mode as its deployment records it.
pub fn mode_name(bundle: &Bundle, name: &str) -> Option<String> {
    mode(bundle, name).map(|m| match m {
        TargetMode::Development => "development".to_string(),
        TargetMode::Production => "production".to_string(),
    })
}

/// Whether the target deploys in development mode.
pub fn is_development(bundle: &Bundle, name: &str) -> bool {
    mode(bundle, name) == Some(TargetMode::Development)
}

/// Production mode refuses a dirty tree, a tree outside Git, and a branch other than the
/// target's `git.branch`; the error says which.
pub fn check_production(bundle: &Bundle, name: &str, git: Option<&GitInfo>) -> Result<(), DeployError> {
    if mode(bundle, name) != Some(TargetMode::Production) {
        return Ok(());
    }
    let Some(git) = git else {
        return Err(DeployError::Refused(format!(
            "target `{name}` is in production mode: deploy it from a Git work tree (the bundle at {} is in none)",
            bundle.root.display()
        )));
    };
    if git.dirty {
        return Err(DeployError::Refused(format!(
            "target `{name}` is in production mode and the Git work tree at {} has uncommitted changes; \
             commit or stash them first",
            bundle.root.display()
        )));
    }
    if let Some(want) = bundle.targets.get(name).and_then(|t| t.git.as_ref()).and_then(|g| g.branch.clone())
        && git.branch.as_deref() != Some(want.as_str())
    {
        return Err(DeployError::Refused(format!(
            "target `{name}` deploys only from branch `{want}` (git.branch), and the work tree is on {}",
            git.branch.as_deref().map_or_else(|| "no branch (detached HEAD)".to_string(), |b| format!("branch `{b}`"))
        )));
    }
    Ok(())
}

/// Every permission on `job` in the deployment's target: the job's own, the target's, and
/// the target's override for the job.
pub fn permissions(d: &Deployment, job: &str) -> Vec<Permission> {
    let spec = &d.snapshot.spec;
    let mut out = spec.jobs.get(job).map(|j| j.permissions.clone()).unwrap_or_default();
    if let Some(t) = spec.targets.get(&d.snapshot.target) {
        out.extend(t.permissions.iter().cloned());
        out.extend(t.jobs.get(job).into_iter().flat_map(|j| j.permissions.iter().cloned()));
    }
    out
}

/// Someone acting: a principal and the groups it belongs to (`sluice groups`).
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub principal: &'a str,
    pub groups: &'a [String],
}

/// The highest level `grants` give `who`: as a user or service principal, or through one
/// of its groups.
fn granted(grants: &[Permission], who: Member<'_>) -> Option<Level> {
    let matches = |g: &Permission| match &g.principal {
        Principal::User(name) | Principal::ServicePrincipal(name) => name == who.principal,
        Principal::Group(name) => who.groups.contains(name),
    };
    grants.iter().filter(|g| matches(g)).map(|g| g.level).max()
}

/// What `who` may do with `job` of deployment `d`, `None` when it is named nowhere;
/// the deployer owns what it deployed; a job that declares no permissions is open to
/// everyone who reaches the workspace (as before permissions existed).
pub fn level(d: &Deployment, job: &str, who: Member<'_>) -> Option<Level> {
    let declared = permissions(d, job);
    if declared.is_empty() || who.principal == d.principal {
        return Some(Level::IsOwner);
    }
    granted(&declared, who)
}

/// Whether `who` is named at all by the job's permissions (one named by none sees
/// nothing of a job that declares permissions).
pub fn named(d: &Deployment, job: &str, who: Member<'_>) -> bool {
    level(d, job, who).is_some()
}

/// Refuse unless `who` holds `needed` on `job`, saying what it holds.
pub fn require(d: &Deployment, job: &str, who: Member<'_>, needed: Level, what: &str) -> Result<(), DeployError> {
    let principal = who.principal;
    let held = level(d, job, who);
    if held.is_some_and(|h| h >= needed) {
        return Ok(());
    }
    Err(DeployError::Denied(format!(
        "{principal} may not {what} job `{job}` of target `{}`: that needs {needed}, and {principal} holds {}",
        d.snapshot.target,
        held.map_or("no permission", Level::as_str)
    )))
}
