//! The sandbox: everything that touches wasmtime.
//!
//! Owns the shared engine, the component cache, per-attempt limits and one sub-module per
//! host capability (Spin's "factors"). Each capability module owns its **grant** (what a
//! task may be given), a **`prepare`** step (grant + the attempt's context → the
//! capability's per-attempt state; the WASI ones configure the attempt's WASI context) and
//! its **linker**; `capabilities!` lists them once, so adding a capability is a module and
//! a line there.
//!
//! | capability   | module          | what the guest gets                                  |
//! |--------------|-----------------|------------------------------------------------------|
//! | params       | [`params`]      | its resolved parameters, read-only                   |
//! | values       | [`values`]      | publish values; read upstream tasks' values          |
//! | secrets      | [`secrets`]     | only the names its spec grants (or placeholders)     |
//! | checkpoints  | [`checkpoint`]  | durable progress markers across attempts             |
//! | logs         | [`logs`]        | stdout/stderr captured and capped; a command's stdio |
//! | files        | [`files`]       | its mounts, `/in`, `/out` and an empty `/tmp`        |
//! | http         | [`http`]        | outbound HTTP to `allow_hosts` only                  |
//! | clocks       | [`clocks`]      | virtual wall/monotonic clocks                        |
//! | random       | [`random`]      | randomness, seeded when the task must be reproducible |
//!
//! Everything else is denied: no sockets, no environment or args a task did not declare.
//! This module must never decide what an outcome means for a run (retry, skip, fail the
//! job): it runs one attempt ([`Invocation`]) and reports what happened ([`Outcome`]).
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
//! call.grants.params.insert("n".into(), "10".into());
//! let outcome = sandbox.run(&component, call).await;
//! println!("{:?}: {}", outcome.status, outcome.log);
//! # Ok(()) }
//! ```

pub mod artifacts;
mod attempt;
mod bindings;
mod cache;
pub mod checkpoint;
pub mod clocks;
mod command;
mod engine;
mod exit_code;
pub mod files;
pub mod http;
mod http_send;
pub mod limits;
pub mod logs;
mod outcome;
pub mod params;
pub mod random;
mod root;
pub mod secrets;
mod stdio;
pub mod values;
pub mod world;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use wasmtime::Engine;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use attempt::MAX_HOST_HANDLES;
pub use cache::{LoadOrigin, TaskComponent, World};
pub use command::Command;
pub use engine::{EPOCH_TICK, MAX_CONCURRENT_INSTANCES, MAX_WASM_STACK};
pub use limits::Limits;
pub use outcome::{FailureKind, Outcome, Status};

use crate::model::RunId;
use crate::secrets::Resolver;
use crate::store::Store;
use crate::util::DirPool;

/// Version of what the sandbox offers a guest (the task world, the WASI
/// surface, clock and limit semantics). Part of every cache key: bump it when
/// a guest could observe a difference.
/// 2: sleeps advance the virtual clocks, `/` is a read-only preopen listing the mount
/// points, and preview1 `proc_exit` keeps its code.
pub const SANDBOX_ABI_VERSION: u32 = 2;

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

/// Who is running, as the guest's `context` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskContext {
    pub job: String,
    pub run_id: String,
    pub task_key: String,
    pub attempt: u32,
    pub target: String,
}

/// One attempt as the host sees it: who runs it, and what the host provides it with.
pub struct AttemptContext {
    /// What the guest's `run(context)` receives.
    pub task: TaskContext,
    pub run: RunId,
    /// Who started the run: reveals need this principal's read permission.
    pub principal: String,
    /// The workspace whose secret scopes the run reads.
    pub workspace: String,
    /// The run's logical start: what the guest's wall clock starts at.
    pub logical_start: SystemTime,
    /// Set to stop the attempt promptly (it ends `Canceled`).
    pub cancel: Arc<AtomicBool>,
    /// Where upstream values are read and checkpoints kept.
    pub store: Arc<dyn Store>,
    /// Resolves (and audits) `secrets.reveal`; `None`: granted names do not resolve.
    pub secrets: Option<Arc<dyn Resolver>>,
}

