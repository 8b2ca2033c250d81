//! `sluice verify`: whether re-executing a run's tasks reproduces their recorded results
//! byte for byte — output, values and `/out` files. Each task component that succeeded
//! with a cache key runs again with the same params, inputs, seed and clock, in a scratch
//! store and a scratch directory; nothing is recorded in the run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::cache::{self, CacheDir, Hash, KeyParts};
use crate::model::{AttemptCache, AttemptView, RunId, RunPlan, RunView, TaskGraph, TaskResult};
use crate::sandbox::values::Readable;
use crate::sandbox::{AttemptContext, Outcome, Status, TaskComponent, TaskContext};
use crate::spec::{TaskKind, TaskSpec};
use crate::store::{MemoryStore, Store};

use super::attempt::{self, AttemptInputs};
use super::plan::Loaded;
use super::{Runtime, SchedulerError};

/// The outcome of re-executing one task.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Verification {
    pub task: String,
    /// `identical`, `different` or `skipped`.
    pub verdict: String,
    pub detail: String,
}

impl Verification {
    fn new(task: &str, verdict: &str, detail: impl Into<String>) -> Verification {
        Verification { task: task.to_string(), verdict: verdict.into(), detail: detail.into() }
    }
}

/// A task that can be re-executed: its successful attempt, the key it ran under, the
/// key's parts, its spec and component.
struct Candidate<'a> {
    attempt: &'a AttemptView,
    info: &'a AttemptCache,
    key: Hash,
    parts: KeyParts,
    spec: TaskSpec,
    component: Arc<TaskComponent>,
}

