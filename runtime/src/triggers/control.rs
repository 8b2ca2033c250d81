//! Operating a trigger by hand: pausing and resuming it, firing it now (`sluice triggers
//! fire`), and the status `sluice triggers list` shows — the engine's operator surface.
//!
//! Owns no state of its own: it reads and writes the engine's jobs and the trigger store
//! under the engine's lock, as the engine's own loop does. It never decides when a trigger
//! is due (that is `engine.rs`'s `step`).

use std::sync::atomic::Ordering;

use super::TriggerError;
use super::engine::{Engine, Firing, Launched, Launcher, TriggerJob, TriggerStatus};
use crate::model::TriggerContext;
use crate::spec::triggers::TriggerKind;
use crate::store::triggers::{FiringKey, Outcome};

impl Engine {
    /// Whether the job's trigger is paused now (durable override, else the bundle's).
    pub async fn is_paused(&self, job: u64) -> Result<Option<bool>, TriggerError> {
        let map = self.jobs.lock().await;
        let Some(w) = map.get(&job) else { return Ok(None) };
        let state = self.store.state(job)?;
        Ok(Some(state.and_then(|s| s.paused).unwrap_or(w.job.spec.paused)))
    }

    /// Pause or resume a job's trigger (durable). Ticks due while it was paused are
    /// recorded as skipped before it resumes, so resuming never catches them up.
    pub async fn set_paused(&self, launcher: &dyn Launcher, job: u64, paused: bool) -> Result<bool, TriggerError> {
        let mut map = self.jobs.lock().await;
        let Some(w) = map.get_mut(&job) else { return Ok(false) };
        let now = self.clock.now_millis();
        let mut state = self.state(job, now)?;
        if !paused && state.paused.unwrap_or(w.job.spec.paused) {
            self.ticks(w, launcher, &state, now, true).await?;
            // a continuous or file trigger starts afresh
            w.not_before = 0;
        }
        state.paused = Some(paused);
        self.store.put_state(job, &state)?;
        drop(map);
        self.poke();
        Ok(true)
    }

    /// Fire a job's trigger by hand, with the same payload shape: a file-arrival trigger
    /// takes the new files there are now, a webhook the given payload.
    pub async fn fire(
        &self,
        launcher: &dyn Launcher,
        job: u64,
        payload: Option<serde_json::Value>,
    ) -> Result<Option<Launched>, TriggerError> {
        let mut map = self.jobs.lock().await;
        let Some(w) = map.get_mut(&job) else { return Ok(None) };
        let now = self.clock.now_millis();
        if self.state(job, now)?.paused.unwrap_or(w.job.spec.paused) {
            return Err(TriggerError::Invalid(format!("the trigger of job {} is paused; resume it first", w.job.name)));
        }
        let kind = w.job.spec.kind.clone();
        let files = match &kind {
            TriggerKind::FileArrival(spec) if crate::objstore::is_object_url(&spec.url) => {
                let listed = self.list_objects(w, launcher, spec).await?;
                self.unconsumed(job, listed)?
            }
            TriggerKind::FileArrival(spec) => self.new_files(job, &spec.url)?,
            _ => vec![],
        };
        let tables = match &w.job.spec.kind {
            TriggerKind::TableUpdate(spec) => self.new_tables(&w.job, spec)?,
            _ => vec![],
        };
        let payload = match &w.job.spec.kind {
            TriggerKind::Webhook { .. } => Some(payload.unwrap_or_else(|| serde_json::json!({}))),
            _ => payload,
        };
        let n = self.manual.fetch_add(1, Ordering::Relaxed);
        let kind = w.job.spec.kind.name().to_string();
        let firing = Firing {
            key: FiringKey::Named(format!("manual-{now:020}-{n}")),
            also: vec![],
            context: TriggerContext { kind, time: now, files, payload, tables },
        };
        let launched = launcher.launch(&w.job, firing).await?;
        match w.job.spec.kind {
            TriggerKind::FileArrival(_) => w.watch.fired(now),
            TriggerKind::TableUpdate(_) => w.tables.fired(now),
            _ => {}
        }
        self.telemetry.trigger_fired("manual");
        Ok(Some(launched))
    }

    /// The engine's triggers, as `sluice triggers list` shows them.
    pub async fn statuses(&self) -> Result<Vec<TriggerStatus>, TriggerError> {
        let map = self.jobs.lock().await;
        let now = self.clock.now_millis();
        let mut out = Vec::new();
        for w in map.values() {
            let state = self.store.state(w.job.job_id)?;
            let firings = self.store.firings(w.job.job_id)?;
            let mut s = TriggerStatus {
                job_id: w.job.job_id,
                job: w.job.name.clone(),
                workspace: w.job.workspace.clone(),
                kind: w.job.spec.kind.name().into(),
                paused: state.and_then(|s| s.paused).unwrap_or(w.job.spec.paused),
                next: w.ticks.as_ref().and_then(|t| t.next_after(now)),
                last: firings.iter().max_by_key(|(_, r)| r.recorded_at).cloned(),
                fired: 0,
                missed: 0,
                skipped: 0,
                error: w.error.clone(),
            };
            for (_, r) in &firings {
                match &r.outcome {
                    Outcome::Fired { .. } => s.fired += 1,
                    Outcome::Missed { count, .. } => s.missed += count,
                    Outcome::Skipped { count, .. } => s.skipped += count,
                }
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The job a trigger of the engine's belongs to.
    pub async fn job(&self, job: u64) -> Option<TriggerJob> {
        self.jobs.lock().await.get(&job).map(|w| w.job.clone())
    }
}
