//! Content-hashed reruns, scheduler side: computing an attempt's cache key,
//! reusing a stored result instead of running, offering upstream `/out` files
//! at `/in/<task>`, and storing what a successful attempt produced.
//!
//! Owns the per-run use of the `cache` module (keys, blobs, trees). A task is
//! reused only when its key — component, rendered params, behavioural limits,
//! read-only mounts by content, every upstream result by content, granted
//! capabilities, secret names and versions, the sandbox ABI — matches a stored
//! success. Tasks with network access, rw mounts or `cache = false` (or a run
//! with `--no-cache`) always run. It never decides readiness or retries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};

use crate::cache::{self, CacheDir, CacheEntry, Hash, KeyParts, TreeManifest};
use crate::model::{AttemptCache, Event, TaskResult};
use crate::sandbox::{Command, Limits};
use crate::spec::MountMode;

use super::SchedulerError;
use super::exec::Exec;

/// What a finished task hands downstream, by content.
#[derive(Debug, Clone, Default)]
pub(crate) struct Produced {
    pub out_tree: Option<TreeManifest>,
    /// What downstream keys record of this result ([`cache::upstream_digest`]).
    pub digest: Option<Hash>,
}

impl Produced {
    fn new(output: Option<String>, values: &[(String, String)], out_tree: Option<TreeManifest>) -> Produced {
        let digest = Some(cache::upstream_digest(output.as_deref(), values, out_tree.as_ref().map(|t| &t.root)));
        Produced { out_tree, digest }
    }
}

/// An attempt's cache context between its start and its end.
pub(crate) struct Pending {
    pub key: Option<(Hash, KeyParts)>,
    pub not_cached: Option<String>,
    pub out_dir: Option<PathBuf>,
    pub max_out: Option<u64>,
}

/// What to do with an attempt about to start.
pub(crate) enum Prepared {
    /// Reuse this stored result; nothing runs.
    Hit(Box<CacheEntry>),
    /// Run it with these `/in` dirs, this `/out` dir and this random seed.
    Run { pending: Box<Pending>, inputs: Vec<(String, PathBuf)>, seed: Option<[u8; 32]> },
}

impl Exec {
    /// Work out the attempt's key, look it up, and prepare `/in` and `/out`.
    pub(crate) fn prepare_cache(
        &mut self,
        i: usize,
        attempt: u32,
        component_hash: &str,
        params: &BTreeMap<String, String>,
        limits: &Limits,
        command: Option<&Command>,
    ) -> Result<Prepared, String> {
        let Some(cfg) = self.rt.cache.clone() else {
            return Ok(Prepared::Run {
                pending: Box::new(Pending { key: None, not_cached: None, out_dir: None, max_out: None }),
                inputs: Vec::new(),
                seed: None,
            });
        };
        let spec = self.slots[i].spec.clone();
        let _ = attempt;
        let inputs = self.materialize_inputs(i, &cfg)?;
        let not_cached = match cache::reusable(&spec) {
            Err(why) => Some(why.to_string()),
            Ok(()) if !spec.exec.cache || self.opts.no_cache => Some(cache::OPTED_OUT.to_string()),
            Ok(()) => None,
        };
        let pending = |key| -> Result<Pending, String> {
            Ok(Pending {
                key,
                not_cached: not_cached.clone(),
                out_dir: Some(cfg.out_dirs.take()?),
                max_out: super::start::max_out_of(&spec, &self.plan),
            })
        };
        if not_cached.is_some() && !self.opts.no_cache {
            return Ok(Prepared::Run { pending: Box::new(pending(None)?), inputs, seed: None });
        }
        let parts = self.key_parts(i, &cfg, component_hash, params, limits, command, !inputs.is_empty())?;
        let key = parts.key();
        self.rt.store.put_key_parts(&key, &parts).map_err(|e| e.to_string())?;
        let seed = Some(*key.as_bytes());
        if not_cached.is_none()
            && let Some(entry) = self.lookup(&cfg, &key)
        {
            return Ok(Prepared::Hit(Box::new(entry)));
        }
        Ok(Prepared::Run { pending: Box::new(pending(Some((key, parts)))?), inputs, seed })
    }

    fn lookup(&self, cfg: &CacheDir, key: &Hash) -> Option<CacheEntry> {
        let entry = self.rt.store.cache_entry(key).ok().flatten()?;
        let usable = entry.is_consistent() && entry.blobs().all(|b| cfg.blobs.contains(&b));
        if !usable {
            tracing::warn!(key = %key, "cache entry unusable (damaged or its files were collected); running instead");
        }
        usable.then_some(entry)
    }