impl Runtime {
    /// Re-execute the run's executed tasks (or `only`) in a scratch store and
    /// compare outputs, values and `/out` files with what the run recorded.
    pub async fn verify(&self, run: RunId, only: Option<&str>) -> Result<Vec<Verification>, SchedulerError> {
        let state = self.state_of(run)?;
        let plan = state.plan().cloned().ok_or_else(|| super::runs::no_plan(run))?;
        let loaded = super::plan::reload(&self.sandbox, &plan)?;
        let view = state.into_view();
        let mut out = Vec::new();
        for tv in view.tasks.iter().filter(|t| only.is_none_or(|k| k == t.key)) {
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
        plan: &RunPlan,
        loaded: &Loaded,
        key: &str,
    ) -> Result<Verification, SchedulerError> {
        let c = match self.candidate(view, plan, loaded, key)? {
            Ok(c) => c,
            Err(why) => return Ok(Verification::new(key, "skipped", why)),
        };
        let cfg = self.cache.as_ref().ok_or_else(|| SchedulerError::Parameters("no cache configured".into()))?;
        let work = tempfile::Builder::new()
            .prefix("verify-")
            .tempdir_in(&cfg.staging)
            .map_err(|e| SchedulerError::Parameters(e.to_string()))?;
        let outcome = self.rerun(view, plan, cfg, &c, key, work.path()).await?;
        let Status::Success { output } = &outcome.status else {
            let detail = format!("the rerun did not succeed: {:?}", outcome.status);
            return Ok(Verification::new(key, "different", detail));
        };
        let mut diffs = Vec::new();
        if Some(output) != c.attempt.output.as_ref() {
            diffs.push("output");
        }
        let recorded: BTreeMap<String, String> = self.store.values(view.run_id, key)?.into_iter().collect();
        if recorded != outcome.values.into_iter().collect() {
            diffs.push("values");
        }
        let tree = cache::snapshot(&work.path().join("out")).map_err(|e| SchedulerError::Parameters(e.to_string()))?;
        let recorded_root = c.info.artifacts.as_deref().and_then(|h| cfg.manifest(h)).map(|t| t.root);
        let empty = tree.files.is_empty() && tree.dirs.is_empty();
        if recorded_root != (!empty).then_some(tree.root) {
            diffs.push("/out files");
        }
        Ok(match diffs.is_empty() {
            true => Verification::new(key, "identical", "output, values and /out files are byte-identical"),
            false => Verification::new(key, "different", format!("{} differ", diffs.join(", "))),
        })
    }

    /// Whether task `key` can be re-executed, and what with; `Err`: why not.
    fn candidate<'a>(
        &self,
        view: &'a RunView,
        plan: &RunPlan,
        loaded: &Loaded,
        key: &str,
    ) -> Result<Result<Candidate<'a>, String>, SchedulerError> {
        let Some(tv) = view.task(key) else { return Ok(Err("not in the run".into())) };
        let Some(attempt) = tv.attempts.iter().rev().find(|a| a.result == Some(TaskResult::Success)) else {
            return Ok(Err("did not succeed".into()));
        };
        let Some(info) = &attempt.cache else {
            return Ok(Err("no cache key recorded (not a component or command task)".into()));
        };
        if let Some(why) = &info.not_cached {
            return Ok(Err(format!("not reproducible by design: {why}")));
        }
        let Some(key_hash) = info.key.as_deref().and_then(|k| k.parse::<Hash>().ok()) else {
            return Ok(Err("no cache key recorded".into()));
        };
        let Some(parts) = self.store.key_parts(&key_hash)? else { return Ok(Err("its key parts are gone".into())) };
        let spec = match &tv.parent {
            Some(p) => match plan.job.task(p).map(|t| &t.kind) {
                Some(TaskKind::ForEach { template, .. }) => template.iteration(p, 0),
                _ => return Ok(Err("its for_each parent is not in the plan".into())),
            },
            None => match plan.job.task(key) {
                Some(s) => s.clone(),
                None => return Ok(Err("not in the plan".into())),
            },
        };
        let TaskKind::Component { component } = &spec.kind else {
            return Ok(Err("only task components are re-executed (commands may read stdin or secrets)".into()));
        };
        let Some(component) = loaded.get(component).cloned() else { return Ok(Err("component not loaded".into())) };
        if !spec.exec.secrets.is_empty() {
            return Ok(Err("reveals secrets; not re-executed outside its run".into()));
        }
        let mut spec = spec;
        if let Err(why) = self.staged_mounts(&mut spec, &parts) {
            return Ok(Err(why));
        }
        Ok(Ok(Candidate { attempt, info, key: key_hash, parts, spec, component }))
    }

    /// Point the spec's object-storage mounts at what the run staged (`staging/obj-<root>`,
    /// by the content its key recorded): a rerun reads exactly those objects, with no
    /// credentials and no request to the store. `Err`: why it cannot.
    fn staged_mounts(&self, spec: &mut TaskSpec, parts: &KeyParts) -> Result<(), String> {
        for mount in spec.exec.mounts.iter_mut().filter(|m| m.object.is_some()) {
            let part = parts.mounts.iter().find(|p| p.guest == mount.guest);
            let dir = part.zip(self.cache.as_ref()).map(|(p, cfg)| cfg.staging.join(format!("obj-{}", p.content)));
            match dir {
                Some(dir) if dir.is_dir() => mount.host = dir,
                _ => return Err(format!("the objects mount {} staged are no longer in the staging area", mount.guest)),
            }
            mount.object = None;
        }
        Ok(())
    }

    /// Run the candidate again in a scratch store holding what it could read (its
    /// upstreams' values), with its upstreams' `/out` files under `work`.
    async fn rerun(
        &self,
        view: &RunView,
        plan: &RunPlan,
        cfg: &CacheDir,
        c: &Candidate<'_>,
        key: &str,
        work: &Path,
    ) -> Result<Outcome, SchedulerError> {
        let scratch: Arc<dyn Store> = Arc::new(MemoryStore::new());
        for (name, data) in checkpoints_of(cfg, &c.parts)? {
            scratch.save_checkpoint(view.run_id, key, &name, &data)?;
        }
        let parent = view.task(key).and_then(|t| t.parent.as_deref()).unwrap_or(key);
        let top = view.tasks.iter().filter(|t| t.parent.is_none());
        let graph = TaskGraph::new(top.map(|t| (t.key.as_str(), t.depends_on.iter().map(String::as_str))));
        let mut readable = BTreeSet::new();
        for input in graph.upstreams_of(parent) {
            for (name, json) in self.store.values(view.run_id, &input)? {
                scratch.put_value(view.run_id, &input, &name, &json)?;
            }
            readable.insert(input);
        }
        let inputs = upstream_files(view, plan, cfg, parent, work)?;
        let out = work.join("out");
        std::fs::create_dir_all(&out).map_err(|e| SchedulerError::Parameters(e.to_string()))?;
        let context = AttemptContext {
            task: TaskContext {
                job: plan.job.name.clone(),
                run_id: view.run_id.to_string(),
                task_key: key.to_string(),
                attempt: c.attempt.attempt,
                target: view.target.clone(),
            },
            run: view.run_id,
            principal: plan.principal.clone(),
            workspace: plan.workspace.clone(),
            logical_start: crate::model::time_of(view.created_at),
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            store: scratch,
            secrets: None,
        };
        let seed = Some(*c.key.as_bytes());
        let readable = Readable::Tasks(readable);
        let given = AttemptInputs { params: c.parts.params.clone(), readable, inputs, out: Some(out), seed };
        let invocation = attempt::invocation(context, attempt::limits_of(&c.spec, plan), &c.spec.exec, given);
        Ok(self.sandbox.run(&c.component, invocation).await)
    }
}

