//! Deployed jobs as a source of runs: the stable job id of a deployed job (keyed by
//! (workspace, bundle, target, job), so it survives redeploys and rollbacks) and the bundle
//! a run of it starts from — the deployment's spec with every component read from the blob
//! store by its hash, never from the working tree.
//!
//! It must never write anything but a job's stable id.

use std::sync::Arc;

use super::apply::Deployments;
use super::{DeployError, Deployment};
use crate::scheduler::Runtime;
use crate::spec::{Bundle, MAX_MAX_CONCURRENT_RUNS};
use crate::store::JobKey;

/// The separator between bundle and target in a deployed job's key (`bundle@target`):
/// bundle names never hold it, so a deployed job's id never collides with a served one's.
pub const TARGET_SEPARATOR: char = '@';

/// The key a deployed job's stable id belongs to.
pub fn deployed_job_key(workspace: &str, bundle: &str, target: &str, job: &str) -> JobKey {
    JobKey { workspace: workspace.into(), bundle: format!("{bundle}{TARGET_SEPARATOR}{target}"), job: job.into() }
}

/// The (bundle, target) of a deployed job's key; `None` for a served bundle's job.
pub fn split_key(key: &JobKey) -> Option<(&str, &str)> {
    key.bundle.split_once(TARGET_SEPARATOR)
}

/// A deployed job ready to run: its deployment and the bundle a run starts from.
pub struct DeployedRun {
    pub deployment: Deployment,
    pub bundle: Arc<Bundle>,
}

/// The current deployment holding `job` of `bundle@target`, as a runnable bundle.
pub fn runnable(
    rt: &Runtime,
    workspace: &str,
    bundle: &str,
    target: &str,
    job: &str,
) -> Result<DeployedRun, DeployError> {
    let key = Deployments::key(workspace, bundle, target);
    let d = Deployments::new(rt).current(&key)?.ok_or_else(|| {
        DeployError::NotFound(format!("target `{target}` of bundle `{bundle}` has no current deployment"))
    })?;
    if !d.jobs.contains_key(job) {
        let known: Vec<&String> = d.jobs.keys().collect();
        return Err(DeployError::NotFound(format!(
            "deployment {}/{} has no job `{job}` (it has {known:?})",
            target, d.number
        )));
    }
    let d = Deployments::new(rt).owner(&key, d, job)?;
    let bundle = run_bundle(rt, &d)?;
    Ok(DeployedRun { deployment: d, bundle: Arc::new(bundle) })
}

/// The deployment's spec with each component at its blob, the target as the only (and
/// default) one, and development mode's concurrent runs.
pub fn run_bundle(rt: &Runtime, d: &Deployment) -> Result<Bundle, DeployError> {
    let blobs = rt.cache.as_deref().map(|c| &c.blobs).ok_or_else(|| DeployError::Invalid("no blob store".into()))?;
    let mut bundle = d.snapshot.spec.clone();
    for (name, c) in bundle.components.iter_mut() {
        let hex =
            d.snapshot.components.get(name).ok_or_else(|| DeployError::Corrupt(format!("no hash for `{name}`")))?;
        let hash = hex.parse().map_err(|_| DeployError::Corrupt(format!("bad hash for `{name}`")))?;
        let path = blobs.path(&hash);
        if !path.is_file() {
            return Err(DeployError::MissingBlobs(vec![hex.clone()]));
        }
        c.path = path;
    }
    let mut target = bundle.targets.remove(&d.snapshot.target).unwrap_or_default();
    target.default = true;
    bundle.targets = [(d.snapshot.target.clone(), target)].into();
    if super::rules::is_development(&d.snapshot.spec, &d.snapshot.target) {
        for job in bundle.jobs.values_mut() {
            job.max_concurrent_runs = MAX_MAX_CONCURRENT_RUNS;
        }
    }
    Ok(bundle)
}

/// Every job of every current deployment of `workspace`: (deployment, job name, stable id).
pub fn deployed_jobs(rt: &Runtime, workspace: &str) -> Result<Vec<(Deployment, String, u64)>, DeployError> {
    let mut out = Vec::new();
    for (key, current) in rt.deployments().targets(Some(workspace))? {
        let Some(n) = current else { continue };
        let deployments = Deployments::new(rt);
        let Some(d) = deployments.get(&key, n)? else { continue };
        for job in d.jobs.keys() {
            let id = rt.services().job_id(&deployed_job_key(workspace, &key.bundle, &key.target, job))?;
            out.push((deployments.owner(&key, d.clone(), job)?, job.clone(), id));
        }
    }
    Ok(out)
}
