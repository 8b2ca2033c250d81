//! Capability: the task's resolved parameters (`sluice:task/params`).
//!
//! Owns the read-only parameter map of one attempt. Parameters are resolved
//! (templated) before the attempt starts; this module never resolves or
//! rewrites them, it only answers the guest.

use std::collections::BTreeMap;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::sluice::task::params;
use super::{Capability, HostState, Prepare};

/// The parameters one attempt may read.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    pub(crate) fn new(values: BTreeMap<String, String>) -> Self {
        Params { values }
    }
}

impl params::Host for Params {
    async fn get(&mut self, name: String) -> Option<String> {
        self.values.get(&name).cloned()
    }

    async fn list(&mut self) -> Vec<(String, String)> {
        self.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The parameters an attempt may read, after templating.
pub type Grant = BTreeMap<String, String>;

impl Capability for Params {
    type Grant = Grant;

    fn prepare(grant: Self::Grant, _: &mut Prepare<'_>) -> Result<Self, String> {
        Ok(Params::new(grant))
    }

    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        params::add_to_linker::<HostState, HasSelf<Params>>(linker, |s| &mut s.caps.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use params::Host;

    #[tokio::test]
    async fn answers_only_what_was_resolved() {
        let mut p = Params::new(BTreeMap::from([("day".to_string(), "2026-11-26".to_string())]));
        assert_eq!(p.get("day".into()).await.as_deref(), Some("2026-11-26"));
        assert_eq!(p.get("other".into()).await, None);
        assert_eq!(p.list().await, vec![("day".to_string(), "2026-11-26".to_string())]);
    }
}