/// The checkpoints the attempt started from (its key's checkpoint part), as it saw them.
fn checkpoints_of(cfg: &CacheDir, parts: &KeyParts) -> Result<Vec<(String, Vec<u8>)>, SchedulerError> {
    use base64::Engine as _;
    let Some(hash) = parts.inputs.get(cache::CHECKPOINTS_INPUT) else { return Ok(Vec::new()) };
    let gone = |why: String| SchedulerError::Parameters(format!("the checkpoints the attempt started from: {why}"));
    let hash: Hash = hash.parse().map_err(|_| gone(format!("`{hash}` is not a blake3 hash")))?;
    let bytes = cfg.blobs.get(&hash).map_err(|e| gone(e.to_string()))?;
    let saved: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|e| gone(e.to_string()))?;
    let engine = base64::engine::general_purpose::STANDARD;
    saved.into_iter().map(|(k, v)| Ok((k, engine.decode(v).map_err(|e| gone(e.to_string()))?))).collect()
}

/// The recorded `/out` files of task `start`'s direct upstreams (through condition tasks,
/// which are transparent for files, as the coordinator offers them), materialised under `work`.
fn upstream_files(
    view: &RunView,
    plan: &RunPlan,
    cfg: &CacheDir,
    start: &str,
    work: &Path,
) -> Result<Vec<(String, PathBuf)>, SchedulerError> {
    let mut inputs = Vec::new();
    let mut ups: Vec<&str> = Vec::new();
    let mut todo: Vec<&str> = plan.job.task(start).into_iter().flat_map(|t| t.upstream_keys()).collect();
    todo.reverse();
    while let Some(up) = todo.pop() {
        if ups.contains(&up) {
            continue;
        }
        match plan.job.task(up) {
            Some(t) if matches!(t.kind, crate::spec::TaskKind::Condition { .. }) => {
                ups.push(up);
                let mut behind: Vec<&str> = t.upstream_keys().collect();
                behind.reverse();
                todo.extend(behind);
            }
            _ => ups.push(up),
        }
    }
    for up in ups
        .into_iter()
        .filter(|u| !plan.job.task(u).is_some_and(|t| matches!(t.kind, crate::spec::TaskKind::Condition { .. })))
    {
        let manifest = view
            .task(up)
            .and_then(|t| t.attempts.iter().rev().find(|a| a.result == Some(TaskResult::Success)))
            .and_then(|a| a.cache.as_ref()?.artifacts.as_deref())
            .and_then(|h| cfg.manifest(h));
        if let Some(tree) = manifest {
            let dir = work.join(format!("in-{up}"));
            cache::materialize(&cfg.blobs, &tree, &dir)
                .map_err(|e| SchedulerError::Parameters(format!("offering /in/{up}: {e}")))?;
            inputs.push((up.to_string(), dir));
        }
    }
    Ok(inputs)
}
