//! The trigger engine: the triggers of the jobs it was handed ([`Engine::set_jobs`]),
//! looked at whenever one is due on the injected clock ([`Engine::step`]), fired through
//! a [`Launcher`].
//!
//! Schedules and periodic triggers keep no cursor of their own: the latest tick recorded
//! for a job (fired, missed or skipped) is where the next look starts, and a tick's record
//! is written with its run's creation, so a crash re-fires a tick only if its run was
//! never durable. A trigger first seen records when (`TriggerState::since`): earlier ticks
//! were never due. Paused triggers record their ticks as skipped.
//!
//! Pausing, firing by hand and the status list are in `control.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::Serialize;

use super::TriggerError;
use super::catchup::due;
use super::clock::WakeClock;
pub use super::continuous::{CONTINUOUS_BACKOFF_BASE, CONTINUOUS_BACKOFF_CAP, backoff};
use super::cron::Ticks;
use super::files::Watch;
use crate::model::{Millis, RunId, Telemetry, TriggerContext, time_of};
use crate::spec::triggers::{TriggerKind, TriggerSpec};
use crate::store::TriggerStore;
use crate::store::triggers::{FiringKey, FiringRecord, Outcome, TriggerState};

/// How often, in real time, the engine looks at its jobs even when nothing is due: a
/// changed bundle, a finished run of a continuous job.
pub const RESCAN: Duration = Duration::from_secs(1);

/// A job with a trigger, as the service hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerJob {
    /// The job's stable id (the API's `job_id`).
    pub job_id: u64,
    pub workspace: String,
    /// `<bundle>.<job>`.
    pub name: String,
    /// The target its runs run in (a table-update trigger watches datasets there).
    pub target: String,
    pub spec: TriggerSpec,
    /// Who its runs are started as; `None`: the principal `sluice serve` runs as (a
    /// deployed job's: its target's `run_as`, else its deployer).
    pub principal: Option<String>,
}

/// One firing to start a run for.
#[derive(Debug, Clone)]
pub struct Firing {
    pub key: FiringKey,
    /// Further keys recorded for the same run (a webhook's signature beside its
    /// idempotency key).
    pub also: Vec<FiringKey>,
    pub context: TriggerContext,
}

/// The run a firing started (or had started already).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Launched {
    pub run: RunId,
    /// The firing's key was recorded already: no new run.
    pub existing: bool,
}

/// A future a launcher returns.
pub type LaunchFuture<'a> = Pin<Box<dyn Future<Output = Result<Launched, TriggerError>> + Send + 'a>>;

/// What starts runs for the engine (the service).
pub trait Launcher: Send + Sync {
    /// Create a run of `job` for `firing`, recording its keys (and the files in its
    /// context, as consumed) in the same flush as the run's creation; a key recorded
    /// already returns its run.
    fn launch<'a>(&'a self, job: &'a TriggerJob, firing: Firing) -> LaunchFuture<'a>;
    /// `None` while `run` has not finished; else whether it succeeded.
    fn finished(&self, run: RunId) -> Option<bool>;
    /// The value of the secret `name` (`scope/key`) for `job`'s trigger — an object store's
    /// credentials — revealed through the vault and audited.
    fn credentials(&self, job: &TriggerJob, name: &str) -> Result<secrecy::SecretString, TriggerError> {
        let _ = job;
        Err(TriggerError::Invalid(format!("the secret `{name}` cannot be read here")))
    }
}

/// A trigger as `sluice triggers list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TriggerStatus {
    pub job_id: u64,
    pub job: String,
    pub workspace: String,
    pub kind: String,
    pub paused: bool,
    /// The next tick (schedules and periodic).
    pub next: Option<Millis>,
    /// The latest firing recorded: its key and what became of it.
    pub last: Option<(FiringKey, FiringRecord)>,
    pub fired: u64,
    pub missed: u64,
    pub skipped: u64,
    /// Why the trigger cannot fire, if it cannot.
    pub error: Option<String>,
}

