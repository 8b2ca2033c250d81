//! The server's inbox of outcomes: one listener takes each outcome off the outcome stream
//! and hands it to the attempt waiting for it, with the message, so that the outcome is
//! acknowledged (and leaves the stream) only once the coordinator has made the attempt's
//! end durable ([`crate::scheduler::Receipt`]). An outcome no attempt waits for yet — one a
//! worker kept while this server was down, before the resumed run adopts its attempt — is
//! held, unacknowledged, for [`ORPHAN_KEEP`]; then it is acknowledged and dropped (a
//! duplicate, or of a run that no longer waits).
//!
//! Owns the hand-over only: it never decides what an outcome means, and never
//! acknowledges an outcome it handed to an attempt.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::pull;
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::wire::WorkOutcome;
use crate::scheduler::Receipt;

/// How long an outcome no attempt waits for is kept: long enough for a restarted server to
/// resume its runs and adopt their attempts (within JetStream's duplicate window).
pub(crate) const ORPHAN_KEEP: Duration = super::DUPLICATE_WINDOW;
/// How often held outcomes are looked at.
const SWEEP: Duration = Duration::from_secs(5);

/// An outcome and the stream message it came in (acknowledged when it is durable).
pub(crate) struct Delivered {
    pub(crate) outcome: WorkOutcome,
    message: Message,
}

impl Delivered {
    /// What acknowledges the outcome once its attempt's end is durable.
    pub(crate) fn receipt(&self) -> Receipt {
        let (message, handle) = (self.message.clone(), tokio::runtime::Handle::current());
        let id = self.outcome.id.clone();
        Receipt::new(move || {
            let (message, id) = (message.clone(), id.clone());
            handle.spawn(async move {
                if let Err(e) = message.ack().await {
                    // it comes again, finds no attempt waiting, and is dropped after a while
                    tracing::warn!(error = %e, id, "acknowledging an outcome");
                }
            });
        })
    }
}

/// Attempts waiting for their outcome and outcomes waiting for their attempt, by id.
#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: HashMap<String, oneshot::Sender<Delivered>>,
    held: HashMap<String, (Delivered, Instant)>,
}

impl Inbox {
    /// Wait for attempt `id`'s outcome: one held already is handed at once.
    pub(crate) fn wait_for(&self, id: &str) -> oneshot::Receiver<Delivered> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.held.remove(id) {
            Some((delivered, _)) => drop(tx.send(delivered)),
            None => drop(state.waiting.insert(id.to_string(), tx)),
        }
        rx
    }

    /// Stop waiting for attempt `id`.
    pub(crate) fn forget(&self, id: &str) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).waiting.remove(id);
    }

    /// Whether an outcome of attempt `id` is held (arrived before its attempt was adopted).
    pub(crate) fn holds(&self, id: &str) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).held.contains_key(id)
    }

    /// Hand `delivered` to its attempt, else hold it.
    fn received(&self, delivered: Delivered) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let id = delivered.outcome.id.clone();
        let delivered = match state.waiting.remove(&id) {
            Some(tx) => match tx.send(delivered) {
                Ok(()) => return,
                // the attempt stopped waiting meanwhile
                Err(back) => back,
            },
            None => delivered,
        };
        tracing::debug!(id, worker = %delivered.outcome.worker, "an outcome no attempt waits for (yet): held");
        // a redelivery of a held outcome keeps its first arrival
        let since = state.held.get(&id).map_or_else(Instant::now, |(_, since)| *since);
        state.held.insert(id, (delivered, since));
    }

    /// Outcomes held longer than [`ORPHAN_KEEP`], taken out.
    fn expired(&self, now: Instant) -> Vec<Delivered> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let old: Vec<String> =
            state.held.iter().filter(|(_, (_, since))| now >= *since + ORPHAN_KEEP).map(|(id, _)| id.clone()).collect();
        old.into_iter().filter_map(|id| state.held.remove(&id).map(|(d, _)| d)).collect()
    }
}

/// Take outcomes off the stream into `inbox` until the stream ends.
pub(crate) async fn listen(inbox: std::sync::Arc<Inbox>, mut messages: pull::Stream) {
    let mut sweep = tokio::time::interval(SWEEP);
    loop {
        tokio::select! {
            next = messages.next() => match next {
                None => break,
                Some(Err(e)) => tracing::warn!(error = %e, "reading an outcome"),
                Some(Ok(message)) => match serde_json::from_slice::<WorkOutcome>(&message.payload) {
                    Ok(outcome) => inbox.received(Delivered { outcome, message }),
                    Err(e) => {
                        tracing::warn!(error = %e, "an outcome that is not one: dropped");
                        let _ = message.ack().await;
                    }
                },
            },
            _ = sweep.tick() => {
                for old in inbox.expired(Instant::now()) {
                    tracing::debug!(id = %old.outcome.id, "an outcome no attempt claimed: dropped");
                    let _ = old.message.ack().await;
                }
            }
        }
    }
    tracing::warn!("the outcome stream ended: attempts on workers will not be told apart from lost ones");
}
