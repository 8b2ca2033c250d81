//! Object-storage mounts, coordinator side: before an attempt, each `url` mount's
//! credentials are revealed for the run's principal through the vault (audited, the same
//! read-permission check as any secret a task is granted) and its objects staged by content
//! (`objstore::stage`); the staged trees' roots go into the attempt's cache key. After an
//! attempt that succeeded (its result final: expectations and datasets passed), a rw
//! mount's new and changed files are uploaded; after one that did not, nothing is.
//!
//! A transfer that failed transiently (the store's own retries and `stage::TRANSFER_TRIES`
//! exhausted) is a [`MountError`] marked `transient`: the attempt fails, and the task's
//! retry policy may try it again; credentials, bad prefixes and local trouble are not.
//!
//! The guest sees a local directory only: it never holds the credentials nor talks to the
//! store. Staging and uploading run on a thread of their own with its own I/O driver while
//! the coordinator waits (so an attempt's key is known before it is looked up); with many
//! or large objects that wait is the price of the first, cold run.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::cache::{Hash, TreeManifest};
use crate::objstore::{Store, stage};
use crate::secrets::RevealRequest;
use crate::spec::{Mount, MountMode, ObjectSource, TaskSpec};
use crate::state::TaskId;

use super::coordinator::Coordinator;

/// Why an attempt's object-storage mounts could not be staged or uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountError {
    /// Names the task, the mount and what went wrong (never a credential's value).
    pub message: String,
    /// A store's transient failure: the task's retry policy may retry the attempt.
    pub transient: bool,
}

impl MountError {
    fn permanent(message: String) -> MountError {
        MountError { message, transient: false }
    }
}

/// A rw object-storage mount's private copy, uploaded after a successful attempt.
#[derive(Debug)]
pub(crate) struct RwStaged {
    pub guest: String,
    pub object: ObjectSource,
    pub dir: PathBuf,
    /// What was staged: files whose content differs from it are uploaded.
    pub staged: TreeManifest,
}

/// An attempt's mounts with every object-storage mount staged.
#[derive(Debug, Default)]
pub(crate) struct StagedMounts {
    /// The spec's mounts, each object-storage one pointing at its staged directory.
    pub mounts: Vec<Mount>,
    /// Guest path → Merkle root of what was staged there.
    pub roots: BTreeMap<String, Hash>,
    pub rw: Vec<RwStaged>,
}

impl Coordinator {
    /// Stage task `id`'s object-storage mounts for attempt `attempt`; an error names the
    /// task, the mount and what went wrong (never a credential's value).
    pub(crate) fn stage_objects(&self, id: TaskId, attempt: u32, spec: &TaskSpec) -> Result<StagedMounts, MountError> {
        let mut out = StagedMounts { mounts: spec.exec.mounts.clone(), ..StagedMounts::default() };
        if spec.exec.mounts.iter().all(|m| m.object.is_none()) {
            return Ok(out);
        }
        let key = self.state.task(id).key.clone();
        let cfg = self.rt.cache.clone().ok_or_else(|| {
            MountError::permanent(format!(
                "task `{key}` has object-storage mounts, which need the state directory's blob store"
            ))
        })?;
        for mount in &mut out.mounts {
            let Some(object) = mount.object.clone() else { continue };
            let what = format!("task `{key}`: mount {} ({})", mount.guest, object.url);
            let fail = |e: String| MountError::permanent(format!("{what}: {e}"));
            let secret = self.mount_credentials(&key, attempt, &object).map_err(fail)?;
            let (cache, kept) = (cfg.clone(), object.clone());
            let fetched = on_own_thread(async move {
                let store = Store::open(&kept.url, secret.expose_secret())
                    .map_err(|e| (format!("{e} (secret `{}`)", kept.credentials), false))?;
                stage::fetch(&store, &cache.blobs, &cache.objects)
                    .await
                    .map_err(|e| (format!("staging: {e}"), e.is_transient()))
            })
            .map_err(|e| (e, false))
            .and_then(|r| r)
            .map_err(|(e, transient)| MountError { message: format!("{what}: {e}"), transient })?;
            tracing::info!(task = %key, mount = %mount.guest, url = %object.url, downloaded = fetched.downloaded,
                reused = fetched.reused, root = %fetched.manifest.root, "object-storage mount staged");
            out.roots.insert(mount.guest.clone(), fetched.manifest.root);
            mount.host = match mount.mode {
                MountMode::Ro => stage::offer_read_only(&cfg.blobs, &cfg.staging, &fetched.manifest),
                MountMode::Rw => stage::offer_writable(&cfg.blobs, &cfg.staging, &fetched.manifest),
            }
            .map_err(|e| fail(e.to_string()))?;
            if mount.mode == MountMode::Rw {
                out.rw.push(RwStaged {
                    guest: mount.guest.clone(),
                    object,
                    dir: mount.host.clone(),
                    staged: fetched.manifest,
                });
            }
        }
        Ok(out)
    }

