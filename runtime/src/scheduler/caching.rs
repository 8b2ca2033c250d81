//! Content-hashed reruns, coordinator side: an attempt's cache key, reusing a stored
//! result instead of running, and storing what a successful attempt produced.
//!
//! Owns the per-run use of the `cache` module (keys, blobs, trees). A task is reused only
//! when its key — component, rendered params, behavioural limits, read-only mounts by
//! content (an object-storage mount by what was staged), every upstream result by content, granted capabilities, secret names and
//! versions, the sandbox ABI — matches a stored success. Tasks with network access, rw
//! mounts or `cache = false` (or a run with `--no-cache`) always run. It never decides
//! readiness or retries, and never moves files (the executor offers `/in` and collects
//! `/out`).

use std::collections::BTreeMap;
use std::sync::PoisonError;

use crate::cache::{self, CacheDir, CacheEntry, Hash, KeyParts, TreeManifest};
use crate::model::{AttemptCache, Event, TaskResult};
use crate::sandbox::{Command, Limits, SANDBOX_ABI_VERSION};
use crate::spec::{MountMode, TaskSpec};
use crate::state::TaskId;

use super::SchedulerError;
use super::coordinator::{Coordinator, Pending, Produced};

/// What to do with an attempt about to start.
pub(crate) enum Prepared {
    /// Reuse this stored result; nothing runs.
    Hit(Box<CacheEntry>),
    /// Run it, offering these upstream files at `/in`, with this random seed.
    Run { pending: Box<Pending>, inputs: Vec<(String, TreeManifest)>, seed: Option<[u8; 32]> },
}

/// What an attempt executes, as its key sees it.
pub(crate) struct Executes<'a> {
    /// blake3 (hex) of the component.
    pub component: &'a str,
    pub params: &'a BTreeMap<String, String>,
    pub limits: &'a Limits,
    pub command: Option<&'a Command>,
    /// Object-storage mounts' staged content: guest path → Merkle root.
    pub staged: &'a BTreeMap<String, Hash>,
    /// The model versions staged for the run's target it loads.
    pub models: &'a [super::models::Staged],
}

impl Coordinator {
    /// Work out the attempt's key and look it up; the upstream files it gets at `/in`.
    pub(crate) fn prepare_cache(&mut self, id: TaskId, runs: &Executes<'_>) -> Result<Prepared, String> {
        let inputs = self.inputs_of(id);
        let (Some(cfg), Some(spec)) = (self.rt.cache.clone(), self.state.spec_shared(id)) else {
            let pending = Box::new(Pending { key: None, not_cached: None, objects: Vec::new() });
            return Ok(Prepared::Run { pending, inputs: Vec::new(), seed: None });
        };
        let not_cached = match cache::reusable(&spec) {
            Err(why) => Some(why.to_string()),
            Ok(()) if !spec.exec.cache || self.opts.no_cache => Some(cache::OPTED_OUT.to_string()),
            Ok(()) => None,
        };
        if not_cached.is_some() && !self.opts.no_cache {
            return Ok(Prepared::Run {
                pending: Box::new(Pending { key: None, not_cached, objects: Vec::new() }),
                inputs,
                seed: None,
            });
        }
        let parts = self.key_parts(id, &spec, &cfg, runs, !inputs.is_empty())?;
        let key = parts.key();
        self.rt.store.put_key_parts(&key, &parts).map_err(|e| e.to_string())?;
        let seed = Some(*key.as_bytes());
        if not_cached.is_none()
            && let Some(entry) = self.lookup(&cfg, &key)
        {
            return Ok(Prepared::Hit(Box::new(entry)));
        }
        Ok(Prepared::Run {
            pending: Box::new(Pending { key: Some((key, parts)), not_cached, objects: Vec::new() }),
            inputs,
            seed,
        })
    }

    /// Each direct upstream's `/out` files (an iteration's: its parent's upstreams'). A
    /// condition task writes no files and is transparent: a task behind it sees the files of
    /// the tasks the condition depends on (`train → evaluate → gate → register` reads
    /// `/in/train` and `/in/evaluate`).
    fn inputs_of(&self, id: TaskId) -> Vec<(String, TreeManifest)> {
        let start = self.state.parent(id).unwrap_or(id);
        let mut out: Vec<(String, TreeManifest)> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut todo: Vec<&str> = self.state.upstream_keys(start).collect();
        todo.reverse();
        while let Some(up) = todo.pop() {
            let Some(u) = self.state.id_of(up).filter(|_| seen.insert(up)) else { continue };
            if matches!(self.state.spec(u).map(|s| &s.kind), Some(crate::spec::TaskKind::Condition { .. })) {
                let mut behind: Vec<&str> = self.state.upstream_keys(u).collect();
                behind.reverse();
                todo.extend(behind);
                continue;
            }
            if let Some(tree) = self.produced.get(&u).and_then(|p| p.out_tree.clone()) {
                out.push((up.to_string(), tree));
            }
        }
        out
    }

