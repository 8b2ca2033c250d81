//! File arrival: listing a watched location and deciding when a batch of new files is
//! ready — new files seen, then the location quiet for `wait_after_last_change`, and at
//! least `min_time_between_triggers` since the last run it started.
//!
//! Listing is by polling ([`POLL_INTERVAL`] on the engine's clock), the same for every
//! location: a local directory today (recursively; hidden entries and symbolic links are
//! not followed). Which files are *new* is the engine's question to the store (a file
//! version not yet consumed); this module only lists and times.

use std::path::Path;
use std::time::Duration;

use super::TriggerError;
use crate::model::{Millis, TriggerFile};
use crate::spec::triggers::FileArrival;

/// How often a watched location is listed (engine clock): a listing of a large
/// directory is not free, and arrival is measured in tens of seconds anyway.
pub const POLL_INTERVAL: Duration = Duration::from_secs(10);

/// The longest a failing location waits between looks. After a failed listing (a broken
/// credential, an unreachable endpoint) the wait doubles from [`POLL_INTERVAL`] up to this,
/// so a broken trigger does not reveal its secret (and write an audit record) every ten
/// seconds all night; the first good listing brings it back to [`POLL_INTERVAL`].
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// The most files one run is started for; more wait for the next run (a batch is pinned
/// into the run's plan and rendered into `{{ trigger.files }}`).
pub const MAX_FILES_PER_RUN: usize = 1000;

/// The most entries one listing reads (a bound on a runaway directory).
pub const MAX_LISTED: usize = 100_000;

