//! The model registry, coordinator side: registering the `/out` file a successful attempt
//! of a task with `register_model` wrote (its blake3 from the stored tree, its metrics
//! read from the blob store, the run, task, target and Git commit that produced it), and
//! offering a task with `models` the version staged for the run's target, read-only.
//!
//! A declared artifact or metrics file missing from `/out`, or metrics that are not a JSON
//! object, fail the attempt with a permanent error naming them; a model with no version
//! staged for the run's target fails the attempt before anything runs, saying how to stage
//! one. A staged model's hash is part of the attempt's cache key. It never decides which
//! version is staged (`sluice models stage` does).

use std::path::Path;

use crate::cache::{CacheDir, Hash, TreeManifest};
use crate::spec::models::{ModelUse, RegisterModel};
use crate::spec::{Mount, MountMode};
use crate::store::ModelVersion;

use super::SchedulerError;
use super::coordinator::Coordinator;

/// The error code of an attempt failed for a declared model file missing from `/out`.
pub(crate) const MODEL_MISSING: &str = "model_missing";
/// The most bytes a metrics file may hold (it is kept in the registry's record).
pub const MAX_METRICS_BYTES: u64 = 64 << 10;

/// What a successful attempt registers: the artifact's hash and size, the metrics.
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    pub hash: Hash,
    pub size: u64,
    pub metrics: serde_json::Value,
}

/// A model version staged for the run's target, as one attempt loads it.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub name: String,
    pub guest: String,
    pub version: u64,
    pub hash: Hash,
    pub file: String,
}

/// The declared artifact (and metrics) in `out`; an error naming what is missing or bad.
pub(crate) fn artifact(
    declared: &RegisterModel,
    out: Option<&TreeManifest>,
    cache: Option<&CacheDir>,
) -> Result<Artifact, String> {
    let find = |path: &str| out.and_then(|tree| tree.entries.iter().find(|e| e.path == path));
    let missing = |path: &str, what: &str| {
        format!(
            "model `{}`: {what} `{path}` is not in the task's /out after it succeeded (its `register_model` says so)",
            declared.name
        )
    };
    let file = find(&declared.file).ok_or_else(|| missing(&declared.file, "artifact"))?;
    let metrics = match &declared.metrics {
        None => serde_json::json!({}),
        Some(path) => {
            let entry = find(path).ok_or_else(|| missing(path, "metrics file"))?;
            if entry.size > MAX_METRICS_BYTES {
                return Err(format!(
                    "model `{}`: metrics file `{path}` is {} bytes; at most {MAX_METRICS_BYTES}",
                    declared.name, entry.size
                ));
            }
            let cache = cache.ok_or_else(|| "registering a model needs the result cache's blob store".to_string())?;
            let bytes = cache.blobs.get(&entry.hash).map_err(|e| format!("reading metrics `{path}`: {e}"))?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("model `{}`: metrics file `{path}` is not JSON: {e}", declared.name))?;
            if !value.is_object() {
                return Err(format!(
                    "model `{}`: metrics file `{path}` must hold a JSON object such as {{\"accuracy\": 0.9}}",
                    declared.name
                ));
            }
            value
        }
    };
    Ok(Artifact { hash: file.hash, size: file.size, metrics })
}

impl Coordinator {
    /// Register task `task`'s artifact as the next version of its model (written with the
    /// attempt's record, made durable by its flush); nothing new when it is the latest.
    pub(crate) fn register_model(
        &self,
        task: &str,
        declared: &RegisterModel,
        found: Artifact,
    ) -> Result<(), SchedulerError> {
        let view = self.state.view();
        let git = self.git_of_run(&view.target);
        let version = ModelVersion {
            version: 0,
            hash: found.hash.to_string(),
            file: declared.file.rsplit('/').next().unwrap_or(&declared.file).to_string(),
            size: found.size,
            metrics: found.metrics,
            run: view.run_id,
            job: match self.plan.bundle.as_str() {
                "" => self.plan.job.name.clone(),
                bundle => format!("{bundle}.{}", self.plan.job.name),
            },
            task: task.into(),
            target: view.target.clone(),
            commit: git.as_ref().and_then(|g| g.commit.clone()),
            dirty: git.is_some_and(|g| g.dirty),
            at: self.now(),
        };
        let (v, new) = self.rt.models.register(&self.plan.workspace, &declared.name, version)?;
        tracing::info!(model = %declared.name, version = v.version, new, "registered a model version");
        Ok(())
    }

