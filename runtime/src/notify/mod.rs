//! Notifications: what a run's events imply for the destinations its job and tasks name,
//! kept durably, delivered at least once by the owning process, off the run's path.
//!
//! Owns the [`Notifier`]: an [`Observer`] of every run the owner drives. When an event
//! is appended to a run's log (before its flush) the notifier works out the notices it
//! implies ([`track`]) and writes them to the [`NoticeStore`] — in the run store's
//! database, so the event's flush makes them durable with it; once the event is flushed
//! (announced) they go to the dispatcher ([`dispatch`]), which delivers each
//! ([`send`]: webhooks signed with HMAC-SHA256, Slack- and Teams-shaped payloads; mail
//! through SMTP), retries with exponential backoff, records every attempt (state, count,
//! last error) and picks up what is still pending when a new owner opens the store.
//! Duration warnings come from the runtime's [`Clock`].
//!
//! It must never fail, block or slow a run (a store error while noting a notice is
//! logged; sending happens on tasks of its own, each bounded by
//! [`send::DELIVERY_TIMEOUT`]), and never put a secret value into a notice, a payload or
//! an error: payloads are built from the run's log, whose task errors the sandbox already
//! redacted, and the secrets a destination reveals are redacted from what is sent.

mod dispatch;
mod mail;
mod payload;
mod send;
mod track;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::model::{Clock, Event, NotificationView, RunId};
use crate::scheduler::Observer;
use crate::secrets::Resolver;
use crate::store::{Notice, NoticeStore, Store, StoreError};

pub use dispatch::{
    BACKOFF_FACTOR, INITIAL_BACKOFF, MAX_BACKOFF, MAX_DELIVERIES_IN_FLIGHT, MAX_DELIVERY_ATTEMPTS, NOTIFY_EXIT_WAIT,
    backoff,
};
pub use send::{DELIVERY_TIMEOUT, SIGNATURE_HEADER, SendError, TIMESTAMP_HEADER, sign};

/// The environment variable naming the dashboard a notification links to
/// (`URL/runs/ID`); without it, `sluice serve --listen`'s address is used.
pub const DASHBOARD_URL_ENV: &str = "SLUICE_DASHBOARD_URL";

/// Why reading notifications failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifications: {0}")]
    Store(#[from] StoreError),
}

/// The owner's notifications: noted as events are appended, delivered once durable.
pub struct Notifier {
    notices: Arc<dyn NoticeStore>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    resolver: Option<Arc<dyn Resolver>>,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    /// Where `/runs/ID` links point (set when delivery starts).
    link: OnceLock<Option<String>>,
}

#[derive(Default)]
struct State {
    /// Runs with notifications, as far as their events went.
    tracks: HashMap<RunId, track::Track>,
    /// Noted, not yet durable (their event is not flushed yet).
    staged: HashMap<RunId, Vec<Notice>>,
    /// Durable and pending: what the dispatcher delivers.
    ready: Vec<dispatch::Queued>,
    /// Deliveries under way.
    in_flight: usize,
}

impl Notifier {
    /// The notifier over a runtime's stores, clock and secrets.
    pub fn new(
        notices: Arc<dyn NoticeStore>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        resolver: Option<Arc<dyn Resolver>>,
    ) -> Notifier {
        Notifier {
            notices,
            store,
            clock,
            resolver,
            state: Mutex::new(State::default()),
            wake: tokio::sync::Notify::new(),
            link: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A run's notifications as `runs show` shows them.
    pub fn views(&self, run: RunId) -> Result<Vec<NotificationView>, NotifyError> {
        let mut notices = self.notices.notices(run)?;
        notices.sort_by(|a, b| (a.view.created_at, &a.id).cmp(&(b.view.created_at, &b.id)));
        Ok(notices.into_iter().map(|n| n.view).collect())
    }

    /// Write each new notice (not flushed: the event's flush makes it durable); the ones
    /// written are returned.
    fn note(&self, notices: Vec<Notice>) -> Vec<Notice> {
        notices
            .into_iter()
            .filter(|notice| match self.notices.insert_new(notice) {
                Ok(fresh) => fresh,
                Err(e) => {
                    tracing::warn!("run {}: notification {} not recorded: {e}", notice.run, notice.id);
                    false
                }
            })
            .collect()
    }
}

impl Observer for Notifier {
    fn attached(&self, run: RunId, history: &[Event]) {
        let Some(mut track) = history.first().and_then(|first| track::Track::new(run, first)) else { return };
        for event in &history[1..] {
            // already noted when they were appended (and durable with them)
            let _ = track.apply(event);
        }
        self.lock().tracks.insert(run, track);
        self.wake.notify_one();
    }

    fn appended(&self, run: RunId, event: &Event) {
        let mut st = self.lock();
        if matches!(event, Event::RunCreated { .. }) {
            if let Some(track) = track::Track::new(run, event) {
                st.tracks.insert(run, track);
            }
            return;
        }
        let Some(track) = st.tracks.get_mut(&run) else { return };
        let implied = track.apply(event);
        if track.finished {
            st.tracks.remove(&run);
        }
        let noted = self.note(implied);
        if !noted.is_empty() {
            st.staged.entry(run).or_default().extend(noted);
        }
    }

    fn event(&self, run: RunId, _event: &Event) {
        let mut st = self.lock();
        let Some(durable) = st.staged.remove(&run) else { return };
        st.ready.extend(durable.into_iter().map(dispatch::Queued::new));
        drop(st);
        self.wake.notify_one();
    }
}

/// Tells two observers about every event (the hub and the notifier).
pub struct Both(pub Arc<dyn Observer>, pub Arc<dyn Observer>);

impl Observer for Both {
    fn event(&self, run: RunId, event: &Event) {
        self.0.event(run, event);
        self.1.event(run, event);
    }

    fn attached(&self, run: RunId, history: &[Event]) {
        self.0.attached(run, history);
        self.1.attached(run, history);
    }

    fn appended(&self, run: RunId, event: &Event) {
        self.0.appended(run, event);
        self.1.appended(run, event);
    }
}

#[cfg(test)]
mod tests;
