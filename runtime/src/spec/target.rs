//! `[targets.NAME]`: the environments a bundle deploys to (dev, test, prod) and what each
//! changes — mode, variables, job parameter overrides, limits, who runs and who may do what,
//! the Git branch production deploys from, and the promotion gates.
//!
//! This module owns reading and checking those keys. It must never act on them: deploying,
//! promoting and enforcing permissions belong to the deploy and server modules; applying a
//! target's variables and parameter overrides to the bundle is [`super::vars`]'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Limits;
use super::access::{self, Permission};
use super::build::check_key_name;
use super::error::SpecError;
use super::names;
use super::read::{Node, Table};

pub(crate) const TARGET_KEYS: &[&str] = &[
    "default",
    "limits",
    "allow_absolute_paths",
    "mode",
    "variables",
    "jobs",
    "run_as",
    "permissions",
    "git",
    "promote_from",
    "require_tests",
    "require_approval",
];
pub(crate) const TARGET_JOB_KEYS: &[&str] = &["parameters", "permissions"];
pub(crate) const GIT_KEYS: &[&str] = &["branch"];

/// The most approvals a target may require: more than any team has approvers, and a bound
/// that keeps a typo (`require_approval = 20000`) from making promotion impossible.
pub const MAX_REQUIRED_APPROVALS: u32 = 100;

/// How a target deploys, as Databricks' `mode`. Absent (`None` in [`TargetSpec::mode`]):
/// neither — jobs deploy as written, with no prefix, pause or Git checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetMode {
    /// Job names get a `[dev PRINCIPAL]` prefix, schedules and triggers are paused,
    /// concurrent runs are allowed.
    Development,
    /// Deploys only from a clean Git tree on the target's `git.branch`.
    Production,
}

/// `git = { branch = "main" }`: where a production target may be deployed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSpec {
    pub branch: Option<String>,
}

/// `[targets.T.jobs.J]`: what target T changes in job J.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetJob {
    /// Parameter defaults replaced in this target (each must be a parameter of the job).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Permissions of this job in this target, added to the job's and the target's own.
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// Reads every target; at most one is the `default = true`.
pub(crate) fn targets(node: &Node<'_>) -> Result<BTreeMap<String, TargetSpec>, SpecError> {
    let mut out = BTreeMap::new();
    let mut default: Option<String> = None;
    let table = node.table()?;
    for entry in table.entries() {
        check_key_name(entry, "target")?;
        let name = entry.key.to_string();
        let target = target(&entry.node.table()?)?;
        if target.default {
            if let Some(first) = &default {
                let flag = entry.node.table()?.get("default").cloned().unwrap_or(entry.node.clone());
                return Err(flag.error(format!(
                    "target `{first}` is already the default; only one target may say `default = true`"
                )));
            }
            default = Some(name.clone());
        }
        out.insert(name, target);
    }
    for entry in table.entries() {
        let Some(from) = entry.node.table()?.get("promote_from").cloned() else { continue };
        let wanted = from.str()?;
        if wanted == entry.key {
            return Err(from.error("a target cannot promote from itself"));
        }
        if !out.contains_key(wanted) {
            let known = out.keys().map(String::as_str);
            let hint = names::suggestion(wanted, known.clone());
            return Err(from.error(format!("no target named `{wanted}`{hint}; targets: {}", names::list(known))));
        }
    }
    Ok(out)
}

fn target(table: &Table<'_>) -> Result<TargetSpec, SpecError> {
    table.deny_unknown(TARGET_KEYS)?;
    let flag = |key: &str| table.get(key).map(Node::bool).transpose().map(Option::unwrap_or_default);
    let text = |key: &str| -> Result<Option<String>, SpecError> {
        table.get(key).map(|node| non_empty(node).map(str::to_string)).transpose()
    };
    Ok(TargetSpec {
        limits: table.get("limits").map(super::exec::limits).transpose()?.unwrap_or_else(Limits::default),
        allow_absolute_paths: flag("allow_absolute_paths")?,
        default: flag("default")?,
        mode: table.get("mode").map(mode).transpose()?,
        variables: table.get("variables").map(variable_values).transpose()?.unwrap_or_default(),
        jobs: table.get("jobs").map(target_jobs).transpose()?.unwrap_or_default(),
        run_as: text("run_as")?,
        permissions: table.get("permissions").map(access::permissions).transpose()?.unwrap_or_default(),
        git: table.get("git").map(git).transpose()?,
        promote_from: table.get("promote_from").map(|node| node.str().map(str::to_string)).transpose()?,
        require_tests: flag("require_tests")?,
        require_approval: table.get("require_approval").map(approvals).transpose()?.unwrap_or(0),
    })
}

