//! A task's retry policy: `retries = { max = 3, initial = "1s", backoff = 2.0, … }`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::read::Node;

pub(crate) const RETRY_KEYS: &[&str] = &["max", "initial", "backoff", "max_interval", "jitter", "on_timeout"];

/// How a failed attempt of a task is retried. Only `max` must be written; the rest
/// default to [`RetryPolicy::DEFAULT_INITIAL`] and friends.
///
/// The wait before retry `n` (0-based) is meant to be `initial * backoff^n`, capped at
/// `max_interval`, then spread by up to `± jitter` of itself (the scheduler computes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// How many retries after the first attempt; `None` = unlimited (written `max = -1`).
    pub max: Option<u32>,
    /// The wait before the first retry.
    pub initial: Duration,
    /// Factor the wait grows by after each retry; at least 1.0.
    pub backoff: f64,
    /// The longest wait between two attempts; never below `initial`.
    pub max_interval: Duration,
    /// Random spread of each wait, as a fraction of it (0.0 ..= 1.0).
    pub jitter: f64,
    /// Whether an attempt that timed out is retried too.
    pub on_timeout: bool,
}

impl RetryPolicy {
    pub const DEFAULT_INITIAL: Duration = Duration::from_secs(1);
    pub const DEFAULT_BACKOFF: f64 = 2.0;
    pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(60);
    pub const DEFAULT_JITTER: f64 = 0.1;

    /// A policy with `max` retries (`None` = unlimited) and every other field defaulted.
    pub fn new(max: Option<u32>) -> Self {
        RetryPolicy {
            max,
            initial: Self::DEFAULT_INITIAL,
            backoff: Self::DEFAULT_BACKOFF,
            max_interval: Self::DEFAULT_MAX_INTERVAL,
            jitter: Self::DEFAULT_JITTER,
            on_timeout: false,
        }
    }
}

/// Reads a `retries` table.
pub(crate) fn retries(node: &Node<'_>) -> Result<RetryPolicy, SpecError> {
    if !matches!(node.value, toml::de::DeValue::Table(_)) {
        return Err(node
            .error(format!("expected a table such as `{{ max = 3 }}`, found {}", super::read::describe(node.value))));
    }
    let table = node.table()?;
    table.deny_unknown(RETRY_KEYS)?;
    let mut policy = RetryPolicy::new(max(table.require("max")?)?);
    if let Some(node) = table.get("initial") {
        policy.initial = node.duration()?;
    }
    if let Some(node) = table.get("backoff") {
        policy.backoff = node.number()?;
        if policy.backoff < 1.0 {
            return Err(node.error(format!(
                "backoff must be at least 1.0 (1.0 = the same wait every time), found {}",
                policy.backoff
            )));
        }
    }
    match table.get("max_interval") {
        Some(node) => {
            policy.max_interval = node.duration()?;
            if policy.max_interval < policy.initial {
                return Err(node.error(format!(
                    "max_interval ({:?}) is shorter than initial ({:?}); it must be at least as long",
                    policy.max_interval, policy.initial
                )));
            }
        }
        // An unwritten max_interval never cuts below a long `initial`.
        None => policy.max_interval = policy.max_interval.max(policy.initial),
    }
    if let Some(node) = table.get("jitter") {
        policy.jitter = node.number()?;
        if !(0.0..=1.0).contains(&policy.jitter) {
            return Err(node.error(format!(
                "jitter is a fraction of the wait from 0.0 to 1.0 (0.1 = ±10%), found {}",
                policy.jitter
            )));
        }
    }
    if let Some(node) = table.get("on_timeout") {
        policy.on_timeout = node.bool()?;
    }
    Ok(policy)
}

/// `max`: -1 for unlimited, else a count of retries.
fn max(node: &Node<'_>) -> Result<Option<u32>, SpecError> {
    match node.integer()? {
        -1 => Ok(None),
        count if count < -1 => Err(node
            .error(format!("max must be -1 (retry without limit) or a number of retries (0 or more), found {count}"))),
        count => {
            u32::try_from(count).map(Some).map_err(|_| node.error(format!("max is too large (at most {})", u32::MAX)))
        }
    }
}
