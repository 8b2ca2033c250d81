//! The coordinator of one run: it performs what the run's [`RunState`] decides.
//!
//! The state decides (readiness, retries, releases, the run's result); the coordinator
//! does what those decisions need done: it records every event (journal first, then the
//! fold), renders references, looks results up in the cache, hands attempts to the
//! [`Executor`](super::executor::Executor), starts child runs, notices cancels and the
//! job's timeout, and flushes before anything outside can see a transition. Attempts run
//! as tokio tasks and report back here, so every transition happens in one place, in
//! journal order. It keeps no run state of its own beyond what is in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinSet;

use super::executor::AttemptReport;
use super::journal::Journal;
use super::plan::Loaded;
use super::slots::{SlotPermit, SlotWait};
use super::{RunOptions, Runtime, SchedulerError};
use crate::cache::{self, Hash, KeyParts, TreeManifest};
use crate::model::{Event, Millis, RunPlan, RunView, time_of};
use crate::sandbox::FailureKind;
use crate::spec::TaskKind;
use crate::state::{RunState, Settle, TaskId};
use crate::util::human_duration;

/// How often the coordinator looks for a cancel (the run's flag), a graceful stop and
/// the job's timeout, when nothing else wakes it.
pub(crate) const CONTROL_POLL: Duration = Duration::from_millis(50);

/// What a finished tokio task reports.
pub(crate) enum Done {
    Attempt { task: TaskId, attempt: u32, report: AttemptReport },
    Child { task: TaskId, attempt: u32, result: Result<RunView, SchedulerError> },
}

/// What a finished task hands downstream, by content.
#[derive(Debug, Clone, Default)]
pub(crate) struct Produced {
    pub out_tree: Option<TreeManifest>,
    /// What downstream keys record of this result ([`cache::upstream_digest`]).
    pub digest: Option<Hash>,
    /// Its [`cache::lineage`], fixed once the result is recorded.
    pub lineage: Option<Hash>,
}

impl Produced {
    pub(crate) fn new(output: Option<&str>, values: &[(String, String)], out_tree: Option<TreeManifest>) -> Produced {
        let digest = Some(cache::upstream_digest(output, values, out_tree.as_ref().map(|t| &t.root)));
        Produced { out_tree, digest, lineage: None }
    }
}

/// An attempt recorded as started, to hand to the executor once its start may be seen.
pub(crate) struct Ready {
    pub task: TaskId,
    pub attempt: u32,
    pub prepared: super::executor::PreparedAttempt,
    /// Network, read-write mounts or a command: its start must be durable before it runs.
    pub side_effects: bool,
    /// Started by a process that died, adopted where it may still run ([`Executor::adopt`]).
    ///
    /// [`Executor::adopt`]: super::Executor::adopt
    pub adopt: bool,
}

/// An attempt's cache context between its start and its end.
pub(crate) struct Pending {
    pub key: Option<(Hash, KeyParts)>,
    pub not_cached: Option<String>,
    /// Read-write object-storage mounts to upload if the attempt succeeds.
    pub objects: Vec<super::objmounts::RwStaged>,
}

