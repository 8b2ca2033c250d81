//! Notifications waiting for delivery and delivered: the [`NoticeStore`] trait, its record
//! ([`Notice`]) and the in-memory reference backend.
//!
//! Owns the contract only; the sled backend is `sled_notify.rs`, in the run store's
//! database, so a notice written when its event is appended becomes durable with that
//! event's flush (never one without the other). It keeps what it is given and never
//! decides when or whether to deliver: [`crate::notify`] does.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{DeliveryState, Millis, NotificationView, RunId};
use crate::spec::Destination;

/// One notification of a run to one destination, with what it says and how far its
/// delivery got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub run: RunId,
    /// Unique within the run (event, scope, destination): the same notice is never
    /// written twice.
    pub id: String,
    /// What `runs show` shows.
    pub view: NotificationView,
    /// Where it goes, as the run's plan pinned it (secrets by name only).
    pub destination: Destination,
    /// What it says (the generic JSON payload; no secret value, no link: the link is
    /// the delivering owner's).
    pub payload: serde_json::Value,
    /// Who started the run, its workspace and target: whose secrets the destination's
    /// `secret`/`password` are.
    pub principal: String,
    pub workspace: String,
    pub target: String,
    /// When to try next, while pending.
    pub next_at: Millis,
}

impl Notice {
    pub fn is_pending(&self) -> bool {
        self.view.state == DeliveryState::Pending
    }
}

/// Durable notices. Writes are durable once the run store's flush (which this shares)
/// returns.
pub trait NoticeStore: Send + Sync {
    /// Write `notice` unless one with its run and id exists; whether it was written.
    fn insert_new(&self, notice: &Notice) -> Result<bool, StoreError>;
    /// Replace a notice (after a delivery attempt).
    fn update(&self, notice: &Notice) -> Result<(), StoreError>;
    /// Every notice of `run`, by id.
    fn notices(&self, run: RunId) -> Result<Vec<Notice>, StoreError>;
    /// Every pending notice of every run (what an owner delivers when it opens).
    fn pending(&self) -> Result<Vec<Notice>, StoreError>;
}

/// The key a notice is found under: its run (big-endian, so a run's notices are
/// together), then its id.
pub(crate) fn notice_key(run: RunId, id: &str) -> Vec<u8> {
    let mut key = run.to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// In memory: the reference behaviour, for unit tests and runtimes without a state directory.
#[derive(Default)]
pub struct MemoryNoticeStore {
    notices: Mutex<BTreeMap<Vec<u8>, Notice>>,
}

impl MemoryNoticeStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Notice>> {
        self.notices.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl NoticeStore for MemoryNoticeStore {
    fn insert_new(&self, notice: &Notice) -> Result<bool, StoreError> {
        let mut notices = self.lock();
        let key = notice_key(notice.run, &notice.id);
        if notices.contains_key(&key) {
            return Ok(false);
        }
        notices.insert(key, notice.clone());
        Ok(true)
    }

    fn update(&self, notice: &Notice) -> Result<(), StoreError> {
        self.lock().insert(notice_key(notice.run, &notice.id), notice.clone());
        Ok(())
    }

    fn notices(&self, run: RunId) -> Result<Vec<Notice>, StoreError> {
        Ok(self.lock().values().filter(|n| n.run == run).cloned().collect())
    }

    fn pending(&self) -> Result<Vec<Notice>, StoreError> {
        Ok(self.lock().values().filter(|n| n.is_pending()).cloned().collect())
    }
}
