//! The sled backend of [`ModelStore`], in trees of the run store's database (so the flush
//! that makes an attempt's result durable makes the model version it registered durable
//! too).
//!
//! Owns the on-disk layout of these trees; a file allowed to name sled. It never panics on
//! what it reads: an undecodable record is [`StoreError::Corrupt`].
//!
//! | tree             | key                                  | value                |
//! |------------------|--------------------------------------|----------------------|
//! | `models.versions`| workspace 0 name 0 version BE        | [`ModelVersion`] JSON|
//! | `models.stages`  | workspace 0 name 0 target            | [`ModelStage`] JSON  |

use std::sync::Mutex;

use super::models::{ModelStage, ModelStore, ModelVersion, decode_name, prefix, stage_key, version_key};
use super::sled_store::{decode_json, encode_json, scan_json, storage};
use super::{SledStore, StoreError};

/// Model versions and stages in the run store's sled database.
pub struct SledModelStore {
    db: sled::Db,
    versions: sled::Tree,
    stages: sled::Tree,
    /// Registering reads the latest version, then writes the next: one at a time.
    registering: Mutex<()>,
}

impl SledModelStore {
    /// Open the model trees of `store`'s database (created if missing).
    pub fn open(store: &SledStore) -> Result<SledModelStore, StoreError> {
        let db = store.db();
        Ok(SledModelStore {
            db: db.clone(),
            versions: db.open_tree("models.versions").map_err(storage)?,
            stages: db.open_tree("models.stages").map_err(storage)?,
            registering: Mutex::new(()),
        })
    }
}

impl ModelStore for SledModelStore {
    fn register(
        &self,
        workspace: &str,
        name: &str,
        mut version: ModelVersion,
    ) -> Result<(ModelVersion, bool), StoreError> {
        let _one = self.registering.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let latest = match self.versions.scan_prefix(prefix(workspace, name)).next_back() {
            Some(entry) => {
                let (_, value) = entry.map_err(storage)?;
                Some(decode_json::<ModelVersion>(&value, || format!("a version of model {name}"))?)
            }
            None => None,
        };
        if let Some(latest) = latest.as_ref().filter(|l| l.hash == version.hash) {
            return Ok((latest.clone(), false));
        }
        version.version = latest.map_or(1, |l| l.version + 1);
        let key = version_key(workspace, name, version.version);
        self.versions.insert(key, encode_json(&version, "model version")?).map_err(storage)?;
        Ok((version, true))
    }

    fn get(&self, workspace: &str, name: &str, version: u64) -> Result<Option<ModelVersion>, StoreError> {
        match self.versions.get(version_key(workspace, name, version)).map_err(storage)? {
            Some(value) => decode_json(&value, || format!("version {version} of model {name}")).map(Some),
            None => Ok(None),
        }
    }

    fn versions(&self, workspace: &str, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
        scan_json(&self.versions, prefix(workspace, name), "model version")
    }

    fn names(&self, workspace: &str) -> Result<Vec<String>, StoreError> {
        let mut start = workspace.as_bytes().to_vec();
        start.push(0);
        let mut out: Vec<String> = Vec::new();
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

    fn stage(&self, workspace: &str, name: &str, stage: &ModelStage) -> Result<(), StoreError> {
        let key = stage_key(workspace, name, &stage.target);
        self.stages.insert(key, encode_json(stage, "model stage")?).map_err(storage)?;
        self.db.flush().map_err(storage)?;
        Ok(())
    }

    fn stages(&self, workspace: &str, name: &str) -> Result<Vec<ModelStage>, StoreError> {
        scan_json(&self.stages, prefix(workspace, name), "model stage")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sled_store_conforms_and_keeps_models_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            super::super::models::conformance::all(&SledModelStore::open(&store).unwrap());
            store.db().flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let models = SledModelStore::open(&store).unwrap();
        assert_eq!(models.versions("default", "churn").unwrap().len(), 3);
        assert_eq!(models.stages("default", "churn").unwrap().len(), 2);
    }
}
