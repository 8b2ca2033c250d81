//! Stubbed tasks: an [`Executor`] that answers the attempts of the tasks a test stubs
//! with the stub's values, output and `/out` files, and hands every other attempt to the
//! real executor — so one task can be tested in isolation from what runs upstream.
//!
//! It must never run a stubbed task's component, nor change an attempt it does not stub.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::cache::{self, CacheDir};
use crate::sandbox::{Outcome, Status};
use crate::scheduler::{AttemptReport, Executor, PreparedAttempt, Running};
use crate::spec::suite::Stub;

/// Answers stubbed tasks itself, runs the others with `inner`.
pub struct StubExecutor {
    pub inner: Arc<dyn Executor>,
    /// By task key (a for_each iteration is stubbed by its own key, `KEY[i]`).
    pub stubs: BTreeMap<String, Stub>,
    /// Where a stub's files are stored, as an attempt's `/out` would be.
    pub cache: Arc<CacheDir>,
}

impl Executor for StubExecutor {
    fn execute(&self, attempt: PreparedAttempt, cancel: Arc<AtomicBool>) -> Running {
        let Some(stub) = self.stubs.get(&attempt.task.task_key) else {
            return self.inner.execute(attempt, cancel);
        };
        let out = match &stub.files {
            Some(dir) => cache::store_tree(&self.cache.blobs, dir)
                .map(|tree| (!tree.entries.is_empty() || !tree.dirs.is_empty()).then_some(tree))
                .map_err(|e| format!("storing the stub's files from {}: {e}", dir.display())),
            None => Ok(None),
        };
        let outcome = Outcome {
            status: Status::Success { output: stub.output.to_string() },
            log: format!("stubbed by the test: `{}` was not run\n", attempt.task.task_key),
            log_truncated: false,
            values: stub.values.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
            secret_audit: Vec::new(),
            elapsed: Duration::ZERO,
        };
        // a stubbed task did not run: its expectations are not checked
        Box::pin(async move { AttemptReport { outcome, out, quality: Vec::new(), receipt: None } })
    }
}
