//! The model registry, behind [`ModelStore`]: each version of a named model in a workspace
//! (its artifact's blake3, the metrics it was registered with, the run, task and Git commit
//! that produced it) and which version is staged for each target.
//!
//! Versions are numbered 1, 2, … per name; registering the same artifact as the latest
//! version records nothing ([`ModelStore::register`] decides that atomically). The sled
//! backend is `sled_models.rs`, in the run store's database: a version is made durable by
//! the flush of the attempt that registered it, a stage by [`ModelStore::stage`] itself
//! (a user's command, answered only once flushed). It never reads artifacts (the blob store
//! holds them) and never decides what a task may load (the scheduler does).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{Millis, RunId};

/// One registered version of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// 1, 2, … per name in its workspace.
    pub version: u64,
    /// blake3 (hex) of the artifact file (in the blob store).
    pub hash: String,
    /// The artifact's file name (as the registering task wrote it to `/out`) and size.
    pub file: String,
    pub size: u64,
    /// The metrics file's JSON object (`{}` when none was declared).
    pub metrics: serde_json::Value,
    /// The run, job (`bundle.job`), task and target that produced it.
    pub run: RunId,
    pub job: String,
    pub task: String,
    pub target: String,
    /// The Git commit the producing bundle was at (`None`: not from a Git work tree), and
    /// whether its work tree had changes.
    pub commit: Option<String>,
    #[serde(default)]
    pub dirty: bool,
    pub at: Millis,
}

/// Which version of a model a target loads, and who put it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStage {
    pub target: String,
    pub version: u64,
    pub by: String,
    pub at: Millis,
}

/// Durable records of models. Registrations are durable once the run store's flush (which
/// shares it) returns; stages when [`ModelStore::stage`] returns.
pub trait ModelStore: Send + Sync {
    /// Record `version` (its number ignored) as the next version of `name` unless the
    /// latest version has the same hash; `(version, true)` when new, `(latest, false)`
    /// otherwise. Not flushed.
    fn register(&self, workspace: &str, name: &str, version: ModelVersion) -> Result<(ModelVersion, bool), StoreError>;
    fn get(&self, workspace: &str, name: &str, version: u64) -> Result<Option<ModelVersion>, StoreError>;
    /// Every version of `name`, oldest first.
    fn versions(&self, workspace: &str, name: &str) -> Result<Vec<ModelVersion>, StoreError>;
    /// Every model name with a version in `workspace`, in order.
    fn names(&self, workspace: &str) -> Result<Vec<String>, StoreError>;
    /// Stage `stage.version` of `name` for `stage.target` (the caller checked it exists). Flushed.
    fn stage(&self, workspace: &str, name: &str, stage: &ModelStage) -> Result<(), StoreError>;
    /// What each target loads of `name`, by target.
    fn stages(&self, workspace: &str, name: &str) -> Result<Vec<ModelStage>, StoreError>;
}

