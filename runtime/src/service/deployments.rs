//! Deployments as the owner offers them to callers: plan, deploy, list, show, diff,
//! history, rollback, destroy, promote, approve, blob upload — every one as the caller
//! (the principal who deploys is the caller's: the local user, or the API token's) in the
//! caller's workspace — and deployed jobs as a source of jobs for `jobs/list` and
//! `run-now`, with their permissions enforced on every run operation.
//!
//! It must never speak HTTP or print; the deploy module does the work.

use serde::{Deserialize, Serialize};

use super::jobs::JobInfo;
use super::{Caller, Service, ServiceError};
use crate::deploy::rules::Level as PermissionLevel;
use crate::deploy::{self, Actor, DeployError, Deployment, Deployments, JournalEntry, Plan, Snapshot, Summary};
use crate::model::RunId;
use crate::store::TargetKey;

/// A deployments request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DeployOp {
    /// Which of these component hashes the owner lacks.
    Missing {
        hashes: Vec<String>,
    },
    Plan {
        snapshot: Box<Snapshot>,
    },
    /// Deploy; with `planned`, only if the target is still at `expected` (the current
    /// deployment the caller planned against; `None`: none).
    Deploy {
        snapshot: Box<Snapshot>,
        #[serde(default)]
        expected: Option<u64>,
        #[serde(default)]
        planned: bool,
    },
    List {
        bundle: String,
        target: String,
    },
    Show {
        bundle: String,
        target: String,
        number: Option<u64>,
    },
    Diff {
        bundle: String,
        target: String,
        a: u64,
        b: u64,
    },
    Rollback {
        bundle: String,
        target: String,
        to: Option<u64>,
    },
    Destroy {
        bundle: String,
        target: String,
    },
    Promote {
        bundle: String,
        from: String,
        to: String,
        /// Promote only this job; the target's other jobs stay where they are.
        #[serde(default)]
        job: Option<String>,
    },
    Approve {
        bundle: String,
        target: String,
        number: u64,
    },
    /// The stable id of deployed job `target/job` (of `bundle`, or of the only bundle
    /// deploying such a target and job).
    Resolve {
        bundle: Option<String>,
        target: String,
        job: String,
    },
    /// `sluice models list`.
    ModelsList,
    /// `sluice models show NAME [VERSION]`.
    ModelsShow {
        name: String,
        #[serde(default)]
        version: Option<u64>,
    },
    /// `sluice models stage NAME VERSION --target T`.
    ModelsStage {
        name: String,
        version: u64,
        target: String,
    },
}

/// What a deployments request answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum DeployAnswer {
    Missing { hashes: Vec<String> },
    Plan { plan: Plan },
    Deployment { deployment: Box<Deployment> },
    Listed { deployments: Vec<Summary>, journal: Vec<JournalEntry> },
    Job { job_id: u64 },
    Models { models: Vec<super::models::ModelView> },
}

impl From<DeployError> for ServiceError {
    fn from(e: DeployError) -> Self {
        let text = e.to_string();
        match e {
            DeployError::Spec(_) | DeployError::Component { .. } | DeployError::Invalid(_) => {
                ServiceError::Invalid(text)
            }
            DeployError::MissingBlobs(_) | DeployError::Refused(_) | DeployError::Conflict { .. } => {
                ServiceError::InvalidState(text)
            }
            DeployError::Denied(_) => ServiceError::PermissionDenied(text),
            DeployError::NotFound(_) => ServiceError::NotFound(text),
            DeployError::Store(e) => e.into(),
            _ => ServiceError::Internal(text),
        }
    }
}

