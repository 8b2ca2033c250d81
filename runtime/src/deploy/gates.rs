//! The gates a promotion passes: `require_tests` (a passing `sluice test` verdict on
//! exactly the promoted deployment's content hash, or a recorded success of every job of it) and `require_approval = N` (N approvals of
//! that deployment by principals other than its deployer, each holding CAN_MANAGE when it
//! approved). A refused gate says exactly what is missing.
//!
//! It must never write anything.

use std::collections::BTreeSet;

use super::jobs::deployed_job_key;
use super::model::{Action, Deployment, JournalEntry};
use super::{DeployError, rules};
use crate::model::{Event, RunResult};
use crate::scheduler::Runtime;

/// How many of the newest runs the tests gate reads: a deployment promoted after more
/// runs than this must be run again (a bound, so a promotion never folds a whole history).
pub const MAX_RUNS_SCANNED: usize = 10_000;

/// Refuse the promotion of `source` to `to` unless its gates pass.
pub fn check(rt: &Runtime, source: &Deployment, to: &str, journal: &[JournalEntry]) -> Result<(), DeployError> {
    let spec = rules::target(&source.snapshot.spec, to);
    let mut missing = Vec::new();
    if spec.require_tests {
        missing.extend(tests_gate(rt, source)?);
    }
    let needed = spec.require_approval as usize;
    if needed > 0 {
        let approvers = approvers(source, journal);
        if approvers.len() < needed {
            missing.push(format!(
                "require_approval = {needed}: {} approval{} of {}/{} so far{} (`sluice approve {}/{}` by a principal \
                 with CAN_MANAGE other than its deployer {})",
                approvers.len(),
                if approvers.len() == 1 { "" } else { "s" },
                source.snapshot.target,
                source.number,
                if approvers.is_empty() {
                    String::new()
                } else {
                    format!(" (by {})", approvers.iter().cloned().collect::<Vec<_>>().join(", "))
                },
                source.snapshot.target,
                source.number,
                source.principal
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DeployError::Refused(format!(
            "promotion of {}/{} to `{to}` refused: {}",
            source.snapshot.target,
            source.number,
            missing.join("; ")
        )))
    }
}

/// What the `require_tests` gate lacks, if anything: a passing `sluice test` recorded on
/// exactly the deployment's content hash (and no failing one), else a successful run of
/// every job of the deployment on its content.
fn tests_gate(rt: &Runtime, source: &Deployment) -> Result<Option<String>, DeployError> {
    let hash = &source.snapshot.bundle_hash;
    let mut passed = Vec::new();
    for target in source.snapshot.spec.targets.keys() {
        match rt.verdicts().verdict(hash, target)? {
            Some(v) if !v.passed => {
                return Ok(Some(format!(
                    "require_tests: `sluice test` failed on bundle {} for target `{target}` ({} of {} failed: {})",
                    &hash[..12],
                    v.failed.len(),
                    v.tests,
                    v.failed.join(", ")
                )));
            }
            Some(_) => passed.push(target),
            None => {}
        }
    }
    if !passed.is_empty() {
        return Ok(None);
    }
    let jobs = tests_missing(rt, source)?;
    if jobs.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "require_tests: no passing `sluice test` recorded on bundle {} (run `sluice test` on exactly these files) nor \
         a successful run of {} on it in target `{}` (`sluice run --deployment {}/JOB`)",
        &hash[..12],
        jobs.iter().map(|j| format!("`{j}`")).collect::<Vec<_>>().join(", "),
        source.snapshot.target,
        source.snapshot.target
    )))
}

/// Who approved deployment `d` (the journal of its target).
pub fn approvers(d: &Deployment, journal: &[JournalEntry]) -> BTreeSet<String> {
    journal
        .iter()
        .filter(|e| e.action == Action::Approve && e.to == Some(d.number) && e.principal != d.principal)
        .map(|e| e.principal.clone())
        .collect()
}

/// The jobs of `d` with no recorded success on its content: a finished successful run of
/// the deployed job whose pinned components are the deployment's.
pub fn tests_missing(rt: &Runtime, d: &Deployment) -> Result<Vec<String>, DeployError> {
    let summaries = rt.store().list_summaries(MAX_RUNS_SCANNED)?;
    let mut missing = Vec::new();
    for job in d.snapshot.spec.jobs.keys() {
        let key = deployed_job_key(&d.workspace, &d.snapshot.bundle, &d.snapshot.target, job);
        let id = rt.services().job_id(&key)?;
        let passed = summaries
            .iter()
            .filter(|s| s.job_id == Some(id) && s.result == Some(RunResult::Success))
            .any(|s| ran_this_content(rt, s.run_id, d, job));
        if !passed {
            missing.push(job.clone());
        }
    }
    Ok(missing)
}

fn ran_this_content(rt: &Runtime, run: u64, d: &Deployment, job: &str) -> bool {
    let Ok(events) = rt.store().events_from(run, 0) else { return false };
    let Some(Event::RunCreated { plan: Some(plan), .. }) = events.into_iter().next() else { return false };
    plan.job.tasks == d.snapshot.spec.jobs.get(job).map(|j| j.tasks.clone()).unwrap_or_default()
        && plan.components.iter().all(|(name, pin)| d.snapshot.components.get(name) == Some(&pin.hash))
}
