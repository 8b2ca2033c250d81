//! The service's side of triggers: it starts the engine (`sluice serve`), hands it the
//! served jobs that have a trigger, creates the runs it fires — recording each firing's
//! keys and consumed files with the run's creation ([`Service::record_firing`], one flush)
//! — and answers `sluice triggers list|pause|resume|fire` and webhook requests.
//!
//! It decides nothing about when a trigger fires (the `triggers` module does) and never
//! speaks HTTP: the server hands it a webhook's headers and body.

use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};

use super::{Caller, Inner, Service, ServiceError, Source, Submission};
use crate::model::{RunId, RunView};
use crate::spec::triggers::TriggerKind;
use crate::store::datasets::{DatasetUse, Namespace};
use crate::store::triggers::{Consumed, FiringKey, FiringRecord, Outcome};
use crate::triggers::tables;
use crate::triggers::webhook::{self, HookError};
use crate::triggers::{
    Engine, Firing, LaunchFuture, Launched, Launcher, TriggerError, TriggerJob, TriggerStatus, WakeClock,
};

/// The running engine and what it launches through.
pub(crate) struct Triggers {
    engine: Arc<Engine>,
    launcher: Arc<ServiceLauncher>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// What a caller asks of the triggers (`sluice triggers …`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum TriggerAction {
    List,
    Pause {
        job: String,
    },
    Resume {
        job: String,
    },
    /// Fire by hand, with a webhook's payload if the trigger is one.
    Fire {
        job: String,
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    /// `sluice datasets list|show`: the datasets (one, when named) and their lineage.
    Datasets {
        #[serde(default)]
        name: Option<String>,
    },
}

/// The answer: the triggers (after the change), and the run a fire started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerAnswer {
    pub triggers: Vec<serde_json::Value>,
    #[serde(default)]
    pub run_id: Option<RunId>,
    #[serde(default)]
    pub existing: bool,
    /// For [`TriggerAction::Datasets`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasets: Option<Vec<serde_json::Value>>,
}

/// A webhook request, as the server hands it over.
pub struct HookRequest<'a> {
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub body: &'a [u8],
}

/// Starts the engine's runs as the principal `sluice serve` runs as.
struct ServiceLauncher {
    service: Weak<Inner>,
    principal: String,
}

impl Launcher for ServiceLauncher {
    fn launch<'a>(&'a self, job: &'a TriggerJob, firing: Firing) -> LaunchFuture<'a> {
        Box::pin(async move {
            let inner = self.service.upgrade().ok_or_else(|| TriggerError::Launch("sluice is stopping".into()))?;
            let service = Service { inner };
            let principal = job.principal.clone().unwrap_or_else(|| self.principal.clone());
            let caller = Caller::local(principal, job.workspace.clone());
            service.submit_triggered(&caller, job.job_id, firing).await.map_err(|e| TriggerError::Launch(e.to_string()))
        })
    }

    fn finished(&self, run: RunId) -> Option<bool> {
        let service = Service { inner: self.service.upgrade()? };
        let view = service.inner.rt.view(run).ok()?;
        view.result.map(|r| r.is_success())
    }

    fn credentials(&self, job: &TriggerJob, name: &str) -> Result<secrecy::SecretString, TriggerError> {
        let inner = self.service.upgrade().ok_or_else(|| TriggerError::Launch("sluice is stopping".into()))?;
        let service = Service { inner };
        let principal = job.principal.clone().unwrap_or_else(|| self.principal.clone());
        service
            .trigger_secret(job, name, &principal, "trigger.file_arrival")
            .map(secrecy::SecretString::from)
            .map_err(|e| TriggerError::Invalid(e.to_string()))
    }
}