    fn lookup(&self, cfg: &CacheDir, key: &Hash) -> Option<CacheEntry> {
        let entry = self.rt.store.cache_entry(key).ok().flatten()?;
        let usable = entry.is_consistent() && entry.blobs().all(|b| cfg.blobs.contains(&b));
        if !usable {
            tracing::warn!(key = %key, "cache entry unusable (damaged or its files were collected); running instead");
        }
        usable.then_some(entry)
    }

    fn key_parts(
        &self,
        id: TaskId,
        spec: &TaskSpec,
        cfg: &CacheDir,
        runs: &Executes<'_>,
        has_inputs: bool,
    ) -> Result<KeyParts, String> {
        let mut parts = KeyParts::new(runs.component, SANDBOX_ABI_VERSION);
        parts.params = runs.params.clone();
        let limits = runs.limits;
        let max_out = super::attempt::max_out_of(spec, &self.plan);
        parts.limits = cache::limit_parts(limits.memory, limits.fuel, limits.max_output, max_out);
        for m in spec.exec.mounts.iter().filter(|m| m.mode == MountMode::Ro) {
            if m.object.is_some() {
                let root = runs.staged.get(&m.guest).ok_or_else(|| format!("mount {} was not staged", m.guest))?;
                parts.mounts.push(cache::mount_part(m, root));
                continue;
            }
            let tree = {
                let mut stats = cfg.stat_cache.lock().unwrap_or_else(PoisonError::into_inner);
                cache::snapshot_cached(&m.host, &mut stats, self.opts.rehash)
                    .map_err(|e| format!("hashing mount {}: {e}", m.guest))?
            };
            parts.mounts.push(cache::mount_part(m, &tree.root));
        }
        let start = self.state.parent(id).unwrap_or(id);
        for up in self.state.upstream_keys(start) {
            let lineage = self.lineage_of(up).map_or_else(|| "none".to_string(), |d| d.to_string());
            parts.inputs.insert(cache::upstream_input(up), lineage);
        }
        if let Some(saved) = self.checkpoint_state(id, cfg)? {
            parts.inputs.insert(cache::CHECKPOINTS_INPUT.into(), saved.to_string());
        }
        parts.inputs.insert("context.job".into(), self.plan.job.name.clone());
        parts.inputs.insert("context.task".into(), spec.key.clone());
        parts.inputs.insert("context.target".into(), self.state.view().target.clone());
        // one tenant's results are never another's: a key never matches across workspaces
        parts.inputs.insert("context.workspace".into(), self.plan.workspace.clone());
        if !spec.expectations.is_empty() {
            // a reused result carries what these expectations found: other ones must look again
            let json = serde_json::to_vec(&spec.expectations).map_err(|e| e.to_string())?;
            parts.inputs.insert("quality.expectations".into(), Hash::of(&json).to_string());
        }
        if !spec.datasets.is_empty() {
            // a reused result publishes these datasets: other declarations must look again
            let json = serde_json::to_vec(&spec.datasets).map_err(|e| e.to_string())?;
            parts.inputs.insert("datasets".into(), Hash::of(&json).to_string());
        }
        if let Some(declared) = &spec.register_model {
            // a reused result registers this artifact: another declaration must look again
            let json = serde_json::to_vec(declared).map_err(|e| e.to_string())?;
            parts.inputs.insert("register_model".into(), Hash::of(&json).to_string());
        }
        for staged in runs.models {
            // the model loaded is an input by content (its version number is not)
            parts.inputs.insert(format!("model.{}", staged.name), format!("{} at {}", staged.hash, staged.guest));
        }
        parts.capabilities = cache::capabilities_of(&spec.exec, spec.command());
        if has_inputs {
            parts.capabilities.push("in".into());
            parts.capabilities.sort();
        }
        for name in &spec.exec.secrets {
            parts.secrets.insert(name.clone(), self.secret_version(name));
        }
        if let Some(c) = runs.command {
            self.command_parts(&mut parts, c);
        }
        if !spec.exec.secrets.is_empty() || runs.command.is_some_and(|c| !c.secret_env.is_empty()) {
            // what a reveal returns depends on who asks
            parts.inputs.insert("context.principal".into(), self.plan.principal.clone());
        }
        Ok(parts)
    }