/// Every regular file under `root`, relative paths in order, with size and mtime.
pub fn list_local(url: &str) -> Result<Vec<TriggerFile>, TriggerError> {
    let root = Path::new(url);
    let fail = |e: std::io::Error| TriggerError::Listing { url: url.to_string(), message: e.to_string() };
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let meta = entry.path().symlink_metadata().map_err(fail)?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.is_file() {
                let rel = entry.path().strip_prefix(root).map(|p| p.to_string_lossy().into_owned());
                let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                out.push(TriggerFile {
                    path: rel.unwrap_or_default(),
                    size: meta.len(),
                    etag: None,
                    mtime: mtime.map(|d| d.as_millis() as Millis),
                });
            }
            if out.len() >= MAX_LISTED {
                break;
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What a file-arrival trigger has seen since its last run.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// New (not consumed) files of the latest listing.
    pending: Vec<TriggerFile>,
    /// When the pending set last changed (engine clock).
    changed_at: Millis,
    /// When the trigger last started a run.
    pub last_fired: Option<Millis>,
    /// When the location was last listed (or a listing last failed).
    pub listed_at: Option<Millis>,
    /// Listings that failed in a row since the last good one.
    failures: u32,
}

impl Watch {
    /// A listing's new files at `now`: the batch to start a run for, when it is time.
    pub fn observe(&mut self, new: Vec<TriggerFile>, now: Millis, spec: &FileArrival) -> Option<Vec<TriggerFile>> {
        self.listed_at = Some(now);
        self.failures = 0;
        if new != self.pending {
            self.pending = new;
            self.changed_at = now;
        }
        if self.pending.is_empty() || now < self.ready_at(spec) {
            return None;
        }
        Some(self.pending.iter().take(MAX_FILES_PER_RUN).cloned().collect())
    }

    /// A run was started for the batch: those files are consumed.
    pub fn fired(&mut self, now: Millis) {
        self.last_fired = Some(now);
        self.pending.clear();
    }

    /// The earliest the pending batch may start a run (if nothing changes meanwhile).
    fn ready_at(&self, spec: &FileArrival) -> Millis {
        let quiet = self.changed_at + spec.wait_after_last_change.as_millis() as Millis;
        let spaced = self.last_fired.map_or(0, |t| t + spec.min_time_between_triggers.as_millis() as Millis);
        quiet.max(spaced)
    }

    /// A listing failed at `now`: the next look waits longer (see [`MAX_FAILURE_BACKOFF`]).
    pub fn failed(&mut self, now: Millis) {
        self.listed_at = Some(now);
        self.failures = self.failures.saturating_add(1);
    }

    /// How long after a listing the next one is due: [`POLL_INTERVAL`], doubled per failure
    /// in a row, at most [`MAX_FAILURE_BACKOFF`].
    fn interval(&self) -> Millis {
        let doubled = POLL_INTERVAL.saturating_mul(1 << self.failures.min(16));
        doubled.min(MAX_FAILURE_BACKOFF.max(POLL_INTERVAL)).as_millis() as Millis
    }

    /// When to look again.
    pub fn next_check(&self, now: Millis, spec: &FileArrival) -> Millis {
        let poll = self.listed_at.map_or(now, |t| t + self.interval());
        if self.pending.is_empty() { poll } else { poll.min(self.ready_at(spec).max(now)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FileArrival {
        FileArrival {
            url: "/x".into(),
            min_time_between_triggers: Duration::from_secs(60),
            wait_after_last_change: Duration::from_secs(30),
            credentials: None,
        }
    }

    fn file(path: &str, size: u64) -> TriggerFile {
        TriggerFile { path: path.into(), size, etag: None, mtime: Some(1) }
    }

    #[test]
    fn a_batch_waits_for_quiet_and_for_the_minimum_interval() {
        let s = spec();
        let mut w = Watch::default();
        assert_eq!(w.observe(vec![file("a", 1)], 0, &s), None);
        // a second file arrives: the quiet period starts again
        assert_eq!(w.observe(vec![file("a", 1), file("b", 1)], 20_000, &s), None);
        assert_eq!(w.observe(vec![file("a", 1), file("b", 1)], 49_000, &s), None);
        let batch = w.observe(vec![file("a", 1), file("b", 1)], 50_000, &s).unwrap();
        assert_eq!(batch.len(), 2);
        w.fired(50_000);
        // a new file right after: quiet by 80 s, but 60 s must pass since the last run
        assert_eq!(w.observe(vec![file("c", 1)], 55_000, &s), None);
        assert_eq!(w.observe(vec![file("c", 1)], 100_000, &s), None);
        assert_eq!(w.observe(vec![file("c", 1)], 110_000, &s).unwrap(), vec![file("c", 1)]);
    }

    #[test]
    fn failed_listings_back_off_up_to_a_bound_and_a_good_one_resets() {
        let s = spec();
        let mut w = Watch::default();
        let poll = POLL_INTERVAL.as_millis() as Millis;
        w.failed(0);
        assert_eq!(w.next_check(0, &s), 2 * poll, "one failure: twice the poll interval");
        w.failed(20_000);
        assert_eq!(w.next_check(20_000, &s), 20_000 + 4 * poll);
        for _ in 0..40 {
            w.failed(1_000_000);
        }
        assert_eq!(w.next_check(1_000_000, &s), 1_000_000 + MAX_FAILURE_BACKOFF.as_millis() as Millis);
        assert_eq!(w.observe(vec![], 2_000_000, &s), None);
        assert_eq!(w.next_check(2_000_000, &s), 2_000_000 + poll, "a good listing: back to polling");
    }

    #[test]
    fn a_local_listing_is_recursive_and_skips_hidden_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("day")).unwrap();
        std::fs::write(dir.path().join("day/orders.csv"), "1,2\n").unwrap();
        std::fs::write(dir.path().join("top.json"), "{}").unwrap();
        std::fs::write(dir.path().join(".partial"), "x").unwrap();
        let url = dir.path().to_str().unwrap();
        let files = list_local(url).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["day/orders.csv", "top.json"]);
        assert_eq!(files[0].size, 4);
        assert!(list_local("/no/such/dir").unwrap_err().to_string().contains("/no/such/dir"));
    }
}
