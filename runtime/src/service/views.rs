//! Runs as readers see them, folded once: each run's log is folded as far as it is durable
//! and kept with the count of events folded, so a read of a run whose log has not grown
//! costs no store read and no fold, and one whose log grew folds only the new events.
//! A run this process drives is folded live, event by event as the hub announces it
//! durable, so reading it (the CLI's result at the end of `sluice run`) reads no log.
//!
//! Owns the cache of folded runs; it never writes the store and never shows an event that
//! is not durable (the count folded to is the hub's announced count for runs this process
//! drives, else the stored log's length).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::records::{Folded, RunRecord};
use super::{Service, ServiceError};
use crate::model::{Event, RunId};

/// How many runs keep their folded state: enough for every run polled at once by a busy
/// server; beyond it the cache starts again (a miss costs one fold).
const MAX_FOLDED_RUNS: usize = 512;

/// One run's folded log and the record built from it.
#[derive(Default)]
struct Slot {
    folded: Option<Folded>,
    record: Option<Arc<RunRecord>>,
}

#[derive(Default)]
pub(crate) struct Views {
    runs: Mutex<HashMap<RunId, Arc<Mutex<Slot>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Views {
    /// A run this process drives from now on, with its log so far: folded here, so the
    /// reads that follow (the CLI's result, the dashboard's polls) need not fold it again
    /// from the store.
    pub(crate) fn attached(&self, run: RunId, history: &[Event]) {
        let slot = self.slot(run);
        let mut slot = lock(&slot);
        if slot.folded.as_ref().is_some_and(|f| f.count() >= history.len() as u64) {
            return;
        }
        slot.folded = Folded::new(history).ok();
        slot.record = None;
    }

    /// `run`'s event at position `seq` is durable: fold it if it is the next one of a run
    /// folded here. A fold already past it (a reader read it from the store first) or
    /// behind it (the cache was cleared) is left to the next read.
    pub(crate) fn durable(&self, run: RunId, seq: u64, event: &Event) {
        let Some(slot) = lock(&self.runs).get(&run).cloned() else { return };
        let mut slot = lock(&slot);
        let Some(folded) = slot.folded.as_mut() else { return };
        if folded.count() != seq {
            return;
        }
        if folded.extend(std::slice::from_ref(event)).is_err() {
            slot.folded = None;
        }
        slot.record = None;
    }

    fn slot(&self, run: RunId) -> Arc<Mutex<Slot>> {
        let mut runs = lock(&self.runs);
        if !runs.contains_key(&run) && runs.len() >= MAX_FOLDED_RUNS {
            runs.clear();
        }
        runs.entry(run).or_default().clone()
    }
}

impl Service {
    /// The run as far as its log is durable, folded only as far as it was not before;
    /// `None` for an unknown run. Reads the store: call it off the async workers.
    pub(crate) fn folded(&self, run: RunId) -> Result<Option<Arc<RunRecord>>, ServiceError> {
        let store = self.inner.rt.store();
        let durable = match self.inner.hub.announced(run) {
            Some(n) => n,
            None => store.event_count(run)?,
        };
        if durable == 0 {
            return Ok(None);
        }
        let slot = self.inner.views.slot(run);
        let mut slot = lock(&slot);
        let corrupt = |e: crate::model::CorruptLog| ServiceError::Internal(format!("run {run}: {e}"));
        let folded_count = slot.folded.as_ref().map_or(0, Folded::count);
        if folded_count == durable {
            if let Some(record) = &slot.record {
                return Ok(Some(record.clone()));
            }
            // folded live, as the events became durable: no store read
            if let Some(folded) = &slot.folded {
                let record = Arc::new(folded.record());
                slot.record = Some(record.clone());
                return Ok(Some(record));
            }
        }
        let from = if folded_count < durable { folded_count } else { 0 };
        let mut new = store.events_from(run, from)?;
        new.truncate((durable - from) as usize);
        let folded = match slot.folded.take() {
            Some(mut folded) if from > 0 => {
                folded.extend(&new).map_err(corrupt)?;
                folded
            }
            _ if new.is_empty() => return Ok(None),
            _ => Folded::new(&new).map_err(corrupt)?,
        };
        let record = Arc::new(folded.record());
        slot.folded = Some(folded);
        slot.record = Some(record.clone());
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{PlannedTask, RunResult, TaskResult};

    /// A one-task run's whole log.
    fn log(run: RunId) -> Vec<Event> {
        let task =
            PlannedTask { key: "t".into(), component: "c".into(), component_hash: "ab".repeat(32), depends_on: vec![] };
        let created = Event::RunCreated {
            run_id: run,
            job: "j".into(),
            source: "./b".into(),
            target: "dev".into(),
            parameters: BTreeMap::new(),
            tasks: vec![task],
            at: 1,
            plan: None,
        };
        let finished = Event::AttemptFinished {
            task: "t".into(),
            attempt: 0,
            at: 3,
            result: TaskResult::Success,
            output: Some("{}".into()),
            error: None,
            log: String::new(),
            log_truncated: false,
            elapsed_us: 1,
            outcome: None,
            cache: None,
            error_code: None,
        };
        let started = Event::AttemptStarted { task: "t".into(), attempt: 0, at: 2 };
        vec![created, started, finished, Event::RunFinished { result: RunResult::Success, at: 4 }]
    }

    fn count(views: &Views, run: RunId) -> Option<u64> {
        let slot = lock(&views.runs).get(&run).cloned()?;
        let slot = lock(&slot);
        slot.folded.as_ref().map(Folded::count)
    }

    #[test]
    fn a_driven_run_is_folded_event_by_event_and_never_past_a_gap() {
        let views = Views::default();
        let events = log(7);
        // not attached: nothing is folded for it
        views.durable(7, 0, &events[0]);
        assert_eq!(count(&views, 7), None);
        views.attached(7, &events[..1]);
        assert_eq!(count(&views, 7), Some(1));
        views.durable(7, 1, &events[1]);
        assert_eq!(count(&views, 7), Some(2));
        // an event announced out of order (a gap) or again is left to the next read
        views.durable(7, 3, &events[3]);
        views.durable(7, 1, &events[1]);
        assert_eq!(count(&views, 7), Some(2));
        views.durable(7, 2, &events[2]);
        views.durable(7, 3, &events[3]);
        assert_eq!(count(&views, 7), Some(4));
        let slot = lock(&views.runs).get(&7).cloned().unwrap();
        let record = lock(&slot).folded.as_ref().unwrap().record();
        assert_eq!(record.view.result, Some(RunResult::Success));
        assert_eq!(record.finishes.len(), 1);
        // attaching again with a shorter history keeps what was folded live
        views.attached(7, &events[..2]);
        assert_eq!(count(&views, 7), Some(4));
    }
}
