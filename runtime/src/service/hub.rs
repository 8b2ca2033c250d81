//! The fan-out of flushed events to subscribers (the CLI's board, the SSE stream).
//!
//! The [`Hub`] is the observer of every run the service drives: the journal tells it about
//! events once they are durable, so a subscriber only ever sees flushed events. It numbers
//! each run's events (their positions in the run's log) and groups child runs (of
//! `run_job` tasks) with the top-level run that started them. A [`Subscription`] replays a
//! run's log from the store up to what was announced when it subscribed, then follows the
//! live events, and ends after the run's `RunFinished`. It never writes anything.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::model::{Event, RunId};
use crate::scheduler::Observer;
use crate::store::Store;

/// How many live events a subscriber may fall behind before it catches up from the store.
const FOLLOW_BUFFER: usize = 1024;

/// One event of a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamItem {
    pub run_id: RunId,
    /// The event's position in its run's log.
    pub seq: u64,
    /// Part of what had happened before the point the subscriber asked to follow from
    /// (shown as history, not as news).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub history: bool,
    pub event: Event,
}

#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
    /// The service's folded runs, told of each durable event with its position.
    views: Option<Arc<super::views::Views>>,
}

impl Hub {
    /// A hub that also keeps `views` folded as events become durable.
    pub(crate) fn with_views(views: Arc<super::views::Views>) -> Hub {
        Hub { state: Mutex::default(), views: Some(views) }
    }
}

#[derive(Default)]
struct HubState {
    /// The top-level run of each child run seen.
    roots: HashMap<RunId, RunId>,
    /// Events announced (flushed) per run this process drives.
    announced: HashMap<RunId, u64>,
    /// Live events per top-level run, while anyone follows it.
    channels: HashMap<RunId, broadcast::Sender<Arc<StreamItem>>>,
}

impl HubState {
    fn root(&self, run: RunId) -> RunId {
        let mut r = run;
        while let Some(&up) = self.roots.get(&r) {
            if up == r {
                break;
            }
            r = up;
        }
        r
    }

    fn learn(&mut self, run: RunId, event: &Event) {
        if let Event::ChildRunStarted { child, .. } = event {
            let root = self.root(run);
            self.roots.insert(*child, root);
        }
    }