    #[allow(clippy::too_many_arguments)]
    fn key_parts(
        &self,
        i: usize,
        cfg: &CacheDir,
        component_hash: &str,
        params: &BTreeMap<String, String>,
        limits: &Limits,
        command: Option<&Command>,
        has_inputs: bool,
    ) -> Result<KeyParts, String> {
        let spec = &self.slots[i].spec;
        let mut parts = KeyParts::new(component_hash, crate::sandbox::SANDBOX_ABI_VERSION);
        parts.params = params.clone();
        parts.limits = cache::limit_parts(
            limits.memory,
            limits.fuel,
            limits.max_output,
            super::start::max_out_of(spec, &self.plan),
        );
        for m in spec.exec.mounts.iter().filter(|m| m.mode == MountMode::Ro) {
            let tree = {
                let mut stats = cfg.stat_cache.lock().unwrap_or_else(PoisonError::into_inner);
                cache::snapshot_cached(&m.host, &mut stats, self.opts.rehash)
                    .map_err(|e| format!("hashing mount {}: {e}", m.guest))?
            };
            parts.mounts.push(cache::mount_part(m, &tree.root));
        }
        for up in self.upstream_closure(i) {
            let digest = self.digest_of(&up).map_or_else(|| "none".to_string(), |d| d.to_string());
            parts.inputs.insert(cache::upstream_input(&up), digest);
        }
        parts.inputs.insert("context.job".into(), self.plan.job.name.clone());
        parts.inputs.insert("context.task".into(), spec.key.clone());
        parts.inputs.insert("context.target".into(), self.target.clone());
        parts.capabilities = cache::capabilities_of(&spec.exec, spec.command());
        if has_inputs {
            parts.capabilities.push("in".into());
            parts.capabilities.sort();
        }
        let version = |name: &str| {
            self.rt
                .secrets
                .as_ref()
                .and_then(|r| r.version(&self.plan.workspace, &self.target, name))
                .map_or(0, u64::from)
        };
        for name in &spec.exec.secrets {
            parts.secrets.insert(name.clone(), version(name));
        }

        if let Some(c) = command {
            parts.args = c.args.clone();
            for (k, v) in &c.env {
                parts.env.insert(k.clone(), v.clone());
            }
            for (k, pieces) in &c.secret_env {
                let text: String = pieces
                    .iter()
                    .map(|p| match p {
                        crate::spec::template::Part::Text(t) => t.clone(),
                        crate::spec::template::Part::Secret { scope, key } => {
                            let name = format!("{scope}/{key}");
                            format!("{{{{secrets/{name}@v{}}}}}", version(&name))
                        }
                    })
                    .collect();
                parts.env.insert(k.clone(), text);
            }
            parts.stdin = c.stdin.as_ref().map(|b| Hash::of(b).to_string());
        }
        if !spec.exec.secrets.is_empty() || command.is_some_and(|c| !c.secret_env.is_empty()) {
            // what a reveal returns depends on who asks
            parts.inputs.insert("context.principal".into(), self.plan.principal.clone());
        }
        Ok(parts)
    }

    /// What downstream keys record of task `key`'s result.
    fn digest_of(&self, key: &str) -> Option<Hash> {
        let &u = self.index.get(key)?;
        let s = &self.slots[u];
        if s.result != Some(TaskResult::Success) {
            return None;
        }
        s.produced.digest
    }

    /// Offer each direct upstream's `/out` files read-only at `/in/<task>`.
    fn materialize_inputs(&self, i: usize, cfg: &CacheDir) -> Result<Vec<(String, PathBuf)>, String> {
        let start = self.slots[i].parent.unwrap_or(i);
        let mut inputs = Vec::new();
        for up in self.slots[start].spec.upstream_keys() {
            let Some(&u) = self.index.get(up) else { continue };
            let Some(tree) = &self.slots[u].produced.out_tree else { continue };
            let dir = cfg.staging.join(format!("in-{}", tree.root));
            if !dir.exists() {
                let tmp = cfg.staging.join(format!(".in-{}-{}", tree.root, std::process::id()));
                let _ = std::fs::remove_dir_all(&tmp);
                cache::materialize(&cfg.blobs, tree, &tmp).map_err(|e| format!("offering /in/{up}: {e}"))?;
                if let Err(e) = std::fs::rename(&tmp, &dir) {
                    let _ = std::fs::remove_dir_all(&tmp);
                    if !dir.exists() {
                        return Err(format!("offering /in/{up}: {e}"));
                    }
                }
            }
            inputs.push((up.to_string(), dir));
        }
        Ok(inputs)
    }

