//! `sluice store check`: reads everything a store holds and reports what is damaged.
//!
//! Owns the checks, not the repairs: every run's event log must decode and fold into a
//! state (the one fold, [`RunState::from_events`], so "folds" means what resume and
//! `runs show` need); every summary, value list and cache entry must decode; every blob a
//! record names (an attempt's `/out` manifest and its files, a cache entry's files) must
//! exist and hash to its name; every sealed secret version must open with the master key.
//! The blob store lives outside the store, so its part comes in through [`BlobCheck`]
//! (implemented here for `cache::BlobStore`); what the backend holds through an
//! [`Inventory`] it lists itself; the secrets through their own trait and key.
//!
//! It never writes and never stops at the first problem: each is reported with the record
//! it was found in, and the check goes on.

use std::collections::HashSet;

use serde::Serialize;

use super::Store;
use crate::cache::CacheEntry;
use crate::model::RunId;
use crate::secrets::{MasterKey, SecretStore, crypto::secret_aad};
use crate::state::RunState;

/// What the check needs of the blob store. Hashes are hex, as the store's records hold them.
pub trait BlobCheck {
    /// `Ok` if blob `hash` exists and its content hashes to it; else why not.
    fn verify(&self, hash: &str) -> Result<(), String>;
    /// The blobs named by the `/out` tree manifest stored as blob `hash`.
    fn tree_blobs(&self, hash: &str) -> Result<Vec<String>, String>;
    /// The blobs named by a cache entry.
    fn entry_blobs(&self, entry: &CacheEntry) -> Vec<String> {
        entry.blobs().map(|h| h.to_string()).collect()
    }
}

/// What a backend holds, listed by the backend itself (see `SledStore::inventory`): the
/// runs to check, and the cache entries [`Store::cache_entries`] leaves out because they
/// do not decode (a lost entry is only a miss to a run, but damage to a check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Every run the store holds a summary or events of, ascending.
    pub runs: Vec<RunId>,
    /// (key, why) of each cache entry that does not decode.
    pub undecodable_cache_entries: Vec<(String, String)>,
}

/// The secrets part of a check: where they are, and the key to open them with (`Err`:
/// why there is none; the versions are then decoded but not opened).
pub struct SecretsCheck<'a> {
    pub store: &'a dyn SecretStore,
    pub key: Result<MasterKey, String>,
}

/// One thing found damaged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The record: `run 7`, `run 7, task t, attempt 0: blob …`, `cache entry …`, `secret s/k v2`.
    pub what: String,
    pub message: String,
}

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub runs: u64,
    pub events: u64,
    pub cache_entries: u64,
    /// Distinct blobs verified.
    pub blobs: u64,
    pub secret_versions: u64,
    /// Secret versions opened with the master key.
    pub secrets_opened: u64,
    /// Things that were not checked, and why (no master key, no blob store).
    pub notes: Vec<String>,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether nothing damaged was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, what: impl Into<String>, message: impl std::fmt::Display) {
        self.problems.push(Problem { what: what.into(), message: message.to_string() });
    }
}

/// Checks the runs of `store` its backend listed (`inventory`), its cache entries, the
/// blobs they name and the secrets.
pub fn check(
    store: &dyn Store,
    inventory: &Inventory,
    blobs: Option<&dyn BlobCheck>,
    secrets: Option<SecretsCheck<'_>>,
) -> CheckReport {
    let mut report = CheckReport::default();
    let mut verified = HashSet::new();
    for &run in &inventory.runs {
        check_run(store, run, blobs, &mut verified, &mut report);
    }
    check_cache(store, blobs, &mut verified, &mut report);
    for (key, why) in &inventory.undecodable_cache_entries {
        report.cache_entries += 1;
        report.problem(format!("cache entry {key}"), why);
    }
    if blobs.is_none() {
        report.notes.push("blobs were not checked (no blob store given)".into());
    }
    report.blobs = verified.len() as u64;
    match secrets {
        Some(secrets) => check_secrets(&secrets, &mut report),
        None => report.notes.push("secrets were not checked".into()),
    }
    report
}

/// The blob store checks itself: rehashing each blob and reading manifests and entries.
impl BlobCheck for crate::cache::BlobStore {
    fn verify(&self, hash: &str) -> Result<(), String> {
        crate::cache::BlobStore::verify(self, &parse_hash(hash)?).map_err(|e| e.to_string())
    }

