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
        let (rx, announced) = {
            let mut st = self.lock();
            let root = st.root(run);
            let rx = st.channels.entry(root).or_insert_with(|| broadcast::channel(FOLLOW_BUFFER).0).subscribe();
            (rx, st.announced.clone())
        };
        let mut sub = Subscription {
            hub: self.clone(),
            store,
            root: run,
            rx,
            announced,
            next: HashMap::new(),
            pending: VecDeque::new(),
            done: false,
        };
        sub.replay(run, Some(from));
        sub
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
    }
}

/// A run's flushed events: first its log so far, then what happens next.
pub struct Subscription {
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    root: RunId,
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
    fn replay(&mut self, run: RunId, from: Option<u64>) {
        let start = self.next.get(&run).copied().unwrap_or(0) as usize;
        // only what this subscription has not seen yet is read (catching up after falling
        // behind must not read the whole log again); child runs started earlier were
        // replayed when their start was
        let Ok(events) = self.store.events_from(run, start as u64) else {
            self.done = true;
            return;
        };
        let known = start + events.len();
        let end = self.announced.get(&run).map_or(known, |&n| (n as usize).min(known));
        let mut children = Vec::new();
        for (i, event) in (start..end).zip(events) {
            let history = from.is_some_and(|f| (i as u64) < f);
            if let Event::ChildRunStarted { child, .. } = &event {
                // a child started before the point followed from is history too
                children.push((*child, history));
            }
            self.pending.push_back(StreamItem { run_id: run, seq: i as u64, history, event });
        }
        self.next.insert(run, start.max(end) as u64);
        for (child, history) in children {
            self.replay(child, Some(if history { u64::MAX } else { 0 }));
        }
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
