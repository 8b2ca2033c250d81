//! The component cache: compiled components by content.
//!
//! Owns the two cache levels. In memory, a ready-to-instantiate `TaskPre` per
//! component blake3, so a job that runs one component forty times compiles and
//! links it once. On disk, precompiled artifacts named by the component's
//! blake3 and the engine's compatibility key, so a second `sluice` process
//! skips compilation. It never runs guests.
//!
//! Safety of loading artifacts: wasmtime trusts a precompiled artifact as
//! native code. We only load files this cache wrote, under the cache directory
//! of the user running sluice (see `artifacts.rs`; shared by their state
//! directories), named by content hash and engine key, written atomically
//! (temp file + rename). An artifact that fails to load is recompiled.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::bindings::TaskPre;
use super::{HostState, SandboxError};
use wasmtime_wasi::p2::bindings::CommandPre;

/// Where a loaded component came from: how much work loading it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOrigin {
    /// Already linked in this process.
    Memory,
    /// A precompiled artifact from the disk cache.
    Disk,
    /// Compiled from the wasm bytes (and written to the disk cache).
    Compiled,
}

/// Which world a component is loaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum World {
    /// `sluice:task/task`: exports `run(context) -> result<string, task-error>`.
    Task,
    /// `wasi:cli/command`: a program with `main` (any language). Core WASI
    /// preview1 modules are adapted into components for this world.
    Command,
}

/// A component linked for its world.
#[derive(Clone)]
pub(crate) enum Linked {
    Task(TaskPre<HostState>),
    Command(CommandPre<HostState>),
}

/// A component ready to instantiate.
pub struct TaskComponent {
    /// blake3 of the component's bytes, hex.
    pub hash: String,
    pub origin: LoadOrigin,
    /// Time spent compiling or deserializing and linking it.
    pub load_time: Duration,
    pub(crate) pre: Linked,
}

impl TaskComponent {
    pub(crate) fn task_pre(&self) -> Option<&TaskPre<HostState>> {
        match &self.pre {
            Linked::Task(p) => Some(p),
            Linked::Command(_) => None,
        }
    }

    pub(crate) fn command_pre(&self) -> Option<&CommandPre<HostState>> {
        match &self.pre {
            Linked::Command(p) => Some(p),
            Linked::Task(_) => None,
        }
    }

    pub fn world(&self) -> World {
        match self.pre {
            Linked::Task(_) => World::Task,
            Linked::Command(_) => World::Command,
        }
    }
}

impl std::fmt::Debug for TaskComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskComponent").field("hash", &self.hash).field("origin", &self.origin).finish()
    }
}

pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
    linked: Mutex<HashMap<(String, World), Arc<TaskComponent>>>,
}

impl ComponentCache {
    pub(crate) fn new(dir: Option<PathBuf>, engine_key: String) -> Self {
        ComponentCache { dir, engine_key, linked: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn load(
        &self,
        engine: &Engine,
        linker: &Linker<HostState>,
        bytes: &[u8],
        label: &str,
        world: World,
    ) -> Result<Arc<TaskComponent>, SandboxError> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        if let Some(hit) = self.linked.lock().unwrap_or_else(PoisonError::into_inner).get(&(hash.clone(), world)) {
            return Ok(Arc::new(TaskComponent {
                hash: hit.hash.clone(),
                origin: LoadOrigin::Memory,
                load_time: Duration::ZERO,
                pre: hit.pre.clone(),
            }));
        }
        let started = Instant::now();
        let (component, origin) = match self.load_artifact(engine, &hash) {
            Some(c) => (c, LoadOrigin::Disk),
            None => (self.compile(engine, bytes, &hash, label, world)?, LoadOrigin::Compiled),
        };
        // an artifact compiled for the other world links with a bare error: say what to change
        let pre = link(linker, &component, label, world).map_err(|e| match check_is_component(bytes, label) {
            Ok(()) => check_world(bytes, label, world).err().unwrap_or(e),
            Err(_) => e,
        })?;
        let loaded = Arc::new(TaskComponent { hash: hash.clone(), origin, load_time: started.elapsed(), pre });
        tracing::debug!(component = label, hash = %&hash[..16], origin = ?origin, load_ms = loaded.load_time.as_secs_f64() * 1e3, "component loaded");
        self.linked.lock().unwrap_or_else(PoisonError::into_inner).insert((hash, world), loaded.clone());
        Ok(loaded)
    }

    /// A component by its blake3 (hex) alone: linked already, or from its precompiled
    /// artifact (`None` when there is none). What a run pinned stays loadable after the
    /// file it came from changed.
    pub(crate) fn load_by_hash(
        &self,
        engine: &Engine,
        linker: &Linker<HostState>,
        hash: &str,
        world: World,
    ) -> Option<Arc<TaskComponent>> {
        if let Some(hit) = self.linked(hash, world) {
            return Some(hit);
        }
        let started = Instant::now();
        let component = self.load_artifact(engine, hash)?;
        let pre = link(linker, &component, &format!("component {}", &hash[..hash.len().min(12)]), world).ok()?;
        let origin = LoadOrigin::Disk;
        let loaded = Arc::new(TaskComponent { hash: hash.to_string(), origin, load_time: started.elapsed(), pre });
        self.linked.lock().unwrap_or_else(PoisonError::into_inner).insert((hash.to_string(), world), loaded.clone());
        Some(loaded)
    }

    /// A component this cache has linked, by its blake3 (hex) and world.
    pub(crate) fn linked(&self, hash: &str, world: World) -> Option<Arc<TaskComponent>> {
        self.linked.lock().unwrap_or_else(PoisonError::into_inner).get(&(hash.to_string(), world)).cloned()
    }

    fn artifact_path(&self, hash: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{hash}-{}.cwasm", self.engine_key)))
    }

    fn load_artifact(&self, engine: &Engine, hash: &str) -> Option<Component> {
        let path = self.artifact_path(hash)?;
        if !path.is_file() {
            return None;
        }
        // SAFETY: see the module docs: the file was written by this cache,
        // atomically, under the user's own state directory, and is named by
        // the component's content hash and this engine's compatibility key.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(c) => {
                super::artifacts::touch(&path);
                Some(c)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached artifact unusable; recompiling");
                None
            }
        }
    }

    fn compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        hash: &str,
        label: &str,
        world: World,
    ) -> Result<Component, SandboxError> {
        let adapted;
        let bytes = match (check_is_component(bytes, label), world) {
            (Ok(()), _) => {
                // the world is checked before compiling: a wrong one is refused in milliseconds
                check_world(bytes, label, world)?;
                bytes
            }
            (Err(_), World::Command) if is_core_module(bytes) => {
                adapted = adapt_preview1(bytes, label)?;
                &adapted[..]
            }
            (Err(e), _) => return Err(e),
        };
        let component = Component::new(engine, bytes)
            .map_err(|e| SandboxError::InvalidComponent { component: label.to_string(), message: format!("{e:#}") })?;
        if let Some(path) = self.artifact_path(hash)
            && let Err(e) = component.serialize().map_err(|e| e.to_string()).and_then(|b| write_atomic(&path, &b))
        {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compiled artifact; next run recompiles");
        }
        if let Some(dir) = &self.dir
            && let Err(e) = super::artifacts::prune(dir, None, super::artifacts::MAX_COMPILED_CACHE_BYTES)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not prune the compiled-component cache");
        }
        Ok(component)
    }
}