pub(super) struct Watched {
    pub(super) job: TriggerJob,
    pub(super) ticks: Option<Ticks>,
    pub(super) watch: Watch,
    /// An object store's listing: the opened store, and the listing in flight.
    pub(super) objects: super::arrival::ObjectWatch,
    /// A table-update trigger's pending versions and timing.
    pub(super) tables: super::tables::TableWatch,
    /// A continuous job's current run, failures in a row, and when it may start again.
    pub(super) running: Option<RunId>,
    /// The continuous run the next one follows (its firing key).
    pub(super) previous: Option<RunId>,
    pub(super) failures: u32,
    pub(super) not_before: Millis,
    loaded: bool,
    pub(super) error: Option<String>,
}

/// The trigger engine. `Send + Sync`; share it in an `Arc`.
pub struct Engine {
    pub(super) clock: Arc<dyn WakeClock>,
    pub(super) store: Arc<dyn TriggerStore>,
    /// Where table-update triggers read dataset versions.
    pub(super) datasets: Arc<dyn crate::store::DatasetStore>,
    pub(super) telemetry: Arc<dyn Telemetry>,
    pub(super) jobs: tokio::sync::Mutex<BTreeMap<u64, Watched>>,
    pub(super) wake: Arc<tokio::sync::Notify>,
    pub(super) manual: AtomicU64,
}

impl Engine {
    pub fn new(clock: Arc<dyn WakeClock>, store: Arc<dyn TriggerStore>, telemetry: Arc<dyn Telemetry>) -> Engine {
        Engine {
            clock,
            store,
            datasets: Arc::new(crate::store::MemoryDatasetStore::default()),
            telemetry,
            jobs: tokio::sync::Mutex::new(BTreeMap::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
            manual: AtomicU64::new(0),
        }
    }

    /// The engine reading dataset versions (table-update triggers) from `datasets`.
    pub fn with_datasets(mut self, datasets: Arc<dyn crate::store::DatasetStore>) -> Engine {
        self.datasets = datasets;
        self
    }

    pub fn clock(&self) -> &Arc<dyn WakeClock> {
        &self.clock
    }

    /// The seam: the jobs whose triggers the engine watches, handed over whenever the job
    /// set changes (served bundles re-read, a deployment). A job whose trigger is unchanged
    /// keeps what the engine knows of it.
    pub async fn set_jobs(&self, jobs: Vec<TriggerJob>) {
        let mut map = self.jobs.lock().await;
        let mut changed = map.len() != jobs.len();
        let mut next = BTreeMap::new();
        let now = self.clock.now_millis();
        for job in jobs {
            // a trigger is due from the moment it is first seen
            if let Err(e) = self.state(job.job_id, now) {
                tracing::warn!("trigger of job {}: {e}", job.name);
            }
            let keep = map.remove(&job.job_id).filter(|w| w.job == job);
            changed |= keep.is_none();
            let watched = keep.unwrap_or_else(|| {
                let (ticks, error) = match Ticks::of(&job.spec.kind) {
                    Ok(t) => (t, None),
                    Err(e) => (None, Some(e.to_string())),
                };
                Watched {
                    job,
                    ticks,
                    watch: Watch::default(),
                    objects: Default::default(),
                    tables: Default::default(),
                    running: None,
                    previous: None,
                    failures: 0,
                    not_before: 0,
                    loaded: false,
                    error,
                }
            });
            next.insert(watched.job.job_id, watched);
        }
        *map = next;
        if changed {
            self.wake.notify_one();
        }
    }

    /// Look at every trigger now: record and fire what is due. The earliest time anything
    /// is due next.
    pub async fn step(&self, launcher: &dyn Launcher) -> Option<Millis> {
        let mut map = self.jobs.lock().await;
        let mut next: Option<Millis> = None;
        for w in map.values_mut() {
            let now = self.clock.now_millis();
            match self.step_job(w, launcher, now).await {
                Ok(Some(at)) => next = Some(next.map_or(at, |n| n.min(at))),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("trigger of job {} ({}): {e}", w.job.job_id, w.job.name);
                    w.error = Some(e.to_string());
                }
            }
        }
        next
    }

