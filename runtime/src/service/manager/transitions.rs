//! The transitions a client asks of an existing run — cancel, repair, resume — and the
//! takeover of what a dead owner left. Each holds the manager's transition lock, so no run
//! is ever driven twice; a child run (of a `run_job` task) goes with its parent. It never
//! creates a run (submissions are the manager's).

use super::*;
use crate::scheduler::RepairRequest;

impl Service {
    /// A child run is canceled, resumed and repaired with its parent, never on its own
    /// (its parent's coordinator drives it).
    fn refuse_child(&self, run: RunId, what: &str) -> Result<(), ServiceError> {
        match self.parent_of(run) {
            Some((parent, task)) => Err(ServiceError::InvalidState(format!(
                "run {run} is the child run of task `{task}` of run {parent}: {what} run {parent} instead"
            ))),
            None => Ok(()),
        }
    }

    /// Stop a run: a driven one stops its attempts; a queued one ends canceled; one a dead
    /// process left is settled canceled. A finished run is left as it is.
    pub async fn cancel(&self, caller: &Caller, run: RunId) -> Result<CancelOutcome, ServiceError> {
        let view = self.visible(caller, run)?;
        self.check_run_permission(caller, run, crate::deploy::rules::Level::CanManageRun, "cancel runs of")?;
        self.require_manage_run(caller, run)?;
        self.refuse_child(run, "cancel")?;
        let reason = format!("canceled by {}", caller.principal);
        let _serial = self.inner.manager.transitions.lock().await;
        {
            let mut st = self.inner.manager.lock();
            if let Some(a) = st.active.get(&run) {
                a.opts.request_cancel(reason);
                return Ok(CancelOutcome::Requested);
            }
            let queued = st.queues.values_mut().find_map(|q| {
                let i = q.iter().position(|x| x.run == run)?;
                q.remove(i)
            });
            if let Some(q) = queued {
                let opts = q.opts.unwrap_or_else(|| self.options_of(run));
                st.active.insert(run, Active { opts: opts.clone(), job: None });
                self.inner.manager.publish(&st);
                drop(st);
                let prepared = self.inner.rt.dequeue(run, Some(reason), &opts);
                return self.drive_transition(run, prepared).map(|_| CancelOutcome::Requested);
            }
        }
        if view.result.is_some() {
            return Ok(CancelOutcome::AlreadyFinished);
        }
        let opts = self.options_of(run);
        self.inner.manager.activate(run, opts.clone(), None);
        let prepared = self.inner.rt.prepare_resume(run, Some(reason), &opts);
        self.drive_transition(run, prepared).map(|_| CancelOutcome::Requested)
    }

    /// Drive a run a transition prepared (it is already counted active), or undo.
    fn drive_transition(&self, run: RunId, prepared: Result<PreparedRun, SchedulerError>) -> Result<u64, ServiceError> {
        match prepared {
            Ok(p) => {
                let from = p.first_new_event();
                self.drive(run, p);
                Ok(from)
            }
            Err(e) => {
                self.ended(run);
                Err(e.into())
            }
        }
    }

    /// Rerun tasks of a finished run. The run is in flight again (durably) when this
    /// returns.
    pub async fn repair(
        &self,
        caller: &Caller,
        run: RunId,
        req: RepairRequest,
        no_cache: bool,
    ) -> Result<Repaired, ServiceError> {
        let view = self.visible(caller, run)?;
        self.check_run_permission(caller, run, crate::deploy::rules::Level::CanManageRun, "repair runs of")?;
        self.require_manage_run(caller, run)?;
        self.refuse_child(run, "repair")?;
        let _serial = self.inner.manager.transitions.lock().await;
        if view.result.is_some() {
            let settling = self.inner.manager.until_not_driven(run);
            let _ = tokio::time::timeout(ENDING_RUN_SETTLES, settling).await;
        }
        if self.inner.manager.is_active(run) || view.result.is_none() {
            return Err(ServiceError::InvalidState(format!(
                "run {run} is not finished; a run can be repaired once it has ended (cancel it first)"
            )));
        }
        let opts = RunOptions { no_cache, principal: caller.principal.clone(), ..self.options_of(run) };
        self.inner.manager.activate(run, opts.clone(), None);
        let prepared = self.inner.rt.prepare_repair(run, req, &opts);
        let repair = view.repairs.len() as u32 + 1;
        let from = self.drive_transition(run, prepared)?;
        Ok(Repaired { run_id: run, repair, from })
    }