pub(crate) struct Coordinator {
    pub(crate) rt: Runtime,
    pub(crate) opts: RunOptions,
    pub(crate) state: RunState,
    pub(crate) plan: Arc<RunPlan>,
    pub(crate) components: Arc<Loaded>,
    pub(crate) journal: Journal,
    running: JoinSet<Done>,
    running_ids: HashMap<tokio::task::Id, (TaskId, u32)>,
    /// Sandbox slots of attempts in flight, released once each is recorded.
    pub(crate) permits: HashMap<(TaskId, u32), SlotPermit>,
    /// A slot handed to this run's ticket, not yet used.
    pub(crate) spare_slot: Option<SlotPermit>,
    /// This run's ticket in its workspace's line, while an attempt waits for a slot.
    pub(crate) slot_wait: Option<SlotWait>,
    /// Cache context of attempts in flight.
    pub(crate) pending_cache: HashMap<(TaskId, u32), Pending>,
    /// Attempts started in this round, not yet handed to the executor.
    pub(crate) ready: Vec<Ready>,
    /// The cancel requests seen when the run stopped: one more stops its cleanup.
    requests_at_stop: Option<usize>,
    /// What succeeded tasks produced, for downstream keys and `/in`.
    pub(crate) produced: HashMap<TaskId, Produced>,
    /// Set when the run stops: running attempts and child runs stop too.
    pub(crate) run_cancel: Arc<AtomicBool>,
    /// Set when cleanup stops (a second cancel, or `cleanup_timeout`): what runs as the
    /// run's cleanup, started after the stop, stops too.
    pub(crate) cleanup_cancel: Arc<AtomicBool>,
}

impl Coordinator {
    pub(crate) fn new(
        rt: Runtime,
        opts: RunOptions,
        state: RunState,
        components: Arc<Loaded>,
        journal: Journal,
    ) -> Result<Coordinator, SchedulerError> {
        let run = state.run_id();
        let plan = state.plan().cloned().ok_or_else(|| SchedulerError::Refused {
            run,
            message: "was recorded without a plan and cannot be continued".into(),
        })?;
        rt.executor.components_pinned(&plan.components);
        let run_cancel = Arc::new(AtomicBool::new(state.stop().is_some()));
        let cleanup_cancel = Arc::new(AtomicBool::new(state.stop().is_some_and(|s| s.cleanup_stopped)));
        Ok(Coordinator {
            rt,
            opts,
            state,
            plan,
            components,
            journal,
            running: JoinSet::new(),
            running_ids: HashMap::new(),
            permits: HashMap::new(),
            spare_slot: None,
            slot_wait: None,
            pending_cache: HashMap::new(),
            ready: Vec::new(),
            requests_at_stop: None,
            produced: HashMap::new(),
            run_cancel,
            cleanup_cancel,
        })
    }

    pub(crate) fn now(&self) -> Millis {
        self.rt.clock.now_millis()
    }

    /// The run's logical start: what guests' clocks read, on every attempt alike.
    pub(crate) fn logical_start(&self) -> SystemTime {
        time_of(self.state.view().created_at)
    }

    /// Journal an event, then fold it into the state.
    pub(crate) fn record(&mut self, event: Event) -> Result<(), SchedulerError> {
        self.journal.append(&event)?;
        match &event {
            Event::AttemptFinished { result, elapsed_us, .. } => {
                self.rt.telemetry.attempt_finished(*result, Duration::from_micros(*elapsed_us))
            }
            Event::RunFinished { result, .. } => self.rt.telemetry.run_finished(*result),
            _ => {}
        }
        let run = self.state.run_id();
        self.state.apply(&event).map_err(|e| SchedulerError::Corrupt { run, message: e.0 })?;
        if let (Event::PlanRecorded { .. }, Some(plan)) = (&event, self.state.plan()) {
            self.plan = plan.clone();
        }
        Ok(())
    }

    /// A repair starts a new stretch of the run: what stopped it before stops nothing now.
    pub(crate) fn clear_stop(&mut self) {
        self.run_cancel = Arc::new(AtomicBool::new(false));
        self.cleanup_cancel = Arc::new(AtomicBool::new(false));
        self.requests_at_stop = None;
    }

    /// What stops an attempt or child run started now: the run's stop, or — for cleanup
    /// started after the run was asked to stop — cleanup's.
    pub(crate) fn cancel_flag(&self) -> Arc<AtomicBool> {
        match self.state.stop() {
            Some(_) => self.cleanup_cancel.clone(),
            None => self.run_cancel.clone(),
        }
    }