/// `workspace 0 name 0`: the prefix of a model's keys (names never hold a 0 byte).
pub(crate) fn prefix(workspace: &str, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(workspace.len() + name.len() + 2);
    for part in [workspace, name] {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    out
}

/// A version's key: the model's prefix, then the version BE.
pub(crate) fn version_key(workspace: &str, name: &str, version: u64) -> Vec<u8> {
    let mut out = prefix(workspace, name);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// A stage's key: the model's prefix, then the target.
pub(crate) fn stage_key(workspace: &str, name: &str, target: &str) -> Vec<u8> {
    let mut out = prefix(workspace, name);
    out.extend_from_slice(target.as_bytes());
    out
}

/// The model name a version key of `workspace` names.
pub(crate) fn decode_name(workspace: &str, key: &[u8]) -> Option<String> {
    let rest = key.strip_prefix(workspace.as_bytes())?.strip_prefix(&[0])?;
    let name = rest.split(|b| *b == 0).next()?;
    String::from_utf8(name.to_vec()).ok()
}

/// Versions and stages by key.
type Records = (BTreeMap<Vec<u8>, ModelVersion>, BTreeMap<Vec<u8>, ModelStage>);

/// In memory: the reference behaviour, for unit tests.
#[derive(Default)]
pub struct MemoryModelStore {
    inner: Mutex<Records>,
}

impl MemoryModelStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn in_prefix<'m, V>(map: &'m BTreeMap<Vec<u8>, V>, prefix: &[u8]) -> impl Iterator<Item = (&'m Vec<u8>, &'m V)> {
    map.range(prefix.to_vec()..).take_while(move |(k, _)| k.starts_with(prefix))
}

impl ModelStore for MemoryModelStore {
    fn register(
        &self,
        workspace: &str,
        name: &str,
        mut version: ModelVersion,
    ) -> Result<(ModelVersion, bool), StoreError> {
        let mut m = self.lock();
        let latest = in_prefix(&m.0, &prefix(workspace, name)).last().map(|(_, v)| v.clone());
        if let Some(latest) = latest.as_ref().filter(|l| l.hash == version.hash) {
            return Ok((latest.clone(), false));
        }
        version.version = latest.map_or(1, |l| l.version + 1);
        m.0.insert(version_key(workspace, name, version.version), version.clone());
        Ok((version, true))
    }

    fn get(&self, workspace: &str, name: &str, version: u64) -> Result<Option<ModelVersion>, StoreError> {
        Ok(self.lock().0.get(&version_key(workspace, name, version)).cloned())
    }

    fn versions(&self, workspace: &str, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
        Ok(in_prefix(&self.lock().0, &prefix(workspace, name)).map(|(_, v)| v.clone()).collect())
    }

    fn names(&self, workspace: &str) -> Result<Vec<String>, StoreError> {
        let mut start = workspace.as_bytes().to_vec();
        start.push(0);
        let mut out: Vec<String> =
            in_prefix(&self.lock().0, &start).filter_map(|(k, _)| decode_name(workspace, k)).collect();
        out.dedup();
        Ok(out)
    }

    fn stage(&self, workspace: &str, name: &str, stage: &ModelStage) -> Result<(), StoreError> {
        self.lock().1.insert(stage_key(workspace, name, &stage.target), stage.clone());
        Ok(())
    }

    fn stages(&self, workspace: &str, name: &str) -> Result<Vec<ModelStage>, StoreError> {
        Ok(in_prefix(&self.lock().1, &prefix(workspace, name)).map(|(_, v)| v.clone()).collect())
    }
}

/// The behaviour every [`ModelStore`] shares, run against each backend.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    fn v(hash: &str, run: RunId) -> ModelVersion {
        ModelVersion {
            version: 0,
            hash: hash.into(),
            file: "model.json".into(),
            size: 3,
            metrics: serde_json::json!({ "accuracy": 0.9 }),
            run,
            job: "ml.train".into(),
            task: "register".into(),
            target: "dev".into(),
            commit: Some("abc".into()),
            dirty: false,
            at: run,
        }
    }

    fn stage(target: &str, version: u64) -> ModelStage {
        ModelStage { target: target.into(), version, by: "ci".into(), at: 7 }
    }

    pub(crate) fn all(store: &dyn ModelStore) {
        assert!(store.versions("default", "churn").unwrap().is_empty());
        let (first, new) = store.register("default", "churn", v("aa", 1)).unwrap();
        assert_eq!((first.version, new), (1, true));
        // the same artifact again: nothing new, the latest back
        let (same, new) = store.register("default", "churn", v("aa", 2)).unwrap();
        assert_eq!((same.version, same.run, new), (1, 1, false));
        assert_eq!(store.register("default", "churn", v("bb", 3)).unwrap().0.version, 2);
        assert_eq!(store.register("default", "churn", v("aa", 4)).unwrap().0.version, 3);
        // another workspace and a name extending this one's are apart
        assert_eq!(store.register("other", "churn", v("bb", 5)).unwrap().0.version, 1);
        assert_eq!(store.register("default", "churn2", v("cc", 6)).unwrap().0.version, 1);
        let runs: Vec<_> = store.versions("default", "churn").unwrap().iter().map(|x| (x.version, x.run)).collect();
        assert_eq!(runs, [(1, 1), (2, 3), (3, 4)]);
        assert_eq!(store.get("default", "churn", 2).unwrap().map(|x| x.hash), Some("bb".into()));
        assert_eq!(store.get("default", "churn", 9).unwrap(), None);
        assert_eq!(store.names("default").unwrap(), ["churn", "churn2"]);
        assert!(store.names("nobody").unwrap().is_empty());
        // stages: one version per target, restaging replaces it
        assert!(store.stages("default", "churn").unwrap().is_empty());
        store.stage("default", "churn", &stage("prod", 1)).unwrap();
        store.stage("default", "churn", &stage("test", 2)).unwrap();
        store.stage("default", "churn", &stage("prod", 3)).unwrap();
        let staged: Vec<_> =
            store.stages("default", "churn").unwrap().into_iter().map(|s| (s.target, s.version)).collect();
        assert_eq!(staged, [("prod".to_string(), 3), ("test".to_string(), 2)]);
        assert!(store.stages("default", "churn2").unwrap().is_empty());
        assert!(store.stages("other", "churn").unwrap().is_empty());
    }

    #[test]
    fn the_memory_store_conforms() {
        all(&MemoryModelStore::default());
    }
}
