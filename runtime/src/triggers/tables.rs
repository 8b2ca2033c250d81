//! Table-update triggers: a run when named datasets (published by tasks' `datasets`) get a
//! new content hash in the trigger's workspace and target.
//!
//! A dataset's versions are the store's (`DatasetStore`: a version is recorded only when
//! its hash changed, so an identical rewrite is no version at all). A version is *new* for
//! a trigger when it is newer than the one its runs consumed, recorded as `table:NAME` in
//! the trigger store's consumed records with the run's creation (one flush), so each
//! version set starts exactly one run, across crashes and restarts. `ANY_UPDATED` fires
//! for any new version, `ALL_UPDATED` only once every watched dataset has one; either
//! waits until no new version came for `wait_after_last_change` and
//! `min_time_between_triggers` passed since its last run (engine clock). The set is looked
//! at on every step of the engine (a few reads; the service pokes the engine when a run
//! ends). It never creates runs itself: the engine's launcher does.

use super::TriggerError;
use super::engine::{Engine, Firing, Launcher, TriggerJob, Watched};
use crate::model::{Millis, TriggerContext, TriggerTable};
use crate::spec::datasets::{TableCondition, TableUpdate};
use crate::store::datasets::Namespace;
use crate::store::triggers::FiringKey;

/// The firing keys of table-update runs start with this (then a hash of the version set).
pub const FIRING_PREFIX: &str = "tables-";

/// What a consumed dataset version is recorded under in the trigger store.
pub fn consumed_path(dataset: &str) -> String {
    format!("table:{dataset}")
}

/// What a table-update trigger has seen since its last run.
#[derive(Debug, Clone, Default)]
pub struct TableWatch {
    /// The new versions of the latest look.
    pending: Vec<TriggerTable>,
    /// When the pending set last changed (engine clock).
    changed_at: Millis,
    /// When the trigger last started a run.
    pub last_fired: Option<Millis>,
}

impl TableWatch {
    /// The new versions seen at `now`: the set to start a run for, when it is time.
    pub fn observe(&mut self, new: Vec<TriggerTable>, now: Millis, spec: &TableUpdate) -> Option<Vec<TriggerTable>> {
        if new != self.pending {
            self.pending = new;
            self.changed_at = now;
        }
        if !condition_holds(spec, &self.pending) || now < self.ready_at(spec) {
            return None;
        }
        Some(self.pending.clone())
    }

    /// A run was started for the pending set.
    pub fn fired(&mut self, now: Millis) {
        self.last_fired = Some(now);
        self.pending.clear();
    }

    /// The earliest the pending set may start a run (if nothing changes meanwhile).
    fn ready_at(&self, spec: &TableUpdate) -> Millis {
        let quiet = self.changed_at + spec.wait_after_last_change.as_millis() as Millis;
        let spaced = self.last_fired.map_or(0, |t| t + spec.min_time_between_triggers.as_millis() as Millis);
        quiet.max(spaced)
    }

    /// When to look again because of time alone (`None`: only when something changes).
    pub fn next_check(&self, now: Millis, spec: &TableUpdate) -> Option<Millis> {
        condition_holds(spec, &self.pending).then(|| self.ready_at(spec).max(now))
    }
}

/// Whether `new` versions satisfy the trigger's condition.
fn condition_holds(spec: &TableUpdate, new: &[TriggerTable]) -> bool {
    match spec.condition {
        TableCondition::AnyUpdated => !new.is_empty(),
        TableCondition::AllUpdated => spec.tables.iter().all(|t| new.iter().any(|n| &n.name == t)),
    }
}

/// The firing key of a version set: the same set always has the same key.
fn firing_key(tables: &[TriggerTable]) -> FiringKey {
    let set: Vec<String> = tables.iter().map(|t| format!("{}@{}", t.name, t.version)).collect();
    FiringKey::Named(format!("{FIRING_PREFIX}{}", blake3::hash(set.join("\n").as_bytes()).to_hex()))
}