/// One attempt: its context, its limits, and what it is granted.
pub struct Invocation {
    pub context: AttemptContext,
    pub limits: Limits,
    pub grants: Grants,
}

impl Invocation {
    /// An invocation of task `task_key` of run `run` with default limits and no grants.
    pub fn new(task_key: &str, store: Arc<dyn Store>, run: RunId) -> Invocation {
        let task = TaskContext {
            job: "task".into(),
            run_id: run.to_string(),
            task_key: task_key.to_string(),
            attempt: 0,
            target: "dev".into(),
        };
        Invocation {
            context: AttemptContext {
                task,
                run,
                principal: String::new(),
                workspace: crate::secrets::DEFAULT_WORKSPACE.into(),
                logical_start: SystemTime::now(),
                cancel: Arc::new(AtomicBool::new(false)),
                store,
                secrets: None,
            },
            limits: Limits::default(),
            grants: Grants::default(),
        }
    }
}

/// A host capability: its grant, how it prepares itself for one attempt, its linker.
pub(crate) trait Capability: Sized + Send {
    /// What a task may be given.
    type Grant: Default + Clone + Send;
    /// The capability's per-attempt state, from its grant and the attempt.
    fn prepare(grant: Self::Grant, cx: &mut Prepare<'_>) -> Result<Self, String>;
    /// Link the capability's imports (once per engine). Capabilities that only configure
    /// WASI have none.
    fn add_to_linker(_linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// What a capability's `prepare` gets.
pub(crate) struct Prepare<'a> {
    pub context: &'a AttemptContext,
    pub limits: &'a Limits,
    /// The attempt's WASI context, deny-by-default, under construction.
    pub wasi: &'a mut WasiCtxBuilder,
    /// Where the scratch `/tmp` comes from.
    pub scratch: &'a Arc<DirPool>,
    /// Where the guest's `/` comes from.
    pub roots: &'a Arc<root::Roots>,
    /// The values the attempt holds: secrets adds to it, checkpoints refuse to store them.
    pub revealed: secrets::Revealed,
    /// Secrets the host puts into outbound requests: secrets adds, http fills them in.
    pub injections: http::Injections,
}

/// Declares the capabilities once: the [`Grants`] of an attempt, its prepared
/// `Capabilities` and linking them all.
macro_rules! capabilities {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => $grant:ty,)*) => {
        /// Everything one attempt is granted: one grant per capability.
        #[derive(Default, Clone)]
        pub struct Grants {
            $($(#[$doc])* pub $name: $grant,)*
        }

        /// The capabilities of one attempt, prepared. Some are only held for the attempt's
        /// lifetime (dropping `files` wipes the scratch `/tmp`), so not every field is read.
        #[allow(dead_code)]
        pub(crate) struct Capabilities {
            $(pub(crate) $name: $ty,)*
        }

        impl Capabilities {
            fn prepare(grants: Grants, cx: &mut Prepare<'_>) -> Result<Capabilities, String> {
                Ok(Capabilities { $($name: <$ty as Capability>::prepare(grants.$name, cx)?,)* })
            }

            fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
                $(<$ty as Capability>::add_to_linker(linker)?;)*
                Ok(())
            }
        }
    };
}

capabilities! {
    /// Its resolved parameters.
    params: params::Params => params::Grant,
    /// Whose values it may read.
    values: values::Values => values::Grant,
    /// The secret names it may reveal, those the host injects instead, and values it holds.
    secrets: secrets::Secrets => secrets::Grant,
    /// Checkpoints of its own task (nothing to grant: every task has them).
    checkpoints: checkpoint::Checkpoints => (),
    /// A command's args, env and stdin, and whether stdout is its output.
    logs: logs::Logs => logs::Grant,
    /// Mounts, upstream `/in` directories and its `/out`.
    files: files::Files => files::Grant,
    /// Where outbound HTTP may go.
    http: http::Http => http::Grant,
    /// Virtual clocks from the run's logical start (nothing to grant).
    clocks: clocks::Clocks => (),
    /// The seed of every random source, when it must be reproducible.
    random: random::Random => random::Grant,
}

/// The per-attempt state a guest's store holds: WASI, the capabilities, the limiter and
/// what the epoch callback needs.
pub(crate) struct HostState {
    pub(crate) caps: Capabilities,
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: limits::TaskLimiter,
    interrupt: attempt::InterruptState,
    /// The attempt's fuel budget, to name it when it runs out.
    fuel_budget: Option<u64>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.caps.http.ctx,
            table: &mut self.table,
            hooks: &mut self.caps.http.policy,
        }
    }
}

