//! Published datasets, coordinator side: the content hash of each dataset a task declares
//! (`datasets = { NAME = "path" }`), taken from the `/out` tree its successful attempt
//! stored — a file's blake3, a directory's Merkle root, the same hashes the result cache
//! uses — and recorded as a new version in the run's workspace and target when it differs
//! from the latest one.
//!
//! A declared dataset missing from `/out` fails the attempt with a permanent error naming
//! it (the task did not do what its bundle says). It never reads a file: the tree's
//! manifest holds every hash, and never decides when a trigger fires.

use std::collections::BTreeMap;

use crate::cache::{Hash, TreeManifest, tree_root};
use crate::store::datasets::{DatasetVersion, Namespace};

use super::SchedulerError;
use super::coordinator::Coordinator;

/// The error code of an attempt failed for a declared dataset missing from `/out`.
pub(crate) const DATASET_MISSING: &str = "dataset_missing";

/// Each declared dataset's content hash in `out`; an error naming the first one missing.
pub(crate) fn hashes(
    declared: &BTreeMap<String, String>,
    out: Option<&TreeManifest>,
) -> Result<Vec<(String, String)>, String> {
    let mut found = Vec::new();
    for (name, path) in declared {
        let hash = out.and_then(|tree| hash_of(tree, path)).ok_or_else(|| {
            format!(
                "dataset `{name}`: `{path}` is not in the task's /out after it succeeded \
                 (its `datasets` say it publishes `{name}` from there)"
            )
        })?;
        found.push((name.clone(), hash.to_string()));
    }
    Ok(found)
}

/// The hash of `path` in `tree`: a file's content hash, a directory's Merkle root (paths
/// relative to it), the whole tree's root for `.`; `None` when it is not there.
fn hash_of(tree: &TreeManifest, path: &str) -> Option<Hash> {
    if path == "." {
        return Some(tree.root);
    }
    if let Some(file) = tree.entries.iter().find(|e| e.path == path) {
        return Some(file.hash);
    }
    let under = format!("{path}/");
    let files: Vec<(&str, &Hash)> =
        tree.entries.iter().filter_map(|e| Some((e.path.strip_prefix(&under)?, &e.hash))).collect();
    let dirs: Vec<&str> = tree.dirs.iter().filter_map(|d| d.strip_prefix(&under)).collect();
    let exists = !files.is_empty() || tree.dirs.iter().any(|d| d == path);
    exists.then(|| tree_root(files, dirs))
}

impl Coordinator {
    /// Record task `task`'s datasets (name, hash) as new versions where their content
    /// changed (written with the attempt's record, made durable by its flush).
    pub(crate) fn publish_datasets(&self, task: &str, found: Vec<(String, String)>) -> Result<(), SchedulerError> {
        if found.is_empty() {
            return Ok(());
        }
        let view = self.state.view();
        let ns = Namespace { workspace: &self.plan.workspace, target: &view.target };
        let job = match self.plan.bundle.as_str() {
            "" => self.plan.job.name.clone(),
            bundle => format!("{bundle}.{}", self.plan.job.name),
        };
        for (name, hash) in found {
            let version = DatasetVersion {
                version: 0,
                hash,
                run: view.run_id,
                job: job.clone(),
                task: task.into(),
                at: self.now(),
            };
            if let Some(v) = self.rt.datasets.publish(ns, &name, version)? {
                tracing::info!(dataset = %name, version = v.version, run = v.run, "published a new dataset version");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::TreeEntry;

    fn tree() -> TreeManifest {
        let entry = |path: &str, bytes: &[u8]| TreeEntry { path: path.into(), hash: Hash::of(bytes), size: 1 };
        let entries = vec![entry("orders.csv", b"1,2"), entry("t/a.csv", b"a"), entry("t/sub/b.csv", b"b")];
        let dirs = vec!["empty".to_string(), "t".to_string(), "t/sub".to_string()];
        let root = tree_root(entries.iter().map(|e| (e.path.as_str(), &e.hash)), dirs.iter().map(String::as_str));
        TreeManifest { root, entries, dirs }
    }

    #[test]
    fn files_hash_by_content_and_directories_by_their_own_root() {
        let t = tree();
        assert_eq!(hash_of(&t, "orders.csv"), Some(Hash::of(b"1,2")));
        assert_eq!(hash_of(&t, "."), Some(t.root));
        let (a, b) = (Hash::of(b"a"), Hash::of(b"b"));
        assert_eq!(hash_of(&t, "t"), Some(tree_root([("a.csv", &a), ("sub/b.csv", &b)], ["sub"])));
        assert!(hash_of(&t, "empty").is_some());
        assert_eq!(hash_of(&t, "missing.csv"), None);
        assert_eq!(hash_of(&t, "orders"), None);
    }

    #[test]
    fn a_missing_dataset_is_named() {
        let declared = BTreeMap::from([("sales.orders".to_string(), "orders.parquet".to_string())]);
        let err = hashes(&declared, Some(&tree())).unwrap_err();
        assert!(err.contains("sales.orders") && err.contains("orders.parquet"), "{err}");
        assert!(hashes(&declared, None).is_err());
    }
}
