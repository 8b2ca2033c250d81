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
    /// Told after the next flush: their attempts' ends are durable then.
    receipts: Vec<super::Receipt>,
}

impl Journal {
    /// The journal of a new run.
    pub(crate) fn new(store: Arc<dyn Store>, run: RunId, observer: Arc<dyn Observer>) -> Self {
        Journal {
            store,
            run,
            observer,
            unannounced: Vec::new(),
            dirty_since: None,
            base: 0,
            appended: 0,
            receipts: Vec::new(),
        }
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
        crate::util::failpoint::hit(crate::util::failpoint::Point::Append);
        self.observer.appended(self.run, event);
        self.unannounced.push(event.clone());
        self.appended += 1;
        self.dirty_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// How many events this journal appended.
    pub(crate) fn appended(&self) -> u64 {
        self.appended
    }

    /// Make everything appended durable, then announce it and tell the receipts.
    pub(crate) fn flush(&mut self) -> Result<(), SchedulerError> {
        if self.dirty_since.take().is_some() {
            self.store.flush()?;
        }
        for e in self.unannounced.drain(..) {
            self.observer.event(self.run, &e);
        }
        for receipt in self.receipts.drain(..) {
            receipt.durable();
        }
        Ok(())
    }

    /// Tell `receipt` once what was appended so far is durable (after the next flush).
    pub(crate) fn when_durable(&mut self, receipt: super::Receipt) {
        self.receipts.push(receipt);
    }

    /// When the pending group must be flushed, if anything is pending.
    pub(crate) fn flush_deadline(&self) -> Option<Instant> {
        self.dirty_since.map(|t| t + GROUP_COMMIT_WINDOW)
    }

    /// Flush if the group's window has passed.
    pub(crate) fn flush_if_due(&mut self) -> Result<(), SchedulerError> {
        self.flush_if_due_at(Instant::now())
    }

    /// Flush if the group's window has passed at `now`.
    fn flush_if_due_at(&mut self, now: Instant) -> Result<(), SchedulerError> {
        match self.flush_deadline() {
            Some(d) if now >= d => self.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::MemoryStore;

    #[derive(Default)]
    struct Shown(Mutex<Vec<Event>>);

    impl Observer for Shown {
        fn event(&self, _run: RunId, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    fn cancel(at: u64) -> Event {
        Event::CancelRequested { reason: "test".into(), timed_out: false, at, stop_cleanup: false }
    }

    #[test]
    fn a_group_is_shown_once_its_window_from_the_first_event_has_passed() {
        let shown = Arc::new(Shown::default());
        let mut journal = Journal::new(Arc::new(MemoryStore::new()), 1, shown.clone());
        let count = || shown.0.lock().unwrap().len();
        assert_eq!(journal.flush_deadline(), None, "nothing pending");
        journal.append(&cancel(1)).unwrap();
        let deadline = journal.flush_deadline().expect("a group is pending");
        journal.append(&cancel(2)).unwrap();
        assert_eq!(journal.flush_deadline(), Some(deadline), "the window runs from the group's first event");
        assert!(deadline <= Instant::now() + GROUP_COMMIT_WINDOW);
        journal.flush_if_due_at(deadline - Duration::from_millis(1)).unwrap();
        assert_eq!(count(), 0, "within the window nothing is flushed, so nothing is shown");
        journal.flush_if_due_at(deadline).unwrap();
        assert_eq!(count(), 2, "the whole group is shown once the window has passed");
        assert_eq!(journal.flush_deadline(), None);
        journal.append(&cancel(3)).unwrap();
        assert_eq!(count(), 2, "a new group waits for its own window");
        journal.flush().unwrap();
        assert_eq!(*shown.0.lock().unwrap(), [cancel(1), cancel(2), cancel(3)], "in journal order");
    }
}
