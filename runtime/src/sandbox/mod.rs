//! The sandbox: everything that touches wasmtime.
//!
//! Owns the shared engine, the component cache, per-attempt limits and one
//! sub-module per host capability, each with its own state, host-trait impl,
//! `add_to_linker` and tests (Spin's "factors"):
//!
//! | capability   | module          | what the guest gets                          |
//! |--------------|-----------------|----------------------------------------------|
//! | params       | [`params`]      | its resolved parameters, read-only           |
//! | values       | [`values`]      | publish values; read upstream tasks' values  |
//! | secrets      | [`secrets`]     | only the names its spec grants               |
//! | checkpoints  | [`checkpoint`]  | durable progress markers across attempts     |
//! | logs         | [`logs`]        | stdout/stderr, captured and capped           |
//! | clocks       | [`clocks`]      | virtual wall/monotonic clocks                |
//!
//! Everything else is denied: no files, no sockets, no environment, no args,
//! no stdin. This module must never decide what an outcome means for a run
//! (retry, skip, fail the job): it runs one attempt and reports what happened.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use sluice::sandbox::{Invocation, Sandbox, SandboxConfig};
//! use sluice::store::memory::MemoryStore;
//!
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let component = sandbox.load_file(std::path::Path::new("fib.wasm"))?;
//! let mut call = Invocation::new("fib", Arc::new(MemoryStore::new()), 1);
//! call.params.insert("n".into(), "10".into());
//! let outcome = sandbox.run(&component, call).await;
//! println!("{:?}: {}", outcome.status, outcome.log);
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
pub mod checkpoint;
pub mod clocks;
mod command;
mod engine;
pub mod files;
pub mod http;
pub mod limits;
pub mod logs;
pub mod params;
mod random;
mod run;
pub mod secrets;
pub mod values;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use cache::{LoadOrigin, TaskComponent, World};
pub use command::Command;
pub use engine::{EPOCH_TICK, MAX_CONCURRENT_INSTANCES, MAX_WASM_STACK};
pub use limits::Limits;
pub use run::{FailureKind, Invocation, Outcome, Status, TaskContext};

/// Version of what the sandbox offers a guest (the task world, the WASI
/// surface, clock and limit semantics). Part of every cache key: bump it when
/// a guest could observe a difference.
pub const SANDBOX_ABI_VERSION: u32 = 1;

/// Why a component could not be loaded or the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot read component {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{component}: not a valid WebAssembly component: {message}")]
    InvalidComponent { component: String, message: String },
    #[error("{component}: does not implement the sluice task world (sluice:task/task@0.1.0): {message}")]
    WrongWorld { component: String, message: String },
    #[error(
        "{component}: not a runnable command (a `wasi:cli/command` component or a WASI preview1 module): {message}"
    )]
    NotACommand { component: String, message: String },
    #[error("cannot start the wasm engine: {0}")]
    Engine(String),
}

/// How to set the sandbox up.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// Directory for precompiled artifacts; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
}

/// The per-attempt state a guest's store holds: WASI plus one piece per capability.
pub(crate) struct HostState {
    /// Held for the attempt's lifetime: dropping it wipes the scratch `/tmp`.
    #[allow(dead_code)]
    files: files::Files,
    http: wasmtime_wasi_http::WasiHttpCtx,
    http_policy: http::HttpPolicy,
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: limits::TaskLimiter,
    params: params::Params,
    values: values::Values,
    secrets: secrets::Secrets,
    checkpoints: checkpoint::Checkpoints,
    interrupt: run::InterruptState,
    /// The attempt's fuel budget, to name it when it runs out.
    fuel_budget: Option<u64>,
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// One engine, one linker, one component cache: share it across all attempts of a process.
pub struct Sandbox {
    engine: Engine,
    scratch: Arc<crate::util::DirPool>,
    linker: Linker<HostState>,
    cache: cache::ComponentCache,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let engine = engine::build()?;
        engine::start_ticker(&engine);
        let linker = link(&engine).map_err(|e| SandboxError::Engine(format!("linking host capabilities: {e:#}")))?;
        let cache = cache::ComponentCache::new(config.cache_dir, engine::compatibility_key(&engine));
        let scratch = Arc::new(files::scratch_pool().map_err(SandboxError::Engine)?);
        Ok(Sandbox { engine, linker, cache, scratch })
    }

    /// Load a task component from a file (compiling it, or reusing a cached artifact).
    pub fn load_file(&self, path: &Path) -> Result<Arc<TaskComponent>, SandboxError> {
        self.load_file_as(path, World::Task)
    }

    /// Load a component from a file as a task or as a command.
    pub fn load_file_as(&self, path: &Path, world: World) -> Result<Arc<TaskComponent>, SandboxError> {
        let bytes = std::fs::read(path).map_err(|e| SandboxError::Read {
            path: path.to_path_buf(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "file does not exist".into()
            } else {
                e.to_string()
            },
        })?;
        self.cache.load(&self.engine, &self.linker, &bytes, &path.display().to_string(), world)
    }

    /// Load a component from bytes; `label` names it in errors.
    pub fn load_bytes(&self, bytes: &[u8], label: &str) -> Result<Arc<TaskComponent>, SandboxError> {
        self.cache.load(&self.engine, &self.linker, bytes, label, World::Task)
    }

    /// Run one attempt of a task. Never panics on guest behaviour: every
    /// failure is an [`Outcome`].
    pub async fn run(&self, component: &TaskComponent, invocation: Invocation) -> Outcome {
        run::run(&self.engine, &self.scratch, component, invocation).await
    }

    /// Run one attempt of a command task (`wasi:cli/command`): exit code 0 is success.
    pub async fn run_command(&self, component: &TaskComponent, invocation: Invocation, command: Command) -> Outcome {
        command::run(&self.engine, &self.scratch, component, invocation, command).await
    }
}

/// Link WASI (deny-by-default context per attempt) and every capability, once.
fn link(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    params::add_to_linker(&mut linker)?;
    values::add_to_linker(&mut linker)?;
    secrets::add_to_linker(&mut linker)?;
    checkpoint::add_to_linker(&mut linker)?;
    Ok(linker)
}