/// Whether component `bytes` can run as `world`, decoded without compiling; the error says
/// what to change.
fn check_world(bytes: &[u8], label: &str, world: World) -> Result<(), SandboxError> {
    let shape = super::world::inspect(bytes)
        .map_err(|message| SandboxError::InvalidComponent { component: label.to_string(), message })?;
    super::world::check(&shape, world).map_err(|message| match world {
        World::Task => SandboxError::WrongWorld { component: label.to_string(), message },
        World::Command => SandboxError::NotACommand { component: label.to_string(), message },
    })
}

fn link(linker: &Linker<HostState>, component: &Component, label: &str, world: World) -> Result<Linked, SandboxError> {
    let wrong_world = |e: wasmtime::Error| match world {
        World::Task => SandboxError::WrongWorld { component: label.to_string(), message: format!("{e:#}") },
        World::Command => SandboxError::NotACommand { component: label.to_string(), message: format!("{e:#}") },
    };
    let pre = linker.instantiate_pre(component).map_err(wrong_world)?;
    Ok(match world {
        World::Task => Linked::Task(TaskPre::new(pre).map_err(wrong_world)?),
        World::Command => Linked::Command(CommandPre::new(pre).map_err(wrong_world)?),
    })
}

fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Turn a core WASI preview1 module (any toolchain's `wasm32-wasip1` output)
/// into a `wasi:cli/command` component with the official preview1 adapter.
fn adapt_preview1(module: &[u8], label: &str) -> Result<Vec<u8>, SandboxError> {
    let invalid = |e: wasmtime::Error| SandboxError::InvalidComponent {
        component: label.to_string(),
        message: format!("adapting this WASI preview1 module into a component failed: {e:#}"),
    };
    let wrap = |e: String| invalid(wasmtime::Error::msg(e));
    // `proc_exit` through `exit-with-code`, so the program's own code survives
    let routed = super::exit_code::route_proc_exit(module).map_err(wrap)?;
    let mut encoder = wit_component::ComponentEncoder::default()
        .module(routed.as_deref().unwrap_or(module))
        .map_err(|e| wrap(format!("{e:#}")))?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        )
        .map_err(|e| wrap(format!("{e:#}")))?;
    if routed.is_some() {
        let adapter = super::exit_code::adapter().map_err(wrap)?;
        encoder = encoder.adapter(super::exit_code::EXIT_ADAPTER, &adapter).map_err(|e| wrap(format!("{e:#}")))?;
    }
    encoder.validate(true).encode().map_err(|e| wrap(format!("{e:#}")))
}

/// A clear error for the common mistakes before wasmtime's parser sees the bytes.
fn check_is_component(bytes: &[u8], label: &str) -> Result<(), SandboxError> {
    const MAGIC: &[u8] = b"\0asm";
    let invalid = |message: String| Err(SandboxError::InvalidComponent { component: label.to_string(), message });
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return invalid("not a WebAssembly file (no `\\0asm` header)".into());
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return invalid(
            "this is a core WebAssembly module, not a component; build a task for `wasm32-wasip2` \
             (a wit-bindgen guest built that way is already a component), or run a program with \
             `main` built for wasm32-wasip1 as a command task (`kind = \"command\"`, `sluice task run --command`)"
                .into(),
        );
    }
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().ok_or("artifact path has no parent")?;
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("artifact"),
        std::process::id()
    ));
    fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("renaming into {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_modules_and_garbage_are_named_as_such() {
        let core = b"\0asm\x01\0\0\0";
        let e = check_is_component(core, "x.wasm").unwrap_err().to_string();
        assert!(e.contains("core WebAssembly module") && e.contains("x.wasm"), "{e}");
        let e = check_is_component(b"hello world", "y.wasm").unwrap_err().to_string();
        assert!(e.contains("not a WebAssembly file"), "{e}");
        assert!(check_is_component(b"\0asm\x0d\0\x01\0", "z.wasm").is_ok());
    }
}
