//! The one shared wasmtime `Engine`: its configuration, its pooling allocator
//! and the epoch ticker that lets running guests be interrupted.
//!
//! Owns every engine-wide limit, each a named constant. It never instantiates
//! or runs a guest; that is [`super::attempt`]'s job.

use std::thread;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::SandboxError;
use super::limits::MAX_MEMORY_BYTES;

/// How often the epoch advances. A guest's deadline and cancellation are
/// checked once per tick, so this bounds how late a timeout fires; 10 ms keeps
/// the ticker's own cost negligible.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sandboxes that may exist at once in one process. The pooling allocator
/// reserves (virtual) slots for this many up front; more concurrent attempts
/// wait for a slot instead of failing.
pub const MAX_CONCURRENT_INSTANCES: u32 = 256;

/// Core instances a task component may contain (a Rust wasip2 component has a
/// handful: the program plus wit-component's shims).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;

/// Wasm stack a guest may use: deep enough for ordinary recursion, small
/// enough that runaway recursion traps quickly instead of eating host memory.
pub const MAX_WASM_STACK: usize = 1 << 20;

/// Host stack for each running guest (must exceed [`MAX_WASM_STACK`] with room
/// for host calls made from deep inside the guest).
const ASYNC_STACK: usize = 2 << 20;

/// Bytes of each pooled linear memory's dirty pages reset with memset (and kept mapped)
/// when an instance ends; dirty pages beyond it are decommitted. Instances still start
/// from clean memory either way. Wasmtime finds the dirty pages with `PAGEMAP_SCAN`, and
/// every page a slot ever touched stays "dirty" while resident, so the memset grows to this
/// bound: measured on the fib chain (scripts/bench), 1 MiB cost ~140 µs of sandbox time per
/// attempt, 64–128 KiB ~60–70 µs, 0 (decommit all: TLB-flush IPIs, page faults) ~70–100 µs.
const MEMORY_KEEP_RESIDENT: usize = 128 << 10;

/// Bytes of each pooled table (and async stack) kept resident likewise: small tables and
/// the top of the host stack are reused by nearly every attempt.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Build the engine: component model on, epoch interruption on, NaN
/// canonicalisation on (a rerun must compute the same bits), pooling allocator
/// when the host allows its reservations, on-demand allocation otherwise.
pub(crate) fn build() -> Result<Engine, SandboxError> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
        .total_core_instances(MAX_CONCURRENT_INSTANCES * CORE_INSTANCES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(MAX_CONCURRENT_INSTANCES * 2)
        .total_tables(MAX_CONCURRENT_INSTANCES * 4)
        .total_stacks(MAX_CONCURRENT_INSTANCES)
        .max_memory_size(MAX_MEMORY_BYTES as usize)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .async_stack_keep_resident(TABLE_KEEP_RESIDENT);
    match Engine::new(&config(Some(pool))) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            tracing::warn!(error = %e, "pooling allocator unavailable, falling back to on-demand allocation");
            Engine::new(&config(None)).map_err(|e| SandboxError::Engine(format!("{e:#}")))
        }
    }
}

fn config(pool: Option<PoolingAllocationConfig>) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        // fuel makes a CPU budget deterministic (same count on every machine);
        // unmetered tasks get an effectively endless tank
        .consume_fuel(true)
        .cranelift_opt_level(OptLevel::Speed)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK);
    if let Some(pool) = pool {
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    cfg
}

/// Advance the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
pub(crate) fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = thread::Builder::new().name("sluice-epoch".into()).spawn(move || {
        loop {
            thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the epoch ticker; timeouts fall back to the host timer");
    }
}

/// A stable hex key for "artifacts this engine can load": wasmtime's own
/// compatibility hash, fed through blake3.
pub(crate) fn compatibility_key(engine: &Engine) -> String {
    use std::hash::Hash;
    let mut h = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.finalize().to_hex()[..16].to_string()
}

struct Blake3Hasher(blake3::Hasher);

impl std::hash::Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let bytes = self.0.finalize();
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