    /// Forget a finished top-level run and its children.
    fn forget(&mut self, root: RunId) {
        let children: Vec<RunId> = self.roots.iter().filter(|(_, r)| **r == root).map(|(c, _)| *c).collect();
        for c in children {
            self.roots.remove(&c);
            self.announced.remove(&c);
        }
        self.announced.remove(&root);
        self.channels.remove(&root);
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Follow `run` (a top-level run): replay its log (and its child runs') up to what is
    /// announced, events before position `from` of the top-level run marked as history,
    /// then the live events; ends after its `RunFinished`.
    pub(crate) fn subscribe(self: &Arc<Self>, store: Arc<dyn Store>, run: RunId, from: u64) -> Subscription {
        let (rx, announced, key) = {
            let mut st = self.lock();
            let root = st.root(run);
            // a run this process drives: follow its live events from the start
            let rx = st.announced.contains_key(&root).then(|| st.channel(root));
            (rx, st.announced.clone(), root)
        };
        let driven = rx.is_some();
        let mut sub = Subscription {
            hub: self.clone(),
            store,
            root: run,
            key,
            rx: rx.unwrap_or_else(closed),
            announced,
            next: HashMap::new(),
            pending: VecDeque::new(),
            done: false,
        };
        let finished = sub.replay(run, Some(from));
        if !driven && !finished && !sub.done {
            // unfinished and not driven here (yet): follow it should a resume drive it,
            // reading from the store what was flushed before the channel existed
            sub.rx = self.lock().channel(key);
            sub.catch_up();
        }
        sub
    }
}

/// A receiver whose sender is gone: a finished run not driven here has nothing to follow.
fn closed() -> broadcast::Receiver<Arc<StreamItem>> {
    broadcast::channel(1).1
}

impl HubState {
    /// A new receiver of `root`'s live events (its channel made if needed).
    fn channel(&mut self, root: RunId) -> broadcast::Receiver<Arc<StreamItem>> {
        self.channels.entry(root).or_insert_with(|| broadcast::channel(FOLLOW_BUFFER).0).subscribe()
    }

    /// The last subscriber of `root` left: drop its channel unless a run driven here
    /// still sends to it (it is forgotten when the run finishes).
    fn unsubscribed(&mut self, root: RunId) {
        let unused = self.channels.get(&root).is_some_and(|tx| tx.receiver_count() == 0);
        if unused && !self.announced.contains_key(&root) {
            self.channels.remove(&root);
        }
    }

    /// How many live-event channels are open (for tests).
    #[cfg(test)]
    fn open_channels(&self) -> usize {
        self.channels.len()
    }
}

impl Hub {
    /// How many of `run`'s events are announced (durable), while this process drives it.
    pub(crate) fn announced(&self, run: RunId) -> Option<u64> {
        self.lock().announced.get(&run).copied()
    }
}

impl Observer for Hub {
    fn attached(&self, run: RunId, history: &[Event]) {
        let mut st = self.lock();
        st.announced.insert(run, history.len() as u64);
        for e in history {
            st.learn(run, e);
        }
        drop(st);
        if let Some(views) = &self.views {
            views.attached(run, history);
        }
    }

    fn event(&self, run: RunId, event: &Event) {
        let mut st = self.lock();
        let seq = {
            let n = st.announced.entry(run).or_insert(0);
            *n += 1;
            *n - 1
        };
        st.learn(run, event);
        let root = st.root(run);
        if let Some(tx) = st.channels.get(&root) {
            let item = StreamItem { run_id: run, seq, history: false, event: event.clone() };
            if tx.send(Arc::new(item)).is_err() {
                st.channels.remove(&root);
            }
        }
        if run == root && matches!(event, Event::RunFinished { .. }) {
            st.forget(root);
        }
        drop(st);
        if let Some(views) = &self.views {
            views.durable(run, seq, event);
        }
    }
}

/// A run's flushed events: first its log so far, then what happens next.
pub struct Subscription {
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    root: RunId,
    /// The top-level run whose channel `rx` receives from.
    key: RunId,
    rx: broadcast::Receiver<Arc<StreamItem>>,
    /// Events announced per run the hub tracks (the rest of a log is durable as stored).
    announced: HashMap<RunId, u64>,
    /// Per run, the position below which every event was sent or is queued.
    next: HashMap<RunId, u64>,
    pending: VecDeque<StreamItem>,
    done: bool,
}

impl Subscription {
    /// The next event; `None` once the run has finished (or its log cannot be read).
    pub async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.run_id == self.root && !item.history && matches!(item.event, Event::RunFinished { .. }) {
                    self.done = true;
                    self.pending.clear();
                }
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.rx.recv().await {
                Ok(item) => {
                    let next = self.next.entry(item.run_id).or_insert(0);
                    if item.seq >= *next {
                        *next = item.seq + 1;
                        self.pending.push_back((*item).clone());
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(),
                Err(broadcast::error::RecvError::Closed) => self.done = true,
            }
        }
    }

    /// Queue `run`'s events from the store (what is durable of it), and its child runs';
    /// with `from`, the events before it are history.
    /// Returns whether `run`'s log, as read, ends with the run finished (its last
    /// `RunFinished` after any repair started) — of the whole log when nothing of it was
    /// read before. Only what this subscription has not seen yet is read (catching up after
    /// falling behind must not read the whole log again).
    fn replay(&mut self, run: RunId, from: Option<u64>) -> bool {
        let start = self.next.get(&run).copied().unwrap_or(0) as usize;
        let Ok(events) = self.store.events_from(run, start as u64) else {
            self.done = true;
            return false;
        };
        let known = start + events.len();
        let end = self.announced.get(&run).map_or(known, |&n| (n as usize).min(known));
        let mut children = Vec::new();
        let mut finished = false;
        for (i, event) in (start..end).zip(events) {
            match &event {
                Event::ChildRunStarted { child, .. } => {
                    // a child started before the point followed from is history too
                    let child_history = from.is_some_and(|f| (i as u64) < f);
                    children.push((*child, child_history));
                }
                Event::RunFinished { .. } => finished = true,
                Event::RepairStarted { .. } | Event::RunResumed { .. } => finished = false,
                _ => {}
            }
            let history = from.is_some_and(|f| (i as u64) < f);
            self.pending.push_back(StreamItem { run_id: run, seq: i as u64, history, event });
        }
        self.next.insert(run, start.max(end) as u64);
        for (child, history) in children {
            self.replay(child, Some(if history { u64::MAX } else { 0 }));
        }
        finished
    }

    /// Fell behind the live events: read what was missed from the store, up to what the
    /// hub has announced by now.
    fn catch_up(&mut self) {
        self.announced = self.hub.lock().announced.clone();
        let root = self.root;
        // child runs already followed missed events too (new ones are found by the replay)
        let mut known: Vec<RunId> = self.next.keys().copied().filter(|&r| r != root).collect();
        known.sort_unstable();
        self.replay(root, None);
        for run in known {
            self.replay(run, None);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // our receiver still counts while this runs: swap it for one of no channel first
        drop(std::mem::replace(&mut self.rx, closed()));
        self.hub.lock().unsubscribed(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunResult;
    use crate::store::MemoryStore;

    /// A hang guard only: every stream below ends at once when it is right.
    const NEVER: std::time::Duration = std::time::Duration::from_secs(20);

    fn store_with(run: RunId, events: &[Event]) -> Arc<dyn Store> {
        let store = MemoryStore::new();
        store.append(run, events).unwrap();
        Arc::new(store)
    }

    async fn drain(sub: &mut Subscription) -> Vec<StreamItem> {
        let mut out = Vec::new();
        while let Some(item) = tokio::time::timeout(NEVER, sub.next()).await.expect("the stream never ended") {
            out.push(item);
        }
        out
    }

    #[tokio::test]
    async fn following_a_finished_run_from_past_its_end_ends_and_keeps_no_channel() {
        let finished =
            [Event::RunQueued { reason: "q".into(), at: 1 }, Event::RunFinished { result: RunResult::Success, at: 2 }];
        let store = store_with(7, &finished);
        let hub = Arc::new(Hub::default());
        let mut sub = hub.subscribe(store.clone(), 7, 100);
        assert_eq!(hub.lock().open_channels(), 0, "a finished run not driven here gets no channel");
        let items = drain(&mut sub).await;
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|i| i.history), "everything before `from` is history: {items:?}");
        // from 0 it ends after its RunFinished, as before
        let mut sub = hub.subscribe(store, 7, 0);
        assert_eq!(drain(&mut sub).await.len(), 2);
        assert_eq!(hub.lock().open_channels(), 0);
    }

    #[tokio::test]
    async fn the_channel_of_an_unfinished_run_goes_with_its_last_subscriber() {
        let store = store_with(8, &[Event::RunQueued { reason: "q".into(), at: 1 }]);
        let hub = Arc::new(Hub::default());
        let first = hub.subscribe(store.clone(), 8, 0);
        let second = hub.subscribe(store, 8, 0);
        assert_eq!(hub.lock().open_channels(), 1, "an unfinished run is followed should a resume drive it");
        drop(first);
        assert_eq!(hub.lock().open_channels(), 1, "one subscriber is left");
        drop(second);
        assert_eq!(hub.lock().open_channels(), 0, "nobody follows it any more");
    }

    #[tokio::test]
    async fn a_subscriber_of_an_undriven_run_sees_it_finish_when_a_resume_drives_it() {
        let store = MemoryStore::new();
        store.append(9, &[Event::RunQueued { reason: "q".into(), at: 1 }]).unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let hub = Arc::new(Hub::default());
        let mut sub = hub.subscribe(store.clone(), 9, 0);
        hub.attached(9, &store.events(9).unwrap());
        let resumed = Event::RunResumed { at: 3 };
        let end = Event::RunFinished { result: RunResult::Success, at: 4 };
        store.append(9, &[resumed.clone(), end.clone()]).unwrap();
        hub.event(9, &resumed);
        hub.event(9, &end);
        let seqs: Vec<u64> = drain(&mut sub).await.iter().map(|i| i.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        drop(sub);
        assert_eq!(hub.lock().open_channels(), 0, "forgotten when the run finished");
    }
}
