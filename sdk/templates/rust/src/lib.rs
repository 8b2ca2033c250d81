//! `{{name}}`: a sluice task in Rust.
//!
//! Test:  `cargo test` (natively, against `sluice_sdk::testing::MockHost`)
//! Build: `cargo build --release --target wasm32-wasip2` → `target/wasm32-wasip2/release/{{module}}.wasm`
//! Run:   `sluice task run target/wasm32-wasip2/release/{{module}}.wasm --param name=you --param times=2`

use serde::Serialize;
use sluice_sdk::{Context, Task, TaskError, params, values};

#[derive(Serialize)]
pub struct Output {
    greeting: String,
    times: u32,
}

pub struct Greet;

impl Task for Greet {
    type Output = Output;

    fn run(ctx: &Context) -> Result<Output, TaskError> {
        let name: String = params::get_or("name", "world".to_string())?;
        let times: u32 = params::get_or("times", 1)?;
        if times < 1 {
            return Err(TaskError::permanent(format!("param `times` must be at least 1, not {times}")));
        }
        let line = format!("hello {name} from {} (attempt {})", ctx.task_key, ctx.attempt);
        let text = format!("{line}\n").repeat(times as usize);
        // /out exists only inside the sandbox; natively there is nowhere to write it.
        if cfg!(target_arch = "wasm32") {
            std::fs::write("/out/greeting.txt", text).map_err(TaskError::transient)?;
        }
        values::set("greetings", &times)?;
        Ok(Output { greeting: line, times })
    }
}

sluice_sdk::export_task!(Greet);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{MockHost, published, run};

    #[test]
    fn greets_and_publishes() {
        MockHost::new().param("name", "ada").param("times", "2").install();
        let ctx = Context { task_key: "{{name}}".into(), ..Context::default() };
        let out = run::<Greet>(&ctx).unwrap();
        assert_eq!(out["greeting"], "hello ada from {{name}} (attempt 0)");
        assert_eq!(published("greetings"), Some(serde_json::json!(2)));
    }

    #[test]
    fn bad_times_is_permanent() {
        MockHost::new().param("times", "0").install();
        assert!(run::<Greet>(&Context::default()).unwrap_err().is_permanent());
    }
}
