//! Capability: task values (`sluice:task/values`).
//!
//! Owns what one attempt publishes (buffered here, persisted by the runner only
//! if the attempt succeeds) and which upstream tasks' values it may read. It
//! never writes to the store: a failed attempt's values must not leak downstream.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::sluice::task::values;
use super::{Capability, HostState, Prepare};
use crate::model::{RunId, TaskGraph};
use crate::store::Store;

/// Largest JSON document one value may hold: values travel through templates
/// and the store with every run, bulk data belongs in files (Databricks caps at 48 KiB too).
pub const MAX_VALUE_BYTES: usize = 48 << 10;

/// Values one task may publish: enough for any summary, bounded so a guest
/// cannot flood the store through many small keys.
pub const MAX_VALUES_PER_TASK: usize = 256;

/// Longest value key; keys are names, not data.
pub const MAX_VALUE_KEY_BYTES: usize = 128;

/// Where upstream values are read from.
pub(crate) struct UpstreamValues {
    pub store: Arc<dyn Store>,
    pub run: RunId,
    /// Tasks of the same run this task depends on, directly or transitively.
    pub readable: Readable,
}

/// The values capability of one attempt.
pub(crate) struct Values {
    published: BTreeMap<String, String>,
    upstream: Option<UpstreamValues>,
    /// What the attempt revealed: guest-given names are scrubbed of it before they are logged.
    revealed: super::secrets::Revealed,
}

impl Values {
    pub(crate) fn new(upstream: Option<UpstreamValues>) -> Self {
        Values { published: BTreeMap::new(), upstream, revealed: Default::default() }
    }

    /// What the attempt published, sorted by key.
    pub(crate) fn into_published(self) -> Vec<(String, String)> {
        self.published.into_iter().collect()
    }

    fn publish(&mut self, key: String, json: String) -> Result<(), String> {
        if key.is_empty()
            || key.len() > MAX_VALUE_KEY_BYTES
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return Err(format!(
                "invalid value key `{}`: use 1-{MAX_VALUE_KEY_BYTES} characters of A-Z a-z 0-9 _ - .",
                key.escape_debug()
            ));
        }
        if json.len() > MAX_VALUE_BYTES {
            return Err(format!("value `{key}` is {} bytes, over the limit of {MAX_VALUE_BYTES}", json.len()));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
            return Err(format!("value `{key}` is not valid JSON: {e}"));
        }
        if !self.published.contains_key(&key) && self.published.len() >= MAX_VALUES_PER_TASK {
            return Err(format!("a task may publish at most {MAX_VALUES_PER_TASK} values"));
        }
        self.published.insert(key, json);
        Ok(())
    }
}

impl values::Host for Values {
    async fn set(&mut self, key: String, json: String) -> Result<(), String> {
        self.publish(key, json)
    }

    async fn get(&mut self, task: String, key: String) -> Option<String> {
        let up = self.upstream.as_ref()?;
        if !up.readable.allows(&task) {
            let (task, key) = (self.revealed.scrub(&task), self.revealed.scrub(&key));
            tracing::debug!(task, key, "value read of a task that is not upstream refused");
            return None;
        }
        match up.store.value(up.run, &task, &key) {
            Ok(v) => v,
            Err(e) => {
                let (task, key) = (self.revealed.scrub(&task), self.revealed.scrub(&key));
                tracing::warn!(task, key, error = %e, "reading an upstream value failed");
                None
            }
        }
    }
}

/// Which tasks' values an attempt may read.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// Upstream tasks (same run) the task depends on, directly or transitively.
    pub readable: Readable,
}

/// Which tasks of the run an attempt may read the values of.
#[derive(Debug, Clone, Default)]
pub enum Readable {
    /// No task's.
    #[default]
    Nothing,
    /// These tasks'.
    Tasks(BTreeSet<String>),
    /// Those `task` depends on, directly or transitively, in the run's graph: one graph
    /// shared by every attempt of the run, walked when the guest asks, so the grant costs
    /// the same however many tasks the run has.
    UpstreamsOf { graph: Arc<TaskGraph>, task: String },
}

impl Readable {
    /// Whether the attempt may read task `task`'s values.
    pub fn allows(&self, task: &str) -> bool {
        match self {
            Readable::Nothing => false,
            Readable::Tasks(tasks) => tasks.contains(task),
            Readable::UpstreamsOf { graph, task: from } => graph.is_upstream(from, task),
        }
    }
}

impl Capability for Values {
    type Grant = Grant;

    fn prepare(grant: Grant, cx: &mut Prepare<'_>) -> Result<Self, String> {
        let upstream =
            UpstreamValues { store: cx.context.store.clone(), run: cx.context.run, readable: grant.readable };
        let mut values = Values::new(Some(upstream));
        values.revealed = cx.revealed.clone();
        Ok(values)
    }

    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        values::add_to_linker::<HostState, HasSelf<Values>>(linker, |s| &mut s.caps.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use values::Host;

    #[tokio::test]
    async fn publishes_valid_json_and_refuses_the_rest() {
        let mut v = Values::new(None);
        assert!(v.set("rows".into(), "3".into()).await.is_ok());
        assert!(v.set("bad".into(), "{not json".into()).await.unwrap_err().contains("not valid JSON"));
        assert!(v.set("a/b".into(), "1".into()).await.unwrap_err().contains("invalid value key"));
        let big = format!("\"{}\"", "x".repeat(MAX_VALUE_BYTES));
        assert!(v.set("big".into(), big).await.unwrap_err().contains("over the limit"));
        assert_eq!(v.into_published(), vec![("rows".to_string(), "3".to_string())]);
    }

    #[tokio::test]
    async fn reads_only_upstream_tasks() {
        let store = Arc::new(MemoryStore::new());
        store.put_value(1, "up", "n", "7").unwrap();
        store.put_value(1, "other", "n", "8").unwrap();
        let mut v = Values::new(Some(UpstreamValues {
            store,
            run: 1,
            readable: Readable::Tasks(BTreeSet::from(["up".to_string()])),
        }));
        assert_eq!(v.get("up".into(), "n".into()).await.as_deref(), Some("7"));
        assert_eq!(v.get("other".into(), "n".into()).await, None);
    }
}
