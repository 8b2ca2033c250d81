//! Capability: secrets (`sluice:task/secrets`).
//!
//! Owns the grant check: a task resolves only the `scope/key` names its spec
//! lists; every other name is denied and the denial is audited. Until an
//! encrypted secret store is configured, granted names fail to resolve with a
//! clear error. It must never log, store or return a value it was not granted.

use std::collections::BTreeSet;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::sluice::task::secrets;
use super::HostState;

/// The secrets capability of one attempt.
pub(crate) struct Secrets {
    task: String,
    granted: BTreeSet<String>,
    /// Every name the guest asked for and whether it was granted, in order.
    pub(crate) audit: Vec<(String, bool)>,
}

impl Secrets {
    pub(crate) fn new(task: &str, granted: impl IntoIterator<Item = String>) -> Self {
        Secrets { task: task.to_string(), granted: granted.into_iter().collect(), audit: Vec::new() }
    }

    fn reveal_granted(&self, name: &str) -> Result<String, String> {
        Err(format!("secret `{name}` is granted but no secret store is configured to resolve it"))
    }
}

impl secrets::Host for Secrets {
    async fn reveal(&mut self, name: String) -> Result<String, String> {
        let granted = self.granted.contains(&name);
        self.audit.push((name.clone(), granted));
        if !granted {
            tracing::warn!(task = %self.task, secret = %name, "secret access denied: not granted to this task");
            return Err(format!("secret `{name}` is not granted to task `{}`", self.task));
        }
        tracing::info!(task = %self.task, secret = %name, "secret access granted");
        self.reveal_granted(&name)
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    secrets::add_to_linker::<HostState, HasSelf<Secrets>>(linker, |s| &mut s.secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets::Host;

    #[tokio::test]
    async fn ungranted_names_are_denied_and_audited() {
        let mut s = Secrets::new("t", ["storage/key".to_string()]);
        let denied = s.reveal("other/key".into()).await.unwrap_err();
        assert!(denied.contains("not granted to task `t`"), "{denied}");
        let unresolved = s.reveal("storage/key".into()).await.unwrap_err();
        assert!(unresolved.contains("no secret store"), "{unresolved}");
        assert_eq!(s.audit, vec![("other/key".to_string(), false), ("storage/key".to_string(), true)]);
    }
}