    /// Run until the run has its result; flush and return it.
    pub(crate) async fn drive(mut self) -> Result<RunView, SchedulerError> {
        loop {
            self.poll_stop()?;
            self.settle()?;
            if self.state.finished() {
                break;
            }
            let recorded = self.journal.appended();
            if self.rt.draining() {
                if self.running.is_empty() {
                    return self.interrupted();
                }
            } else {
                self.start_ready()?;
            }
            self.journal.flush_if_due()?;
            if self.state.has_pending_decisions() || self.ended_in_place_since(recorded) {
                // tasks that ended in place (reused, conditions) woke others, or were the
                // last to end: decide again before waiting
                continue;
            }
            let now = self.now();
            let retry =
                self.state.next_retry().map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(now)));
            let wake = [self.journal.flush_deadline(), retry, Some(Instant::now() + CONTROL_POLL)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(Instant::now);
            let waiting_slot = self.slot_wait.is_some();
            tokio::select! {
                biased;
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => self.on_joined(joined)?,
                permit = async { self.slot_wait.as_mut().expect("checked").await }, if waiting_slot => {
                    self.slot_wait = None;
                    self.spare_slot = Some(permit);
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        self.finish()
    }

    /// Whether a task ended in place (a reused result, a condition, a failed render) since
    /// the journal held `recorded` events: then the run may have ended.
    fn ended_in_place_since(&self, recorded: u64) -> bool {
        self.journal.appended() > recorded && self.running.is_empty()
    }

    /// Record what the state decides until it decides nothing more.
    fn settle(&mut self) -> Result<(), SchedulerError> {
        loop {
            let events = self.state.decide(self.now());
            if events.is_empty() {
                return Ok(());
            }
            for event in events {
                self.record(event)?;
            }
        }
    }

    /// Start queued tasks while the job's and the process's bounds allow. Attempts of
    /// tasks with side effects start only once their start is durable: one flush for all
    /// the attempts started together.
    fn start_ready(&mut self) -> Result<(), SchedulerError> {
        let free = self.rt.slots.available(&self.plan.workspace) + usize::from(self.spare_slot.is_some());
        // with no slot free, one queued sandboxed task is still offered: it takes a ticket
        for id in self.state.startable(free.max(1)) {
            if !self.start(id)? {
                // no free sandbox slot: the rest wait their turn (first in, first out)
                break;
            }
        }
        if self.ready.iter().any(|r| r.side_effects) {
            // the contract: a task with side effects has its start durable before it
            // runs, so a crash counts that attempt (it ends `interrupted` on resume)
            self.journal.flush()?;
        }
        for Ready { task, attempt, prepared, adopt, .. } in std::mem::take(&mut self.ready) {
            let running = match adopt {
                true => self.rt.executor.adopt(prepared, self.cancel_flag()),
                false => self.rt.executor.execute(prepared, self.cancel_flag()),
            };
            self.spawn(task, attempt, async move { Done::Attempt { task, attempt, report: running.await } });
        }
        Ok(())
    }

    /// Settle what a process that died mid-run left running (resume, cancel). Attempts the
    /// executor may still be running elsewhere are adopted, not interrupted.
    pub(crate) fn settle_interrupted(&mut self) -> Result<(), SchedulerError> {
        let adopted = self.adoptable();
        for &(task, attempt) in &adopted {
            self.adopt_attempt(task, attempt)?;
        }
        let keys: std::collections::HashSet<String> =
            adopted.iter().map(|&(task, _)| self.state.task(task).key.clone()).collect();
        for settle in self.state.settle_interrupted(self.now()) {
            match settle {
                // an adopted attempt goes on: it is neither interrupted nor queued again
                Settle::Record(Event::AttemptFinished { task, .. } | Event::TaskQueued { task, .. })
                    if keys.contains(&task) => {}
                Settle::Record(event) => self.record(event)?,
                Settle::ResumeChild { task, attempt, child } if self.rt.store.events(child)?.is_empty() => {
                    // the child's creation never reached the disk, so nothing of it with side
                    // effects ran (its first flush would have carried it): the task goes again
                    let now = self.now();
                    let why = crate::state::InPlace::interrupted(crate::state::INTERRUPTED);
                    self.record(self.state.finished_in_place(task, attempt, why, now))?;
                    self.record(Event::TaskQueued { task: self.state.task(task).key.clone(), at: now })?;
                }
                Settle::ResumeChild { task, attempt, child } => {
                    let (rt, opts) = (self.rt.clone(), self.child_options());
                    self.spawn(task, attempt, async move {
                        let result = rt.resume_child(child, opts).await;
                        Done::Child { task, attempt, result }
                    });
                }
            }
        }
        Ok(())
    }

    /// Open attempts of component and command tasks that would run again on resume, when
    /// the executor may still be running them elsewhere and the run is not stopping.
    fn adoptable(&self) -> Vec<(TaskId, u32)> {
        if !self.rt.executor.adopts() || self.state.stop().is_some() {
            return Vec::new();
        }
        let tasks = &self.state.view().tasks;
        (0..tasks.len())
            .filter(|&id| tasks[id].state == crate::model::TaskState::Running)
            .filter(|&id| {
                self.state.spec(id).is_some_and(|s| {
                    s.rerun_on_resume && matches!(s.kind, TaskKind::Component { .. } | TaskKind::Command(_))
                })
            })
            .filter_map(|id| tasks[id].attempts.last().filter(|a| a.finished_at.is_none()).map(|a| (id, a.attempt)))
            .collect()
    }

    /// What a child run of this one runs with: this run's options, stopped with it (a
    /// child started as cleanup, with its cleanup), its own cleanup stopped with this one's.
    pub(crate) fn child_options(&self) -> RunOptions {
        RunOptions { cancel: self.cancel_flag(), stop_cleanup: self.cleanup_cancel.clone(), ..self.opts.clone() }
    }

    /// Run `work` as a tokio task of this run, reporting back as attempt `attempt` of `task`.
    pub(crate) fn spawn(
        &mut self,
        task: TaskId,
        attempt: u32,
        work: impl std::future::Future<Output = Done> + Send + 'static,
    ) {
        let handle = self.running.spawn(work);
        self.running_ids.insert(handle.id(), (task, attempt));
    }

    fn on_joined(
        &mut self,
        joined: Result<(tokio::task::Id, Done), tokio::task::JoinError>,
    ) -> Result<(), SchedulerError> {
        match joined {
            Ok((id, done)) => {
                self.running_ids.remove(&id);
                match done {
                    Done::Attempt { task, attempt, report } => self.attempt_done(task, attempt, report),
                    Done::Child { task, attempt, result } => self.child_done(task, attempt, result),
                }
            }
            Err(e) => {
                let Some((task, attempt)) = self.running_ids.remove(&e.id()) else { return Ok(()) };
                let message = format!("the attempt's host task failed: {e}");
                match self.state.spec(task).map(|s| &s.kind) {
                    Some(TaskKind::RunJob { .. }) => {
                        let failed = Err(SchedulerError::Parameters(format!("child run failed: {e}")));
                        self.child_done(task, attempt, failed)
                    }
                    _ => self.attempt_done(task, attempt, AttemptReport::failed(FailureKind::Host, message)),
                }
            }
        }
    }

    /// Stop early when the run's cancel flag is set (Ctrl-C, a cancel request, the parent
    /// run's cancellation) or the job's timeout passes; once stopping, stop cleanup too on
    /// a second cancel or when `cleanup_timeout` has passed.
    fn poll_stop(&mut self) -> Result<(), SchedulerError> {
        match self.state.stop() {
            Some(stop) if stop.cleanup_stopped => return Ok(()),
            Some(stop) => {
                let timed_out = stop.timed_out;
                return match self.why_stop_cleanup() {
                    Some(reason) => {
                        self.cleanup_cancel.store(true, Ordering::Relaxed);
                        let at = self.now();
                        self.record(Event::CancelRequested { reason, timed_out, at, stop_cleanup: true })
                    }
                    None => Ok(()),
                };
            }
            None => {}
        }
        if self.opts.cancel.load(Ordering::Relaxed) {
            let by_parent = self.plan.parent.is_some();
            let reason = match self.opts.cancel_reason.get() {
                Some(reason) => reason.clone(),
                None if by_parent => "the parent run was canceled".into(),
                None => "canceled by the user (Ctrl-C)".into(),
            };
            self.stop(reason, false)
        } else if self.state.deadline().is_some_and(|d| self.now() >= d) {
            let timeout = human_duration(self.plan.job.timeout.unwrap_or_default());
            self.stop(format!("the job timed out after {timeout}"), true)
        } else {
            Ok(())
        }
    }

    /// The cancel requests seen so far: the run's cancel flag, then its stop-cleanup flag
    /// (Ctrl-C again, `sluice runs cancel` again, the parent's cleanup stopping).
    fn requests(&self) -> usize {
        usize::from(self.opts.cancel.load(Ordering::Relaxed))
            + usize::from(self.opts.stop_cleanup.load(Ordering::Relaxed))
    }

    /// Why cleanup must stop now, if it must: a cancel after the one that stopped the run
    /// (Ctrl-C again, the parent's cleanup stopping, `sluice runs cancel` again — or any
    /// cancel after a timeout), or the job's `cleanup_timeout` has passed.
    fn why_stop_cleanup(&mut self) -> Option<String> {
        let requests = self.requests();
        let then = *self.requests_at_stop.get_or_insert(requests);
        if requests > then {
            let why = match self.opts.stop_cleanup_reason.get().or(self.opts.cancel_reason.get()) {
                Some(reason) => reason.clone(),
                None if self.plan.parent.is_some() => "the parent run stopped its cleanup".into(),
                None => "canceled again (Ctrl-C)".into(),
            };
            return Some(format!("{why}: cleanup stops too"));
        }
        let deadline = self.state.cleanup_deadline()?;
        (self.now() >= deadline).then(|| {
            let timeout = self.plan.job.cleanup_timeout.unwrap_or(crate::spec::DEFAULT_CLEANUP_TIMEOUT);
            format!("cleanup ran out of time (cleanup_timeout {})", human_duration(timeout))
        })
    }

    /// Stop the run: running attempts are interrupted, nothing new starts but cleanup
    /// (the state ends what never started).
    pub(crate) fn stop(&mut self, reason: String, timed_out: bool) -> Result<(), SchedulerError> {
        self.run_cancel.store(true, Ordering::Relaxed);
        // the stop-cleanup flag already set (a child started as its parent's cleanup,
        // after that cleanup was stopped) is one request more: it stops cleanup at once
        let cleanup_flag = usize::from(self.opts.stop_cleanup.load(Ordering::Relaxed));
        self.requests_at_stop = Some(self.requests() - cleanup_flag);
        self.record(Event::CancelRequested { reason, timed_out, at: self.now(), stop_cleanup: false })
    }

    /// The run has its result: keep the stat cache, record the summary, flush, and only
    /// then return it.
    fn finish(mut self) -> Result<RunView, SchedulerError> {
        if let Some(cache) = &self.rt.cache {
            cache.save();
        }
        let view = self.state.into_view();
        self.rt.store.put_summary(&view.summary())?;
        self.journal.flush()?;
        Ok(view)
    }

    /// A graceful stop with nothing running: everything recorded is made durable and the
    /// run is left unfinished, to resume on the next start.
    fn interrupted(mut self) -> Result<RunView, SchedulerError> {
        self.journal.flush()?;
        Err(SchedulerError::Interrupted(self.state.run_id()))
    }
}
