//! `sluice test`: run the bundle's `[[tests]]` (library: [`crate::testing`]), print the
//! results (stdout; progress on stderr), write JUnit XML, record the verdict.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use super::out::{errln, outln};
use super::{EXIT_RUN_FAILED, open};
use crate::model::Clock as _;
use crate::store::{SledVerdictStore, StoreError};
use crate::testing::{self, SuiteOptions, SuiteReport, TestReport, TestStatus};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Bundle directory (holding sluice.toml) or the bundle file itself.
    #[arg(default_value = ".")]
    pub bundle: PathBuf,
    /// Only the tests whose name contains this (no verdict is recorded then).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Print the report as JSON (and nothing else on stdout).
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Rewrite golden files from the current outputs, showing what changed (no verdict is recorded).
    #[arg(long)]
    pub update_golden: bool,
    /// Tests run at once (default: the number of cores).
    #[arg(long, value_parser = super::run::parse_max_parallel)]
    pub parallel: Option<usize>,
    /// Replay recorded run N of this state directory as a regression test: its parameters,
    /// upstream values and files and mounted data (by content), against the current bundle.
    #[arg(long, value_name = "N", conflicts_with_all = ["filter", "update_golden"])]
    pub from_run: Option<u64>,
    /// With --from-run: run only task T, every other task stubbed with what the run recorded.
    #[arg(long, value_name = "T", requires = "from_run")]
    pub task: Option<String>,
    /// With --from-run: the job the run must be of.
    #[arg(long, value_name = "J", requires = "from_run")]
    pub job: Option<String>,
    /// With --from-run: also save the replay as a test, DIR/NAME.toml plus its fixtures
    /// under DIR/NAME/ (DIR inside the bundle; `include` it to run it with `sluice test`).
    #[arg(long, value_name = "DIR", requires = "from_run")]
    pub save: Option<PathBuf>,
    /// With --from-run: test-only secret values (`[scope] key = "value"`) for replayed tasks
    /// that read secrets (production values are never copied).
    #[arg(long, value_name = "FILE", requires = "from_run")]
    pub secrets_file: Option<PathBuf>,
}

pub fn test(state_arg: Option<PathBuf>, args: TestArgs) -> anyhow::Result<ExitCode> {
    let bundle = crate::spec::load(&args.bundle)?;
    if args.from_run.is_some() {
        return super::replay::replay(state_arg, &args, &bundle);
    }
    if bundle.tests.is_empty() {
        anyhow::bail!("{}: the bundle has no [[tests]]", bundle.file.display());
    }
    let dir = open::state_dir(state_arg, &bundle.root);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating the state directory {}", dir.display()))?;
    let options = suite_options(&args, &dir);
    let report = open::tokio_runtime()?.block_on(testing::run_suite(&bundle, &options))?;
    if let Some(file) = &args.junit {
        write_atomically(file, &testing::junit::render(&report))?;
    }
    let verdicts = if args.filter.is_none() && !args.update_golden { record(&dir, &report) } else { Vec::new() };
    if args.json {
        let value = serde_json::json!({ "report": report, "verdicts": verdicts });
        outln!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print(&report, &verdicts);
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_RUN_FAILED) })
}

/// The suite options the arguments ask for; progress on stderr unless `--json`.
pub(super) fn suite_options(args: &TestArgs, dir: &std::path::Path) -> SuiteOptions {
    let quiet = args.json;
    let on_test: Arc<dyn Fn(&TestReport) + Send + Sync> = Arc::new(move |t: &TestReport| {
        if !quiet {
            let mark = if t.status == TestStatus::Passed { "ok  " } else { "FAIL" };
            errln!("{mark} {} ({} ms)", t.name, t.elapsed_ms);
        }
    });
    SuiteOptions {
        filter: args.filter.clone(),
        update_golden: args.update_golden,
        parallel: args.parallel.unwrap_or(0),
        // the user's compiled-component cache, as every other command uses
        components_dir: Some(
            crate::sandbox::artifacts::user_cache_dir().unwrap_or_else(|| dir.join(crate::scheduler::COMPONENTS_DIR)),
        ),
        on_test: Some(on_test),
    }
}

/// Records the verdicts in the state directory's store; a store another process owns is
/// said on stderr (the results stand) rather than failing the command.
fn record(dir: &std::path::Path, report: &SuiteReport) -> Vec<crate::store::Verdict> {
    let recorded = (|| -> Result<_, anyhow::Error> {
        let sled = crate::scheduler::open_store(dir)?;
        let store = SledVerdictStore::open(&sled)?;
        let by = open::principal().unwrap_or_else(|| crate::service::ANONYMOUS.into());
        let now = crate::model::SystemClock.now_millis();
        Ok(testing::record_verdicts(&store, report, &by, now)?)
    })();
    match recorded {
        Ok(verdicts) => verdicts,
        Err(e) => {
            let owned = e.downcast_ref::<StoreError>().is_some_and(|s| matches!(s, StoreError::Locked { .. }));
            let why =
                if owned { "another sluice process owns the state directory".to_string() } else { format!("{e:#}") };
            errln!("warning: the verdict was not recorded in {}: {why}", dir.display());
            Vec::new()
        }
    }
}

pub(super) fn print(report: &SuiteReport, verdicts: &[crate::store::Verdict]) {
    for test in &report.tests {
        for update in &test.golden_updates {
            if update.diff.is_empty() {
                outln!("golden {} (task `{}`): unchanged", update.path, update.task);
            } else {
                outln!("golden {} (task `{}`) rewritten:\n{}", update.path, update.task, indent(&update.diff));
            }
        }
        if test.status == TestStatus::Passed {
            continue;
        }
        outln!("FAIL {} ({}:{})", test.name, report.file, test.line);
        for failure in &test.failures {
            outln!("  {}:{}: {}", report.file, failure.line, failure.message);
            if let Some(diff) = &failure.diff {
                outln!("{}", indent(diff));
            }
        }
    }
    let passed = report.tests.len() - report.failed();
    outln!(
        "{passed} passed, {} failed in {:.2}s (bundle {} {})",
        report.failed(),
        report.elapsed_ms as f64 / 1000.0,
        report.bundle,
        &report.bundle_hash[..12]
    );
    for v in verdicts {
        let said = if v.passed { "passed" } else { "failed" };
        outln!("verdict for target `{}`: {said} (recorded against {})", v.target, &v.bundle_hash[..12]);
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// Writes `file` whole or not at all (a temporary beside it, then renamed).
pub(super) fn write_atomically(file: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let tmp = file.with_extension("xml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))
}
