//! `flaky`: fails transiently a few times, resuming from its checkpoint, for retry and
//! checkpoint demos.
//!
//! Params: `fail_times` (default 2), `steps` (default 5). Each attempt loads checkpoint
//! `progress` (a JSON step count), then does one step at a time, saving the checkpoint after
//! each. An attempt numbered below `fail_times` fails with a transient error right after its
//! first step ("transient failure on attempt A after step S"), or at once if no step is left.
//! The attempt that gets through outputs `{ "steps", "attempts": attempt + 1, "resumed_from" }`.
//! Progress is printed to stdout.

use serde::Serialize;
use sluice_sdk::{Context, Task, TaskError, checkpoint, params};

pub const CHECKPOINT: &str = "progress";

#[derive(Debug, Serialize, PartialEq)]
pub struct Output {
    pub steps: u32,
    pub attempts: u32,
    pub resumed_from: u32,
}

pub struct Flaky;

impl Task for Flaky {
    type Output = Output;

    fn run(ctx: &Context) -> Result<Output, TaskError> {
        let fail_times: u32 = params::get_or("fail_times", 2)?;
        let steps: u32 = params::get_or("steps", 5)?;
        let attempt = ctx.attempt;
        let resumed_from: u32 = checkpoint::load_json(CHECKPOINT)?.unwrap_or(0);
        let failing = attempt < fail_times;
        println!("attempt {attempt}: resuming from step {resumed_from} of {steps}");

        let mut step = resumed_from;
        while step < steps {
            step += 1; // the "work"
            checkpoint::save_json(CHECKPOINT, &step)?;
            println!("attempt {attempt}: step {step} of {steps} done");
            if failing {
                break;
            }
        }
        if failing {
            println!("attempt {attempt}: failing on purpose");
            return Err(TaskError::transient(format!(
                "transient failure on attempt {attempt} after step {step}"
            )));
        }
        println!("attempt {attempt}: all {steps} steps done");
        Ok(Output {
            steps,
            attempts: attempt + 1,
            resumed_from,
        })
    }
}

sluice_sdk::export_task!(Flaky);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{self, MockHost};

    fn attempt(n: u32) -> Context {
        Context {
            attempt: n,
            ..Context::default()
        }
    }

    #[test]
    fn fails_then_resumes() {
        MockHost::new()
            .param("fail_times", "2")
            .param("steps", "5")
            .install();
        let e = testing::run::<Flaky>(&attempt(0)).unwrap_err();
        assert_eq!(
            e,
            TaskError::Transient("transient failure on attempt 0 after step 1".into())
        );
        let e = testing::run::<Flaky>(&attempt(1)).unwrap_err();
        assert_eq!(
            e,
            TaskError::Transient("transient failure on attempt 1 after step 2".into())
        );
        let out = testing::run::<Flaky>(&attempt(2)).unwrap();
        assert_eq!(
            out,
            serde_json::json!({ "steps": 5, "attempts": 3, "resumed_from": 2 })
        );
        assert_eq!(testing::host().checkpoints[CHECKPOINT], b"5");
        // A later attempt (e.g. a repair) finds everything done.
        let out = testing::run::<Flaky>(&attempt(3)).unwrap();
        assert_eq!(out["resumed_from"], 5);
    }

    #[test]
    fn defaults_and_no_failures() {
        MockHost::new().param("fail_times", "0").install();
        let out = testing::run::<Flaky>(&attempt(0)).unwrap();
        assert_eq!(
            out,
            serde_json::json!({ "steps": 5, "attempts": 1, "resumed_from": 0 })
        );

        MockHost::new().install();
        assert!(
            testing::run::<Flaky>(&attempt(0))
                .unwrap_err()
                .is_transient()
        );
        assert!(
            testing::run::<Flaky>(&attempt(1))
                .unwrap_err()
                .is_transient()
        );
        assert_eq!(
            testing::run::<Flaky>(&attempt(2)).unwrap()["resumed_from"],
            2
        );
    }

    #[test]
    fn still_fails_when_no_step_is_left() {
        MockHost::new()
            .param("steps", "1")
            .param("fail_times", "3")
            .install();
        assert!(testing::run::<Flaky>(&attempt(0)).is_err());
        let e = testing::run::<Flaky>(&attempt(1)).unwrap_err();
        assert_eq!(e.message(), "transient failure on attempt 1 after step 1");
        assert!(testing::run::<Flaky>(&attempt(2)).is_err());
        assert_eq!(testing::run::<Flaky>(&attempt(3)).unwrap()["attempts"], 4);
    }

    #[test]
    fn bad_params_are_permanent() {
        MockHost::new().param("steps", "many").install();
        assert!(
            testing::run::<Flaky>(&attempt(0))
                .unwrap_err()
                .is_permanent()
        );
    }
}
