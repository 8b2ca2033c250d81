//! What a bundle's `[targets.T]` says about deploying to it and using its jobs: its mode
//! (development's prefix and pauses, production's Git rules), its promotion gates, and who
//! may do what with a deployed job (Databricks' permission levels).
//!
//! The target's and job's settings are read through their serialised form ([`Rules`]), the
//! shape `spec` gives them (`mode`, `git.branch`, `promote_from`, `require_tests`,
//! `require_approval`, `permissions`, `jobs.J.permissions`), so this module depends on the
//! names, not on the parser's types. It must never read anything but the spec it is given,
//! nor write anything.

use serde::Deserialize;

use super::model::GitInfo;
use super::{DeployError, Deployment};
use crate::spec::Bundle;

/// A permission level on a job: the bundle's own type.
pub use crate::spec::PermissionLevel as Level;

/// One grant: a level for a user, group or service principal.
#[derive(Debug, Clone, Deserialize)]
pub struct Grant {
    pub level: Level,
    pub principal: Who,
}

/// Who a grant names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    User(String),
    Group(String),
    ServicePrincipal(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
struct GitRule {
    branch: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct JobRules {
    #[serde(default)]
    permissions: Vec<Grant>,
}

/// A target's settings as far as deployments care.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Rules {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    git: Option<GitRule>,
    #[serde(default)]
    pub promote_from: Option<String>,
    #[serde(default)]
    pub require_tests: bool,
    #[serde(default)]
    pub require_approval: u32,
    #[serde(default)]
    permissions: Vec<Grant>,
    #[serde(default)]
    jobs: std::collections::BTreeMap<String, JobRules>,
}

/// The rules of target `name` (defaults when the bundle does not declare it).
pub fn target(bundle: &Bundle, name: &str) -> Rules {
    bundle
        .targets
        .get(name)
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The target's mode as its deployment records it.
pub fn mode_name(bundle: &Bundle, name: &str) -> Option<String> {
    target(bundle, name).mode
}

/// Whether the target deploys in development mode.
pub fn is_development(bundle: &Bundle, name: &str) -> bool {
    target(bundle, name).mode.as_deref() == Some("development")
}

/// Production mode refuses a dirty tree, a tree outside Git, and a branch other than the
/// target's `git.branch`; the error says which.
pub fn check_production(bundle: &Bundle, name: &str, git: Option<&GitInfo>) -> Result<(), DeployError> {
    let rules = target(bundle, name);
    if rules.mode.as_deref() != Some("production") {
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
    if let Some(want) = rules.git.and_then(|g| g.branch)
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
pub fn permissions(d: &Deployment, job: &str) -> Vec<Grant> {
    let spec = &d.snapshot.spec;
    let own: Option<JobRules> =
        spec.jobs.get(job).and_then(|j| serde_json::to_value(j).ok()).and_then(|v| serde_json::from_value(v).ok());
    let mut out = own.map(|j| j.permissions).unwrap_or_default();
    let mut rules = target(spec, &d.snapshot.target);
    out.append(&mut rules.permissions);
    if let Some(mut j) = rules.jobs.remove(job) {
        out.append(&mut j.permissions);
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
fn granted(grants: &[Grant], who: Member<'_>) -> Option<Level> {
    let matches = |g: &Grant| match &g.principal {
        Who::User(name) | Who::ServicePrincipal(name) => name == who.principal,
        Who::Group(name) => who.groups.contains(name),
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
