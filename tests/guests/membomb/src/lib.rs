//! `membomb`: allocates 1 MiB chunks, touching every 4 KiB page, and keeps them all.
//!
//! Without params it never stops: the host's memory limit must end it (the failed allocation
//! aborts → trap). With `mb=N` it stops after N MiB and succeeds with `{"allocated_mb": N}`.
//! Prints a line to stdout every 64 MiB.

use sluice_sdk::{Context, Task, TaskError, params};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

pub struct MemBomb;

impl Task for MemBomb {
    type Output = serde_json::Value;

    fn run(_ctx: &Context) -> Result<serde_json::Value, TaskError> {
        let max: Option<u64> = params::get_parsed("mb")?;
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut allocated = 0u64;
        while max.is_none_or(|m| allocated < m) {
            let mut chunk = vec![0u8; MIB];
            for (i, b) in chunk.iter_mut().step_by(PAGE).enumerate() {
                *b = (i as u8) | 1;
            }
            chunks.push(std::hint::black_box(chunk));
            allocated += 1;
            if allocated.is_multiple_of(64) {
                println!("allocated {allocated} MiB");
            }
        }
        std::hint::black_box(&chunks);
        Ok(serde_json::json!({ "allocated_mb": allocated }))
    }
}

sluice_sdk::export_task!(MemBomb);
