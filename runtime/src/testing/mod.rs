//! `sluice test`: running a bundle's `[[tests]]`, each in its own isolated state, and
//! recording the verdict against the bundle's content hash.
//!
//! Owns the test runner ([`run_suite`]): per test a temporary state directory with its own
//! sled store, blob store and vault (test-only secrets are sealed there and nowhere else),
//! the job run in this process on a runtime sharing one sandbox (so one compiled-component
//! cache) and one set of sandbox slots with every other test; fixtures applied (mounts
//! replaced, stubbed tasks answered by a [`stub`] executor instead of a sandbox);
//! assertions evaluated ([`check`]); `/out` compared with golden files or rewritten
//! ([`golden`], with text and JSON-aware diffs from [`diff`]); reports as JUnit XML
//! ([`junit`]); and verdicts ([`verdict`]: [`bundle_hash`], [`verdict_for`], which the
//! promotion gate calls); [`replay`] makes a recorded run's inputs a test
//! (`sluice test --from-run`).
//!
//! It must never print (progress goes to the caller's callback), never touch a state
//! directory but the tests' own temporary ones and the verdict store it is handed (a
//! replay only reads the recorded run's store and blobs it is handed), and never store a
//! test secret outside the test's own state.

pub mod check;
pub mod diff;
pub mod golden;
mod isolate;
pub mod junit;
pub mod replay;
pub mod stub;
pub mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::model::RunId;
use crate::sandbox::{Sandbox, SandboxConfig, SandboxError};
use crate::spec::suite::TestSpec;
use crate::spec::{Bundle, SpecError};
use crate::store::StoreError;

// the expectations `sluice test` asserts are the production ones
pub use crate::quality::{dataset, expect};
pub use verdict::{bundle_hash, record_verdicts, verdict_for};

/// Who a test run is started by: the principal its secrets are sealed for.
pub const TEST_PRINCIPAL: &str = "sluice-test";

/// Why tests could not be run (bad input or an error: not a test failing).
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// A file or directory the tests need could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A golden file that does not parse as its kind (JSON).
    #[error("{path}: malformed golden file: {message}")]
    Golden { path: String, message: String },
    /// A test's secrets file is not `[scope] key = "value"` TOML, or a secret was refused.
    #[error("{path}: {message}")]
    Secrets { path: String, message: String },
    /// The run of a test could not be started or driven.
    #[error("{file}:{line}: test `{test}`: {message}")]
    Run { file: String, line: usize, test: String, message: String },
    /// An expectation that cannot be evaluated: a dataset it cannot read, a column it lacks.
    #[error("{file}:{line}: test `{test}`: {message}")]
    Expectation { file: String, line: usize, test: String, message: String },
    /// `--from-run`: the run cannot be replayed (unknown, of another job or bundle, its
    /// files garbage-collected, its mounts changed, a secret needed).
    #[error("replay: {0}")]
    Replay(String),
    /// `--filter TEXT` matched nothing.
    #[error("no test matches `{0}`")]
    NoMatch(String),
}

impl TestingError {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> TestingError {
        TestingError::Io { path: path.display().to_string(), message: e.to_string() }
    }
}

/// Told about each test as it ends.
pub type OnTest = Arc<dyn Fn(&TestReport) + Send + Sync>;

/// How to run a suite.
#[derive(Clone, Default)]
pub struct SuiteOptions {
    /// Only tests whose name contains this.
    pub filter: Option<String>,
    /// Rewrite golden files from the current outputs (the diff is still reported).
    pub update_golden: bool,
    /// Tests at once; 0: the number of cores.
    pub parallel: usize,
    /// Where compiled components are kept between invocations (shared by every test).
    pub components_dir: Option<PathBuf>,
    /// Told about each test as it ends (progress).
    pub on_test: Option<OnTest>,
}

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    Passed,
    Failed,
}