fn non_empty<'a>(node: &Node<'a>) -> Result<&'a str, SpecError> {
    let text = node.str()?;
    if text.trim().is_empty() {
        return Err(node.error("must not be empty"));
    }
    Ok(text)
}

fn mode(node: &Node<'_>) -> Result<TargetMode, SpecError> {
    match node.str()? {
        "development" => Ok(TargetMode::Development),
        "production" => Ok(TargetMode::Production),
        other => Err(node.error(format!(
            "`{other}` is not a mode; use \"development\" or \"production\" (or leave `mode` out){}",
            names::suggestion(other, ["development", "production"])
        ))),
    }
}

/// `variables = { name = value }`: scalars, written as parameter strings.
pub(crate) fn variable_values(node: &Node<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    for entry in node.table()?.entries() {
        check_key_name(entry, "variable")?;
        if !entry.node.is_scalar() {
            return Err(entry.node.error("a variable's value is a string, number or boolean"));
        }
        out.insert(entry.key.to_string(), entry.node.param_string()?);
    }
    Ok(out)
}

fn target_jobs(node: &Node<'_>) -> Result<BTreeMap<String, TargetJob>, SpecError> {
    let mut out = BTreeMap::new();
    for entry in node.table()?.entries() {
        check_key_name(entry, "job")?;
        let table = entry.node.table()?;
        table.deny_unknown(TARGET_JOB_KEYS)?;
        let parameters = table.get("parameters").map(super::job::job_parameters).transpose()?.unwrap_or_default();
        let permissions = table.get("permissions").map(access::permissions).transpose()?.unwrap_or_default();
        out.insert(entry.key.to_string(), TargetJob { parameters, permissions });
    }
    Ok(out)
}

fn git(node: &Node<'_>) -> Result<GitSpec, SpecError> {
    let table = node.table()?;
    table.deny_unknown(GIT_KEYS)?;
    let branch = table.get("branch").map(|node| non_empty(node).map(str::to_string)).transpose()?;
    Ok(GitSpec { branch })
}

fn approvals(node: &Node<'_>) -> Result<u32, SpecError> {
    let value = node.integer()?;
    u32::try_from(value).ok().filter(|&n| n <= MAX_REQUIRED_APPROVALS).ok_or_else(|| {
        node.error(format!("require_approval must be a whole number from 0 to {MAX_REQUIRED_APPROVALS}, found {value}"))
    })
}

