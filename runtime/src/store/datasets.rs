//! Named datasets' versions and lineage, behind [`DatasetStore`]: each version of a
//! dataset in a workspace and target (its content hash, the run and task that produced
//! it), and which runs a table-update trigger started for it.
//!
//! A version is recorded only when its hash differs from the latest one's ([`DatasetStore::publish`]
//! decides that atomically), so a rewrite with identical bytes records nothing. The sled
//! backend is `sled_datasets.rs`, in the run store's database: a version is made durable by
//! the flush of the attempt that produced it, a use by the flush of the run it started. It
//! must never decide when a trigger fires (the `triggers` module does).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{Millis, RunId};

/// One version of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetVersion {
    /// 1, 2, … in its workspace and target.
    pub version: u64,
    /// blake3 (hex) of its content: a file's bytes, a directory's Merkle root.
    pub hash: String,
    /// The run, job (`bundle.job`) and task that produced it.
    pub run: RunId,
    pub job: String,
    pub task: String,
    /// When it was recorded (the runtime's clock).
    pub at: Millis,
}

/// A run a table-update trigger started for a version of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetUse {
    pub version: u64,
    /// The consuming job (`bundle.job`) and its run.
    pub job: String,
    pub run: RunId,
    pub at: Millis,
}

/// Where a dataset lives: its workspace and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespace<'a> {
    pub workspace: &'a str,
    pub target: &'a str,
}

