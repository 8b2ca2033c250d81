//! Continuous jobs: a new run when the previous one ends, after consecutive failures
//! only once an exponential backoff has passed. The previous run is found again after a
//! restart from the latest `continuous-` firing (see the engine's `load`).

use std::time::Duration;

use super::TriggerError;
use super::engine::{Engine, Firing, Launcher, Watched};
use crate::model::{Millis, TriggerContext};
use crate::store::triggers::FiringKey;

/// A continuous job's wait after its first failed run; doubled after each further one.
pub const CONTINUOUS_BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest a continuous job waits between failed runs (an hour: a broken job keeps
/// being retried, but costs little).
pub const CONTINUOUS_BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// A continuous job's wait after `failures` failed runs in a row.
pub fn backoff(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    CONTINUOUS_BACKOFF_BASE.saturating_mul(factor).min(CONTINUOUS_BACKOFF_CAP)
}

impl Engine {
    pub(super) async fn continuous(
        &self,
        w: &mut Watched,
        launcher: &dyn Launcher,
        now: Millis,
    ) -> Result<Option<Millis>, TriggerError> {
        if let Some(run) = w.running {
            match launcher.finished(run) {
                None => return Ok(None),
                Some(true) => w.failures = 0,
                Some(false) => {
                    w.failures += 1;
                    w.not_before = now + backoff(w.failures).as_millis() as Millis;
                }
            }
            w.previous = Some(run);
            w.running = None;
        }
        if now < w.not_before {
            return Ok(Some(w.not_before));
        }
        // keyed by the run it follows: a crash between creating the run and noting it here
        // finds the same key again (no second run), and two runs never share one
        let firing = Firing {
            key: FiringKey::Named(format!("continuous-after-{:020}", w.previous.unwrap_or(0))),
            also: vec![],
            context: TriggerContext {
                kind: "continuous".into(),
                time: now,
                files: vec![],
                payload: None,
                tables: vec![],
            },
        };
        if let Some(launched) = self.launch(w, launcher, firing, now).await? {
            w.running = Some(launched.run);
        }
        Ok(None)
    }
}