    /// Run the engine until `stop` turns true: look whenever something is due, the job set
    /// changes, a trigger is paused or resumed, or [`RESCAN`] passes; `jobs` says which jobs
    /// have triggers now.
    pub async fn run(
        &self,
        launcher: &dyn Launcher,
        jobs: &(dyn Fn() -> Vec<TriggerJob> + Send + Sync),
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        while !*stop.borrow() {
            self.set_jobs(jobs()).await;
            let next = self.step(launcher).await;
            let sleep = match next {
                Some(at) => self.clock.sleep_until(time_of(at)),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(RESCAN) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Look again soon (a run ended, a trigger was paused or resumed).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    async fn step_job(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        now: Millis,
    ) -> Result<Option<Millis>, TriggerError> {
        let state = self.state(w.job.job_id, now)?;
        let paused = state.paused.unwrap_or(w.job.spec.paused);
        if !w.loaded {
            self.load(w)?;
        }
        let kind = w.job.spec.kind.clone();
        match &kind {
            TriggerKind::Schedule { .. } | TriggerKind::Periodic { .. } => {
                self.ticks(w, launcher, &state, now, paused).await?;
                Ok(w.ticks.as_ref().and_then(|t| t.next_after(now)))
            }
            TriggerKind::FileArrival(spec) => {
                if paused {
                    return Ok(None);
                }
                if crate::objstore::is_object_url(&spec.url) {
                    return self.object_files(w, launcher, spec, now).await;
                }
                if w.watch.next_check(now, spec) <= now {
                    self.files(w, launcher, spec, now).await?;
                }
                w.error = None;
                Ok(Some(w.watch.next_check(now, spec)))
            }
            TriggerKind::Continuous => {
                if paused {
                    return Ok(None);
                }
                self.continuous(w, launcher, now).await
            }
            TriggerKind::TableUpdate(spec) => {
                if paused {
                    return Ok(None);
                }
                self.tables(w, launcher, spec, now).await
            }
            TriggerKind::Webhook { .. } => Ok(None),
        }
    }

    /// The trigger's state, recorded the first time it is seen.
    pub(super) fn state(&self, job: u64, now: Millis) -> Result<TriggerState, TriggerError> {
        if let Some(state) = self.store.state(job)? {
            return Ok(state);
        }
        let state = TriggerState { since: now, paused: None };
        self.store.put_state(job, &state)?;
        Ok(state)
    }

    /// What the store knows of a trigger's latest runs (after a restart).
    fn load(&self, w: &mut Watched) -> Result<(), TriggerError> {
        for (key, record) in self.store.firings(w.job.job_id)? {
            let (FiringKey::Named(name), Outcome::Fired { run }) = (&key, &record.outcome) else { continue };
            if let Some(at) = name.strip_prefix("files-") {
                // the key holds the engine's time of the firing (the record's is the store's clock)
                let at = at.parse().unwrap_or(record.recorded_at);
                w.watch.last_fired = w.watch.last_fired.max(Some(at));
            } else if name.starts_with(super::tables::FIRING_PREFIX) {
                w.tables.last_fired = Some(record.recorded_at);
            } else if name.starts_with("continuous-") {
                w.running = Some(*run);
            }
        }
        w.loaded = true;
        Ok(())
    }

    pub(super) async fn ticks(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        state: &TriggerState,
        now: Millis,
        paused: bool,
    ) -> Result<(), TriggerError> {
        let Some(ticks) = w.ticks.clone() else { return Ok(()) };
        let job = w.job.job_id;
        let kind = w.job.spec.kind.name();
        let cursor = self.store.last_tick(job)?.unwrap_or(0).max(state.since);
        let d = due(&ticks, cursor, now, w.job.spec.catch_up, w.job.spec.catch_up_window);
        let record = |outcome: Outcome| FiringRecord { outcome, recorded_at: now };
        if paused {
            let all = d.fire.len() as u64 + d.missed.map_or(0, |m| m.2);
            if all > 0 {
                let first = d.missed.map_or(d.cursor, |m| m.0).min(d.fire.first().copied().unwrap_or(d.cursor));
                let reason = "the trigger is paused".to_string();
                self.store.put_firing(
                    job,
                    &FiringKey::Tick(d.cursor),
                    &record(Outcome::Skipped { first, count: all, reason }),
                )?;
                self.store.flush()?;
                self.telemetry.trigger_skipped(kind, all);
                tracing::info!("job {}: {all} tick(s) skipped: the trigger is paused", w.job.name);
            }
            return Ok(());
        }
        self.dst_skips(w, &ticks, cursor, now)?;
        if let Some((first, last, count)) = d.missed {
            let window = crate::util::human_duration(w.job.spec.catch_up_window);
            let reason = format!("missed (catch_up = {:?}, window {window})", w.job.spec.catch_up).to_lowercase();
            self.store.put_firing(job, &FiringKey::Tick(last), &record(Outcome::Missed { first, count, reason }))?;
            self.telemetry.trigger_missed(kind, count);
            tracing::info!("job {}: {count} tick(s) missed from {first} to {last}", w.job.name);
        }
        for at in &d.fire {
            let firing = Firing {
                key: FiringKey::Tick(*at),
                also: vec![],
                context: TriggerContext { kind: kind.into(), time: *at, files: vec![], payload: None, tables: vec![] },
            };
            self.launch(w, launcher, firing, now).await?;
        }
        if d.missed.is_some() && d.fire.is_empty() {
            self.store.flush()?;
        }
        Ok(())
    }

    /// Record local times a `skip` policy passed over (daylight saving) since `cursor`.
    fn dst_skips(&self, w: &Watched, ticks: &Ticks, cursor: Millis, now: Millis) -> Result<(), TriggerError> {
        let Ticks::Cron(cron) = ticks else { return Ok(()) };
        for local in cron.skipped_between(cursor, now) {
            let key = FiringKey::Named(format!("dst-skip-{}", local.format("%Y-%m-%dT%H:%M:%S")));
            if self.store.firing(w.job.job_id, &key)?.is_some() {
                continue;
            }
            let reason =
                format!("{local} does not exist in {} (daylight saving; dst.skipped = \"skip\")", cron.timezone());
            let outcome = Outcome::Skipped { first: now, count: 1, reason };
            self.store.put_firing(w.job.job_id, &key, &FiringRecord { outcome, recorded_at: now })?;
            self.store.flush()?;
            self.telemetry.trigger_skipped(w.job.spec.kind.name(), 1);
        }
        Ok(())
    }

    /// Start a run for `firing`; a launch that fails is recorded as missed (with why), so
    /// it is not retried forever.
    pub(super) async fn launch(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        firing: Firing,
        now: Millis,
    ) -> Result<Option<Launched>, TriggerError> {
        let key = firing.key.clone();
        let kind = w.job.spec.kind.name();
        match launcher.launch(&w.job, firing).await {
            Ok(launched) => {
                if !launched.existing {
                    self.telemetry.trigger_fired(kind);
                }
                w.error = None;
                Ok(Some(launched))
            }
            Err(e) => {
                tracing::warn!("job {}: the trigger could not start a run: {e}", w.job.name);
                let at = match key {
                    FiringKey::Tick(at) => at,
                    FiringKey::Named(_) => now,
                };
                let outcome = Outcome::Missed { first: at, count: 1, reason: format!("could not start a run: {e}") };
                self.store.put_firing(w.job.job_id, &key, &FiringRecord { outcome, recorded_at: now })?;
                self.store.flush()?;
                self.telemetry.trigger_missed(kind, 1);
                w.error = Some(e.to_string());
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