/// One assertion or golden comparison that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The bundle line of the assertion (or of the test, for golden files).
    pub line: usize,
    pub message: String,
    /// A readable diff, when one helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// A golden file or directory rewritten by `--update-golden`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenUpdate {
    pub task: String,
    pub path: String,
    /// What changed (empty when the golden was already equal).
    pub diff: String,
}

/// What one test did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestReport {
    pub name: String,
    pub line: usize,
    pub job: String,
    pub target: String,
    pub status: TestStatus,
    pub failures: Vec<Failure>,
    /// The run's id in the test's own (now deleted) state, and its result.
    pub run_id: RunId,
    pub run_result: Option<String>,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub golden_updates: Vec<GoldenUpdate>,
}

/// What a suite did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteReport {
    pub bundle: String,
    pub file: String,
    pub bundle_hash: String,
    pub tests: Vec<TestReport>,
    /// When the suite started (ms since the epoch) and on which host (JUnit's `timestamp`, `hostname`).
    pub started_at: u64,
    pub host: String,
    pub elapsed_ms: u64,
}

impl SuiteReport {
    pub fn passed(&self) -> bool {
        self.tests.iter().all(|t| t.status == TestStatus::Passed)
    }

    pub fn failed(&self) -> usize {
        self.tests.iter().filter(|t| t.status == TestStatus::Failed).count()
    }
}

/// The target a test runs against: its own, else `test` when the bundle declares it,
/// else the bundle's default.
pub fn target_of(bundle: &Bundle, test: &TestSpec) -> Result<String, SpecError> {
    match &test.target {
        Some(target) => bundle.target(Some(target)),
        None if bundle.targets.contains_key("test") => Ok("test".into()),
        None => bundle.target(None),
    }
}

/// Runs the bundle's tests (those matching `options.filter`), in parallel up to the cores,
/// each in its own temporary state; returns every report in the bundle's order.
pub async fn run_suite(bundle: &Bundle, options: &SuiteOptions) -> Result<SuiteReport, TestingError> {
    let hash = bundle_hash(bundle)?;
    let tests: Vec<TestSpec> =
        bundle.tests.iter().filter(|t| options.filter.as_deref().is_none_or(|f| t.name.contains(f))).cloned().collect();
    if let Some(filter) = &options.filter
        && tests.is_empty()
    {
        return Err(TestingError::NoMatch(filter.clone()));
    }
    run_tests(bundle, tests, options, hash).await
}

/// Runs `tests` of `bundle` (whose content hash is `hash`) as [`run_suite`] does.
pub async fn run_tests(
    bundle: &Bundle,
    tests: Vec<TestSpec>,
    options: &SuiteOptions,
    hash: String,
) -> Result<SuiteReport, TestingError> {
    let (started, started_at) = (Instant::now(), std::time::SystemTime::now());
    for test in &tests {
        target_of(bundle, test)?;
    }
    let parallel = match options.parallel {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let sandbox = Arc::new(Sandbox::new(SandboxConfig { cache_dir: options.components_dir.clone() })?);
    let shared = isolate::Shared::new(sandbox);
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel));
    let bundle = Arc::new(bundle.clone());
    let mut running = Vec::new();
    for test in tests {
        let (shared, gate, bundle, options) = (shared.clone(), gate.clone(), bundle.clone(), options.clone());
        running.push(tokio::spawn(async move {
            let _permit = gate
                .acquire_owned()
                .await
                .map_err(|e| TestingError::Io { path: test.name.clone(), message: e.to_string() })?;
            let report = isolate::run_test(&shared, &bundle, &test, options.update_golden).await?;
            if let Some(tell) = &options.on_test {
                tell(&report);
            }
            Ok::<_, TestingError>(report)
        }));
    }
    let mut reports = Vec::new();
    for handle in running {
        let report = handle.await.map_err(|e| TestingError::Io { path: "test".into(), message: e.to_string() })??;
        reports.push(report);
    }
    Ok(SuiteReport {
        bundle: bundle.name.clone(),
        file: bundle.file.display().to_string(),
        bundle_hash: hash,
        tests: reports,
        started_at: started_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "localhost".into(), |h| h.trim().to_string()),
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
