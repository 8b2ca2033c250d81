//! The sled backend of [`NoticeStore`], in trees of the run store's database (one flush
//! makes an event and the notices it implies durable together).
//!
//! Owns the on-disk layout of these trees; like `sled_store.rs`, a file allowed to name
//! sled. It never decides anything and never panics on what it reads: an undecodable
//! record is a [`StoreError::Corrupt`].
//!
//! | tree             | key                         | value           |
//! |------------------|-----------------------------|-----------------|
//! | `notify.notices` | run u64 BE, then the id     | [`Notice`] JSON |
//! | `notify.pending` | the same key                | empty           |

use super::notify::{Notice, NoticeStore, notice_key};
use super::sled_store::{decode_json, encode_json, storage};
use super::{SledStore, StoreError};
use crate::model::RunId;

/// Notices in the run store's sled database.
pub struct SledNoticeStore {
    notices: sled::Tree,
    pending: sled::Tree,
}

impl SledNoticeStore {
    /// Open the notice trees of `store`'s database (created if missing).
    pub fn open(store: &SledStore) -> Result<SledNoticeStore, StoreError> {
        let db = store.db();
        Ok(SledNoticeStore {
            notices: db.open_tree("notify.notices").map_err(storage)?,
            pending: db.open_tree("notify.pending").map_err(storage)?,
        })
    }

    fn write(&self, key: &[u8], notice: &Notice) -> Result<(), StoreError> {
        self.notices.insert(key, encode_json(notice, "notice")?).map_err(storage)?;
        if notice.is_pending() {
            self.pending.insert(key, Vec::<u8>::new()).map_err(storage)?;
        } else {
            self.pending.remove(key).map_err(storage)?;
        }
        Ok(())
    }
}

impl NoticeStore for SledNoticeStore {
    fn insert_new(&self, notice: &Notice) -> Result<bool, StoreError> {
        let key = notice_key(notice.run, &notice.id);
        let bytes = encode_json(notice, "notice")?;
        let fresh = self.notices.compare_and_swap(&key, None as Option<&[u8]>, Some(bytes)).map_err(storage)?.is_ok();
        if fresh && notice.is_pending() {
            self.pending.insert(key, Vec::<u8>::new()).map_err(storage)?;
        }
        Ok(fresh)
    }

    fn update(&self, notice: &Notice) -> Result<(), StoreError> {
        self.write(&notice_key(notice.run, &notice.id), notice)
    }

    fn notices(&self, run: RunId) -> Result<Vec<Notice>, StoreError> {
        self.notices
            .scan_prefix(run.to_be_bytes())
            .map(|item| {
                let (_, bytes) = item.map_err(storage)?;
                decode_json(&bytes, || format!("a notice of run {run}"))
            })
            .collect()
    }

    fn pending(&self) -> Result<Vec<Notice>, StoreError> {
        let mut out = Vec::new();
        for item in self.pending.iter() {
            let (key, _) = item.map_err(storage)?;
            if let Some(bytes) = self.notices.get(&key).map_err(storage)? {
                out.push(decode_json(&bytes, || "a pending notice".to_string())?);
            }
        }
        Ok(out)
    }
}
