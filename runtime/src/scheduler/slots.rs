//! Sandbox slots: the process-wide bound on sandboxes at once, shared between workspaces
//! by weighted fair queuing, so one tenant flooding the process cannot starve another.
//!
//! A run's coordinator takes a slot for each component or command attempt
//! ([`Slots::try_acquire`]); when none is free it waits in its workspace's line
//! ([`Slots::wait`]). A slot given back goes to the line whose next ticket has the
//! smallest start tag (start-time fair queuing): a grant to workspace `w` starts at
//! `max(finish(w), V)` and moves `finish(w)` on by `1 / weight(w)`; `V` is the start tag
//! of the latest grant, so a workspace that was idle banks no credit. A workspace never
//! holds more than its cap. Within a workspace, tickets are first come, first served.
//!
//! Owns only the accounting: it never runs anything, never sleeps, and reads time only
//! through the injected [`Clock`] (to report how long a ticket waited, to [`Telemetry`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use crate::model::{Clock, Telemetry};

/// A workspace's weight when the configuration names none.
pub const DEFAULT_WEIGHT: u32 = 1;

/// How slots are shared: weights and caps per workspace (others get
/// [`DEFAULT_WEIGHT`] and no cap but the total).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FairShare {
    pub weights: BTreeMap<String, u32>,
    pub caps: BTreeMap<String, usize>,
}

/// The slots of one process.
pub struct Slots {
    total: usize,
    share: FairShare,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn Telemetry>>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    in_use: usize,
    /// The start tag of the latest grant.
    virtual_time: f64,
    tenants: HashMap<Arc<str>, Tenant>,
    next_ticket: u64,
}

#[derive(Default)]
struct Tenant {
    held: usize,
    finish: f64,
    line: VecDeque<Ticket>,
}

struct Ticket {
    id: u64,
    since: SystemTime,
    tx: oneshot::Sender<SlotPermit>,
}

/// One slot, held until dropped.
pub struct SlotPermit {
    slots: Arc<Slots>,
    workspace: Arc<str>,
    armed: bool,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        if self.armed {
            self.slots.release(&self.workspace);
        }
    }
}

impl std::fmt::Debug for SlotPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotPermit").field("workspace", &self.workspace).finish()
    }
}

/// A ticket in a workspace's line: resolves to the slot handed to it. Dropping it leaves
/// the line (and gives back a slot handed over but not taken).
pub struct SlotWait {
    slots: Arc<Slots>,
    workspace: Arc<str>,
    ticket: u64,
    rx: oneshot::Receiver<SlotPermit>,
}

impl Future for SlotWait {
    type Output = SlotPermit;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SlotPermit> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(permit)) => Poll::Ready(permit),
            // the sender lives in the line until a permit is sent: never dropped unsent
            Poll::Ready(Err(_)) | Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SlotWait {
    fn drop(&mut self) {
        {
            let mut inner = self.slots.lock();
            if let Some(t) = inner.tenants.get_mut(&self.workspace)
                && let Ok(i) = t.line.binary_search_by_key(&self.ticket, |ticket| ticket.id)
            {
                // a line is in ticket order
                t.line.remove(i);
            }
        }
        // a permit already handed over is dropped here, outside the lock: released
        self.rx.close();
        drop(self.rx.try_recv());
    }
}

impl Slots {
    pub fn new(total: usize, share: FairShare, clock: Arc<dyn Clock>) -> Arc<Slots> {
        Slots::with_observer(total, share, clock, None)
    }

    pub fn with_observer(
        total: usize,
        share: FairShare,
        clock: Arc<dyn Clock>,
        observer: Option<Arc<dyn Telemetry>>,
    ) -> Arc<Slots> {
        Arc::new(Slots { total, share, clock, observer, inner: Mutex::new(Inner::default()) })
    }

