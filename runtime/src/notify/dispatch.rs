//! Delivering what is durable: the dispatcher task of the owner, with retries and
//! exponential backoff, duration warnings from the clock, and the bounded wait for
//! deliveries before an owner exits.
//!
//! Owns when a notice is sent and what its record says afterwards. It never holds a
//! run's lock or its coordinator: a destination that fails or hangs delays only its own
//! notices.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Notifier, send};
use crate::model::{DeliveryState, Millis};
use crate::store::Notice;

/// The wait before the second attempt; each next one waits [`BACKOFF_FACTOR`] times more.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// How much longer each retry waits than the one before.
pub const BACKOFF_FACTOR: u32 = 2;
/// The longest wait between attempts: a destination down for hours is still tried a few
/// times an hour, not once a day.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Attempts before a notice is given up (`failed`): with the backoff above, about an hour
/// of trying — long enough to outlast a restart of the receiving service, short enough
/// that an alert is not delivered when it no longer means anything.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 12;
/// Deliveries under way at once: a burst of notices (10,000 failed task attempts, say)
/// does not open 10,000 connections.
pub const MAX_DELIVERIES_IN_FLIGHT: usize = 16;
/// How long an owner that is done (the end of `sluice run`, any command that owned the
/// state directory) waits for its notices to be tried once before it exits; what is still
/// pending stays in the store for the next owner.
pub const NOTIFY_EXIT_WAIT: Duration = Duration::from_secs(10);
/// The dispatcher looks at its clock at least this often (duration warnings, and clocks
/// that are not the wall clock).
const DISPATCH_TICK: Duration = Duration::from_millis(250);
/// How often the exit wait looks whether everything was tried.
const SETTLE_POLL: Duration = Duration::from_millis(20);

/// The wait after `attempts` failed attempts.
pub fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    INITIAL_BACKOFF.saturating_mul(BACKOFF_FACTOR.saturating_pow(exponent)).min(MAX_BACKOFF)
}

/// A durable pending notice and whether this process tried it yet.
pub(crate) struct Queued {
    notice: Notice,
    tried_here: bool,
}

impl Queued {
    pub(crate) fn new(notice: Notice) -> Queued {
        Queued { notice, tried_here: false }
    }
}

impl Notifier {
    /// Start delivering (the owner, once): what earlier owners left pending first, then
    /// what runs imply. `link` is where `/runs/ID` links point.
    pub fn start(self: &Arc<Self>, link: Option<String>) {
        if self.link.set(link.map(|l| l.trim_end_matches('/').to_string())).is_err() {
            return;
        }
        match self.notices.pending() {
            Ok(left) => {
                let now = self.clock.now_millis();
                let mut st = self.lock();
                let known: Vec<String> = st.ready.iter().map(|q| key(&q.notice)).collect();
                for mut notice in left.into_iter().filter(|n| !known.contains(&key(n))) {
                    notice.next_at = notice.next_at.min(now);
                    st.ready.push(Queued::new(notice));
                }
            }
            Err(e) => tracing::warn!("notifications left pending could not be read: {e}"),
        }
        tokio::spawn(self.clone().run());
    }

    async fn run(self: Arc<Self>) {
        loop {
            let now = self.clock.now_millis();
            self.warn_due(now);
            for notice in self.take_due(now) {
                tokio::spawn(self.clone().deliver(notice));
            }
            let next = self.next_wake(now).map_or(DISPATCH_TICK, |at| Duration::from_millis(at.saturating_sub(now)));
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(next.clamp(Duration::from_millis(1), DISPATCH_TICK)) => {}
            }
        }
    }

    /// Note the duration warnings due at `now`, make them durable and queue them.
    fn warn_due(&self, now: Millis) {
        let due: Vec<Notice> = self.lock().tracks.values_mut().flat_map(|t| t.due(now)).collect();
        if due.is_empty() {
            return;
        }
        let noted = self.note(due);
        if let Err(e) = self.store.flush() {
            tracing::warn!("duration warnings not made durable: {e}");
        }
        self.lock().ready.extend(noted.into_iter().map(Queued::new));
    }

    /// The pending notices due at `now`, as many as may be under way at once.
    fn take_due(&self, now: Millis) -> Vec<Notice> {
        let mut st = self.lock();
        let room = MAX_DELIVERIES_IN_FLIGHT.saturating_sub(st.in_flight);
        let mut taken = Vec::new();
        let mut i = 0;
        while i < st.ready.len() && taken.len() < room {
            if st.ready[i].notice.next_at <= now {
                taken.push(st.ready.swap_remove(i).notice);
            } else {
                i += 1;
            }
        }
        st.in_flight += taken.len();
        taken
    }

    /// When something is next due: a retry or a duration warning.
    fn next_wake(&self, now: Millis) -> Option<Millis> {
        let st = self.lock();
        let retries = st.ready.iter().map(|q| q.notice.next_at);
        let warnings = st.tracks.values().filter_map(|t| t.next_deadline());
        retries.chain(warnings).min().map(|at| at.max(now))
    }

    /// One attempt at `notice`, recorded; pending again (with its backoff) if it may retry.
    async fn deliver(self: Arc<Self>, mut notice: Notice) {
        let link = self.link.get().cloned().flatten().map(|base| format!("{base}/runs/{}", notice.run));
        let now_secs = self.clock.now_millis() / 1000;
        let outcome = send::deliver(&notice, link.as_deref(), self.resolver.as_ref(), now_secs).await;
        let now = self.clock.now_millis();
        let view = &mut notice.view;
        view.attempts += 1;
        match outcome {
            Ok(()) => {
                view.state = DeliveryState::Delivered;
                view.delivered_at = Some(now);
                view.last_error = None;
            }
            Err(e) => {
                let give_up = e.is_permanent() || view.attempts >= MAX_DELIVERY_ATTEMPTS;
                tracing::warn!("run {}: notification {} (attempt {}): {e}", notice.run, notice.id, view.attempts);
                view.last_error = Some(e.to_string());
                if give_up {
                    view.state = DeliveryState::Failed;
                } else {
                    notice.next_at = now + backoff(view.attempts).as_millis() as Millis;
                }
            }
        }
        if let Err(e) = self.notices.update(&notice).and_then(|()| self.store.flush()) {
            tracing::warn!("run {}: notification {}: its delivery could not be recorded: {e}", notice.run, notice.id);
        }
        let mut st = self.lock();
        st.in_flight -= 1;
        if notice.is_pending() {
            st.ready.push(Queued { notice, tried_here: true });
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Wait (at most `within`) until every notice this process holds has been tried at
    /// least once and nothing is under way: what an owner does before it exits.
    pub async fn settle(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            {
                let st = self.lock();
                let untried = st.ready.iter().any(|q| !q.tried_here) || st.staged.values().any(|s| !s.is_empty());
                if st.in_flight == 0 && !untried {
                    return;
                }
            }
            self.wake.notify_one();
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
}

fn key(notice: &Notice) -> String {
    format!("{}/{}", notice.run, notice.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_its_cap() {
        assert_eq!(backoff(1), INITIAL_BACKOFF);
        assert_eq!(backoff(2), INITIAL_BACKOFF * 2);
        assert_eq!(backoff(4), INITIAL_BACKOFF * 8);
        assert_eq!(backoff(MAX_DELIVERY_ATTEMPTS), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF, "no overflow");
        let total: Duration = (1..MAX_DELIVERY_ATTEMPTS).map(backoff).sum();
        assert!(total > Duration::from_secs(30 * 60) && total < Duration::from_secs(2 * 3600), "{total:?}");
    }
}
