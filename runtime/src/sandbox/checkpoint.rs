//! Capability: checkpoints (`sluice:task/checkpoint`).
//!
//! Owns a task's durable progress markers: `save` returns only once the data
//! is flushed to the store, so a checkpoint acknowledged to the guest survives
//! a crash and is offered to the task's next attempt. It never reads or writes
//! another task's or another run's checkpoints.
//!
//! Checkpoints are the task's own data, stored as given (redacting them would
//! corrupt them), so a save holding a secret value the attempt revealed, in
//! any form the redactor knows, is refused: no value reaches the store through
//! a checkpoint. A task that must carry a secret across attempts reveals it again.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::bindings::sluice::task::checkpoint;
use super::{Capability, HostState, Prepare};
use crate::model::RunId;
use crate::store::Store;

/// Largest checkpoint: progress markers, not data sets; each save is a durable write.
pub const MAX_CHECKPOINT_BYTES: usize = 1 << 20;

/// Longest checkpoint key: keys are names, not data.
pub const MAX_CHECKPOINT_KEY_BYTES: usize = 128;

/// Distinct keys one attempt may save: each is a record in the store kept as long as the
/// run, so a guest must not be able to grow the store through many small checkpoints;
/// progress needs a few markers.
pub const MAX_CHECKPOINT_KEYS_PER_ATTEMPT: usize = 64;

/// The checkpoint capability of one attempt.
pub(crate) struct Checkpoints {
    store: Arc<dyn Store>,
    run: RunId,
    task: String,
    /// The values the attempt revealed: saves holding one are refused.
    revealed: Option<super::secrets::Revealed>,
    /// The keys this attempt saved.
    saved: std::collections::BTreeSet<String>,
}

impl Checkpoints {
    pub(crate) fn new(store: Arc<dyn Store>, run: RunId, task: &str) -> Self {
        Checkpoints { store, run, task: task.to_string(), revealed: None, saved: Default::default() }
    }

    /// Refuse saves that hold a value of `revealed`.
    pub(crate) fn guarded(mut self, revealed: super::secrets::Revealed) -> Self {
        self.revealed = Some(revealed);
        self
    }
}

impl checkpoint::Host for Checkpoints {
    async fn save(&mut self, key: String, data: Vec<u8>) -> Result<(), String> {
        if key.is_empty() || key.len() > MAX_CHECKPOINT_KEY_BYTES {
            return Err(format!("checkpoint key must be 1-{MAX_CHECKPOINT_KEY_BYTES} bytes"));
        }
        if data.len() > MAX_CHECKPOINT_BYTES {
            return Err(format!(
                "checkpoint `{key}` is {} bytes, over the limit of {MAX_CHECKPOINT_BYTES}",
                data.len()
            ));
        }
        if self.revealed.as_ref().is_some_and(|r| r.found_in(key.as_bytes())) {
            // the key is not logged: it is the value
            tracing::warn!(task = %self.task, "checkpoint whose key holds a revealed secret refused");
            return Err("a checkpoint key holds a secret value this task revealed; keys are stored as given, \
                 so it was not saved"
                .into());
        }
        if self.revealed.as_ref().is_some_and(|r| r.found_in(&data)) {
            tracing::warn!(task = %self.task, key, "checkpoint holding a revealed secret refused");
            return Err(format!(
                "checkpoint `{key}` holds a secret value this task revealed; checkpoints are stored as given, \
                 so it was not saved (reveal the secret again in the next attempt instead)"
            ));
        }
        if !self.saved.contains(&key) && self.saved.len() >= MAX_CHECKPOINT_KEYS_PER_ATTEMPT {
            return Err(format!("an attempt may save at most {MAX_CHECKPOINT_KEYS_PER_ATTEMPT} checkpoint keys"));
        }
        self.saved.insert(key.clone());
        self.store
            .save_checkpoint(self.run, &self.task, &key, &data)
            .and_then(|()| self.store.flush())
            .inspect(|()| crate::util::failpoint::hit(crate::util::failpoint::Point::Checkpoint))
            .map_err(|e| format!("checkpoint `{key}` could not be saved: {e}"))
    }

    async fn load(&mut self, key: String) -> Option<Vec<u8>> {
        match self.store.load_checkpoint(self.run, &self.task, &key) {
            Ok(v) => v,
            Err(e) => {
                let key = self.revealed.as_ref().map_or(key.clone(), |r| r.scrub(&key));
                tracing::warn!(task = %self.task, key, error = %e, "loading a checkpoint failed");
                None
            }
        }
    }
}

impl Capability for Checkpoints {
    /// Every task has checkpoints of its own: nothing to grant.
    type Grant = ();

    fn prepare((): (), cx: &mut Prepare<'_>) -> Result<Self, String> {
        let context = cx.context;
        Ok(Checkpoints::new(context.store.clone(), context.run, &context.task.task_key).guarded(cx.revealed.clone()))
    }

    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        checkpoint::add_to_linker::<HostState, HasSelf<Checkpoints>>(linker, |s| &mut s.caps.checkpoints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use checkpoint::Host;

    #[tokio::test]
    async fn saved_data_is_seen_by_the_same_task_only() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut a = Checkpoints::new(store.clone(), 1, "a");
        a.save("progress".into(), b"3".to_vec()).await.unwrap();
        assert_eq!(Checkpoints::new(store.clone(), 1, "a").load("progress".into()).await, Some(b"3".to_vec()));
        assert_eq!(Checkpoints::new(store.clone(), 1, "b").load("progress".into()).await, None);
        assert_eq!(Checkpoints::new(store, 2, "a").load("progress".into()).await, None);
    }

    #[tokio::test]
    async fn oversized_checkpoints_are_refused() {
        let mut a = Checkpoints::new(Arc::new(MemoryStore::new()), 1, "a");
        let err = a.save("k".into(), vec![0; MAX_CHECKPOINT_BYTES + 1]).await.unwrap_err();
        assert!(err.contains("over the limit"), "{err}");
    }
}
