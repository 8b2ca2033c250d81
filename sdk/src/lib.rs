//! # sluice-sdk: write sluice tasks in Rust
//!
//! A sluice task is a WebAssembly component implementing the world `sluice:task/task@0.1.0`
//! (see `wit/task.wit` in this crate). This crate generates the world's bindings and wraps them
//! in a small API: implement [`Task`], call [`export_task!`], build a `cdylib` for
//! `wasm32-wasip2`, and the resulting `.wasm` is the component the runtime runs.
//!
//! ```no_run
//! // Cargo.toml:
//! //   [lib] crate-type = ["cdylib", "rlib"]
//! //   [dependencies] sluice-sdk = { path = "..." }, serde = { version = "1", features = ["derive"] }
//! // build: cargo build --release --target wasm32-wasip2  →  target/wasm32-wasip2/release/<name>.wasm
//! use serde::{Deserialize, Serialize};
//! use sluice_sdk::{Context, Task, TaskError, checkpoint, params, secrets, values};
//!
//! #[derive(Deserialize)]
//! struct Params {
//!     n: u32,                    // required: `n=10`
//!     name: String,              // required
//!     tags: Option<Vec<String>>, // optional: `tags=["a","b"]` or `tags=a,b`
//! }
//!
//! #[derive(Serialize)]
//! struct Output {
//!     greeting: String,
//!     total: u64,
//! }
//!
//! struct Sum;
//!
//! impl Task for Sum {
//!     type Output = Output; // anything Serialize; sent to the host as JSON
//!
//!     fn run(ctx: &Context) -> Result<Output, TaskError> {
//!         let p: Params = params::parse()?; // or: let n: u32 = params::require("n")?;
//!         let verbose: bool = params::get_or("verbose", false)?;
//!
//!         // Upstream tasks' values; a missing one is a permanent error naming it.
//!         let offset: u64 = values::require("extract", "rows")?;
//!
//!         // Resume from the last checkpoint of an earlier attempt, if any.
//!         let (mut i, mut total): (u32, u64) = checkpoint::load_json("progress")?.unwrap_or((0, offset));
//!         while i < p.n {
//!             total += u64::from(i);
//!             i += 1;
//!             checkpoint::save_json("progress", &(i, total))?;
//!         }
//!
//!         if let Some(tags) = &p.tags {
//!             let _token = secrets::reveal("api/token")?; // denied → permanent error
//!             if verbose {
//!                 println!("tags: {tags:?}"); // stdout/stderr are the attempt's log
//!             }
//!         }
//!         if total == 0 && ctx.attempt < 2 {
//!             return Err(TaskError::transient("nothing yet, try again")); // retried by policy
//!         }
//!         values::set("total", &total)?; // published for dependents
//!         Ok(Output { greeting: format!("hello {} from {}", p.name, ctx.task_key), total })
//!     }
//! }
//!
//! sluice_sdk::export_task!(Sum);
//! ```
//!
//! ## Errors
//!
//! [`TaskError::transient`] failures may be retried by the scheduler, [`TaskError::permanent`]
//! ones fail the attempt for good. The SDK's own errors follow one rule: a failure that would
//! repeat identically on retry (a bad or missing param, malformed JSON, a denied secret, a value
//! the host refuses, output that cannot be serialized) is permanent; a host failure that may
//! clear up (a checkpoint that could not be made durable) is transient. A panic traps the
//! component; the host records the attempt as failed with the panic message in its log.
//!
//! ## What the SDK never does
//!
//! The SDK is a thin, deterministic layer over the world's imports (`params`, `values`,
//! `secrets`, `checkpoint`) and, only when the task calls them, [`files`] (`/in`, `/out`) and
//! [`http`] (the task's `allow_hosts`; the `http` feature). It never touches the filesystem or
//! network on its own, nor environment variables, clocks or randomness, never spawns threads,
//! and never prints anything itself — it only flushes stdout/stderr after `run` so buffered log lines are not lost. Any
//! WASI access a task makes is the task author's own code, limited to what the task's spec
//! grants. Keep it that way: a deterministic task is what makes content-hashed reruns sound.
//!
//! ## Testing natively
//!
//! Off `wasm32`, the imports — and [`files`] and [`http`] — are served by an in-memory
//! [`testing::MockHost`], so `cargo test` can exercise `run` end to end, no wasm needed (see
//! [`testing`], and `tasks/enrich` for a task using each).

pub mod checkpoint;
mod context;
mod de;
mod error;
pub mod files;
mod host;
pub mod http;
pub mod params;
pub mod secrets;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod values;

pub use context::Context;
pub use de::ParamError;
pub use error::{ResultExt, TaskError};

/// Re-exported so task crates can `#[derive(sluice_sdk::serde::Deserialize)]` without their
/// own dependency (they usually have one anyway).
pub use serde;
pub use serde_json;

/// A sluice task: one call of [`Task::run`] per attempt.
pub trait Task {
    /// The task's output; serialized to JSON and handed to the host. A serialization failure is
    /// a permanent error.
    type Output: serde::Serialize;

    /// Run one attempt. `ctx` says who is running (job, run, task key, attempt, target).
    fn run(ctx: &Context) -> Result<Self::Output, TaskError>;
}

/// Export a [`Task`] as the component's `run` function. Use it exactly once, in the crate that
/// is built as the `cdylib`:
///
/// ```ignore
/// sluice_sdk::export_task!(MyTask);
/// ```
#[macro_export]
macro_rules! export_task {
    ($task:ty) => {
        const _: () = {
            type __SluiceTaskExport = $crate::__private::Export<$task>;
            $crate::__private::bindings::export!(
                __SluiceTaskExport with_types_in $crate::__private::bindings
            );
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    use crate::{Context, Task, TaskError};
    use std::marker::PhantomData;

    /// The world's `Guest` implementation for any `T: Task`.
    pub struct Export<T>(PhantomData<T>);

    impl<T: Task> bindings::Guest for Export<T> {
        fn run(ctx: bindings::Context) -> Result<String, bindings::TaskError> {
            run_task::<T>(&ctx.into()).map_err(Into::into)
        }
    }

    /// Run `T` and serialize its output: the export glue, shared with native tests.
    pub fn run_task<T: Task>(ctx: &Context) -> Result<String, TaskError> {
        let result = T::run(ctx).and_then(|out| {
            serde_json::to_string(&out)
                .map_err(|e| TaskError::permanent(format!("task output could not be serialized as JSON: {e}")))
        });
        // `run` is not `main`: nothing flushes std's buffers when it returns.
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        result
    }
}

#[doc(hidden)]
#[allow(clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "task",
        pub_export_macro: true,
        default_bindings_module: "sluice_sdk::__private::bindings",
    });
}

impl From<bindings::Context> for Context {
    fn from(c: bindings::Context) -> Self {
        Context { job: c.job, run_id: c.run_id, task_key: c.task_key, attempt: c.attempt, target: c.target }
    }
}

impl From<TaskError> for bindings::TaskError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Transient(m) => bindings::TaskError::Transient(m),
            TaskError::Permanent(m) => bindings::TaskError::Permanent(m),
        }
    }
}
