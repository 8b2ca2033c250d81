//! The run manager: many runs in one process, each driven by a coordinator task of its
//! own, `max_concurrent_runs` per job with a durable queue, and the transitions a client
//! asks for (submit, cancel, repair, resume) plus the takeover of what a dead owner left.
//!
//! A submission is prepared (bundle read, components pinned, run created) outside any
//! lock, then admitted under the manager's lock: started if its job has room, else queued
//! (`RunQueued`, durable) or skipped. When a run of a job ends, the job's queue moves on
//! in submission order. Transitions of an existing run are serialised, so no run is ever
//! driven twice.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Caller, Service, ServiceError, run_not_found};
use crate::model::{RunId, RunStatus, RunView};
use crate::scheduler::{JobRequest, PreparedRun, RunOptions, SchedulerError};

mod submission;
mod transitions;

pub use submission::{CancelOutcome, ComponentTask, Repaired, Source, Submission, Submitted};

/// How long a repair waits for a run that has recorded its end to be let go by its
/// coordinator (microseconds in practice; a bound, not a delay).
const ENDING_RUN_SETTLES: std::time::Duration = std::time::Duration::from_secs(5);

/// How a run was admitted.
enum Admission {
    Start,
    Queue(String),
    Skip(String),
}

#[derive(Default)]
pub(crate) struct Manager {
    state: Mutex<State>,
    /// Serialises transitions of existing runs (repair, resume, cancel of an undriven run).
    transitions: tokio::sync::Mutex<()>,
    /// Serialises submissions that carry an idempotency token.
    idempotent: tokio::sync::Mutex<()>,
    /// (runs driven, runs queued), for waiting until idle or drained.
    load: LoadWatch,
}

struct LoadWatch(tokio::sync::watch::Sender<(usize, usize)>);

impl Default for LoadWatch {
    fn default() -> Self {
        LoadWatch(tokio::sync::watch::channel((0, 0)).0)
    }
}

#[derive(Default)]
struct State {
    /// Top-level runs this process drives now.
    active: HashMap<RunId, Active>,
    /// Runs waiting for their turn, per job id, in submission order.
    queues: BTreeMap<u64, VecDeque<Queued>>,
    /// A graceful stop began: nothing new starts.
    stopping: bool,
    /// What a dead owner left was taken over.
    taken_over: bool,
}

struct Active {
    opts: RunOptions,
    /// Counts against its job's `max_concurrent_runs`.
    job: Option<u64>,
}

struct Queued {
    run: RunId,
    /// The job's `max_concurrent_runs` when the run was queued.
    max: u32,
    opts: Option<RunOptions>,
}

impl State {
    fn running(&self, job: u64) -> usize {
        self.active.values().filter(|a| a.job == Some(job)).count()
    }

    fn load(&self) -> (usize, usize) {
        (self.active.len(), self.queues.values().map(VecDeque::len).sum::<usize>())
    }

    fn admit(&self, job: Option<u64>, max: u32, queue: bool, name: &str) -> Admission {
        let Some(job) = job else { return Admission::Start };
        let waiting = self.queues.get(&job).is_some_and(|q| !q.is_empty());
        let running = self.running(job);
        if (running as u64) < u64::from(max) && !waiting {
            return Admission::Start;
        }
        let why = format!(
            "job `{name}` has {running} active run{} (max_concurrent_runs = {max})",
            if running == 1 { "" } else { "s" }
        );
        if queue && max > 0 {
            Admission::Queue(format!("Queued due to reaching maximum concurrent runs of {max}: {why}"))
        } else {
            Admission::Skip(format!("Skipping this run: {why} and the job does not queue"))
        }
    }

    /// Runs of `job` whose turn has come, taken out of its queue and counted active.
    fn pump(&mut self, job: u64) -> Vec<(RunId, Option<RunOptions>)> {
        let mut out = Vec::new();
        if self.stopping {
            return out;
        }
        while let Some(front) = self.queues.get(&job).and_then(VecDeque::front) {
            if self.running(job) as u64 >= u64::from(front.max) {
                break;
            }
            let Some(q) = self.queues.get_mut(&job).and_then(VecDeque::pop_front) else { break };
            let opts = q.opts.clone().unwrap_or_default();
            self.active.insert(q.run, Active { opts, job: Some(job) });
            out.push((q.run, q.opts));
        }
        out
    }
}