    /// Upload what attempt `attempt` of task `key` wrote into its rw object-storage mounts
    /// (`success`: its result is final and a success; otherwise nothing is sent), then
    /// remove their copies. An error names the mount.
    pub(crate) fn upload_objects(
        &self,
        key: &str,
        attempt: u32,
        staged: Vec<RwStaged>,
        success: bool,
    ) -> Result<(), MountError> {
        let mut result = Ok(());
        for rw in staged {
            if success && result.is_ok() {
                result = self.upload_one(key, attempt, &rw);
            }
            let _ = std::fs::remove_dir_all(&rw.dir);
        }
        result
    }

    fn upload_one(&self, key: &str, attempt: u32, rw: &RwStaged) -> Result<(), MountError> {
        let what = format!("task `{key}`: uploading mount {} to {}", rw.guest, rw.object.url);
        let secret = self
            .mount_credentials(key, attempt, &rw.object)
            .map_err(|e| MountError::permanent(format!("{what}: {e}")))?;
        let (object, dir, staged) = (rw.object.clone(), rw.dir.clone(), Arc::new(rw.staged.clone()));
        let sent = on_own_thread(async move {
            let store = Store::open(&object.url, secret.expose_secret())
                .map_err(|e| (format!("{e} (secret `{}`)", object.credentials), false))?;
            stage::upload(&store, &dir, &staged).await.map_err(|e| (e.to_string(), e.is_transient()))
        })
        .map_err(|e| (e, false))
        .and_then(|r| r)
        .map_err(|(e, transient)| MountError { message: format!("{what}: {e}"), transient })?;
        tracing::info!(task = %key, mount = %rw.guest, url = %rw.object.url, files = sent.files, bytes = sent.bytes,
            "object-storage mount uploaded");
        Ok(())
    }

    /// The JSON credentials of an object-storage mount, revealed for the run's principal
    /// (audited; refused unless the principal may read the scope).
    fn mount_credentials(&self, key: &str, attempt: u32, object: &ObjectSource) -> Result<SecretString, String> {
        let name = &object.credentials;
        let resolver =
            self.rt.secrets.as_ref().ok_or_else(|| format!("credentials `{name}`: no secrets vault is configured"))?;
        let req = RevealRequest {
            run: self.state.run_id(),
            task: key.to_string(),
            attempt,
            principal: self.plan.principal.clone(),
            workspace: self.plan.workspace.clone(),
            target: self.state.view().target.clone(),
            name: name.clone(),
            // the mount's declaration in the bundle is the grant; the vault checks the rest
            granted: true,
            via: None,
        };
        resolver.reveal(&req).map_err(|why| format!("credentials `{name}` cannot be read: {why}"))
    }
}

/// Run `work` to its end on a thread of its own with its own I/O driver, waiting for it
/// (telling a multi-threaded runtime that this thread blocks).
fn on_own_thread<T: Send>(work: impl Future<Output = T> + Send) -> Result<T, String> {
    let run = move || {
        std::thread::scope(|s| {
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                rt.map(|rt| rt.block_on(work)).map_err(|e| format!("starting the transfer: {e}"))
            })
            .join()
            .unwrap_or_else(|_| Err("the transfer thread panicked".to_string()))
        })
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
        _ => run(),
    }
}
