//! Retry timing: exponential backoff with a cap and jitter. Pure, no I/O.
//!
//! Jitter is derived from a hash of (run, task, attempt) rather than a random
//! source, so a replayed or resumed run waits exactly as long as the original.

use std::time::Duration;

use crate::spec::RetryPolicy;

/// Whether another attempt is allowed after `attempts_made` attempts.
pub fn may_retry(policy: &RetryPolicy, attempts_made: u32) -> bool {
    match policy.max {
        None => true,
        Some(max) => attempts_made <= max,
    }
}

/// How long to wait before attempt number `next_attempt` (1 = first retry).
pub fn delay(policy: &RetryPolicy, next_attempt: u32, salt: &str) -> Duration {
    let exponent = next_attempt.saturating_sub(1).min(64) as i32;
    let base = policy.initial.as_secs_f64() * policy.backoff.powi(exponent);
    let capped = base.min(policy.max_interval.as_secs_f64());
    let unit = jitter_unit(salt, next_attempt); // in [-1, 1)
    let jittered = capped * (1.0 + policy.jitter * unit);
    Duration::from_secs_f64(jittered.clamp(0.0, policy.max_interval.as_secs_f64()))
}

fn jitter_unit(salt: &str, attempt: u32) -> f64 {
    let mut h = blake3::Hasher::new();
    h.update(salt.as_bytes());
    h.update(&attempt.to_le_bytes());
    let bytes = h.finalize();
    let n = u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or_default());
    (n as f64 / u64::MAX as f64) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: Option<u32>, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            max,
            initial: Duration::from_millis(100),
            backoff: 2.0,
            max_interval: Duration::from_millis(500),
            jitter,
            on_timeout: false,
        }
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let p = policy(Some(5), 0.0);
        let d: Vec<u128> = (1..=5).map(|n| delay(&p, n, "s").as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_reproducible() {
        let p = policy(Some(5), 0.5);
        for n in 1..=3 {
            let a = delay(&p, n, "run1/task");
            assert_eq!(a, delay(&p, n, "run1/task"));
            let base = [100.0, 200.0, 400.0][n as usize - 1];
            let ms = a.as_secs_f64() * 1e3;
            assert!(ms >= base * 0.5 - 1e-6 && ms <= (base * 1.5).min(500.0) + 1e-6, "{ms}");
        }
    }

    #[test]
    fn max_counts_retries_and_none_is_unlimited() {
        let p = policy(Some(2), 0.0);
        assert!(may_retry(&p, 1) && may_retry(&p, 2) && !may_retry(&p, 3));
        assert!(may_retry(&policy(None, 0.0), 1_000));
    }
}
