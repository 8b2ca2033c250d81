//! The only door to the host: thin wrappers over the world's imports.
//!
//! On `wasm32` these call the `sluice:task` imports. Everywhere else (native unit tests) they
//! talk to the thread-local [`crate::testing::MockHost`], so task logic — including `run`
//! itself — can be tested with plain `cargo test`.

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::sluice::task::{checkpoint, params, secrets, values};

    pub fn param_get(name: &str) -> Option<String> {
        params::get(name)
    }
    pub fn param_list() -> Vec<(String, String)> {
        params::list()
    }
    pub fn value_set(key: &str, json: &str) -> Result<(), String> {
        values::set(key, json)
    }
    pub fn value_get(task: &str, key: &str) -> Option<String> {
        values::get(task, key)
    }
    pub fn secret_reveal(name: &str) -> Result<String, String> {
        secrets::reveal(name)
    }
    pub fn checkpoint_save(key: &str, data: &[u8]) -> Result<(), String> {
        checkpoint::save(key, data)
    }
    pub fn checkpoint_load(key: &str) -> Option<Vec<u8>> {
        checkpoint::load(key)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use crate::testing::with_host;

    pub fn param_get(name: &str) -> Option<String> {
        with_host(|h| h.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }
    pub fn param_list() -> Vec<(String, String)> {
        with_host(|h| h.params.clone())
    }
    pub fn value_set(key: &str, json: &str) -> Result<(), String> {
        serde_json::from_str::<serde::de::IgnoredAny>(json)
            .map_err(|e| format!("value `{key}` is not valid JSON: {e}"))?;
        with_host(|h| h.published.insert(key.to_string(), json.to_string()));
        Ok(())
    }
    pub fn value_get(task: &str, key: &str) -> Option<String> {
        with_host(|h| h.upstream.get(&(task.to_string(), key.to_string())).cloned())
    }
    pub fn secret_reveal(name: &str) -> Result<String, String> {
        with_host(|h| h.secrets.get(name).cloned())
            .ok_or_else(|| format!("secret `{name}` is not granted to this task"))
    }
    pub fn checkpoint_save(key: &str, data: &[u8]) -> Result<(), String> {
        with_host(|h| h.checkpoints.insert(key.to_string(), data.to_vec()));
        Ok(())
    }
    pub fn checkpoint_load(key: &str) -> Option<Vec<u8>> {
        with_host(|h| h.checkpoints.get(key).cloned())
    }
}

pub(crate) use imp::*;
