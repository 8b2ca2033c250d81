//! Content-hashed reruns: the cache key of a task, the blob store its files live in, and
//! directory trees hashed by content.
//!
//! A task's result is reused when the key of its next execution equals the key of a stored
//! successful result. The key ([`KeyParts::key`]) is the blake3 of a canonical, versioned
//! encoding of everything that can change the result:
//!
//! - the key format version and the sandbox ABI version;
//! - the component's blake3;
//! - the resolved config: params after templating, the limits that change behaviour (see
//!   [`key`]), each mount's guest path, mode and *content*;
//! - every input: each upstream result the task can read (output, values and `/out` tree,
//!   by content), a command's args, env and stdin bytes, the stable context fields;
//! - the granted capability set;
//! - the names and versions of granted secrets — never their values.
//!
//! **Content, never paths.** A read-only mount enters the key as the Merkle root of its
//! files ([`tree::tree_root`]): moving or renaming the data keeps the key (a hit), changing
//! one byte under the same path changes it (a miss). Keys built from paths are how other
//! schedulers serve stale results. Hashing a large mount twice is avoided by the
//! [`StatCache`] (size, mtime, ctime, inode, device unchanged ⇒ hash unchanged; `--rehash`
//! reads everything).
//!
//! **Never reused** ([`reusable`]): tasks with network access (their result depends on the
//! world), tasks with read-write mounts (they have side effects a reuse would skip), tasks
//! that opt out (`cache = false`), and kinds with nothing of their own to reuse (condition,
//! for_each, run_job; a for_each's iterations and a child run's tasks are keyed on their
//! own). A whole run opts out with `--no-cache` (the scheduler's decision).
//!
//! **Explained misses.** Every stored result keeps its [`KeyParts`] ([`CacheEntry`]), so a
//! miss is explained against the nearest earlier result ([`nearest`], [`explain`]):
//! "param day: 2026-11-25 → 2026-11-26", "component changed: 3f2a91c0… → 9c1b22aa…".
//!
//! Files: `hash.rs` ([`Hash`]), `blobs.rs` ([`BlobStore`]: `<state>/blobs`), `tree.rs`
//! (snapshots, manifests, materialising), `merkle.rs` (a tree's root), `integrity.rs`
//! (copying blob stores, for backups), `statcache.rs` ([`StatCache`]:
//! `<state>/statcache.json`), `key.rs` (the key). This module must never touch the
//! scheduler, the sandbox or the event store: they call it; it decides nothing about runs.

pub mod blobs;
mod dir;
pub mod hash;
pub mod integrity;
pub mod key;
pub mod merkle;
pub mod statcache;
pub mod tree;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

pub use blobs::{BlobError, BlobStore, GcReport, TEMP_MAX_AGE};
pub use dir::{CacheDir, STAGING_DIR};
pub use hash::{Hash, HashParseError};
pub use key::{
    Difference, KEY_FORMAT_VERSION, KeyParts, MountPart, Part, capabilities_of, explain, limit_parts, lineage,
    mount_part, nearest, upstream_digest, upstream_input,
};
pub use statcache::{FileStat, STAT_CACHE_FILE, StatCache};
pub use tree::{
    MaterializeReport, SnapshotStats, Tree, TreeEntry, TreeError, TreeLink, TreeManifest, materialize, merkle_root,
    snapshot, snapshot_cached, store_tree, tree_root,
};

/// The key part naming the blob that holds the checkpoints an attempt started from (a
/// JSON object, checkpoint key → base64 of its bytes): an attempt that resumes from
/// checkpoints has them as inputs, and `sluice verify` feeds them back.
pub const CHECKPOINTS_INPUT: &str = "checkpoints";

/// The blob store's directory under the state directory.
pub const BLOBS_DIR: &str = "blobs";

/// A stored successful result and the parts of its key; what the store persists per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// `parts.key()` when stored.
    pub key: Hash,
    pub parts: KeyParts,
    /// The run and task that produced the result (`reused_from: <run>/<task>`).
    pub run: u64,
    pub task: String,
    /// The attempt that produced it (`None` in entries stored before attempts were kept).
    #[serde(default)]
    pub attempt: Option<u32>,
    /// The task's JSON output.
    pub output: Option<String>,
    /// The task's values, sorted by key.
    pub values: Vec<(String, String)>,
    /// The files it wrote under `/out`.
    pub out_tree: Option<TreeManifest>,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// What the task's production expectations found on these files (a reuse records it again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality: Vec<crate::model::ExpectationResult>,
}

impl CacheEntry {
    /// Whether the entry is consistent: its key is the key of its parts (a stored entry
    /// that fails this was written by another format or damaged; treat it as a miss).
    pub fn is_consistent(&self) -> bool {
        self.parts.key() == self.key && self.out_tree.as_ref().is_none_or(|tree| tree.root == tree_root_of(tree))
    }

    /// The blobs this entry needs.
    pub fn blobs(&self) -> impl Iterator<Item = Hash> + '_ {
        self.out_tree.iter().flat_map(TreeManifest::blobs)
    }

    /// What a downstream task's key records of this result ([`upstream_digest`]).
    pub fn digest(&self) -> Hash {
        upstream_digest(self.output.as_deref(), &self.values, self.out_tree.as_ref().map(|tree| &tree.root))
    }
}

fn tree_root_of(tree: &TreeManifest) -> Hash {
    tree_root(tree.entries.iter().map(|e| (e.path.as_str(), &e.hash)), tree.dirs.iter().map(String::as_str))
}

/// Every blob the given entries need: the `referenced` set for [`BlobStore::gc`] (add the
/// blobs of runs' own outputs that are kept).
pub fn referenced_blobs<'a>(entries: impl IntoIterator<Item = &'a CacheEntry>) -> HashSet<Hash> {
    entries.into_iter().flat_map(CacheEntry::blobs).collect()
}

/// Why a result of this task may never be reused; `Ok` when it may.
///
/// Component and command tasks are reusable (a command's args, env and stdin are key
/// parts) unless they opt out (`cache = false`), can reach the network (`allow_hosts`) or
/// have a read-write mount. Condition tasks are evaluated in place and for_each and
/// run_job tasks have no result of their own: their iterations (whose spec carries the
/// template's `cache`) and child-run tasks are checked one by one. A run's `--no-cache` is
/// the caller's to apply (report [`OPTED_OUT`]).
pub fn reusable(spec: &crate::spec::TaskSpec) -> Result<(), &'static str> {
    use crate::spec::{MountMode, TaskKind};
    match spec.kind {
        TaskKind::Component { .. } | TaskKind::Command(_) => {}
        TaskKind::Condition { .. } => return Err("condition tasks are evaluated in place; there is nothing to reuse"),
        TaskKind::ForEach { .. } => return Err("a for_each task is not reused as a whole; each iteration is"),
        TaskKind::RunJob { .. } => return Err("a run_job task is not reused as a whole; the child run's tasks are"),
    }
    if !spec.exec.cache {
        return Err(OPTED_OUT);
    }
    if !spec.exec.allow_hosts.is_empty() {
        return Err("the task has network access (allow_hosts): its result depends on the world");
    }
    if spec.exec.mounts.iter().any(|mount| mount.mode == MountMode::Rw) {
        return Err("the task has a read-write mount: reusing it would skip its side effects");
    }
    Ok(())
}

/// The reason reported for a task with `cache = false` (or a run with `--no-cache`).
pub const OPTED_OUT: &str = "caching is turned off for this task (cache = false or --no-cache)";

#[cfg(test)]
mod tests;