impl Engine {
    /// The latest version of each watched dataset that `job`'s trigger has not consumed,
    /// in the order the trigger lists them.
    pub fn new_tables(&self, job: &TriggerJob, spec: &TableUpdate) -> Result<Vec<TriggerTable>, TriggerError> {
        let ns = Namespace { workspace: &job.workspace, target: &job.target };
        let mut out = Vec::new();
        for name in &spec.tables {
            let Some(latest) = self.datasets.latest(ns, name)? else { continue };
            let consumed = self.store.consumed(job.job_id, &consumed_path(name))?;
            let seen = consumed.and_then(|c| c.version.parse::<u64>().ok()).unwrap_or(0);
            if latest.version > seen {
                out.push(TriggerTable {
                    name: name.clone(),
                    version: latest.version,
                    hash: latest.hash,
                    run: latest.run,
                    task: latest.task,
                });
            }
        }
        Ok(out)
    }

    /// Look at a table-update trigger: start a run for its new versions when they are ready.
    pub(super) async fn tables(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        spec: &TableUpdate,
        now: Millis,
    ) -> Result<Option<Millis>, TriggerError> {
        let new = self.new_tables(&w.job, spec)?;
        w.error = None;
        let Some(set) = w.tables.observe(new, now, spec) else { return Ok(w.tables.next_check(now, spec)) };
        let firing = Firing {
            key: firing_key(&set),
            also: vec![],
            context: TriggerContext {
                kind: "table_update".into(),
                time: now,
                files: vec![],
                payload: None,
                tables: set,
            },
        };
        if self.launch(w, launcher, firing, now).await?.is_some() {
            w.tables.fired(now);
        }
        Ok(w.tables.next_check(now, spec))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(condition: TableCondition) -> TableUpdate {
        TableUpdate {
            tables: vec!["a".into(), "b".into()],
            condition,
            min_time_between_triggers: Duration::from_secs(60),
            wait_after_last_change: Duration::from_secs(30),
        }
    }

    fn t(name: &str, version: u64) -> TriggerTable {
        TriggerTable { name: name.into(), version, hash: format!("h{version}"), run: 1, task: "p".into() }
    }

    #[test]
    fn any_updated_waits_for_quiet_and_the_minimum_interval() {
        let s = spec(TableCondition::AnyUpdated);
        let mut w = TableWatch::default();
        assert_eq!(w.observe(vec![], 0, &s), None);
        assert_eq!(w.observe(vec![t("a", 1)], 1_000, &s), None);
        assert_eq!(w.next_check(1_000, &s), Some(31_000));
        // another version arrives: the quiet period starts again
        assert_eq!(w.observe(vec![t("a", 2)], 20_000, &s), None);
        assert_eq!(w.observe(vec![t("a", 2)], 49_999, &s), None);
        assert_eq!(w.observe(vec![t("a", 2)], 50_000, &s), Some(vec![t("a", 2)]));
        w.fired(50_000);
        // quiet by 61 s, but a minute must pass since the last run
        assert_eq!(w.observe(vec![t("b", 1)], 31_000 + 30_000, &s), None);
        assert_eq!(w.observe(vec![t("b", 1)], 109_999, &s), None);
        assert_eq!(w.observe(vec![t("b", 1)], 110_000, &s), Some(vec![t("b", 1)]));
    }

    #[test]
    fn all_updated_waits_for_every_table() {
        let s = TableUpdate { wait_after_last_change: Duration::ZERO, ..spec(TableCondition::AllUpdated) };
        let mut w = TableWatch::default();
        assert_eq!(w.observe(vec![t("a", 1)], 1_000, &s), None);
        assert_eq!(w.next_check(1_000, &s), None, "nothing to wait for until b changes");
        assert_eq!(w.observe(vec![t("a", 1), t("b", 3)], 2_000, &s), Some(vec![t("a", 1), t("b", 3)]));
    }

    #[test]
    fn a_version_set_has_one_key() {
        assert_eq!(firing_key(&[t("a", 1), t("b", 2)]), firing_key(&[t("a", 1), t("b", 2)]));
        assert_ne!(firing_key(&[t("a", 1)]), firing_key(&[t("a", 2)]));
    }
}