    /// The Git metadata of what this run runs: a deployed job's deployment's, else the
    /// bundle directory's work tree (`None`: not from Git).
    fn git_of_run(&self, target: &str) -> Option<crate::deploy::GitInfo> {
        let deployed = self.plan.job_id.and_then(|id| self.rt.services.job_key(id).ok().flatten());
        if let Some(key) = deployed
            && let Some((bundle, _)) = crate::deploy::jobs::split_key(&key)
        {
            let tk = crate::deploy::apply::Deployments::key(&self.plan.workspace, bundle, target);
            if let Ok(Some(d)) = crate::deploy::apply::Deployments::new(&self.rt).current(&tk) {
                return d.snapshot.git;
            }
        }
        crate::deploy::git::read(&self.plan.bundle_root).ok().flatten()
    }

    /// The version of each of `uses` staged for the run's target; an error saying how to
    /// stage one when a model has none.
    pub(crate) fn staged_models(&self, uses: &[ModelUse]) -> Result<Vec<Staged>, String> {
        let target = self.state.view().target.clone();
        let ws = &self.plan.workspace;
        let mut out = Vec::new();
        for u in uses {
            let stages = self.rt.models.stages(ws, &u.name).map_err(|e| e.to_string())?;
            let Some(stage) = stages.iter().find(|s| s.target == target) else {
                let versions = self.rt.models.versions(ws, &u.name).map_err(|e| e.to_string())?;
                let known = match versions.last() {
                    None => format!("model `{}` has no registered version in workspace `{ws}`", u.name),
                    Some(v) => format!("its latest version is {}", v.version),
                };
                return Err(format!(
                    "model `{}`: no version is staged for target `{target}` ({known}); stage one with \
                     `sluice models stage {} VERSION --target {target}`",
                    u.name, u.name
                ));
            };
            let v = self.rt.models.get(ws, &u.name, stage.version).map_err(|e| e.to_string())?.ok_or_else(|| {
                format!("model `{}`: staged version {} is not in the registry", u.name, stage.version)
            })?;
            let hash = v.hash.parse().map_err(|_| format!("model `{}` v{}: bad hash {}", u.name, v.version, v.hash))?;
            out.push(Staged { name: u.name.clone(), guest: u.guest.clone(), version: v.version, hash, file: v.file });
        }
        Ok(out)
    }
}

/// Read-only mounts offering each staged model's file in its own directory (made once per
/// artifact in the staging area, by hard link or copy from the blob store).
pub(crate) fn mounts(cache: Option<&CacheDir>, staged: &[Staged]) -> Result<Vec<Mount>, String> {
    if staged.is_empty() {
        return Ok(Vec::new());
    }
    let cache = cache.ok_or_else(|| "loading a model needs the result cache's blob store".to_string())?;
    let mut out = Vec::new();
    for s in staged {
        let dir = cache.staging.join(format!("model-{}-{}", s.hash, s.file));
        if !dir.join(&s.file).is_file() {
            stage_file(cache, s, &dir)?;
        }
        out.push(Mount { host: dir, guest: s.guest.clone(), mode: MountMode::Ro, outside_roots: false, object: None });
    }
    Ok(out)
}

fn stage_file(cache: &CacheDir, s: &Staged, dir: &Path) -> Result<(), String> {
    let blob = cache.blobs.path(&s.hash);
    if !blob.is_file() {
        return Err(format!(
            "model `{}` v{}: its artifact {} is no longer in the blob store (collected?)",
            s.name, s.version, s.hash
        ));
    }
    let failed = |e: std::io::Error| format!("staging model `{}` v{}: {e}", s.name, s.version);
    let tmp = cache.staging.join(format!(".model-{}-{}", s.hash, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(failed)?;
    if std::fs::hard_link(&blob, tmp.join(&s.file)).is_err() {
        std::fs::copy(&blob, tmp.join(&s.file)).map_err(failed)?;
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(&s.file).is_file() {
            return Err(failed(e));
        }
    }
    Ok(())
}
