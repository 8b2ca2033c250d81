//! Prometheus metrics (`GET /metrics`, the text format of `prometheus-client`).
//!
//! [`Metrics`] is the runtime's [`Telemetry`]: attempts by result and their latency,
//! runs by result, sandbox instantiation times and slot waits are counted as they
//! happen; runs in flight and queued (and tickets waiting for a slot) are read from the
//! service when scraped. Labels never carry workspace or principal names (the endpoint
//! is unauthenticated): only results and states.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::{RunResult, TaskResult, Telemetry};
use crate::service::Service;

/// Latency buckets in seconds: 50 µs to ~100 s, doubling (an attempt of a warm component
/// takes ~100 µs, a real task seconds).
const LATENCY_START: f64 = 50e-6;
const LATENCY_BUCKETS: u16 = 22;
/// Instantiation takes tens of µs (pooling allocator) to a few ms: 5 µs to ~40 ms.
const INSTANTIATE_START: f64 = 5e-6;
const INSTANTIATE_BUCKETS: u16 = 14;

type Labels = Vec<(&'static str, &'static str)>;

/// Every metric of one owner.
pub struct Metrics {
    registry: Registry,
    attempts: Family<Labels, Counter>,
    attempt_seconds: Histogram,
    runs_finished: Family<Labels, Counter>,
    runs: Family<Labels, Gauge>,
    slot_waiting: Gauge,
    instantiate_seconds: Histogram,
    slot_wait_seconds: Histogram,
    triggers: Family<Vec<(&'static str, String)>, Counter>,
    expectations: Family<Labels, Counter>,
    /// Serialises scrapes (gauges are set, then encoded).
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sluice");
        let attempts = Family::<Labels, Counter>::default();
        registry.register("task_attempts", "Task attempts ended, by result", attempts.clone());
        let attempt_seconds = Histogram::new(exponential_buckets(LATENCY_START, 2.0, LATENCY_BUCKETS));
        registry.register("attempt_duration_seconds", "Time attempts spent in the sandbox", attempt_seconds.clone());
        let runs_finished = Family::<Labels, Counter>::default();
        registry.register("runs_finished", "Runs ended, by result", runs_finished.clone());
        let runs = Family::<Labels, Gauge>::default();
        registry.register("runs", "Runs this process drives (running) or that wait their turn (queued)", runs.clone());
        let slot_waiting = Gauge::default();
        registry.register("slot_queue_depth", "Attempts waiting for a sandbox slot", slot_waiting.clone());
        let instantiate_seconds = Histogram::new(exponential_buckets(INSTANTIATE_START, 2.0, INSTANTIATE_BUCKETS));
        registry.register("sandbox_instantiate_seconds", "Time to instantiate a sandbox", instantiate_seconds.clone());
        let slot_wait_seconds = Histogram::new(exponential_buckets(LATENCY_START, 2.0, LATENCY_BUCKETS));
        registry.register("slot_wait_seconds", "Time attempts waited for a sandbox slot", slot_wait_seconds.clone());
        let triggers = Family::<Vec<(&'static str, String)>, Counter>::default();
        registry.register(
            "trigger_firings",
            "Trigger firings, by trigger kind and outcome (fired, missed, skipped)",
            triggers.clone(),
        );
        let expectations = Family::<Labels, Counter>::default();
        registry.register(
            "expectations",
            "Production expectations checked, by on_failure (warn, fail, block) and result (passed, failed)",
            expectations.clone(),
        );
        Metrics {
            triggers,
            expectations,
            registry,
            attempts,
            attempt_seconds,
            runs_finished,
            runs,
            slot_waiting,
            instantiate_seconds,
            slot_wait_seconds,
            scrape: Mutex::new(()),
        }
    }

    /// The text exposition, with the gauges read from `service` now.
    pub fn render(&self, service: &Service) -> String {
        let _one = self.scrape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (running, queued) = service.run_counts();
        self.runs.get_or_create(&vec![("state", "running")]).set(running as i64);
        self.runs.get_or_create(&vec![("state", "queued")]).set(queued as i64);
        self.slot_waiting.set(service.runtime().slots().waiting() as i64);
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Telemetry for Metrics {
    fn attempt_finished(&self, result: TaskResult, elapsed: Duration) {
        self.attempts.get_or_create(&vec![("result", result.as_str())]).inc();
        self.attempt_seconds.observe(elapsed.as_secs_f64());
    }

    fn run_finished(&self, result: RunResult) {
        self.runs_finished.get_or_create(&vec![("result", result.as_str())]).inc();
    }

    fn instantiated(&self, took: Duration) {
        self.instantiate_seconds.observe(took.as_secs_f64());
    }

    fn slot_granted(&self, _workspace: &str, waited: Duration) {
        self.slot_wait_seconds.observe(waited.as_secs_f64());
    }

    fn trigger_fired(&self, kind: &str) {
        self.triggers.get_or_create(&vec![("kind", kind.to_string()), ("outcome", "fired".into())]).inc();
    }

    fn trigger_missed(&self, kind: &str, count: u64) {
        self.triggers.get_or_create(&vec![("kind", kind.to_string()), ("outcome", "missed".into())]).inc_by(count);
    }

    fn expectation_checked(&self, on_failure: &str, success: bool) {
        let on_failure = match on_failure {
            "warn" => "warn",
            "block" => "block",
            _ => "fail",
        };
        let result = if success { "passed" } else { "failed" };
        self.expectations.get_or_create(&vec![("on_failure", on_failure), ("result", result)]).inc();
    }

    fn trigger_skipped(&self, kind: &str, count: u64) {
        self.triggers.get_or_create(&vec![("kind", kind.to_string()), ("outcome", "skipped".into())]).inc_by(count);
    }

    fn trigger_listing_failed(&self, kind: &str) {
        self.triggers.get_or_create(&vec![("kind", kind.to_string()), ("outcome", "listing_failed".into())]).inc();
    }
}
