//! The engine's side of file arrival: a local directory is listed inline (it is fast); an
//! object store (`s3://`, `az://`, `abfss://`, `gs://`) is listed in a task of its own, so a
//! slow or unreachable store never holds up the engine's other triggers; its end wakes the
//! engine, which then decides on the new files exactly as for a directory (`Watch`; the
//! files consumed are recorded with the run's creation by the launcher).
//!
//! An object store is opened once per trigger with the credentials the launcher reveals (the
//! secret the bundle names; audited) and opened again after a failed listing (the secret
//! may have been fixed). A failed listing is a warning, a metric
//! (`sluice_trigger_firings_total{outcome="listing_failed"}`) and the trigger's error in
//! `sluice triggers list`, never a crash and never a run; the next look waits twice as long
//! after each failure in a row (from `POLL_INTERVAL` up to `MAX_FAILURE_BACKOFF`), so a broken
//! credential is not revealed and audited every poll. It never creates runs itself.

use secrecy::ExposeSecret;
use tokio::task::JoinHandle;

use super::TriggerError;
use super::engine::{Engine, Firing, Launcher, Watched};
use super::files::{self, MAX_LISTED};
use crate::model::{Millis, TriggerContext, TriggerFile};
use crate::objstore::Store;
use crate::spec::triggers::FileArrival;
use crate::store::triggers::FiringKey;

type Listing = JoinHandle<Result<Vec<TriggerFile>, TriggerError>>;

/// An object-store trigger's opened store and listing in flight.
#[derive(Debug, Default)]
pub struct ObjectWatch {
    store: Option<Store>,
    listing: Option<Listing>,
}

impl Engine {
    /// One look at an object-store trigger: take a finished listing's files, start a
    /// listing when one is due. The time to look next (`None` while a listing is in flight:
    /// its end wakes the engine).
    pub(super) async fn object_files(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        spec: &FileArrival,
        now: Millis,
    ) -> Result<Option<Millis>, TriggerError> {
        if let Some(done) = w.objects.listing.take_if(|h| h.is_finished()) {
            let listed = done.await.unwrap_or_else(|e| {
                Err(TriggerError::Listing { url: spec.url.clone(), message: format!("the listing task ended: {e}") })
            });
            match listed {
                Ok(files) => {
                    w.error = None;
                    let new = self.unconsumed(w.job.job_id, files)?;
                    self.batch(w, launcher, spec, new, now).await?;
                }
                Err(e) => self.listing_failed(w, e, now),
            }
        }
        if w.objects.listing.is_some() {
            return Ok(None);
        }
        if w.watch.next_check(now, spec) > now {
            return Ok(Some(w.watch.next_check(now, spec)));
        }
        match self.open(w, launcher, spec) {
            Ok(store) => {
                let wake = self.wake.clone();
                w.objects.listing = Some(tokio::spawn(async move {
                    let listed = store.list(MAX_LISTED).await;
                    wake.notify_one();
                    listed.map_err(|e| TriggerError::Listing {
                        url: store.location().url.clone(),
                        message: e.to_string(),
                    })
                }));
                Ok(None)
            }
            Err(e) => {
                self.listing_failed(w, e, now);
                Ok(Some(w.watch.next_check(now, spec)))
            }
        }
    }

    /// List the store now (`sluice triggers fire`), waiting for the answer.
    pub(super) async fn list_objects(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        spec: &FileArrival,
    ) -> Result<Vec<TriggerFile>, TriggerError> {
        let store = self.open(w, launcher, spec)?;
        store.list(MAX_LISTED).await.map_err(|e| {
            w.objects.store = None;
            TriggerError::Listing { url: spec.url.clone(), message: e.to_string() }
        })
    }

    /// The trigger's store, opened with its credentials if it is not open yet.
    fn open(&self, w: &mut Watched, launcher: &dyn Launcher, spec: &FileArrival) -> Result<Store, TriggerError> {
        if let Some(store) = &w.objects.store {
            return Ok(store.clone());
        }
        let name = spec.credentials.as_deref().ok_or_else(|| {
            TriggerError::Invalid(format!("file arrival on {} needs `credentials = \"scope/key\"`", spec.url))
        })?;
        let secret = launcher.credentials(&w.job, name).map_err(|e| TriggerError::Listing {
            url: spec.url.clone(),
            message: format!("the credentials `{name}` cannot be read: {e}"),
        })?;
        let store = Store::open(&spec.url, secret.expose_secret())
            .map_err(|e| TriggerError::Listing { url: spec.url.clone(), message: format!("{e} (secret `{name}`)") })?;
        w.objects.store = Some(store.clone());
        Ok(store)
    }

    /// A listing failed: say so (warning, metric, the trigger's error), open the store
    /// afresh next time, and look again later — twice as long after each failure in a row
    /// (`files::MAX_FAILURE_BACKOFF` at most).
    fn listing_failed(&self, w: &mut Watched, e: TriggerError, now: Millis) {
        tracing::warn!("file-arrival trigger of job {}: {e}", w.job.name);
        self.telemetry.trigger_listing_failed(w.job.spec.kind.name());
        w.error = Some(e.to_string());
        w.objects.store = None;
        w.watch.failed(now);
    }

    /// A local directory, listed inline (it is fast).
    pub(super) async fn files(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        spec: &FileArrival,
        now: Millis,
    ) -> Result<(), TriggerError> {
        let new = self.new_files(w.job.job_id, &spec.url)?;
        self.batch(w, launcher, spec, new, now).await
    }

    /// The new files of a listing at `now`: start a run for them when it is time.
    pub(super) async fn batch(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        spec: &FileArrival,
        new: Vec<TriggerFile>,
        now: Millis,
    ) -> Result<(), TriggerError> {
        let Some(batch) = w.watch.observe(new, now, spec) else { return Ok(()) };
        let firing = Firing {
            key: FiringKey::Named(format!("files-{now:020}")),
            also: vec![],
            context: TriggerContext {
                kind: "file_arrival".into(),
                time: now,
                files: batch,
                payload: None,
                tables: vec![],
            },
        };
        if self.launch(w, launcher, firing, now).await?.is_some() {
            w.watch.fired(now);
        }
        Ok(())
    }

    /// The files in the local directory `url` whose version the job's trigger has not consumed.
    pub fn new_files(&self, job: u64, url: &str) -> Result<Vec<TriggerFile>, TriggerError> {
        self.unconsumed(job, files::list_local(url)?)
    }

    /// The files of a listing whose version the job's trigger has not consumed.
    pub(super) fn unconsumed(&self, job: u64, listed: Vec<TriggerFile>) -> Result<Vec<TriggerFile>, TriggerError> {
        let mut out = Vec::new();
        for file in listed {
            let version = file.version();
            if self.store.consumed(job, &file.path)?.is_none_or(|c| c.version != version) {
                out.push(file);
            }
        }
        Ok(out)
    }
}
