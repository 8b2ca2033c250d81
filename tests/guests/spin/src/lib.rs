//! `spin`: never returns. For timeouts, cancellation and epoch/fuel interruption.
//! The loop's state goes through `black_box`, so it cannot be optimised away.

use sluice_sdk::{Context, Task, TaskError};

pub struct Spin;

impl Task for Spin {
    type Output = ();

    fn run(_ctx: &Context) -> Result<(), TaskError> {
        let mut counter = 0u64;
        loop {
            counter = std::hint::black_box(counter).wrapping_add(1);
        }
    }
}

sluice_sdk::export_task!(Spin);