impl Service {
    /// Start the trigger engine on `clock`; its runs are started as `principal`.
    pub fn start_triggers(&self, clock: Arc<dyn WakeClock>, principal: &str) {
        let rt = &self.inner.rt;
        let engine = Arc::new(
            Engine::new(clock, rt.triggers().clone(), rt.telemetry.clone()).with_datasets(rt.datasets().clone()),
        );
        let launcher =
            Arc::new(ServiceLauncher { service: Arc::downgrade(&self.inner), principal: principal.to_string() });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let triggers = Triggers { engine: engine.clone(), launcher: launcher.clone(), stop };
        if self.inner.triggers.set(triggers).is_err() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let jobs = move || weak.upgrade().map(|inner| Service { inner }.trigger_jobs()).unwrap_or_default();
            engine.run(&*launcher, &jobs, stopped).await;
        });
    }

    /// Stop the engine (a graceful stop: nothing more fires).
    pub fn stop_triggers(&self) {
        if let Some(t) = self.inner.triggers.get() {
            t.stop.send_replace(true);
        }
    }

    pub(crate) fn poke_triggers(&self) {
        if let Some(t) = self.inner.triggers.get() {
            t.engine.poke();
        }
    }

    /// Every served job with a trigger, in every workspace it is served to, and every job
    /// with a trigger of every current deployment.
    pub fn trigger_jobs(&self) -> Vec<TriggerJob> {
        let mut out = Vec::new();
        let served = self.bundles().clone();
        for b in served {
            let Ok(bundle) = self.inner.parsed.load(&b.path) else { continue };
            let Ok(target) = bundle.target(None) else { continue };
            for job in bundle.jobs.values() {
                let Some(spec) = job.trigger.clone() else { continue };
                for workspace in &b.workspaces {
                    let Ok(job_id) = self.job_key_id(workspace, &bundle.name, &job.name) else { continue };
                    let name = format!("{}.{}", bundle.name, job.name);
                    let workspace = workspace.clone();
                    let target = target.clone();
                    out.push(TriggerJob { job_id, workspace, name, target, spec: spec.clone(), principal: None });
                }
            }
        }
        out.extend(self.deployed_trigger_jobs());
        out
    }

    /// Create a run for a trigger's firing, exactly once per firing key: a key recorded
    /// already answers its run; a replayed webhook signature is refused.
    pub(crate) async fn submit_triggered(
        &self,
        caller: &Caller,
        job: u64,
        firing: Firing,
    ) -> Result<Launched, ServiceError> {
        if self.inner.manager.is_stopping() {
            return Err(ServiceError::Stopping("sluice is stopping".into()));
        }
        let _one_at_a_time = self.inner.manager.one_at_a_time().await;
        let store = self.inner.rt.triggers();
        let ended = |key: &FiringKey| store.firing(job, key).map_err(ServiceError::from);
        if let Some(FiringRecord { outcome: Outcome::Fired { run }, .. }) = ended(&firing.key)? {
            return Ok(Launched { run, existing: true });
        }
        for key in &firing.also {
            if ended(key)?.is_some() {
                return Err(ServiceError::InvalidState(
                    "this request was received before (a replay); nothing was started".into(),
                ));
            }
        }
        let sub = Submission::new(Source::Job(job));
        let submitted = self.submit_now(caller, sub, None, Some((job, &firing)))?;
        Ok(Launched { run: submitted.run_id, existing: false })
    }

    /// Record a firing's keys, consumed files and dataset versions for the run `view` shows
    /// (flushed with its creation).
    pub(crate) fn record_firing(&self, job: u64, firing: &Firing, view: &RunView) -> Result<(), ServiceError> {
        let store = self.inner.rt.triggers();
        let run = view.run_id;
        let now = self.inner.rt.clock().now_millis();
        let record = FiringRecord { outcome: Outcome::Fired { run }, recorded_at: now };
        for key in std::iter::once(&firing.key).chain(&firing.also) {
            store.put_firing(job, key, &record)?;
        }
        for file in &firing.context.files {
            store.put_consumed(job, &file.path, &Consumed { version: file.version(), run })?;
        }
        let ns = Namespace { workspace: &view.workspace, target: &view.target };
        for t in &firing.context.tables {
            store.put_consumed(
                job,
                &tables::consumed_path(&t.name),
                &Consumed { version: t.version.to_string(), run },
            )?;
            let used = DatasetUse { version: t.version, job: view.job.clone(), run, at: now };
            self.inner.rt.datasets().put_use(ns, &t.name, &used)?;
        }
        Ok(())
    }

    fn triggers(&self) -> Result<&Triggers, ServiceError> {
        self.inner.triggers.get().ok_or_else(|| {
            ServiceError::InvalidState("triggers fire inside `sluice serve`; this owner does not run them".into())
        })
    }

    /// `sluice triggers list|pause|resume|fire`, in the caller's workspace.
    pub async fn triggers_do(&self, caller: &Caller, action: TriggerAction) -> Result<TriggerAnswer, ServiceError> {
        if let TriggerAction::Datasets { name } = &action {
            let views = self.datasets(caller, name.as_deref())?;
            let datasets = views.iter().map(|v| serde_json::to_value(v).unwrap_or_default()).collect();
            return Ok(TriggerAnswer { triggers: vec![], run_id: None, existing: false, datasets: Some(datasets) });
        }
        let t = self.triggers()?;
        let (mut run_id, mut existing) = (None, false);
        match &action {
            TriggerAction::List | TriggerAction::Datasets { .. } => {}
            TriggerAction::Pause { job } | TriggerAction::Resume { job } => {
                let id = self.trigger_job_id(caller, job).await?;
                let paused = matches!(action, TriggerAction::Pause { .. });
                t.engine.set_paused(&*t.launcher, id, paused).await.map_err(internal)?;
            }
            TriggerAction::Fire { job, payload } => {
                let id = self.trigger_job_id(caller, job).await?;
                let fired = t.engine.fire(&*t.launcher, id, payload.clone()).await.map_err(|e| match e {
                    TriggerError::Invalid(m) => ServiceError::InvalidState(m),
                    other => internal(other),
                })?;
                if let Some(l) = fired {
                    (run_id, existing) = (Some(l.run), l.existing);
                }
            }
        }
        let statuses = t.engine.statuses().await.map_err(internal)?;
        let triggers = statuses
            .into_iter()
            .filter(|s| s.workspace == caller.workspace)
            .map(|s| serde_json::to_value(&s).unwrap_or_default())
            .collect();
        Ok(TriggerAnswer { triggers, run_id, existing, datasets: None })
    }

    /// A job of the caller's workspace with a trigger, by id or by name (`bundle.job` or `job`).
    async fn trigger_job_id(&self, caller: &Caller, job: &str) -> Result<u64, ServiceError> {
        let statuses: Vec<TriggerStatus> = self
            .triggers()?
            .engine
            .statuses()
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|s| s.workspace == caller.workspace)
            .collect();
        let found: Vec<&TriggerStatus> = statuses
            .iter()
            .filter(|s| {
                s.job_id.to_string() == job || s.job == job || s.job.split_once('.').is_some_and(|(_, j)| j == job)
            })
            .collect();
        match found.as_slice() {
            [one] => Ok(one.job_id),
            [] => Err(ServiceError::NotFound(format!(
                "no served job `{job}` has a trigger in workspace `{}` (jobs with triggers: {})",
                caller.workspace,
                statuses.iter().map(|s| s.job.as_str()).collect::<Vec<_>>().join(", ")
            ))),
            _ => Err(ServiceError::Invalid(format!("`{job}` names several jobs; use `bundle.job` or the job id"))),
        }
    }

    /// `POST /api/sluice/v1/hooks/JOB_ID`: check the signature, then start the run (or
    /// answer the run an `Idempotency-Key` started). Nothing starts on any error.
    pub async fn webhook(&self, job_id: u64, req: HookRequest<'_>) -> Result<Launched, ServiceError> {
        let t = self.triggers()?;
        let missing = || ServiceError::NotFound(format!("job {job_id} has no webhook trigger"));
        let job = t.engine.job(job_id).await.ok_or_else(missing)?;
        let TriggerKind::Webhook { secret } = &job.spec.kind else { return Err(missing()) };
        let value = self.trigger_secret(&job, secret, &t.launcher.principal, "trigger.webhook")?;
        let now = t.engine.clock().now_millis();
        let payload =
            webhook::verify(value.as_bytes(), req.timestamp, req.signature, req.body, now).map_err(|e| match e {
                HookError::BadSignature | HookError::TooOld(_) => ServiceError::Unauthenticated(e.to_string()),
                other => ServiceError::Invalid(other.to_string()),
            })?;
        if t.engine.is_paused(job_id).await.map_err(internal)? == Some(true) {
            return Err(ServiceError::InvalidState(format!(
                "the trigger of job {} is paused; nothing was started",
                job.name
            )));
        }
        let sig_key = FiringKey::Named(webhook::signature_key(req.signature.unwrap_or_default()));
        let (key, also) = match req.idempotency_key {
            Some(k) if k.is_empty() || k.len() > webhook::MAX_IDEMPOTENCY_KEY => {
                return Err(ServiceError::Invalid(format!(
                    "Idempotency-Key must be 1 to {} characters",
                    webhook::MAX_IDEMPOTENCY_KEY
                )));
            }
            Some(k) => (FiringKey::Named(webhook::idempotency_key(k)), vec![sig_key]),
            None => (sig_key, vec![]),
        };
        // a replay without an idempotency key: its signature's record exists
        if req.idempotency_key.is_none() && self.inner.rt.triggers().firing(job_id, &key)?.is_some() {
            return Err(ServiceError::InvalidState(
                "this request was received before (a replay); nothing was started".into(),
            ));
        }
        let context = crate::model::TriggerContext {
            kind: "webhook".into(),
            time: now,
            files: vec![],
            payload: Some(payload),
            tables: vec![],
        };
        let caller = Caller::local(t.launcher.principal.clone(), job.workspace.clone());
        let launched = self.submit_triggered(&caller, job_id, Firing { key, also, context }).await?;
        if !launched.existing {
            self.inner.rt.telemetry.trigger_fired("webhook");
        }
        Ok(launched)
    }

    /// A trigger's secret (a webhook's key, an object store's credentials), revealed through
    /// the vault (audited, as `task`) for the job's default target.
    fn trigger_secret(
        &self,
        job: &TriggerJob,
        name: &str,
        principal: &str,
        task: &str,
    ) -> Result<String, ServiceError> {
        use secrecy::ExposeSecret;
        let (_, bundle) = self.job(&Caller::local(principal, job.workspace.clone()), job.job_id)?;
        let target = bundle.target(None).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let resolver = self.inner.rt.secrets.clone().ok_or_else(|| ServiceError::Internal("no secrets here".into()))?;
        let req = crate::secrets::RevealRequest {
            run: 0,
            task: task.into(),
            attempt: 0,
            principal: principal.to_string(),
            workspace: job.workspace.clone(),
            target,
            name: name.to_string(),
            granted: true,
            via: None,
        };
        let value = resolver
            .reveal(&req)
            .map_err(|why| ServiceError::Internal(format!("the trigger's secret `{name}` cannot be read: {why}")))?;
        Ok(value.expose_secret().to_string())
    }
}

fn internal(e: TriggerError) -> ServiceError {
    match e {
        TriggerError::Store(s) => ServiceError::from(s),
        other => ServiceError::Internal(other.to_string()),
    }
}