    /// Record a reused result: the attempt ends at once, nothing runs.
    pub(crate) fn record_hit(&mut self, i: usize, attempt: u32, entry: CacheEntry) -> Result<(), SchedulerError> {
        let key = self.slots[i].spec.key.clone();
        for (name, json) in &entry.values {
            self.rt.store.put_value(self.journal.run(), &key, name, json)?;
        }
        let artifacts = match &entry.out_tree {
            Some(tree) => Some(self.store_manifest(tree)?),
            None => None,
        };
        self.slots[i].produced = Produced::new(entry.output.clone(), &entry.values, entry.out_tree.clone());
        let cache = AttemptCache {
            key: Some(entry.key.to_string()),
            reused_from: Some(format!("{}/{}", entry.run, entry.task)),
            artifacts: artifacts.map(|h| h.to_string()),
            not_cached: None,
        };
        self.append(Event::AttemptFinished {
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
        })?;
        self.ended(i, TaskResult::Success)
    }

    fn store_manifest(&self, tree: &TreeManifest) -> Result<Hash, SchedulerError> {
        let cfg = self.rt.cache.as_ref().ok_or_else(|| SchedulerError::Parameters("no cache configured".into()))?;
        let json = serde_json::to_vec(tree).map_err(|e| SchedulerError::Parameters(e.to_string()))?;
        cfg.blobs.put_bytes(&json).map_err(|e| SchedulerError::Parameters(format!("storing an artifact manifest: {e}")))
    }

    /// After an attempt: collect its `/out` files and, on success, store the result
    /// under its key. Returns what to record, or why the attempt must fail instead.
    pub(crate) fn harvest(
        &mut self,
        i: usize,
        pending: Pending,
        success: bool,
        output: Option<&str>,
        values: &[(String, String)],
    ) -> Result<Option<AttemptCache>, String> {
        let Some(cfg) = self.rt.cache.clone() else { return Ok(None) };
        let out_tree = match &pending.out_dir {
            Some(dir) if success => {
                let tree = cache::store_tree(&cfg.blobs, dir).map_err(|e| format!("collecting /out: {e}"));
                cfg.out_dirs.give_back(dir.clone());
                let tree = tree?;
                if let Some(max) = pending.max_out
                    && tree.total_size() > max
                {
                    return Err(format!(
                        "wrote {} to /out, over the limit of {}",
                        crate::util::human_bytes(tree.total_size()),
                        crate::util::human_bytes(max)
                    ));
                }
                (!tree.entries.is_empty() || !tree.dirs.is_empty()).then_some(tree)
            }
            Some(dir) => {
                cfg.out_dirs.give_back(dir.clone());
                None
            }
            None => None,
        };
        let artifacts = match &out_tree {
            Some(tree) => Some(self.store_manifest(tree).map_err(|e| e.to_string())?),
            None => None,
        };
        if success {
            self.slots[i].produced = Produced::new(output.map(str::to_string), values, out_tree.clone());
        }
        if let (true, None, Some((key, parts))) = (success, &pending.not_cached, &pending.key) {
            if out_tree.is_some() {
                // the entry must never be durable before the files it names
                cfg.blobs.sync().map_err(|e| format!("making /out durable: {e}"))?;
            }
            let entry = CacheEntry {
                key: *key,
                parts: parts.clone(),
                run: self.journal.run(),
                task: self.slots[i].spec.key.clone(),
                output: output.map(str::to_string),
                values: values.to_vec(),
                out_tree,
                created_at: self.now(),
            };
            self.rt.store.put_cache_entry(&entry).map_err(|e| e.to_string())?;
        }
        Ok(Some(AttemptCache {
            key: pending.key.as_ref().map(|(k, _)| k.to_string()),
            reused_from: None,
            artifacts: artifacts.map(|h| h.to_string()),
            not_cached: pending.not_cached,
        }))
    }

    /// On resume or repair: what earlier successful attempts produced.
    pub(crate) fn restore_produced(&mut self, view: &crate::model::RunView) {
        let Some(cfg) = self.rt.cache.clone() else { return };
        let run = self.journal.run();
        for s in self.slots.iter_mut() {
            let Some(tv) = view.task(&s.spec.key) else { continue };
            let Some(a) = tv.attempts.iter().rev().find(|a| a.result == Some(TaskResult::Success)) else { continue };
            let artifacts = a.cache.as_ref().and_then(|c| c.artifacts.as_deref()).and_then(|h| h.parse::<Hash>().ok());
            let out_tree = artifacts.and_then(|h| cfg.blobs.get(&h).ok()).and_then(|b| serde_json::from_slice(&b).ok());
            let values = self.rt.store.values(run, &s.spec.key).unwrap_or_default();
            s.produced = Produced::new(a.output.clone(), &values, out_tree);
        }
    }
}

/// Keep cache state consistent across runs (called when a run ends).
pub(crate) fn finish(cfg: &Option<Arc<CacheDir>>) {
    if let Some(cfg) = cfg {
        cfg.save();
    }
}