    /// Continue runs a dead process left unfinished: `run`, or every one of the caller's
    /// workspace. Their ids and where each one's new events start.
    pub async fn resume(&self, caller: &Caller, run: Option<RunId>) -> Result<Vec<(RunId, u64)>, ServiceError> {
        if let Some(run) = run {
            self.visible(caller, run)?;
            self.refuse_child(run, "resume")?;
        }
        let _serial = self.inner.manager.transitions.lock().await;
        let queued = self.inner.rt.queued_runs()?;
        let mut out = Vec::new();
        let candidates = match run {
            Some(r) => vec![r],
            None => self.inner.rt.interrupted_runs()?,
        };
        for r in candidates {
            if self.inner.manager.is_active(r) || queued.contains(&r) {
                if run.is_some() {
                    return Err(ServiceError::InvalidState(format!("run {r} is in progress or queued")));
                }
                continue;
            }
            let opts = self.options_of(r);
            if opts.workspace != caller.workspace {
                continue;
            }
            let job = self.inner.rt.view(r).ok().and_then(|v| v.job_id);
            self.inner.manager.activate(r, opts.clone(), job);
            let prepared = self.inner.rt.prepare_resume(r, None, &opts);
            out.push((r, self.drive_transition(r, prepared)?));
        }
        Ok(out)
    }

    /// Take over what a dead owner left (once): resume every interrupted run of every
    /// workspace, as the principal that started it, and line up the queued ones.
    /// The runs resumed, with their workspaces.
    pub async fn take_over(&self) -> Result<Vec<(RunId, String)>, ServiceError> {
        let _serial = self.inner.manager.transitions.lock().await;
        if std::mem::replace(&mut self.inner.manager.lock().taken_over, true) {
            return Ok(Vec::new());
        }
        // tokens older than their window can never match again: each new owner drops them
        let now = self.inner.rt.clock().now_millis();
        let expired = now.saturating_sub(crate::service::IDEMPOTENCY_WINDOW.as_millis() as u64);
        match self.inner.rt.services().prune_idempotency(expired) {
            Ok(0) => {}
            Ok(n) => tracing::info!("dropped {n} expired idempotency tokens"),
            Err(e) => tracing::warn!("dropping expired idempotency tokens: {e}"),
        }
        let mut resumed = Vec::new();
        for run in self.inner.rt.interrupted_runs()? {
            if self.inner.manager.is_active(run) {
                continue;
            }
            let opts = self.options_of(run);
            let job = self.inner.rt.view(run).ok().and_then(|v| v.job_id);
            self.inner.manager.activate(run, opts.clone(), job);
            match self.drive_transition(run, self.inner.rt.prepare_resume(run, None, &opts)) {
                Ok(_) => resumed.push((run, opts.workspace)),
                Err(e) => tracing::warn!("run {run}: could not resume it: {e}"),
            }
        }
        let mut jobs = Vec::new();
        for run in self.inner.rt.queued_runs()? {
            let Ok(view) = self.inner.rt.view(run) else { continue };
            let max = self.max_of(run).unwrap_or(crate::spec::DEFAULT_MAX_CONCURRENT_RUNS);
            let job = view.job_id.unwrap_or_default();
            self.inner.manager.lock().queues.entry(job).or_default().push_back(Queued { run, max, opts: None });
            jobs.push(job);
        }
        let next: Vec<_> = {
            let mut st = self.inner.manager.lock();
            let next = jobs.into_iter().flat_map(|j| st.pump(j)).collect();
            self.inner.manager.publish(&st);
            next
        };
        for (run, opts) in next {
            self.start_queued(run, opts);
        }
        Ok(resumed)
    }

    /// The `max_concurrent_runs` a run's plan pinned.
    fn max_of(&self, run: RunId) -> Option<u32> {
        match self.inner.rt.store().events(run).ok()?.into_iter().next()? {
            crate::model::Event::RunCreated { plan: Some(plan), .. } => Some(plan.job.max_concurrent_runs),
            _ => None,
        }
    }
}
