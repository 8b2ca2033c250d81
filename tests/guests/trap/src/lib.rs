//! `trap`: dies inside the guest. Param `mode`:
//! * `panic` (default) — `panic!("boom")`; with panic=abort that prints the message to stderr
//!   and traps;
//! * `unreachable` — executes the wasm `unreachable` instruction directly (no message);
//! * `recursion` — unbounded recursion whose frames live on the wasm call stack only, until
//!   the engine's stack limit traps (wasmtime: "call stack exhausted");
//! * `shadow-stack` — unbounded recursion with 1 KiB arrays on Rust's shadow stack in linear
//!   memory (1 MiB, below the data): it runs off the bottom of memory first, so the trap is an
//!   out-of-bounds memory access rather than call stack exhaustion.
//!
//! Any other mode is a permanent error.

use sluice_sdk::{Context, Task, TaskError, params};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Panic,
    Unreachable,
    Recursion,
    ShadowStack,
}

pub fn mode(s: Option<&str>) -> Result<Mode, TaskError> {
    match s.unwrap_or("panic") {
        "panic" => Ok(Mode::Panic),
        "unreachable" => Ok(Mode::Unreachable),
        "recursion" => Ok(Mode::Recursion),
        "shadow-stack" => Ok(Mode::ShadowStack),
        other => Err(TaskError::permanent(format!(
            "param `mode`: `{other}` is not one of panic, unreachable, recursion, shadow-stack"
        ))),
    }
}

/// Recurses `n` deep using only wasm locals (the result is used twice after the call, so LLVM
/// cannot turn it into a loop). Pass `u64::MAX` to exhaust any call stack.
#[inline(never)]
pub fn deep(n: u64) -> u64 {
    if n == 0 {
        return 1;
    }
    let r = deep(n - 1);
    r.wrapping_mul(n) ^ (r >> 3)
}

/// Recurses until `limit` with a 1 KiB array per frame on the shadow stack (pass `u64::MAX`).
#[inline(never)]
pub fn recurse(depth: u64, limit: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 1024]);
    if depth >= limit {
        return frame[0] as u64;
    }
    recurse(depth + 1, std::hint::black_box(limit)) + frame[(depth % 1024) as usize] as u64
}

pub struct Trap;

impl Task for Trap {
    type Output = ();

    fn run(_ctx: &Context) -> Result<(), TaskError> {
        match mode(params::get("mode").as_deref())? {
            Mode::Panic => panic!("boom"),
            Mode::Unreachable => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                std::process::abort();
            }
            Mode::Recursion => {
                let n = deep(std::hint::black_box(u64::MAX));
                Err(TaskError::permanent(format!("recursion returned {n}")))
            }
            Mode::ShadowStack => {
                let n = recurse(0, std::hint::black_box(u64::MAX));
                Err(TaskError::permanent(format!("recursion returned {n}")))
            }
        }
    }
}

sluice_sdk::export_task!(Trap);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode(None).unwrap(), Mode::Panic);
        assert_eq!(mode(Some("recursion")).unwrap(), Mode::Recursion);
        assert_eq!(mode(Some("shadow-stack")).unwrap(), Mode::ShadowStack);
        let mut expected = 1u64;
        for n in 1..=50 {
            expected = expected.wrapping_mul(n) ^ (expected >> 3);
        }
        assert_eq!(deep(50), expected);
        assert!(mode(Some("explode")).unwrap_err().is_permanent());
        assert_eq!(recurse(0, 10), 9 + 8 + 7 + 6 + 5 + 4 + 3 + 2 + 1 + 10);
    }
}
