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
//! Files and HTTP too: `MockHost::input` offers an upstream task's file (read with
//! [`crate::files::read_input`]), [`output`] returns what the task wrote with
//! [`crate::files::write_output`], and `allow_host` + `respond` give canned responses to
//! [`crate::http`] requests for allowlisted hosts (any other host is refused, as the
//! sandbox would); [`requests`] lists what the task asked for.
//!
//! ```
//! use sluice_sdk::{files, http, testing::{self, MockHost}};
//!
//! MockHost::new()
//!     .input("load", "rows.csv", "id\n1\n")
//!     .allow_host("api.example.com")
//!     .respond("GET", "https://api.example.com/n", 200, "41")
//!     .install();
//! let n: u64 = http::get("https://api.example.com/n").unwrap().json().unwrap();
//! let rows = files::read_input_to_string("load", "rows.csv").unwrap();
//! files::write_output("n.txt", format!("{} {}", n + 1, rows.lines().count())).unwrap();
//! assert_eq!(testing::output("n.txt").unwrap(), b"42 2");
//! assert!(http::get("https://elsewhere.example.org/").is_err());
//! ```
//!
//! The host is thread-local, so tests running in parallel do not see each other's state.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::http::Response;
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
    /// Upstream tasks' files offered at `/in`: `(task, relative path) → bytes`.
    pub inputs: BTreeMap<(String, String), Vec<u8>>,
    /// Files this task wrote to `/out` with [`crate::files::write_output`]: `path → bytes`.
    pub outputs: BTreeMap<String, Vec<u8>>,
    /// Hosts HTTP requests may go to (the task's `allow_hosts`); any other is refused.
    pub allowed_hosts: Vec<String>,
    /// Canned responses: `(method, url) → response`.
    pub responses: BTreeMap<(String, String), Response>,
    /// Every HTTP request the task made, in order (refused ones too).
    pub requests: Vec<Request>,
}

/// An HTTP request a task made (natively, to the [`MockHost`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
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

    /// Offer `data` as upstream `task`'s file `path` (at `/in/<task>/<path>`).
    pub fn input(mut self, task: &str, path: &str, data: impl AsRef<[u8]>) -> Self {
        self.inputs.insert((task.to_string(), path.to_string()), data.as_ref().to_vec());
        self
    }

    /// Offer every file under directory `dir` as upstream `task`'s files (a fixture
    /// directory of the task's crate, say). Panics when `dir` cannot be read: a test bug.
    pub fn input_dir(mut self, task: &str, dir: impl AsRef<std::path::Path>) -> Self {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
            let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                    let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                    out.push((rel, data));
                }
            }
        }
        let mut files = Vec::new();
        walk(dir.as_ref(), dir.as_ref(), &mut files);
        for (path, data) in files {
            self.inputs.insert((task.to_string(), path), data);
        }
        self
    }

    /// Allow HTTP requests to `host` (as `allow_hosts` would).
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Answer `method url` with `status` and `body`.
    pub fn respond(self, method: &str, url: &str, status: u16, body: impl AsRef<[u8]>) -> Self {
        let response = Response { status, headers: Vec::new(), body: body.as_ref().to_vec() };
        self.respond_with(method, url, response)
    }

    /// Answer `method url` with `response` (headers included).
    pub fn respond_with(mut self, method: &str, url: &str, response: Response) -> Self {
        self.responses.insert((method.to_string(), url.to_string()), response);
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

/// The file this task wrote to `/out/<path>`.
pub fn output(path: &str) -> Option<Vec<u8>> {
    with_host(|h| h.outputs.get(path).cloned())
}

/// Every HTTP request the task made, in order.
pub fn requests() -> Vec<Request> {
    with_host(|h| h.requests.clone())
}

/// Run `T` through the same glue as the component export (output serialized to JSON, stdout
/// flushed) and return the output parsed back into a JSON value.
pub fn run<T: Task>(ctx: &Context) -> Result<serde_json::Value, TaskError> {
    let json = crate::__private::run_task::<T>(ctx)?;
    Ok(serde_json::from_str(&json).expect("run_task produces JSON"))
}