impl Service {
    /// Serve one deployments request as `caller`.
    pub fn deployments(&self, caller: &Caller, op: DeployOp) -> Result<DeployAnswer, ServiceError> {
        let d = Deployments::new(&self.inner.rt);
        let groups = self.groups_of(&caller.principal)?;
        let actor = Actor { principal: caller.principal.clone(), workspace: caller.workspace.clone(), groups };
        let key = |bundle: &str, target: &str| Deployments::key(&caller.workspace, bundle, target);
        let one = |deployment: Deployment| DeployAnswer::Deployment { deployment: Box::new(deployment) };
        // what changes the current deployments changes the triggers that watch them
        let moves = matches!(
            op,
            DeployOp::Deploy { .. } | DeployOp::Rollback { .. } | DeployOp::Destroy { .. } | DeployOp::Promote { .. }
        );
        let answer = match op {
            DeployOp::Missing { hashes } => DeployAnswer::Missing { hashes: d.missing(&hashes)? },
            DeployOp::Plan { snapshot } => {
                let current = d.current(&key(&snapshot.bundle, &snapshot.target))?;
                DeployAnswer::Plan { plan: deploy::plan::diff(&snapshot, current.as_ref()) }
            }
            DeployOp::Deploy { snapshot, expected, planned } => {
                let expected = planned.then_some(expected);
                if let Some(current) = d.current(&key(&snapshot.bundle, &snapshot.target))? {
                    self.require_on_all(caller, &current, PermissionLevel::CanManage, "deploy")?;
                }
                one(d.commit(&actor, *snapshot, expected, deploy::Origin::Deploy)?)
            }
            DeployOp::List { bundle, target } => {
                let k = key(&bundle, &target);
                DeployAnswer::Listed { deployments: d.list(&k)?, journal: d.journal(&k)? }
            }
            DeployOp::Show { bundle, target, number } => one(d.show(&key(&bundle, &target), number)?),
            DeployOp::Diff { bundle, target, a, b } => {
                let k = key(&bundle, &target);
                let (a, b) = (d.show(&k, Some(a))?, d.show(&k, Some(b))?);
                DeployAnswer::Plan { plan: deploy::plan::diff(&b.snapshot, Some(&a)) }
            }
            DeployOp::Rollback { bundle, target, to } => one(d.rollback(&actor, &key(&bundle, &target), to)?),
            DeployOp::Destroy { bundle, target } => one(d.destroy(&actor, &key(&bundle, &target))?),
            DeployOp::Promote { bundle, from, to, job } => {
                if let Some(current) = d.current(&key(&bundle, &to))? {
                    self.require_on_all(caller, &current, PermissionLevel::CanManage, "promote to")?;
                }
                one(d.promote(&actor, &bundle, &from, &to, job.as_deref())?)
            }
            DeployOp::Approve { bundle, target, number } => one(d.approve(&actor, &key(&bundle, &target), number)?),
            DeployOp::Resolve { bundle, target, job } => {
                DeployAnswer::Job { job_id: self.resolve(caller, bundle, &target, &job)? }
            }
            DeployOp::ModelsList => DeployAnswer::Models { models: self.models(caller, None, None)? },
            DeployOp::ModelsShow { name, version } => {
                DeployAnswer::Models { models: self.models(caller, Some(&name), version)? }
            }
            DeployOp::ModelsStage { name, version, target } => {
                DeployAnswer::Models { models: vec![self.stage_model(caller, &name, version, &target)?] }
            }
        };
        if moves {
            self.poke_triggers();
        }
        Ok(answer)
    }

