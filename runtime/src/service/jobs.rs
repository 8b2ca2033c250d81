//! The jobs a serving owner offers: those of the bundles `sluice serve` was given, in the
//! workspaces it serves them to, each with a stable id per (workspace, bundle, job).
//!
//! A bundle is parsed once and parsed again only when its file changes (its size,
//! modification time, change time or inode), so an edited bundle is served as edited
//! without re-reading every bundle on every request; components are pinned per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;

use super::{Caller, Service, ServiceError};
use crate::spec::{self, Bundle, JobSpec};
use crate::store::JobKey;

/// Parsed bundles by file and load options, with the file stamp they were read at.
type BundleCache = HashMap<(PathBuf, spec::LoadOptions), (Stamp, Arc<Bundle>)>;

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
            let bundle = self.inner.parsed.load(&served.path)?;
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
        out.extend(self.deployed_job_infos(caller)?);
        out.sort_by_key(|j| j.job_id);
        Ok(out)
    }

    /// One served job of the caller's workspace, with its bundle (read now).
    pub fn job(&self, caller: &Caller, job_id: u64) -> Result<(JobInfo, Arc<Bundle>), ServiceError> {
        let missing = || ServiceError::NotFound(format!("Job {job_id} does not exist."));
        let view = crate::deploy::rules::Level::CanView;
        if let Some((info, run)) = self.deployed_job(caller, job_id, view, "view")? {
            return Ok((info, run.bundle));
        }
        let key = self.inner.rt.services().job_key(job_id)?.ok_or_else(missing)?;
        if key.workspace != caller.workspace {
            return Err(missing());
        }
        let served = self.visible_bundles(caller).into_iter().find(|b| b.name == key.bundle).ok_or_else(missing)?;
        let bundle = self.inner.parsed.load(&served.path)?;
        let spec = bundle.jobs.get(&key.job).cloned().ok_or_else(missing)?;
        let info = JobInfo { job_id, bundle: bundle.name.clone(), workspace: key.workspace, spec };
        Ok((info, bundle))
    }
}

/// What tells that a bundle file changed without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    changed: (i64, i64),
    inode: u64,
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let file = if path.is_dir() { path.join(spec::BUNDLE_FILE) } else { path.to_path_buf() };
    let meta = std::fs::metadata(file).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        changed: (meta.ctime(), meta.ctime_nsec()),
        inode: meta.ino(),
    })
}

/// Served bundles as last parsed, by path, with the stamp of the file they were parsed from.
#[derive(Default)]
pub(crate) struct Parsed {
    bundles: Mutex<BundleCache>,
}

impl Parsed {
    /// Remember a bundle this process parsed (kept only if its file is still as read).
    fn remember(&self, read: &BundleRead) {
        if let Some(stamp) = &read.stamp
            && stamp_of(&read.path).as_ref() == Some(stamp)
        {
            let entry = (stamp.clone(), read.bundle.clone());
            let key = (read.path.clone(), read.opts.clone());
            self.bundles.lock().unwrap_or_else(PoisonError::into_inner).insert(key, entry);
        }
    }

    /// The bundle at `path`, parsed again only if its file changed since it last was.
    pub(crate) fn load(&self, path: &Path) -> Result<Arc<Bundle>, ServiceError> {
        self.load_with(path, &spec::LoadOptions::default())
    }

    /// [`Parsed::load`] for a target and variable values.
    pub(crate) fn load_with(&self, path: &Path, opts: &spec::LoadOptions) -> Result<Arc<Bundle>, ServiceError> {
        let before = stamp_of(path);
        let key = (path.to_path_buf(), opts.clone());
        if let Some(now) = &before
            && let Some((seen, bundle)) = self.bundles.lock().unwrap_or_else(PoisonError::into_inner).get(&key)
            && seen == now
        {
            return Ok(bundle.clone());
        }
        let bundle = Arc::new(
            spec::load_with(path, opts)
                .map_err(|e| ServiceError::Invalid(format!("the bundle no longer loads: {e}")))?,
        );
        // kept only if the file did not change while it was read
        if let Some(now) = before
            && stamp_of(path).as_ref() == Some(&now)
        {
            self.bundles.lock().unwrap_or_else(PoisonError::into_inner).insert(key, (now, bundle.clone()));
        }
        Ok(bundle)
    }
}

/// A bundle as this process parsed it, with the stamp of the file it was read from.
pub struct BundleRead {
    pub path: PathBuf,
    pub bundle: Arc<Bundle>,
    stamp: Option<Stamp>,
    /// The target and variables it was read with.
    opts: spec::LoadOptions,
}

/// Parse the bundle at `path` (a directory or its `sluice.toml`), remembering which file
/// it was: `sluice run` reads its bundle before it submits it, and hands this to the owner
/// when that is its own process ([`Service::remember_bundle`]), which then need not parse
/// it again.
pub fn read_bundle(path: &Path) -> Result<BundleRead, spec::SpecError> {
    read_bundle_with(path, &spec::LoadOptions::default())
}

/// [`read_bundle`] for a target and variable values.
pub fn read_bundle_with(path: &Path, opts: &spec::LoadOptions) -> Result<BundleRead, spec::SpecError> {
    let stamp = stamp_of(path);
    let bundle = Arc::new(spec::load_with(path, opts)?);
    // the key a submission of it names: its file's absolute path
    let path = std::path::absolute(&bundle.file).unwrap_or_else(|_| bundle.file.clone());
    Ok(BundleRead { path, bundle, stamp, opts: opts.clone() })
}

impl Service {
    /// Keep a bundle this process parsed for the submission of it that follows.
    pub fn remember_bundle(&self, read: &BundleRead) {
        self.inner.parsed.remember(read);
    }
}