    pub fn total(&self) -> usize {
        self.total
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn weight(&self, workspace: &str) -> f64 {
        f64::from(self.share.weights.get(workspace).copied().unwrap_or(DEFAULT_WEIGHT).max(1))
    }

    fn cap(&self, workspace: &str) -> usize {
        self.share.caps.get(workspace).copied().unwrap_or(self.total).min(self.total)
    }

    /// Slots `workspace` could take right now.
    pub fn available(&self, workspace: &str) -> usize {
        let inner = self.lock();
        let held = inner.tenants.get(workspace).map_or(0, |t| t.held);
        (self.total - inner.in_use).min(self.cap(workspace).saturating_sub(held))
    }

    /// Tickets waiting in every line.
    pub fn waiting(&self) -> usize {
        self.lock().tenants.values().map(|t| t.line.len()).sum()
    }

    /// A free slot for `workspace`, if there is one it may take now. (A free slot
    /// means no line that may take one is waiting: slots given back go to lines first.)
    pub fn try_acquire(self: &Arc<Self>, workspace: &str) -> Option<SlotPermit> {
        let mut inner = self.lock();
        let key = self.key(&mut inner, workspace);
        let cap = self.cap(workspace);
        let tenant = inner.tenants.get(&key)?;
        if inner.in_use >= self.total || tenant.held >= cap {
            return None;
        }
        let permit = self.grant(&mut inner, &key);
        drop(inner);
        self.observe(workspace, Duration::ZERO);
        Some(permit)
    }

    /// A ticket in `workspace`'s line, resolving to a slot when its turn comes.
    pub fn wait(self: &Arc<Self>, workspace: &str) -> SlotWait {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        let key = self.key(&mut inner, workspace);
        inner.next_ticket += 1;
        let ticket = inner.next_ticket;
        let since = self.clock.now();
        if let Some(t) = inner.tenants.get_mut(&key) {
            t.line.push_back(Ticket { id: ticket, since, tx });
        }
        let granted = self.dispatch(&mut inner);
        drop(inner);
        self.report(granted);
        SlotWait { slots: self.clone(), workspace: key, ticket, rx }
    }

    /// The interned name of `workspace`, its tenant created if new.
    fn key(&self, inner: &mut Inner, workspace: &str) -> Arc<str> {
        if let Some((k, _)) = inner.tenants.get_key_value(workspace) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(workspace);
        inner.tenants.insert(k.clone(), Tenant::default());
        k
    }

    /// Count a slot as `workspace`'s and charge its virtual time.
    fn grant(self: &Arc<Self>, inner: &mut Inner, workspace: &Arc<str>) -> SlotPermit {
        let weight = self.weight(workspace);
        let now = inner.virtual_time;
        inner.in_use += 1;
        if let Some(t) = inner.tenants.get_mut(workspace) {
            let start = t.finish.max(now);
            t.finish = start + 1.0 / weight;
            t.held += 1;
            inner.virtual_time = start;
        }
        SlotPermit { slots: self.clone(), workspace: workspace.clone(), armed: true }
    }

    fn release(self: &Arc<Self>, workspace: &str) {
        let mut inner = self.lock();
        inner.in_use = inner.in_use.saturating_sub(1);
        if let Some(t) = inner.tenants.get_mut(workspace) {
            t.held = t.held.saturating_sub(1);
        }
        let granted = self.dispatch(&mut inner);
        drop(inner);
        self.report(granted);
    }

    /// Hand free slots to waiting lines, smallest start tag first; who got one and how long
    /// they waited.
    fn dispatch(self: &Arc<Self>, inner: &mut Inner) -> Vec<(Arc<str>, Duration)> {
        let mut granted = Vec::new();
        while inner.in_use < self.total {
            let now = inner.virtual_time;
            let next = inner
                .tenants
                .iter()
                .filter(|(k, t)| !t.line.is_empty() && t.held < self.cap(k))
                .map(|(k, t)| (t.finish.max(now), k.clone()))
                .min_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            let Some((_, key)) = next else { break };
            let Some(ticket) = inner.tenants.get_mut(&key).and_then(|t| t.line.pop_front()) else { break };
            let permit = self.grant(inner, &key);
            match ticket.tx.send(permit) {
                Ok(()) => {
                    let waited = self.clock.now().duration_since(ticket.since).unwrap_or_default();
                    granted.push((key, waited));
                }
                Err(mut permit) => {
                    // the ticket was dropped meanwhile: undo, without re-entering the lock
                    permit.armed = false;
                    inner.in_use -= 1;
                    if let Some(t) = inner.tenants.get_mut(&key) {
                        t.held -= 1;
                    }
                }
            }
        }
        granted
    }

    fn report(&self, granted: Vec<(Arc<str>, Duration)>) {
        for (workspace, waited) in granted {
            self.observe(&workspace, waited);
        }
    }

    fn observe(&self, workspace: &str, waited: Duration) {
        if let Some(o) = &self.observer {
            o.slot_granted(workspace, waited);
        }
    }
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