    fn resolve(&self, caller: &Caller, bundle: Option<String>, target: &str, job: &str) -> Result<u64, ServiceError> {
        let found: Vec<(Deployment, String, u64)> = deploy::jobs::deployed_jobs(&self.inner.rt, &caller.workspace)?
            .into_iter()
            .filter(|(d, j, _)| d.snapshot.target == target && j == job)
            .filter(|(d, _, _)| bundle.as_deref().is_none_or(|b| b == d.snapshot.bundle))
            .collect();
        match found.as_slice() {
            [(_, _, id)] => Ok(*id),
            [] => Err(ServiceError::NotFound(format!(
                "no current deployment of target `{target}` has a job `{job}`{} (`sluice deployments list` shows them)",
                bundle.map(|b| format!(" in bundle `{b}`")).unwrap_or_default()
            ))),
            many => Err(ServiceError::Invalid(format!(
                "bundles {} all deploy `{target}/{job}`; name one with --bundle",
                many.iter().map(|(d, _, _)| format!("`{}`", d.snapshot.bundle)).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Store a component uploaded by a remote deploy (its content must hash to `hash`).
    pub fn put_blob(&self, _caller: &Caller, hash: &str, bytes: &[u8]) -> Result<(), ServiceError> {
        Ok(Deployments::new(&self.inner.rt).put_blob(hash, bytes)?)
    }

    fn require_on_all(
        &self,
        caller: &Caller,
        d: &Deployment,
        needed: PermissionLevel,
        what: &str,
    ) -> Result<(), ServiceError> {
        let groups = self.groups_of(&caller.principal)?;
        let who = deploy::rules::Member { principal: &caller.principal, groups: &groups };
        for job in d.snapshot.spec.jobs.keys() {
            deploy::rules::require(d, job, who, needed, what)?;
        }
        Ok(())
    }

    /// The jobs of the caller's workspace's current deployments (those the caller may see).
    pub(crate) fn deployed_job_infos(&self, caller: &Caller) -> Result<Vec<JobInfo>, ServiceError> {
        let mut out = Vec::new();
        let groups = self.groups_of(&caller.principal)?;
        let who = deploy::rules::Member { principal: &caller.principal, groups: &groups };
        for (d, job, job_id) in deploy::jobs::deployed_jobs(&self.inner.rt, &caller.workspace)? {
            if !deploy::rules::named(&d, &job, who) {
                continue;
            }
            let mut spec = d.snapshot.spec.jobs[&job].clone();
            spec.name = d.jobs.get(&job).map_or(job.clone(), |j| j.display_name.clone());
            let bundle = format!("{}{}{}", d.snapshot.bundle, deploy::jobs::TARGET_SEPARATOR, d.snapshot.target);
            out.push(JobInfo { job_id, bundle, workspace: caller.workspace.clone(), spec });
        }
        Ok(out)
    }

    /// The runnable bundle of deployed job `job_id`, if the id names a deployed job; the
    /// caller must hold `needed` on it.
    pub(crate) fn deployed_job(
        &self,
        caller: &Caller,
        job_id: u64,
        needed: PermissionLevel,
        what: &str,
    ) -> Result<Option<(JobInfo, deploy::jobs::DeployedRun)>, ServiceError> {
        let missing = || ServiceError::NotFound(format!("Job {job_id} does not exist."));
        let Some(key) = self.inner.rt.services().job_key(job_id)? else { return Ok(None) };
        let Some((bundle, target)) = deploy::jobs::split_key(&key) else { return Ok(None) };
        if key.workspace != caller.workspace {
            return Err(missing());
        }
        let run = deploy::jobs::runnable(&self.inner.rt, &caller.workspace, bundle, target, &key.job)
            .map_err(|_| missing())?;
        let groups = self.groups_of(&caller.principal)?;
        let who = deploy::rules::Member { principal: &caller.principal, groups: &groups };
        if !deploy::rules::named(&run.deployment, &key.job, who) {
            return Err(missing());
        }
        deploy::rules::require(&run.deployment, &key.job, who, needed, what)?;
        let spec = run.bundle.jobs[&key.job].clone();
        let info = JobInfo { job_id, bundle: key.bundle.clone(), workspace: key.workspace.clone(), spec };
        Ok(Some((info, run)))
    }

    /// Every job with a trigger of every current deployment (any workspace): paused when
    /// the deployment is in development mode, started as the target's `run_as`, else as
    /// its deployer. Unreadable records are skipped (the API reports them).
    pub(crate) fn deployed_trigger_jobs(&self) -> Vec<crate::triggers::TriggerJob> {
        let rt = &self.inner.rt;
        let Ok(targets) = rt.deployments().targets(None) else { return Vec::new() };
        let mut out = Vec::new();
        for (key, current) in targets {
            let Some(Ok(Some(d))) = current.map(|n| Deployments::new(rt).get(&key, n)) else { continue };
            for (name, job) in &d.snapshot.spec.jobs {
                let Some(mut spec) = job.trigger.clone() else { continue };
                spec.paused |= d.jobs.get(name).is_some_and(|j| j.paused);
                let job_key = deploy::jobs::deployed_job_key(&key.workspace, &key.bundle, &key.target, name);
                let Ok(job_id) = rt.services().job_id(&job_key) else { continue };
                out.push(crate::triggers::TriggerJob {
                    job_id,
                    workspace: key.workspace.clone(),
                    name: format!("{}.{name}", job_key.bundle),
                    target: key.target.clone(),
                    spec,
                    principal: Some(run_as(&d).unwrap_or_else(|| d.principal.clone())),
                });
            }
        }
        out
    }

    /// Who a run of job `job_id` runs as: a deployed job's target's `run_as` when it
    /// declares one, else the caller.
    pub(crate) fn runs_as(&self, caller: &Caller, job_id: u64) -> String {
        let deployed = || -> Option<String> {
            let key = self.inner.rt.services().job_key(job_id).ok()??;
            let (bundle, target) = deploy::jobs::split_key(&key)?;
            let run = deploy::jobs::runnable(&self.inner.rt, &caller.workspace, bundle, target, &key.job).ok()?;
            run_as(&run.deployment)
        };
        deployed().unwrap_or_else(|| caller.principal.clone())
    }

    /// The current deployment and job name behind job `job_id`, when it is a deployed job.
    pub(crate) fn deployment_of_job(&self, job_id: u64) -> Result<Option<(Deployment, String)>, ServiceError> {
        let Some(key) = self.inner.rt.services().job_key(job_id)? else { return Ok(None) };
        let Some((bundle, target)) = deploy::jobs::split_key(&key) else { return Ok(None) };
        let k = TargetKey { workspace: key.workspace.clone(), bundle: bundle.into(), target: target.into() };
        let deployments = Deployments::new(&self.inner.rt);
        let Some(current) = deployments.current(&k)? else { return Ok(None) };
        Ok(Some((deployments.owner(&k, current, &key.job)?, key.job.clone())))
    }

    /// [`Self::deployment_of_job`] for the job run `run` belongs to.
    pub(crate) fn deployment_of_run(&self, run: RunId) -> Result<Option<(Deployment, String)>, ServiceError> {
        let Ok(Some(summary)) = self.inner.rt.store().summary(run) else { return Ok(None) };
        let Some(job_id) = summary.job_id else { return Ok(None) };
        self.deployment_of_job(job_id)
    }

    /// Refuse `what` on a run of a deployed job unless the caller holds `needed` on it
    /// (runs of other jobs: no check beyond the workspace's).
    pub(crate) fn check_run_permission(
        &self,
        caller: &Caller,
        run: RunId,
        needed: PermissionLevel,
        what: &str,
    ) -> Result<(), ServiceError> {
        let Some((d, job)) = self.deployment_of_run(run)? else { return Ok(()) };
        let groups = self.groups_of(&caller.principal)?;
        deploy::rules::require(
            &d,
            &job,
            deploy::rules::Member { principal: &caller.principal, groups: &groups },
            needed,
            what,
        )?;
        Ok(())
    }
}

/// The `run_as` of deployment `d`'s target.
fn run_as(d: &Deployment) -> Option<String> {
    d.snapshot.spec.targets.get(&d.snapshot.target).and_then(|t| t.run_as.clone())
}