/// Durable records of datasets. Writes are durable once the run store's flush (which
/// shares it) returns.
pub trait DatasetStore: Send + Sync {
    /// Record `version` (its number ignored) as the next version of `name` unless the
    /// latest version has the same hash; the version recorded, or `None`. Not flushed.
    fn publish(
        &self,
        ns: Namespace<'_>,
        name: &str,
        version: DatasetVersion,
    ) -> Result<Option<DatasetVersion>, StoreError>;
    fn latest(&self, ns: Namespace<'_>, name: &str) -> Result<Option<DatasetVersion>, StoreError>;
    /// Every version of `name`, oldest first.
    fn versions(&self, ns: Namespace<'_>, name: &str) -> Result<Vec<DatasetVersion>, StoreError>;
    /// Every (target, dataset name) with a version in `workspace`, in order.
    fn names(&self, workspace: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Record that a trigger's run consumed a version of `name`. Not flushed.
    fn put_use(&self, ns: Namespace<'_>, name: &str, used: &DatasetUse) -> Result<(), StoreError>;
    /// Every use of `name`'s versions, by version then run.
    fn uses(&self, ns: Namespace<'_>, name: &str) -> Result<Vec<DatasetUse>, StoreError>;
}

/// `workspace 0 target 0 name 0`: the prefix of a dataset's keys (names never hold a 0 byte).
pub(crate) fn prefix(ns: Namespace<'_>, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(ns.workspace.len() + ns.target.len() + name.len() + 3);
    for part in [ns.workspace, ns.target, name] {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    out
}

/// A version's key: the dataset's prefix, then the version BE.
pub(crate) fn version_key(ns: Namespace<'_>, name: &str, version: u64) -> Vec<u8> {
    let mut out = prefix(ns, name);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// A use's key: the version's key, then the run BE.
pub(crate) fn use_key(ns: Namespace<'_>, name: &str, used: &DatasetUse) -> Vec<u8> {
    let mut out = version_key(ns, name, used.version);
    out.extend_from_slice(&used.run.to_be_bytes());
    out
}

/// The (target, name) a version key of `workspace` names.
pub(crate) fn decode_name(workspace: &str, key: &[u8]) -> Option<(String, String)> {
    let rest = key.strip_prefix(workspace.as_bytes())?.strip_prefix(&[0])?;
    let mut parts = rest.splitn(3, |b| *b == 0);
    let target = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let name = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((target, name))
}

/// Versions and uses by key.
type Records = (BTreeMap<Vec<u8>, DatasetVersion>, BTreeMap<Vec<u8>, DatasetUse>);

/// In memory: the reference behaviour, for unit tests.
#[derive(Default)]
pub struct MemoryDatasetStore {
    inner: Mutex<Records>,
}

impl MemoryDatasetStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn in_prefix<'m, V>(map: &'m BTreeMap<Vec<u8>, V>, prefix: &[u8]) -> impl Iterator<Item = (&'m Vec<u8>, &'m V)> {
    map.range(prefix.to_vec()..).take_while(move |(k, _)| k.starts_with(prefix))
}

impl DatasetStore for MemoryDatasetStore {
    fn publish(
        &self,
        ns: Namespace<'_>,
        name: &str,
        mut version: DatasetVersion,
    ) -> Result<Option<DatasetVersion>, StoreError> {
        let mut m = self.lock();
        let latest = in_prefix(&m.0, &prefix(ns, name)).last().map(|(_, v)| v.clone());
        if latest.as_ref().is_some_and(|l| l.hash == version.hash) {
            return Ok(None);
        }
        version.version = latest.map_or(1, |l| l.version + 1);
        m.0.insert(version_key(ns, name, version.version), version.clone());
        Ok(Some(version))
    }

    fn latest(&self, ns: Namespace<'_>, name: &str) -> Result<Option<DatasetVersion>, StoreError> {
        Ok(in_prefix(&self.lock().0, &prefix(ns, name)).last().map(|(_, v)| v.clone()))
    }

    fn versions(&self, ns: Namespace<'_>, name: &str) -> Result<Vec<DatasetVersion>, StoreError> {
        Ok(in_prefix(&self.lock().0, &prefix(ns, name)).map(|(_, v)| v.clone()).collect())
    }

    fn names(&self, workspace: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut start = workspace.as_bytes().to_vec();
        start.push(0);
        let mut out: Vec<(String, String)> =
            in_prefix(&self.lock().0, &start).filter_map(|(k, _)| decode_name(workspace, k)).collect();
        out.dedup();
        Ok(out)
    }

    fn put_use(&self, ns: Namespace<'_>, name: &str, used: &DatasetUse) -> Result<(), StoreError> {
        self.lock().1.insert(use_key(ns, name, used), used.clone());
        Ok(())
    }

    fn uses(&self, ns: Namespace<'_>, name: &str) -> Result<Vec<DatasetUse>, StoreError> {
        Ok(in_prefix(&self.lock().1, &prefix(ns, name)).map(|(_, v)| v.clone()).collect())
    }
}

/// The behaviour every [`DatasetStore`] shares, run against each backend.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    fn v(hash: &str, run: RunId) -> DatasetVersion {
        DatasetVersion { version: 0, hash: hash.into(), run, job: "b.produce".into(), task: "t".into(), at: run }
    }

    pub(crate) fn all(store: &dyn DatasetStore) {
        let dev = Namespace { workspace: "default", target: "dev" };
        let prod = Namespace { workspace: "default", target: "prod" };
        assert_eq!(store.latest(dev, "sales.orders").unwrap(), None);
        assert_eq!(store.publish(dev, "sales.orders", v("aa", 1)).unwrap().map(|x| x.version), Some(1));
        // identical bytes: nothing new
        assert_eq!(store.publish(dev, "sales.orders", v("aa", 2)).unwrap(), None);
        assert_eq!(store.publish(dev, "sales.orders", v("bb", 3)).unwrap().map(|x| x.version), Some(2));
        // back to earlier content: a new version all the same
        assert_eq!(store.publish(dev, "sales.orders", v("aa", 4)).unwrap().map(|x| x.version), Some(3));
        // another target and a name that extends this one's are apart
        assert_eq!(store.publish(prod, "sales.orders", v("bb", 5)).unwrap().map(|x| x.version), Some(1));
        assert_eq!(store.publish(dev, "sales.orders2", v("cc", 6)).unwrap().map(|x| x.version), Some(1));
        let versions = store.versions(dev, "sales.orders").unwrap();
        assert_eq!(versions.iter().map(|x| (x.version, x.run)).collect::<Vec<_>>(), [(1, 1), (2, 3), (3, 4)]);
        assert_eq!(store.latest(dev, "sales.orders").unwrap().map(|x| x.run), Some(4));
        let names = store.names("default").unwrap();
        let expected = [("dev", "sales.orders"), ("dev", "sales.orders2"), ("prod", "sales.orders")];
        assert_eq!(names, expected.map(|(t, n)| (t.to_string(), n.to_string())));
        assert!(store.names("other").unwrap().is_empty());
        let used = DatasetUse { version: 2, job: "b.consume".into(), run: 9, at: 10 };
        store.put_use(dev, "sales.orders", &used).unwrap();
        assert_eq!(store.uses(dev, "sales.orders").unwrap(), [used]);
        assert!(store.uses(prod, "sales.orders").unwrap().is_empty());
    }

    #[test]
    fn the_memory_store_conforms() {
        all(&MemoryDatasetStore::default());
    }
}
