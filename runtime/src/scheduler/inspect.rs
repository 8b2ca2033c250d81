//! Looking back at content-hashed reruns: why a task's key missed
//! (`sluice cache explain`), which blobs are still needed (`sluice cache gc`),
//! and whether rerunning a task reproduces its recorded result byte for byte
//! (`sluice verify`). Reads the store and the blob store; `verify` re-executes
//! tasks in a scratch store and never records anything in the run.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::cache::{self, CacheEntry, Difference, Hash, KeyParts, TreeManifest};
use crate::model::{RunId, RunView, TaskResult};
use crate::sandbox::{AttemptContext, Status, TaskContext};

use super::attempt::AttemptInputs;
use crate::spec::TaskKind;
use crate::store::{MemoryStore, Store};

use super::{Runtime, SchedulerError};

/// What `sluice cache explain` says about one task of a run.
#[derive(Debug, Clone, Serialize)]
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

/// The outcome of re-executing one task.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub task: String,
    /// `identical`, `different` or `skipped`.
    pub verdict: String,
    pub detail: String,
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
        let Some(cfg) = &self.cache else { return Ok(keep) };
        for summary in self.store.list_summaries(usize::MAX)? {
            let Ok(view) = self.view(summary.run_id) else { continue };
            for a in view.tasks.iter().flat_map(|t| &t.attempts) {
                let Some(h) =
                    a.cache.as_ref().and_then(|c| c.artifacts.as_deref()).and_then(|h| h.parse::<Hash>().ok())
                else {
                    continue;
                };
                keep.insert(h);
                if let Some(tree) = cfg.blobs.get(&h).ok().and_then(|b| serde_json::from_slice::<TreeManifest>(&b).ok())
                {
                    keep.extend(tree.blobs());
                }
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

    /// Re-execute the run's executed tasks (or `only`) in a scratch store and
    /// compare outputs, values and `/out` files with what the run recorded.
    pub async fn verify(&self, run: RunId, only: Option<&str>) -> Result<Vec<Verification>, SchedulerError> {
        let view = self.view(run)?;
        let events = self.store.events(run)?;
        let plan = super::plan_of(run, &events)?;
        let loaded = super::plan::reload(&self.sandbox, &plan)?;
        let mut out = Vec::new();
        for tv in &view.tasks {
            if only.is_some_and(|k| k != tv.key) {
                continue;
            }
            out.push(self.verify_task(&view, &plan, &loaded, &tv.key).await?);
        }
        if let Some(k) = only
            && out.is_empty()
        {
            return Err(SchedulerError::Parameters(format!("run {run} has no task `{k}`")));
        }
        Ok(out)
    }

    async fn verify_task(
        &self,
        view: &RunView,
        plan: &crate::model::RunPlan,
        loaded: &super::plan::Loaded,
        key: &str,
    ) -> Result<Verification, SchedulerError> {
        let skip = |detail: &str| {
            Ok(Verification { task: key.to_string(), verdict: "skipped".into(), detail: detail.to_string() })
        };
        let Some(tv) = view.task(key) else { return skip("not in the run") };
        let Some(a) = tv.attempts.iter().rev().find(|a| a.result == Some(TaskResult::Success)) else {
            return skip("did not succeed");
        };
        let Some(info) = &a.cache else { return skip("no cache key recorded (not a component or command task)") };
        if let Some(why) = &info.not_cached {
            return skip(&format!("not reproducible by design: {why}"));
        }
        let Some(k) = &info.key else { return skip("no cache key recorded") };
        let Some(parts) = k.parse::<Hash>().ok().map(|k| self.store.key_parts(&k)).transpose()?.flatten() else {
            return skip("its key parts are gone");
        };
        let spec = match &tv.parent {
            Some(p) => match plan.job.task(p).map(|t| &t.kind) {
                Some(TaskKind::ForEach { template, .. }) => template.iteration(p, 0),
                _ => return skip("its for_each parent is not in the plan"),
            },
            None => match plan.job.task(key) {
                Some(s) => s.clone(),
                None => return skip("not in the plan"),
            },
        };
        let TaskKind::Component { component } = &spec.kind else {
            return skip("only task components are re-executed (commands may read stdin or secrets)");
        };
        let Some(component) = loaded.get(component) else { return skip("component not loaded") };
        // a scratch store holding what the task could read: its upstreams' values
        let scratch: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut readable = std::collections::BTreeSet::new();
        for input in parts.inputs.keys().filter_map(|k| k.strip_prefix("upstream.")) {
            readable.insert(input.to_string());
            for (name, json) in self.store.values(view.run_id, input)? {
                scratch.put_value(view.run_id, input, &name, &json)?;
            }
        }
        let cfg = self.cache.as_ref().ok_or_else(|| SchedulerError::Parameters("no cache configured".into()))?;
        let work = tempfile::Builder::new()
            .prefix("verify-")
            .tempdir_in(&cfg.staging)
            .map_err(|e| SchedulerError::Parameters(e.to_string()))?;
        let mut inputs = Vec::new();
        let start = tv.parent.as_deref().unwrap_or(key);
        for up in
            plan.job.task(start).map(|t| t.upstream_keys().map(str::to_string).collect::<Vec<_>>()).unwrap_or_default()
        {
            let manifest = view
                .task(&up)
                .and_then(|t| t.attempts.iter().rev().find(|a| a.result == Some(TaskResult::Success)))
                .and_then(|a| a.cache.as_ref())
                .and_then(|c| c.artifacts.as_deref())
                .and_then(|h| h.parse::<Hash>().ok())
                .and_then(|h| cfg.blobs.get(&h).ok())
                .and_then(|b| serde_json::from_slice::<TreeManifest>(&b).ok());
            if let Some(tree) = manifest {
                let dir = work.path().join(format!("in-{up}"));
                cache::materialize(&cfg.blobs, &tree, &dir)
                    .map_err(|e| SchedulerError::Parameters(format!("offering /in/{up}: {e}")))?;
                inputs.push((up, dir));
            }
        }
        let out_dir = work.path().join("out");
        std::fs::create_dir_all(&out_dir).map_err(|e| SchedulerError::Parameters(e.to_string()))?;
        let seed = k.parse::<Hash>().map(|h| *h.as_bytes()).ok();
        let context = AttemptContext {
            task: TaskContext {
                job: plan.job.name.clone(),
                run_id: view.run_id.to_string(),
                task_key: key.to_string(),
                attempt: a.attempt,
                target: view.target.clone(),
            },
            run: view.run_id,
            principal: plan.principal.clone(),
            workspace: plan.workspace.clone(),
            logical_start: super::exec::time_of(view.created_at),
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            store: scratch.clone(),
            secrets: None,
        };
        let given = AttemptInputs { params: parts.params.clone(), readable, inputs, out: Some(out_dir.clone()), seed };
        let invocation = super::attempt::invocation(context, super::start::limits_of(&spec, plan), &spec, given);
        if !spec.exec.secrets.is_empty() {
            return skip("reveals secrets; not re-executed outside its run");
        }
        let outcome = self.sandbox.run(component, invocation).await;
        let Status::Success { output } = outcome.status else {
            return Ok(Verification {
                task: key.to_string(),
                verdict: "different".into(),
                detail: format!("the rerun did not succeed: {:?}", outcome.status),
            });
        };
        let mut diffs = Vec::new();
        if Some(&output) != a.output.as_ref() {
            diffs.push("output".to_string());
        }
        let recorded: BTreeMap<String, String> = self.store.values(view.run_id, key)?.into_iter().collect();
        let rerun: BTreeMap<String, String> = outcome.values.into_iter().collect();
        if recorded != rerun {
            diffs.push("values".to_string());
        }
        let tree = cache::snapshot(&out_dir).map_err(|e| SchedulerError::Parameters(e.to_string()))?;
        let recorded_root = info
            .artifacts
            .as_deref()
            .and_then(|h| h.parse::<Hash>().ok())
            .and_then(|h| cfg.blobs.get(&h).ok())
            .and_then(|b| serde_json::from_slice::<TreeManifest>(&b).ok())
            .map(|t| t.root);
        let empty = tree.files.is_empty() && tree.dirs.is_empty();
        if recorded_root != (!empty).then_some(tree.root) {
            diffs.push("/out files".to_string());
        }
        Ok(if diffs.is_empty() {
            Verification {
                task: key.to_string(),
                verdict: "identical".into(),
                detail: "output, values and /out files are byte-identical".into(),
            }
        } else {
            Verification {
                task: key.to_string(),
                verdict: "different".into(),
                detail: format!("{} differ", diffs.join(", ")),
            }
        })
    }
}

/// What `sluice cache gc` did.
#[derive(Debug, Clone, Serialize)]
pub struct GcSummary {
    pub removed_entries: usize,
    pub kept_entries: usize,
    pub removed_blobs: u64,
    pub kept_blobs: u64,
    pub bytes_freed: u64,
}
