//! Run tasks natively in unit tests against an in-memory host (not available on wasm32).
//!
//! ```
//! use sluice_sdk::{Context, Task, TaskError, params, values, testing::MockHost};
//!
//! struct Double;
//! impl Task for Double {
//!     type Output = u64;
//!     fn run(_ctx: &Context) -> Result<u64, TaskError> {
//!         let x: u64 = params::require("x")?;
//!         values::set("double", &(2 * x))?;
//!         Ok(2 * x)
//!     }
//! }
//!
//! MockHost::new().param("x", "21").install();
//! let out = sluice_sdk::testing::run::<Double>(&Context::default()).unwrap();
//! assert_eq!(out, serde_json::json!(42));
//! assert_eq!(sluice_sdk::testing::published("double"), Some(serde_json::json!(42)));
//! ```
//!
//! The host is thread-local, so tests running in parallel do not see each other's state.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::{Context, Task, TaskError};

/// An in-memory stand-in for the sluice host.
#[derive(Debug, Clone, Default)]
pub struct MockHost {
    /// The task's parameters, in order.
    pub params: Vec<(String, String)>,
    /// Values published by upstream tasks: `(task, key) → JSON`.
    pub upstream: BTreeMap<(String, String), String>,
    /// Granted secrets; any other name is denied.
    pub secrets: BTreeMap<String, String>,
    /// Checkpoints, as saved by this or an earlier attempt.
    pub checkpoints: BTreeMap<String, Vec<u8>>,
    /// Values this task published with [`crate::values::set`]: `key → JSON`.
    pub published: BTreeMap<String, String>,
}

impl MockHost {
    /// An empty host: no params, no upstream values, no secrets, no checkpoints.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set parameter `name` (replacing an earlier one of the same name).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.params.retain(|(k, _)| *k != name);
        self.params.push((name, value.into()));
        self
    }

    /// Make `task` appear to have published `value` under `key`.
    pub fn upstream(mut self, task: &str, key: &str, value: impl Serialize) -> Self {
        let json = serde_json::to_string(&value).expect("upstream value serializes");
        self.upstream.insert((task.to_string(), key.to_string()), json);
        self
    }

    /// Grant secret `name`.
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }

    /// Pretend an earlier attempt saved checkpoint `key`.
    pub fn checkpoint(mut self, key: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        self.checkpoints.insert(key.into(), data.into());
        self
    }

    /// Make this the current thread's host, replacing the previous one.
    pub fn install(self) {
        HOST.with(|h| *h.borrow_mut() = self);
    }
}

thread_local! {
    static HOST: RefCell<MockHost> = RefCell::new(MockHost::default());
}

pub(crate) fn with_host<R>(f: impl FnOnce(&mut MockHost) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// A copy of the current thread's host, e.g. to inspect checkpoints after a run.
pub fn host() -> MockHost {
    with_host(|h| h.clone())
}

/// The value this task published under `key`, parsed as JSON.
pub fn published(key: &str) -> Option<serde_json::Value> {
    with_host(|h| h.published.get(key).map(|s| serde_json::from_str(s).expect("published JSON")))
}

/// Run `T` through the same glue as the component export (output serialized to JSON, stdout
/// flushed) and return the output parsed back into a JSON value.
pub fn run<T: Task>(ctx: &Context) -> Result<serde_json::Value, TaskError> {
    let json = crate::__private::run_task::<T>(ctx)?;
    Ok(serde_json::from_str(&json).expect("run_task produces JSON"))
}