impl Manager {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, st: &State) {
        self.load.0.send_replace(st.load());
    }

    pub(crate) fn busy(&self) -> bool {
        self.lock().load() != (0, 0)
    }

    pub(crate) fn counts(&self) -> (usize, usize) {
        self.lock().load()
    }

    pub(crate) fn is_active(&self, run: RunId) -> bool {
        self.lock().active.contains_key(&run)
    }

    /// Whether this process drives `run` (`Some(false)`) or holds it in a job's queue
    /// (`Some(true)`).
    pub(crate) fn holds(&self, run: RunId) -> Option<bool> {
        let st = self.lock();
        if st.active.contains_key(&run) {
            return Some(false);
        }
        st.queues.values().any(|q| q.iter().any(|x| x.run == run)).then_some(true)
    }

    pub(crate) async fn idle(&self) {
        let mut rx = self.load.0.subscribe();
        let _ = rx.wait_for(|&load| load == (0, 0)).await;
    }

    /// Wait until `run` is no longer driven: a run that has recorded its end is still
    /// counted until its coordinator task returns, a moment later.
    async fn until_not_driven(&self, run: RunId) {
        let mut rx = self.load.0.subscribe();
        while self.is_active(run) {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Wait until no run is driven (queued ones may wait on).
    pub(crate) async fn drained(&self) {
        let mut rx = self.load.0.subscribe();
        let _ = rx.wait_for(|&(active, _)| active == 0).await;
    }

    /// Count `run` as driven by this process.
    fn activate(&self, run: RunId, opts: RunOptions, job: Option<u64>) {
        let mut st = self.lock();
        st.active.insert(run, Active { opts, job });
        self.publish(&st);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    /// Serialise with submissions that carry an idempotency token (and trigger firings).
    pub(crate) async fn one_at_a_time(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.idempotent.lock().await
    }

    pub(crate) fn stop_accepting(&self) {
        self.lock().stopping = true;
    }
}

impl Service {
    /// Start a run (or queue or skip it, by its job's `max_concurrent_runs`). The run is
    /// durable and readable when this returns.
    pub async fn submit(&self, caller: &Caller, sub: Submission) -> Result<Submitted, ServiceError> {
        if self.inner.manager.lock().stopping {
            return Err(ServiceError::Stopping("sluice is stopping; submit the run again once it is back".into()));
        }
        let Some(token) = sub.idempotency_token.clone() else { return self.submit_now(caller, sub, None, None) };
        if token.is_empty() || token.len() > super::MAX_IDEMPOTENCY_TOKEN_LEN {
            return Err(ServiceError::Invalid(format!(
                "idempotency_token must be 1 to {} characters long",
                super::MAX_IDEMPOTENCY_TOKEN_LEN
            )));
        }
        let _one_at_a_time = self.inner.manager.idempotent.lock().await;
        let services = self.inner.rt.services();
        let now = self.inner.rt.clock().now_millis();
        let window = super::IDEMPOTENCY_WINDOW.as_millis() as u64;
        if let Some(found) = services.idempotency(&caller.workspace, &token)?
            && now.saturating_sub(found.at) < window
        {
            let view = self.inner.rt.view(found.run)?;
            let admission = admission_of(&view);
            return Ok(Submitted { run_id: found.run, job_id: view.job_id, existing: true, admission });
        }
        self.submit_now(caller, sub, Some((token, now)), None)
    }

    /// Submit (with `firing`: the trigger firing that starts the run, recorded with its
    /// creation, in the same flush).
    pub(crate) fn submit_now(
        &self,
        caller: &Caller,
        sub: Submission,
        token: Option<(String, u64)>,
        firing: Option<(u64, &crate::triggers::Firing)>,
    ) -> Result<Submitted, ServiceError> {
        let principal = match sub.source {
            Source::Job(id) => self.runs_as(caller, id),
            _ => caller.principal.clone(),
        };
        let opts = RunOptions {
            trigger: firing.map(|(_, f)| f.context.clone()),
            principal,
            workspace: caller.workspace.clone(),
            observer: self.inner.observer.clone(),
            no_cache: sub.no_cache,
            rehash: sub.rehash,
            ..RunOptions::default()
        };
        let (mut prepared, name, max, queue) = self.prepare(caller, &sub, &opts)?;
        let run = prepared.run_id();
        let job = prepared.view().job_id;
        if let Some((token, at)) = &token {
            let record = crate::store::IdempotencyRecord { run, at: *at };
            self.inner.rt.services().put_idempotency(&caller.workspace, token, record)?;
        }
        if let Some((job, firing)) = firing {
            self.record_firing(job, firing, prepared.view())?;
        }
        let admission = {
            let mut st = self.inner.manager.lock();
            let admission = st.admit(job, max, sub.queue.unwrap_or(queue), &name);
            match &admission {
                Admission::Start => {
                    st.active.insert(run, Active { opts: opts.clone(), job });
                }
                Admission::Queue(why) => {
                    prepared.queue(why.clone())?;
                    let queued = Queued { run, max, opts: Some(opts.clone()) };
                    st.queues.entry(job.unwrap_or_default()).or_default().push_back(queued);
                }
                Admission::Skip(why) => prepared.skip(why.clone())?,
            }
            self.inner.manager.publish(&st);
            admission
        };
        prepared.commit()?;
        let admission = match admission {
            Admission::Start => {
                self.drive(run, prepared);
                "started"
            }
            Admission::Queue(_) => "queued",
            Admission::Skip(_) => "skipped",
        };
        Ok(Submitted { run_id: run, job_id: job, existing: false, admission: admission.into() })
    }

    /// Read the bundle (or component), pin it and create the run: the run, the job's
    /// name, its `max_concurrent_runs` and `queue`.
    fn prepare(
        &self,
        caller: &Caller,
        sub: &Submission,
        opts: &RunOptions,
    ) -> Result<(PreparedRun, String, u32, bool), ServiceError> {
        let rt = &self.inner.rt;
        let local = || {
            if caller.is_local() {
                Ok(())
            } else {
                Err(ServiceError::PermissionDenied("only local callers run bundles or components by path".into()))
            }
        };
        let (bundle, job_name) = match &sub.source {
            Source::Component { path, task } => {
                local()?;
                let prepared = rt.prepare_component(path, task.single(), opts)?;
                return Ok((prepared, "task".into(), u32::MAX, true));
            }
            Source::Bundle { path, job } => {
                local()?;
                let opts = crate::spec::LoadOptions {
                    target: sub.target.clone(),
                    vars: sub.vars.clone(),
                    env: sub.env_vars.clone(),
                    included: None,
                };
                let bundle = self.inner.parsed.load_with(path, &opts)?;
                let name = bundle.job(job.as_deref()).map_err(|e| ServiceError::Invalid(e.to_string()))?.name.clone();
                (bundle, name)
            }
            Source::Job(id) => {
                let manage_run = crate::deploy::rules::Level::CanManageRun;
                self.deployed_job(caller, *id, manage_run, "run")?;
                let (info, bundle) = self.job(caller, *id)?;
                (bundle, info.spec.name)
            }
        };
        let job = bundle.job(Some(&job_name)).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let job_id = match sub.source {
            Source::Job(id) => id,
            _ => self.job_key_id(&caller.workspace, &bundle.name, &job.name)?,
        };
        let (max, queue) = (job.max_concurrent_runs, job.queue);
        let target = bundle.target(sub.target.as_deref()).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let req = JobRequest { bundle: &bundle, job, overrides: sub.overrides.clone(), target };
        let prepared = rt.prepare_job(req, Some(job_id), opts)?;
        Ok((prepared, job_name, max, queue))
    }

    /// Drive `prepared` as a task of its own; when it ends, its job's queue moves on.
    fn drive(&self, run: RunId, prepared: PreparedRun) {
        let service = self.clone();
        tokio::spawn(async move {
            match prepared.drive().await {
                Ok(_) | Err(SchedulerError::Interrupted(_)) => {}
                Err(e) => tracing::warn!("run {run}: {e}"),
            }
            service.ended(run);
        });
    }

    /// A driven run returned: start what waited for its place.
    fn ended(&self, run: RunId) {
        let next = {
            let mut st = self.inner.manager.lock();
            let job = st.active.remove(&run).and_then(|a| a.job);
            let next = job.map(|j| st.pump(j)).unwrap_or_default();
            self.inner.manager.publish(&st);
            next
        };
        for (queued, opts) in next {
            self.start_queued(queued, opts);
        }
        // a continuous job's next run may be due
        self.poke_triggers();
    }

    /// A queued run's turn (it is already counted active).
    fn start_queued(&self, run: RunId, opts: Option<RunOptions>) {
        let opts = opts.unwrap_or_else(|| self.options_of(run));
        match self.inner.rt.dequeue(run, None, &opts) {
            Ok(prepared) => self.drive(run, prepared),
            Err(e) => {
                tracing::warn!("run {run}: could not start it from the queue: {e}");
                self.ended(run);
            }
        }
    }

    /// The options a run this process did not submit is driven with: as its plan says.
    fn options_of(&self, run: RunId) -> RunOptions {
        let plan = self.inner.rt.store().events(run).ok().and_then(|events| match events.into_iter().next() {
            Some(crate::model::Event::RunCreated { plan: Some(plan), .. }) => Some(plan),
            _ => None,
        });
        RunOptions {
            principal: plan.as_ref().map(|p| p.principal.clone()).unwrap_or_default(),
            workspace: plan.as_ref().map_or_else(|| crate::secrets::DEFAULT_WORKSPACE.into(), |p| p.workspace.clone()),
            observer: self.inner.observer.clone(),
            ..RunOptions::default()
        }
    }

    /// A run of the caller's workspace, or "not found".
    pub(crate) fn visible(&self, caller: &Caller, run: RunId) -> Result<RunView, ServiceError> {
        let record = self.folded(run)?.ok_or_else(|| ServiceError::NotFound(run_not_found(run)))?;
        match record.view.clone() {
            mut view if view.workspace == caller.workspace => {
                self.check_run_permission(caller, run, crate::deploy::rules::Level::CanView, "see runs of")?;
                view.status = Some(self.status(run, view.result));
                view.notifications = self.inner.notifier.views(run).unwrap_or_else(|e| {
                    tracing::warn!("run {run}: {e}");
                    Vec::new()
                });
                Ok(view)
            }
            _ => Err(ServiceError::NotFound(run_not_found(run))),
        }
    }

    /// Where a run is: finished, queued or running in this process, else interrupted
    /// (unfinished, and the process that ran it died: a resume continues it).
    pub(crate) fn status(&self, run: RunId, result: Option<crate::model::RunResult>) -> RunStatus {
        if result.is_some() {
            return RunStatus::Finished;
        }
        // a child run (of a `run_job` task) is driven by its parent's coordinator
        let mut top = run;
        while let Some((parent, _)) = self.parent_of(top) {
            top = parent;
        }
        let held = self.inner.manager.holds(top);
        RunStatus::of(result, held.is_some(), held == Some(true))
    }

    /// The run (and its `run_job` task) that started `run`, if it is a child run.
    fn parent_of(&self, run: RunId) -> Option<(RunId, String)> {
        self.folded(run).ok()??.plan.as_ref()?.parent.clone()
    }
}

/// How a run that exists was admitted, as its view tells.
fn admission_of(view: &RunView) -> String {
    if view.queued.is_some() {
        "queued"
    } else if view.result == Some(crate::model::RunResult::Skipped) {
        "skipped"
    } else {
        "started"
    }
    .into()
}
