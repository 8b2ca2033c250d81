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

use crate::model::{Event, RunId};
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
    /// Appended, not yet announced to the observer.
    unannounced: Vec<Event>,
    dirty_since: Option<Instant>,
    /// Events the log held before this journal appended any (0 for a new run).
    base: u64,
    /// Events this journal appended.
    appended: u64,
}

impl Journal {
    /// The journal of a new run.
    pub(crate) fn new(store: Arc<dyn Store>, run: RunId, observer: Arc<dyn Observer>) -> Self {
        Journal { store, run, observer, unannounced: Vec::new(), dirty_since: None, base: 0, appended: 0 }
    }

    /// The journal of a run that goes on: the observer is shown its history first.
    pub(crate) fn resume(store: Arc<dyn Store>, run: RunId, observer: Arc<dyn Observer>, history: &[Event]) -> Self {
        observer.attached(run, history);
        Journal { base: history.len() as u64, ..Journal::new(store, run, observer) }
    }

    /// How many events the log held before this journal appended any: the position of
    /// the first event it appends.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// Append one event to the store (not yet flushed).
    pub(crate) fn append(&mut self, event: &Event) -> Result<(), SchedulerError> {
        self.store.append(self.run, std::slice::from_ref(event))?;
        self.unannounced.push(event.clone());
        self.appended += 1;
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// How many events this journal appended.
    pub(crate) fn appended(&self) -> u64 {
        self.appended
    }

    /// Make everything appended durable, then announce it.
    pub(crate) fn flush(&mut self) -> Result<(), SchedulerError> {
        if self.dirty_since.take().is_some() {
            self.store.flush()?;
        }
        for e in self.unannounced.drain(..) {
            self.observer.event(self.run, &e);
        }
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
}