    /// The checkpoints task `id` has saved so far (what its next attempt resumes from),
    /// stored as one blob; `None` when it has none.
    fn checkpoint_state(&self, id: TaskId, cfg: &CacheDir) -> Result<Option<Hash>, String> {
        use base64::Engine as _;
        let key = &self.state.task(id).key;
        let saved = self.rt.store.checkpoints(self.state.run_id(), key).map_err(|e| e.to_string())?;
        if saved.is_empty() {
            return Ok(None);
        }
        let encoded: BTreeMap<String, String> =
            saved.into_iter().map(|(k, data)| (k, base64::engine::general_purpose::STANDARD.encode(data))).collect();
        let json = serde_json::to_vec(&encoded).map_err(|e| e.to_string())?;
        let hash = cfg.blobs.put_bytes(&json).map_err(|e| format!("storing the checkpoint state: {e}"))?;
        Ok(Some(hash))
    }

    /// A command's args, env (each secret reference as its name and version, never its
    /// value) and stdin, as key parts.
    fn command_parts(&self, parts: &mut KeyParts, c: &Command) {
        parts.args = c.args.clone();
        parts.env.extend(c.env.iter().cloned());
        for (k, pieces) in &c.secret_env {
            let text: String = pieces
                .iter()
                .map(|p| match p {
                    crate::spec::template::Part::Text(t) => t.clone(),
                    crate::spec::template::Part::Secret { scope, key } => {
                        let name = format!("{scope}/{key}");
                        format!("{{{{secrets/{name}@v{}}}}}", self.secret_version(&name))
                    }
                })
                .collect();
            parts.env.insert(k.clone(), text);
        }
        parts.stdin = c.stdin.as_ref().map(|b| Hash::of(b).to_string());
    }

    /// The version a reveal of `name` would return (0: none).
    fn secret_version(&self, name: &str) -> u64 {
        let resolver = self.rt.secrets.as_ref();
        let version = resolver.and_then(|r| r.version(&self.plan.workspace, &self.state.view().target, name));
        version.map_or(0, u64::from)
    }

    /// What downstream keys record of task `key` ([`cache::lineage`]); `None` when it has
    /// not succeeded.
    fn lineage_of(&self, key: &str) -> Option<Hash> {
        let u = self.state.id_of(key)?;
        if self.state.task(u).result != Some(TaskResult::Success) {
            return None;
        }
        Some(self.produced.get(&u).and_then(|p| p.lineage).unwrap_or_else(|| self.lineage_now(u)))
    }

    /// Task `u`'s lineage from its result and its direct upstreams' lineages as they are now.
    fn lineage_now(&self, u: TaskId) -> Hash {
        let digest = self.produced.get(&u).and_then(|p| p.digest);
        let ups = self.state.upstream_keys(u).map(|k| (k.to_string(), self.lineage_of(k))).collect();
        cache::lineage(digest.as_ref(), &ups)
    }

    /// Record what task `id` produced, with its lineage: what its upstreams were when it ran.
    fn set_produced(&mut self, id: TaskId, produced: Produced) {
        self.produced.insert(id, produced);
        self.seal_lineage(id);
    }

    fn seal_lineage(&mut self, id: TaskId) {
        let lineage = self.lineage_now(id);
        if let Some(p) = self.produced.get_mut(&id) {
            p.lineage = Some(lineage);
        }
    }

