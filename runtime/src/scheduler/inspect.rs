//! Looking back at content-hashed reruns: why a task's key missed
//! (`sluice cache explain`) and which blobs are still needed (`sluice cache gc`).
//! Reads the store and the blob store; writes only what gc removes.

use std::collections::HashSet;

use serde::Serialize;

use crate::cache::{self, CacheEntry, Difference, Hash, KeyParts};
use crate::model::{RunId, TaskResult};

use super::{Runtime, SchedulerError};

/// What `sluice cache explain` says about one task of a run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Explanation {
    pub task: String,
    /// The attempt's key, when the task is cacheable.
    pub key: Option<String>,
    pub parts: Option<KeyParts>,
    /// `RUN/TASK` the result was reused from (a hit).
    pub reused_from: Option<String>,
    /// Why the task is never reused.
    pub not_cached: Option<String>,
    /// For a miss: the nearest earlier result and how its key differs.
    pub nearest: Option<String>,
    pub differences: Vec<Difference>,
}

impl Runtime {
    /// Explain the cache key of `task` in `run`: a hit names its source, a miss the
    /// parts that differ from the nearest earlier result.
    pub fn explain(&self, run: RunId, task: &str) -> Result<Explanation, SchedulerError> {
        let view = self.view(run)?;
        let tv =
            view.task(task).ok_or_else(|| SchedulerError::Parameters(format!("run {run} has no task `{task}`")))?;
        let attempt = tv.attempts.iter().rev().find(|a| a.cache.is_some());
        let info = attempt.and_then(|a| a.cache.clone()).unwrap_or_default();
        let mut out = Explanation {
            task: task.to_string(),
            key: info.key.clone(),
            parts: None,
            reused_from: info.reused_from.clone(),
            not_cached: info.not_cached.clone(),
            nearest: None,
            differences: Vec::new(),
        };
        let Some(key) = info.key else { return Ok(out) };
        let parts = key.parse::<Hash>().ok().map(|k| self.store.key_parts(&k)).transpose()?.flatten();
        out.parts = parts.clone();
        if out.reused_from.is_some() {
            return Ok(out);
        }
        let Some(parts) = parts else { return Ok(out) };
        let earlier: Vec<CacheEntry> = self
            .store
            .cache_entries()?
            .into_iter()
            .filter(|e| {
                !(e.run == run && e.task == task)
                    && e.parts.inputs.get("context.task") == parts.inputs.get("context.task")
            })
            .collect();
        let mut ordered: Vec<&CacheEntry> = earlier.iter().collect();
        ordered.sort_by_key(|e| e.created_at);
        if let Some(near) = cache::nearest(&parts, ordered.iter().map(|e| &e.parts)) {
            let source = ordered.iter().find(|e| std::ptr::eq(&e.parts, near)).map(|e| format!("{}/{}", e.run, e.task));
            out.nearest = source;
            out.differences = cache::explain(near, &parts);
        }
        Ok(out)
    }

    /// Every blob a cache entry or a run's recorded artifacts still need.
    pub fn referenced_blobs(&self) -> Result<HashSet<Hash>, SchedulerError> {
        let mut keep = HashSet::new();
        for entry in self.store.cache_entries()? {
            keep.extend(entry.blobs());
        }
        // every deployment's components (the deploy module's records: `components`, by name)
        for (key, _) in self.deployments.targets(None)? {
            for (_, record) in self.deployments.records(&key)? {
                let record: serde_json::Value = serde_json::from_slice(&record).unwrap_or_default();
                let hashes = record["components"].as_object().into_iter().flat_map(|c| c.values());
                keep.extend(hashes.filter_map(|h| h.as_str()?.parse::<Hash>().ok()));
            }
        }
        // every registered model's artifact (any version may be staged again)
        let workspaces: HashSet<String> =
            self.store.list_summaries(usize::MAX)?.into_iter().map(|s| s.workspace).collect();
        for ws in &workspaces {
            for name in self.models.names(ws)? {
                let versions = self.models.versions(ws, &name)?;
                keep.extend(versions.iter().filter_map(|v| v.hash.parse::<Hash>().ok()));
            }
        }
        let Some(cfg) = &self.cache else { return Ok(keep) };
        for summary in self.store.list_summaries(usize::MAX)? {
            let Ok(view) = self.view(summary.run_id) else { continue };
            for a in view.tasks.iter().flat_map(|t| &t.attempts) {
                // the checkpoints a successful attempt started from: what verify feeds back
                let key = a.cache.as_ref().and_then(|c| c.key.as_deref()).and_then(|k| k.parse::<Hash>().ok());
                if let (Some(TaskResult::Success), Some(key)) = (a.result, key)
                    && let Some(parts) = self.store.key_parts(&key)?
                {
                    keep.extend(parts.inputs.get(cache::CHECKPOINTS_INPUT).and_then(|h| h.parse::<Hash>().ok()));
                }
                let Some(artifacts) = a.cache.as_ref().and_then(|c| c.artifacts.as_deref()) else { continue };
                keep.extend(artifacts.parse::<Hash>().ok());
                keep.extend(cfg.manifest(artifacts).iter().flat_map(|tree| tree.blobs()));
            }
        }
        Ok(keep)
    }

    /// Forget cache entries beyond the newest `keep`, or created before `before`
    /// (millis), then delete every blob nothing references any more.
    pub fn gc(&self, keep: Option<usize>, before: Option<u64>) -> Result<GcSummary, SchedulerError> {
        let mut entries: Vec<(Hash, u64)> =
            self.store.cache_entries()?.into_iter().map(|e| (e.key, e.created_at)).collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.1));
        let mut removed_entries = 0;
        for (n, (key, created)) in entries.iter().enumerate() {
            let too_many = keep.is_some_and(|k| n >= k);
            let too_old = before.is_some_and(|b| *created < b);
            if too_many || too_old {
                self.store.remove_cache_entry(key)?;
                removed_entries += 1;
            }
        }
        self.store.flush()?;
        let referenced = self.referenced_blobs()?;
        let report = match &self.cache {
            Some(cfg) => cfg.blobs.gc(&referenced).map_err(|e| SchedulerError::Parameters(format!("blob gc: {e}")))?,
            None => Default::default(),
        };
        Ok(GcSummary {
            removed_entries,
            kept_entries: entries.len() - removed_entries,
            removed_blobs: report.removed,
            kept_blobs: report.kept,
            bytes_freed: report.bytes_freed,
        })
    }
}

/// What `sluice cache gc` did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct GcSummary {
    pub removed_entries: usize,
    pub kept_entries: usize,
    pub removed_blobs: u64,
    pub kept_blobs: u64,
    pub bytes_freed: u64,
}