    fn tree_blobs(&self, hash: &str) -> Result<Vec<String>, String> {
        let bytes = self.get(&parse_hash(hash)?).map_err(|e| e.to_string())?;
        let manifest: crate::cache::TreeManifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("blob {hash} is not a tree manifest: {e}"))?;
        Ok(manifest.blobs().map(|h| h.to_string()).collect())
    }
}

fn parse_hash(hash: &str) -> Result<crate::cache::Hash, String> {
    hash.parse().map_err(|e| format!("{e}"))
}

fn check_run(
    store: &dyn Store,
    run: RunId,
    blobs: Option<&dyn BlobCheck>,
    verified: &mut HashSet<String>,
    report: &mut CheckReport,
) {
    report.runs += 1;
    let what = format!("run {run}");
    if let Err(e) = store.summary(run) {
        report.problem(format!("{what} summary"), e);
    }
    let events = match store.events(run) {
        Ok(events) => events,
        Err(e) => return report.problem(format!("{what} event log"), e),
    };
    report.events += events.len() as u64;
    let state = match RunState::from_events(&events) {
        Ok(state) => state,
        Err(e) => return report.problem(format!("{what} event log"), e),
    };
    for task in &state.view().tasks {
        if let Err(e) = store.values(run, &task.key) {
            report.problem(format!("{what}, task {} values", task.key), e);
        }
        let Some(blobs) = blobs else { continue };
        for attempt in &task.attempts {
            let Some(manifest) = attempt.cache.as_ref().and_then(|c| c.artifacts.as_deref()) else { continue };
            let what = format!("{what}, task {}, attempt {}: /out files", task.key, attempt.attempt);
            verify_blob(blobs, manifest, &what, verified, report);
            match blobs.tree_blobs(manifest) {
                Ok(files) => files.iter().for_each(|h| verify_blob(blobs, h, &what, verified, report)),
                Err(e) => report.problem(what, e),
            }
        }
    }
}

fn verify_blob(
    blobs: &dyn BlobCheck,
    hash: &str,
    what: &str,
    verified: &mut HashSet<String>,
    report: &mut CheckReport,
) {
    if !verified.insert(hash.to_string()) {
        return;
    }
    if let Err(e) = blobs.verify(hash) {
        report.problem(what, e);
    }
}

fn check_cache(
    store: &dyn Store,
    blobs: Option<&dyn BlobCheck>,
    verified: &mut HashSet<String>,
    report: &mut CheckReport,
) {
    let entries = match store.cache_entries() {
        Ok(entries) => entries,
        Err(e) => return report.problem("cache entries", e),
    };
    for entry in entries {
        report.cache_entries += 1;
        let Some(blobs) = blobs else { continue };
        let what = format!("cache entry {}", entry.key);
        blobs.entry_blobs(&entry).iter().for_each(|h| verify_blob(blobs, h, &what, verified, report));
    }
}

fn check_secrets(secrets: &SecretsCheck<'_>, report: &mut CheckReport) {
    let store = secrets.store;
    if let Err(e) = store.audit() {
        report.problem("secrets audit trail", e);
    }
    let key = match (&secrets.key, store.key_check()) {
        (_, Err(e)) => {
            report.problem("secrets master key check", e);
            None
        }
        (Ok(key), Ok(Some(check))) if !key.matches(&check) => {
            report.problem(
                "secrets",
                format!("the master key from {} is not the one they were sealed with", key.source()),
            );
            None
        }
        (Ok(key), _) => Some(key),
        (Err(why), _) => {
            report.notes.push(format!("secret values were not opened: {why}"));
            None
        }
    };
    let scopes = match store.scopes() {
        Ok(scopes) => scopes,
        Err(e) => return report.problem("secret scopes", e),
    };
    for scope in scopes {
        let id = &scope.id;
        let names = match store.secret_keys(id) {
            Ok(names) => names,
            Err(e) => {
                report.problem(format!("secrets of scope {}", id.name), e);
                continue;
            }
        };
        if let Err(e) = store.acl(id) {
            report.problem(format!("ACL of scope {}", id.name), e);
        }
        for name in names {
            let what = format!("secret {}/{name} ({} {})", id.name, id.workspace, id.target);
            let versions = match store.versions(id, &name) {
                Ok(versions) => versions,
                Err(e) => {
                    report.problem(what, e);
                    continue;
                }
            };
            for version in versions {
                report.secret_versions += 1;
                let Some(key) = key else { continue };
                match key.open(&version.sealed, &secret_aad(id, &name, version.version)) {
                    Some(_) => report.secrets_opened += 1,
                    None => report.problem(
                        format!("{what} version {}", version.version),
                        "does not open with the master key (damaged, or moved from another record)",
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