/// One engine, one linker, one component cache: share it across all attempts of a process.
pub struct Sandbox {
    engine: Engine,
    scratch: Arc<DirPool>,
    roots: Arc<root::Roots>,
    linker: Linker<HostState>,
    cache: cache::ComponentCache,
    /// Told how long each instantiation took.
    telemetry: Arc<dyn crate::model::Telemetry>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let engine = engine::build()?;
        engine::start_ticker(&engine);
        let linker = link(&engine).map_err(|e| SandboxError::Engine(format!("linking host capabilities: {e:#}")))?;
        let cache = cache::ComponentCache::new(config.cache_dir, engine::compatibility_key(&engine));
        let scratch = Arc::new(files::scratch_pool().map_err(SandboxError::Engine)?);
        let roots = Arc::new(root::Roots::new().map_err(SandboxError::Engine)?);
        Ok(Sandbox { engine, linker, cache, scratch, roots, telemetry: Arc::new(crate::model::NoTelemetry) })
    }

    /// The same sandbox reporting instantiation times to `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Arc<dyn crate::model::Telemetry>) -> Sandbox {
        self.telemetry = telemetry;
        self
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

    /// Load a component from bytes as a task or as a command; `label` names it in errors.
    pub fn load_bytes_as(&self, bytes: &[u8], label: &str, world: World) -> Result<Arc<TaskComponent>, SandboxError> {
        self.cache.load(&self.engine, &self.linker, bytes, label, world)
    }

    /// A component by its blake3 (hex) alone — loaded earlier, or from the precompiled
    /// artifact compiling it left (`None`: neither): the exact code a run pinned, whatever
    /// its file holds now.
    pub fn load_pinned(&self, hash: &str, world: World) -> Option<Arc<TaskComponent>> {
        self.cache.load_by_hash(&self.engine, &self.linker, hash, world)
    }

    /// A component loaded earlier (by [`Sandbox::load_file_as`]), by its blake3 (hex).
    pub fn loaded(&self, hash: &str, world: World) -> Option<Arc<TaskComponent>> {
        self.cache.linked(hash, world)
    }

    /// Run one attempt of a task. Never panics on guest behaviour: every
    /// failure is an [`Outcome`].
    pub async fn run(&self, component: &TaskComponent, invocation: Invocation) -> Outcome {
        attempt::run(&self.engine, (&self.scratch, &self.roots), &*self.telemetry, component, invocation).await
    }

    /// Run one attempt of a command task (`wasi:cli/command`): exit code 0 is success.
    pub async fn run_command(&self, component: &TaskComponent, invocation: Invocation, command: Command) -> Outcome {
        command::run(&self.engine, (&self.scratch, &self.roots), &*self.telemetry, component, invocation, command).await
    }
}

/// Link WASI (deny-by-default context per attempt) and every capability, once.
fn link(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    // (`wasi:cli/exit.exit-with-code`, WASI 0.2.12, is linked too: a program's own exit code)
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Capabilities::link(&mut linker)?;
    Ok(linker)
}

/// Capability `C` prepared from `grant` for an attempt in `context` (unit tests).
#[cfg(test)]
pub(crate) fn prepared<C: Capability>(grant: C::Grant, context: &AttemptContext) -> Result<C, String> {
    let scratch = Arc::new(files::scratch_pool()?);
    let roots = Arc::new(root::Roots::new()?);
    let (mut wasi, limits) = (WasiCtxBuilder::new(), Limits::default());
    let mut cx = Prepare {
        context,
        limits: &limits,
        wasi: &mut wasi,
        scratch: &scratch,
        roots: &roots,
        revealed: Default::default(),
        injections: Default::default(),
    };
    C::prepare(grant, &mut cx)
}
