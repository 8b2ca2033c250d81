//! Triggers: what starts a served job's runs inside `sluice serve` — Quartz cron schedules
//! in a time zone (daylight saving spelled out), periodic ticks, file arrival in a local
//! directory or an object store ([`arrival`]), HMAC-signed webhooks, continuous jobs, and new content in named datasets
//! ([`tables`]).
//!
//! Owns when a trigger fires ([`cron`], [`catchup`]), the engine that watches the served
//! jobs' triggers on an injected clock ([`engine`], [`clock`]), listing a watched location
//! ([`files`]) and checking a webhook's signature ([`webhook`]). The engine fires through a
//! [`Launcher`] (the service), which creates the run and records the firing's key — and the
//! files it consumed — in the same flush as the run's creation, so each firing starts
//! exactly one run even across a crash. The engine learns which jobs exist from the list
//! of [`TriggerJob`]s it is handed ([`Engine::set_jobs`]): served bundles today,
//! deployments later.
//!
//! It must never create runs itself, speak HTTP, or read a clock but the one it is given.

pub mod arrival;
pub mod catchup;
pub mod clock;
pub mod continuous;
mod control;
pub mod cron;
pub mod engine;
pub mod files;
pub mod tables;
pub mod webhook;

pub use clock::{FileClock, ManualClock, WakeClock};
pub use engine::{Engine, Firing, LaunchFuture, Launched, Launcher, TriggerJob, TriggerStatus};

/// Why a trigger could not be read, checked or fired.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// A trigger's settings are not usable (a bad pattern, an unknown zone).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The launcher could not start the run.
    #[error("starting the run: {0}")]
    Launch(String),
    /// Listing a watched location failed.
    #[error("listing {url}: {message}")]
    Listing { url: String, message: String },
}