/// Checks that every `[targets.T.jobs.J]` names a job of the bundle and only its
/// parameters (a typo there would silently not override anything).
pub(crate) fn check_job_overrides(node: &Node<'_>, jobs: &BTreeMap<String, super::JobSpec>) -> Result<(), SpecError> {
    for target in node.table()?.entries() {
        let Some(overrides) = target.node.table()?.get("jobs").cloned() else { continue };
        for job in overrides.table()?.entries() {
            let Some(spec) = jobs.get(job.key) else {
                let known = jobs.keys().map(String::as_str);
                let hint = names::suggestion(job.key, known.clone());
                return Err(job.key_error(format!("no job named `{}`{hint}; jobs: {}", job.key, names::list(known))));
            };
            let Some(parameters) = job.node.table()?.get("parameters").cloned() else { continue };
            for param in parameters.table()?.entries() {
                if !spec.parameters.contains_key(param.key) {
                    let known = spec.parameters.keys().map(String::as_str);
                    let hint = names::suggestion(param.key, known.clone());
                    return Err(param.key_error(format!(
                        "job `{}` has no parameter `{}`{hint}; its parameters: {}",
                        job.key,
                        param.key,
                        names::list(known)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The target a bundle is loaded for: `named` (from `--target` or `SLUICE_TARGET`), else
/// the one marked `default = true`, else [`super::DEFAULT_TARGET`]. When the bundle declares
/// targets, only those exist: any other name is refused, naming the known ones.
pub(crate) fn choose(
    file: &std::path::Path,
    targets: &BTreeMap<String, TargetSpec>,
    named: Option<&str>,
) -> Result<String, SpecError> {
    let known = || targets.keys().cloned().collect::<Vec<_>>();
    let file = file.to_path_buf();
    match named {
        Some(name) if targets.is_empty() || targets.contains_key(name) => Ok(name.to_string()),
        Some(name) => Err(SpecError::UnknownTarget { file, name: name.to_string(), known: known() }),
        None => match targets.iter().find(|(_, t)| t.default) {
            Some((name, _)) => Ok(name.clone()),
            None if targets.is_empty() || targets.contains_key(super::DEFAULT_TARGET) => {
                Ok(super::DEFAULT_TARGET.to_string())
            }
            None => Err(SpecError::NoDefaultTarget { file, known: known() }),
        },
    }
}

/// Replaces job parameter defaults with the target's `[targets.T.jobs.J] parameters`.
pub(crate) fn apply_job_overrides(jobs: &mut BTreeMap<String, super::JobSpec>, target: Option<&TargetSpec>) {
    for (name, overrides) in target.map(|t| &t.jobs).into_iter().flatten() {
        if let Some(job) = jobs.get_mut(name) {
            job.parameters.extend(overrides.parameters.clone());
        }
    }
}

impl super::Bundle {
    /// The permissions on `job` in `target`: the job's own, the target's, and the
    /// target's for that job, each principal at the highest level any of them gives.
    pub fn job_permissions(&self, target: &str, job: &str) -> Vec<Permission> {
        let own = self.jobs.get(job).map(|j| j.permissions.as_slice()).unwrap_or_default();
        let spec = self.targets.get(target);
        let of_target = spec.map(|t| t.permissions.as_slice()).unwrap_or_default();
        let of_job = spec.and_then(|t| t.jobs.get(job)).map(|j| j.permissions.as_slice()).unwrap_or_default();
        let mut out: Vec<Permission> = Vec::new();
        for permission in own.iter().chain(of_target).chain(of_job) {
            match out.iter_mut().find(|p| p.principal == permission.principal) {
                Some(held) => held.level = held.level.max(permission.level),
                None => out.push(permission.clone()),
            }
        }
        out
    }
}

/// A deployment target's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// Defaults for every task's limits in runs of this target (job and task limits win).
    pub limits: Limits,
    /// Runs of this target may mount host directories outside the bundle and its data roots.
    #[serde(default)]
    pub allow_absolute_paths: bool,
    /// The target runs use when none is named (`default = true`; at most one).
    #[serde(default)]
    pub default: bool,
    /// `mode = "development" | "production"`; `None` when absent (as in Databricks:
    /// neither development's prefix and pauses nor production's Git checks).
    #[serde(default)]
    pub mode: Option<TargetMode>,
    /// `variables = { name = value }`: this target's values of declared variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// `[targets.T.jobs.J]`: per-job parameter overrides and permissions in this target.
    #[serde(default)]
    pub jobs: BTreeMap<String, TargetJob>,
    /// `run_as = "principal"`: who the target's runs run as (default: whoever deploys).
    #[serde(default)]
    pub run_as: Option<String>,
    /// Permissions on every job of this target (added to each job's own).
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// `git = { branch = "main" }`: the branch a production target deploys from.
    #[serde(default)]
    pub git: Option<GitSpec>,
    /// `promote_from = "test"`: the target whose deployments this one promotes.
    #[serde(default)]
    pub promote_from: Option<String>,
    /// Promotion needs a recorded passing test verdict on the promoted content hash.
    #[serde(default)]
    pub require_tests: bool,
    /// Promotion needs this many approvals (0: none) by principals other than the deployer.
    #[serde(default)]
    pub require_approval: u32,
}
