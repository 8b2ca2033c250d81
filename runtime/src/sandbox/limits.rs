//! Per-attempt resource limits and the limiter that enforces memory.
//!
//! Owns the named default for every limit and the `ResourceLimiter` a store
//! consults when a guest grows its memory or tables. It never decides what a
//! breach means for the run: it records the breach, the attempt reports it.

use std::time::Duration;

/// Memory a task may use when its spec sets none: enough for ordinary data
/// tasks, small enough that a few hundred concurrent sandboxes fit in RAM.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;

/// Wall-clock budget of one attempt when neither task nor job sets one: long
/// enough for real work, short enough that a stuck guest cannot hold a slot forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Captured stdout+stderr kept per attempt; the rest is dropped and the log
/// marked truncated, so a chatty guest cannot fill the store.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 1 << 20;

/// Largest JSON output a task may return; outputs are stored with every attempt
/// and shown by `runs show`, so they must stay small (files are the way for bulk data).
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1 << 20;

/// Upper bound on any single linear memory the engine will reserve; a task's
/// own limit is checked by [`TaskLimiter`] far below this.
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;

/// Table elements a guest may grow to: generous for function tables, bounded so
/// a guest cannot exhaust host memory through tables instead of memories.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Wasm instances one attempt may create: a task component holds a handful of
/// core instances (the program plus wit-component's shims); more is a guest
/// trying to multiply its memory or tables past what the host planned for.
pub const MAX_INSTANCES_PER_ATTEMPT: usize = 32;

/// Linear memories one attempt may have (the memory limit is shared across them).
pub const MAX_MEMORIES_PER_ATTEMPT: usize = 16;

/// Tables one attempt may have.
pub const MAX_TABLES_PER_ATTEMPT: usize = 64;

/// Limits applied to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory: u64,
    pub timeout: Duration,
    pub max_log: u64,
    pub max_output: u64,
    /// Deterministic CPU budget in wasm fuel units; `None` = unmetered.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MEMORY_BYTES,
            timeout: DEFAULT_TIMEOUT,
            max_log: DEFAULT_MAX_LOG_BYTES,
            max_output: DEFAULT_MAX_OUTPUT_BYTES,
            fuel: None,
        }
    }
}

/// Enforces the memory limit across all memories of one attempt and remembers
/// whether a growth was denied, so the attempt can say why it failed.
pub(crate) struct TaskLimiter {
    limit: u64,
    in_use: u64,
    pub(crate) denied: Option<u64>,
}

impl TaskLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        TaskLimiter { limit, in_use: 0, denied: None }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }
}

impl wasmtime::ResourceLimiter for TaskLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let grow = (desired as u64).saturating_sub(current as u64);
        let total = self.in_use.saturating_add(grow);
        if total > self.limit {
            self.denied = Some(total);
            return Ok(false);
        }
        self.in_use = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES_PER_ATTEMPT
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES_PER_ATTEMPT
    }

    fn tables(&self) -> usize {
        MAX_TABLES_PER_ATTEMPT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_is_counted_across_memories_and_denials_are_remembered() {
        let mut l = TaskLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(l.memory_growing(0, 30, None).unwrap());
        assert_eq!(l.denied, None);
        assert!(!l.memory_growing(30, 50, None).unwrap());
        assert_eq!(l.denied, Some(110));
    }
}
