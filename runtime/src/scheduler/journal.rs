//! A run's journal: appends events to the store, commits them in groups, and
//! tells the observer only about what is durable.
//!
//! The durability contract: every event is appended to the store before the
//! scheduler acts on it, but flushed (fsync) in groups — at most
//! [`GROUP_COMMIT_WINDOW`] after the first unflushed event, and always before
//! anything outside the process can see it (the observer prints progress only
//! for flushed events; the run's result is flushed before it is returned).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{Event, RunId, RunView};
use crate::store::Store;

use super::{Observer, SchedulerError};

/// How long transitions may wait for their shared fsync: long enough that a
/// burst of short hermetic tasks shares one flush (an fsync costs ~4 ms here),
/// short enough that progress output lags less than a person notices.
pub const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(50);

pub(crate) struct Journal {
    store: Arc<dyn Store>,
    run: RunId,
    observer: Arc<dyn Observer>,
    events: Vec<Event>,
    /// Index of the first event the observer has not been told about.
    announced: usize,
    dirty_since: Option<Instant>,
}

impl Journal {
    /// A journal over a run's existing log (empty for a new run).
    pub(crate) fn new(store: Arc<dyn Store>, run: RunId, observer: Arc<dyn Observer>, existing: Vec<Event>) -> Self {
        let announced = existing.len();
        Journal { store, run, observer, events: existing, announced, dirty_since: None }
    }

    pub(crate) fn run(&self) -> RunId {
        self.run
    }

    pub(crate) fn events(&self) -> &[Event] {
        &self.events
    }

    /// Append one event to the store (not yet flushed).
    pub(crate) fn append(&mut self, event: Event) -> Result<(), SchedulerError> {
        self.store.append(self.run, std::slice::from_ref(&event))?;
        self.events.push(event);
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Make everything appended durable, then announce it.
    pub(crate) fn flush(&mut self) -> Result<(), SchedulerError> {
        if self.dirty_since.take().is_some() {
            self.store.flush()?;
        }
        for e in &self.events[self.announced..] {
            self.observer.event(self.run, e);
        }
        self.announced = self.events.len();
        Ok(())
    }

    /// When the pending group must be flushed, if anything is pending.
    pub(crate) fn flush_deadline(&self) -> Option<Instant> {
        self.dirty_since.map(|t| t + GROUP_COMMIT_WINDOW)
    }

    /// Flush if the group's window has passed.
    pub(crate) fn flush_if_due(&mut self) -> Result<(), SchedulerError> {
        match self.flush_deadline() {
            Some(d) if Instant::now() >= d => self.flush(),
            _ => Ok(()),
        }
    }

    pub(crate) fn view(&self) -> Result<RunView, SchedulerError> {
        RunView::from_events(&self.events).map_err(|e| SchedulerError::Corrupt { run: self.run, message: e.0 })
    }
}
