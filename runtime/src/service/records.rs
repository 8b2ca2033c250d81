//! A run as the API shows it: its view, its plan, and stable ids for its task runs and
//! repairs, which live in the same id space as run ids (`runs/get` takes either).
//!
//! A task run id is a documented encoding, so it needs no state: bit 52 set, the run id
//! in bits 24..52, and in bits 0..24 the position in the run's log of the attempt's
//! `AttemptStarted` (a repair's id: its `RepairStarted`). A task that never started gets
//! `2^23 + its index` there. Logs are append-only, so ids never change; every id stays
//! below 2^53 (exact in JavaScript). Bounds: run ids below 2^28 and logs of fewer than
//! 2^23 events have task run ids; beyond them a task run has none.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Event, Millis, RunId, RunPlan, RunResult, RunView};
use crate::state::RunState;

/// Bit 52 marks a task run (or repair) id.
const TASK_RUN_FLAG: u64 = 1 << 52;
/// Bits for the position in the log (and the unstarted-task marker above it).
const SLOT_BITS: u32 = 24;
/// Slots at or above this name a task that never started (by index).
const UNSTARTED: u64 = 1 << 23;
/// The largest run id that has task run ids.
const MAX_RUN: u64 = (1 << (52 - SLOT_BITS)) - 1;

/// The id of the task run at `slot` of `run`, if both are within bounds.
pub fn task_run_id(run: RunId, slot: u64) -> Option<u64> {
    (run <= MAX_RUN && slot < (1 << SLOT_BITS)).then_some(TASK_RUN_FLAG | (run << SLOT_BITS) | slot)
}

/// What a task run id names: its run and slot. `None` for a plain run id.
pub fn decode_task_run_id(id: u64) -> Option<(RunId, u64)> {
    if id & TASK_RUN_FLAG == 0 || id >= (1 << 53) {
        return None;
    }
    Some(((id & !TASK_RUN_FLAG) >> SLOT_BITS, id & ((1 << SLOT_BITS) - 1)))
}

/// A run with what the API needs beside its view.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub view: RunView,
    pub plan: Option<Arc<RunPlan>>,
    /// (task, attempt) → position of its `AttemptStarted` in the log.
    pub attempts: HashMap<(String, u32), u64>,
    /// Each repair's `RepairStarted` position, in order.
    pub repairs: Vec<u64>,
    /// Each `RunFinished`: its position, the result and when (one per original run and repair).
    pub finishes: Vec<(u64, RunResult, Millis)>,
}

/// What a task run id resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRunRef {
    pub task: String,
    /// `None`: the task never started.
    pub attempt: Option<u32>,
}

/// A run's log folded so far, which takes the events that follow without refolding.
#[derive(Debug, Clone)]
pub(crate) struct Folded {
    state: RunState,
    /// How many events of the log are folded.
    count: u64,
    attempts: HashMap<(String, u32), u64>,
    repairs: Vec<u64>,
    finishes: Vec<(u64, RunResult, Millis)>,
}

impl Folded {
    /// Fold the start of a run's log.
    pub(crate) fn new(events: &[Event]) -> Result<Folded, crate::model::CorruptLog> {
        let (first, rest) = events.split_first().ok_or_else(|| crate::model::CorruptLog("empty event log".into()))?;
        let mut folded = Folded {
            state: RunState::from_events(std::slice::from_ref(first))?,
            count: 1,
            attempts: HashMap::new(),
            repairs: Vec::new(),
            finishes: Vec::new(),
        };
        folded.extend(rest)?;
        Ok(folded)
    }

    /// How many events of the log are folded.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Fold the events that follow those folded so far.
    pub(crate) fn extend(&mut self, events: &[Event]) -> Result<(), crate::model::CorruptLog> {
        for e in events {
            let i = self.count;
            if i > 0 {
                self.state.apply(e)?;
            }
            match e {
                Event::RunFinished { result, at } => self.finishes.push((i, *result, *at)),
                Event::AttemptStarted { task, attempt, .. } => {
                    self.attempts.insert((task.clone(), *attempt), i);
                }
                Event::RepairStarted { .. } => self.repairs.push(i),
                _ => {}
            }
            self.count += 1;
        }
        Ok(())
    }

    /// The run as the API shows it.
    pub(crate) fn record(&self) -> RunRecord {
        RunRecord {
            view: self.state.view().clone(),
            plan: self.state.plan().cloned(),
            attempts: self.attempts.clone(),
            repairs: self.repairs.clone(),
            finishes: self.finishes.clone(),
        }
    }
}

impl RunRecord {
    pub fn run_id(&self) -> RunId {
        self.view.run_id
    }

    /// The id of attempt `attempt` of `task` (`None` attempt: the task before it started).
    pub fn task_run_id(&self, task: &str, attempt: Option<u32>) -> Option<u64> {
        let slot = match attempt {
            Some(a) => *self.attempts.get(&(task.to_string(), a))?,
            None => UNSTARTED + self.view.tasks.iter().position(|t| t.key == task)? as u64,
        };
        if slot >= UNSTARTED && attempt.is_some() {
            return None;
        }
        task_run_id(self.run_id(), slot)
    }

    /// The id of repair `n` (1-based).
    pub fn repair_id(&self, n: usize) -> Option<u64> {
        let slot = *self.repairs.get(n.checked_sub(1)?)?;
        if slot >= UNSTARTED {
            return None;
        }
        task_run_id(self.run_id(), slot)
    }

    /// The task run a slot of this run names.
    pub fn resolve(&self, slot: u64) -> Option<TaskRunRef> {
        if slot >= UNSTARTED {
            let task = self.view.tasks.get((slot - UNSTARTED) as usize)?;
            return Some(TaskRunRef { task: task.key.clone(), attempt: None });
        }
        self.attempts
            .iter()
            .find(|(_, p)| **p == slot)
            .map(|((task, attempt), _)| TaskRunRef { task: task.clone(), attempt: Some(*attempt) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_run_ids_round_trip_within_bounds_and_stay_below_2_53() {
        for (run, slot) in [(1, 1), (7, 12_345), (MAX_RUN, (1 << 24) - 1)] {
            let id = task_run_id(run, slot).unwrap();
            assert!(id < (1 << 53), "{id}");
            assert_eq!(decode_task_run_id(id), Some((run, slot)));
        }
        assert_eq!(task_run_id(MAX_RUN + 1, 1), None);
        assert_eq!(task_run_id(1, 1 << 24), None);
        for plain in [1, 42, (1 << 52) - 1] {
            assert_eq!(decode_task_run_id(plain), None, "a run id is not a task run id");
        }
    }
}