    /// Record a reused result: the attempt ends at once, nothing runs.
    pub(crate) fn record_hit(&mut self, id: TaskId, attempt: u32, entry: CacheEntry) -> Result<(), SchedulerError> {
        let key = self.state.task(id).key.clone();
        for (name, json) in &entry.values {
            self.rt.store.put_value(self.state.run_id(), &key, name, json)?;
        }
        let artifacts = entry.out_tree.as_ref().map(|tree| self.store_manifest(tree)).transpose()?;
        if !entry.quality.is_empty() {
            // a stored result passed its `fail` expectations: only warnings and blocks come back
            self.quality_checked(key.clone(), attempt, entry.quality.clone())?;
        }
        let declared = self.state.spec(id).map(|s| s.datasets.clone()).unwrap_or_default();
        // the key holds the declaration, so the stored result had every dataset
        let published = super::datasets::hashes(&declared, entry.out_tree.as_ref()).unwrap_or_default();
        self.set_produced(id, Produced::new(entry.output.as_deref(), &entry.values, entry.out_tree.clone()));
        let cache = AttemptCache {
            key: Some(entry.key.to_string()),
            reused_from: Some(format!("{}/{}", entry.run, entry.task)),
            reused_attempt: entry.attempt,
            artifacts: artifacts.map(|h| h.to_string()),
            not_cached: None,
        };
        let key_of_hit = key.clone();
        self.record(Event::AttemptFinished {
            task: key,
            attempt,
            at: self.now(),
            result: TaskResult::Success,
            output: entry.output,
            error: None,
            log: String::new(),
            log_truncated: false,
            elapsed_us: 0,
            outcome: None,
            cache: Some(Box::new(cache)),
            error_code: None,
        })?;
        self.publish_datasets(&key_of_hit, published)?;
        let declared = self.state.spec(id).and_then(|s| s.register_model.clone());
        if let Some(declared) = declared {
            // the key holds the declaration, so the stored result had the files
            if let Ok(found) = super::models::artifact(&declared, entry.out_tree.as_ref(), self.rt.cache.as_deref()) {
                self.register_model(&key_of_hit, &declared, found)?;
            }
        }
        Ok(())
    }

    fn store_manifest(&self, tree: &TreeManifest) -> Result<Hash, SchedulerError> {
        let cfg = self.rt.cache.as_ref().ok_or_else(|| SchedulerError::Parameters("no cache configured".into()))?;
        let json = serde_json::to_vec(tree).map_err(|e| SchedulerError::Parameters(e.to_string()))?;
        cfg.blobs.put_bytes(&json).map_err(|e| SchedulerError::Parameters(format!("storing an artifact manifest: {e}")))
    }

    /// After an attempt: record its `/out` files and, on success, store the result under
    /// its key. Returns what to record, or why the attempt must fail instead.
    pub(crate) fn harvest(
        &mut self,
        (id, attempt): (TaskId, u32),
        pending: Pending,
        success: bool,
        output: Option<&str>,
        values: &[(String, String)],
        out_tree: Option<TreeManifest>,
    ) -> Result<Option<AttemptCache>, String> {
        let Some(cfg) = self.rt.cache.clone() else { return Ok(None) };
        let artifacts =
            out_tree.as_ref().map(|tree| self.store_manifest(tree)).transpose().map_err(|e| e.to_string())?;
        if success {
            self.set_produced(id, Produced::new(output, values, out_tree.clone()));
        }
        if let (true, None, Some((key, parts))) = (success, &pending.not_cached, &pending.key) {
            if out_tree.is_some() {
                // the entry must never be durable before the files it names
                cfg.blobs.sync().map_err(|e| format!("making /out durable: {e}"))?;
            }
            let entry = CacheEntry {
                key: *key,
                parts: parts.clone(),
                run: self.state.run_id(),
                task: self.state.task(id).key.clone(),
                attempt: Some(attempt),
                output: output.map(str::to_string),
                values: values.to_vec(),
                out_tree,
                created_at: self.now(),
                quality: self
                    .state
                    .task(id)
                    .attempts
                    .iter()
                    .rfind(|a| a.attempt == attempt)
                    .map(|a| a.quality.clone())
                    .unwrap_or_default(),
            };
            self.rt.store.put_cache_entry(&entry).map_err(|e| e.to_string())?;
        }
        Ok(Some(AttemptCache {
            key: pending.key.as_ref().map(|(k, _)| k.to_string()),
            reused_from: None,
            reused_attempt: None,
            artifacts: artifacts.map(|h| h.to_string()),
            not_cached: pending.not_cached,
        }))
    }

    /// On resume or repair: what earlier successful attempts produced.
    pub(crate) fn restore_produced(&mut self) {
        let Some(cfg) = self.rt.cache.clone() else { return };
        let run = self.state.run_id();
        for (id, t) in self.state.view().tasks.iter().enumerate() {
            let Some(a) = t.attempts.iter().rev().find(|a| a.result == Some(TaskResult::Success)) else { continue };
            let out_tree = a.cache.as_ref().and_then(|c| c.artifacts.as_deref()).and_then(|h| cfg.manifest(h));
            let values = self.rt.store.values(run, &t.key).unwrap_or_default();
            self.produced.insert(id, Produced::new(a.output.as_deref(), &values, out_tree));
        }
        // every result first: a task a later plan version added may be upstream of one before it
        let mut ids: Vec<TaskId> = self.produced.keys().copied().collect();
        ids.sort_unstable(); // plan order is dependency order, so each finds its upstreams sealed
        for id in ids {
            self.seal_lineage(id);
        }
    }
}
