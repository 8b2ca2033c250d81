//! The jobs a serving owner offers: those of the bundles `sluice serve` was given, in the
//! workspaces it serves them to, each with a stable id per (workspace, bundle, job).
//!
//! A bundle is read from its directory whenever it is listed or run (as `sluice run`
//! reads it), so an edited bundle is served as edited; components are pinned per run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Caller, Service, ServiceError};
use crate::spec::{self, Bundle, JobSpec};
use crate::store::JobKey;

/// A bundle `sluice serve` offers, and the workspaces that see its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedBundle {
    /// The bundle directory (or file), absolute.
    pub path: PathBuf,
    /// Its `[bundle] name`, as read when serving began.
    pub name: String,
    pub workspaces: Vec<String>,
}

/// A served job, as `jobs/list` and `jobs/get` show it.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    pub job_id: u64,
    pub bundle: String,
    pub workspace: String,
    pub spec: JobSpec,
}

impl Service {
    /// Offer the jobs of the bundles at `paths` to `workspaces`. Every bundle must load,
    /// and no two may share a name.
    pub fn serve_bundles(&self, paths: &[PathBuf], workspaces: &[String]) -> Result<(), ServiceError> {
        let mut served = Vec::new();
        for path in paths {
            let bundle = spec::load(path).map_err(|e| ServiceError::Invalid(e.to_string()))?;
            if let Some(other) = served.iter().find(|b: &&ServedBundle| b.name == bundle.name) {
                return Err(ServiceError::Invalid(format!(
                    "bundles {} and {} are both named `{}`; a served bundle's name must be unique",
                    other.path.display(),
                    path.display(),
                    bundle.name
                )));
            }
            for workspace in workspaces {
                for job in bundle.jobs.keys() {
                    self.job_key_id(workspace, &bundle.name, job)?;
                }
            }
            let path = std::path::absolute(path).map_err(|e| ServiceError::Invalid(e.to_string()))?;
            served.push(ServedBundle { path, name: bundle.name, workspaces: workspaces.to_vec() });
        }
        *self.bundles() = served;
        Ok(())
    }

    /// The stable id of a job.
    pub(crate) fn job_key_id(&self, workspace: &str, bundle: &str, job: &str) -> Result<u64, ServiceError> {
        let key = JobKey { workspace: workspace.into(), bundle: bundle.into(), job: job.into() };
        Ok(self.inner.rt.services().job_id(&key)?)
    }

    /// The served bundles the caller's workspace sees.
    fn visible_bundles(&self, caller: &Caller) -> Vec<ServedBundle> {
        self.bundles().iter().filter(|b| b.workspaces.contains(&caller.workspace)).cloned().collect()
    }

    /// Every job the caller's workspace is served, by id.
    pub fn jobs(&self, caller: &Caller) -> Result<Vec<JobInfo>, ServiceError> {
        let mut out = Vec::new();
        for served in self.visible_bundles(caller) {
            let bundle = load(&served.path)?;
            for job in bundle.jobs.values() {
                let job_id = self.job_key_id(&caller.workspace, &bundle.name, &job.name)?;
                out.push(JobInfo {
                    job_id,
                    bundle: bundle.name.clone(),
                    workspace: caller.workspace.clone(),
                    spec: job.clone(),
                });
            }
        }
        out.sort_by_key(|j| j.job_id);
        Ok(out)
    }

    /// One served job of the caller's workspace, with its bundle (read now).
    pub fn job(&self, caller: &Caller, job_id: u64) -> Result<(JobInfo, Bundle), ServiceError> {
        let missing = || ServiceError::NotFound(format!("Job {job_id} does not exist."));
        let key = self.inner.rt.services().job_key(job_id)?.ok_or_else(missing)?;
        if key.workspace != caller.workspace {
            return Err(missing());
        }
        let served = self.visible_bundles(caller).into_iter().find(|b| b.name == key.bundle).ok_or_else(missing)?;
        let bundle = load(&served.path)?;
        let spec = bundle.jobs.get(&key.job).cloned().ok_or_else(missing)?;
        let info = JobInfo { job_id, bundle: bundle.name.clone(), workspace: key.workspace, spec };
        Ok((info, bundle))
    }
}

fn load(path: &Path) -> Result<Bundle, ServiceError> {
    spec::load(path).map_err(|e| ServiceError::Invalid(format!("the served bundle no longer loads: {e}")))
}
