//! The sled backend of [`DatasetStore`], in trees of the run store's database (so the
//! flush that makes an attempt's result durable makes its dataset versions durable too).
//!
//! Owns the on-disk layout of these trees; a file allowed to name sled. It never panics on
//! what it reads: an undecodable record is [`StoreError::Corrupt`].
//!
//! | tree               | key                                           | value                   |
//! |--------------------|-----------------------------------------------|-------------------------|
//! | `datasets.versions`| workspace 0 target 0 name 0 version BE        | [`DatasetVersion`] JSON |
//! | `datasets.uses`    | workspace 0 target 0 name 0 version BE run BE | [`DatasetUse`] JSON     |

use std::sync::Mutex;

use super::datasets::{DatasetStore, DatasetUse, DatasetVersion, Namespace, decode_name, prefix, use_key, version_key};
use super::sled_store::{decode_json, encode_json, scan_json, storage};
use super::{SledStore, StoreError};

/// Dataset versions and uses in the run store's sled database.
pub struct SledDatasetStore {
    versions: sled::Tree,
    uses: sled::Tree,
    /// Publishing reads the latest version, then writes the next: one at a time.
    publishing: Mutex<()>,
}

impl SledDatasetStore {
    /// Open the dataset trees of `store`'s database (created if missing).
    pub fn open(store: &SledStore) -> Result<SledDatasetStore, StoreError> {
        let db = store.db();
        Ok(SledDatasetStore {
            versions: db.open_tree("datasets.versions").map_err(storage)?,
            uses: db.open_tree("datasets.uses").map_err(storage)?,
            publishing: Mutex::new(()),
        })
    }
}

impl DatasetStore for SledDatasetStore {
    fn publish(
        &self,
        ns: Namespace<'_>,
        name: &str,
        mut version: DatasetVersion,
    ) -> Result<Option<DatasetVersion>, StoreError> {
        let _one = self.publishing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let latest = self.latest(ns, name)?;
        if latest.as_ref().is_some_and(|l| l.hash == version.hash) {
            return Ok(None);
        }
        version.version = latest.map_or(1, |l| l.version + 1);
        let key = version_key(ns, name, version.version);
        self.versions.insert(key, encode_json(&version, "dataset version")?).map_err(storage)?;
        Ok(Some(version))
    }

    fn latest(&self, ns: Namespace<'_>, name: &str) -> Result<Option<DatasetVersion>, StoreError> {
        match self.versions.scan_prefix(prefix(ns, name)).next_back() {
            Some(entry) => {
                let (_, value) = entry.map_err(storage)?;
                decode_json(&value, || format!("a version of dataset {name}")).map(Some)
            }
            None => Ok(None),
        }
    }

    fn versions(&self, ns: Namespace<'_>, name: &str) -> Result<Vec<DatasetVersion>, StoreError> {
        scan_json(&self.versions, prefix(ns, name), "dataset version")
    }

    fn names(&self, workspace: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut start = workspace.as_bytes().to_vec();
        start.push(0);
        let mut out = Vec::new();
        for entry in self.versions.scan_prefix(start) {
            let (key, _) = entry.map_err(storage)?;
            if let Some(found) = decode_name(workspace, &key)
                && out.last() != Some(&found)
            {
                out.push(found);
            }
        }
        Ok(out)
    }

    fn put_use(&self, ns: Namespace<'_>, name: &str, used: &DatasetUse) -> Result<(), StoreError> {
        self.uses.insert(use_key(ns, name, used), encode_json(used, "dataset use")?).map_err(storage)?;
        Ok(())
    }

    fn uses(&self, ns: Namespace<'_>, name: &str) -> Result<Vec<DatasetUse>, StoreError> {
        scan_json(&self.uses, prefix(ns, name), "dataset use")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sled_store_conforms_and_keeps_versions_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            super::super::datasets::conformance::all(&SledDatasetStore::open(&store).unwrap());
            store.db().flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let datasets = SledDatasetStore::open(&store).unwrap();
        let dev = Namespace { workspace: "default", target: "dev" };
        assert_eq!(datasets.latest(dev, "sales.orders").unwrap().map(|v| v.version), Some(3));
    }
}
