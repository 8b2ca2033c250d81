//! `run_job` tasks across the bundle: each names another job, passes only parameters
//! that job declares, and no chain of jobs runs itself again.

use std::collections::{BTreeMap, BTreeSet};

use super::JobSpec;
use super::error::SpecError;
use super::names;
use super::read::{Entry, Node};

/// Where a `run_job` task was written.
pub(crate) struct RunJobSite<'a> {
    /// The key of the `run_job` task.
    pub task: String,
    /// The `run_job.job` value.
    pub job: Node<'a>,
    /// The `run_job.parameters` entries, in file order.
    pub parameters: Vec<Entry<'a>>,
}

impl RunJobSite<'_> {
    fn target(&self) -> &str {
        self.job.str().unwrap_or_default()
    }
}

/// Checks every `run_job` task; `sites` holds them by the job they belong to.
pub(crate) fn check(
    jobs: &BTreeMap<String, JobSpec>,
    sites: &BTreeMap<String, Vec<RunJobSite<'_>>>,
) -> Result<(), SpecError> {
    for (caller, calls) in sites {
        for site in calls {
            check_target(jobs, caller, site)?;
        }
    }
    let Some(cycle) = find_cycle(sites) else {
        return Ok(());
    };
    let mut chain: Vec<&str> = cycle.iter().map(|(job, _)| *job).collect();
    chain.push(chain[0]);
    Err(cycle[0].1.job.error(format!("job cycle: {} (each job runs the next with `run_job`)", chain.join(" -> "))))
}

fn check_target(jobs: &BTreeMap<String, JobSpec>, caller: &str, site: &RunJobSite<'_>) -> Result<(), SpecError> {
    let target = site.target();
    if target == caller {
        return Err(site
            .job
            .error(format!("task `{}` runs its own job `{caller}`; a job cannot run itself", site.task)));
    }
    let Some(job) = jobs.get(target) else {
        let hint = names::suggestion(target, jobs.keys().map(String::as_str));
        return Err(site.job.error(format!("unknown job `{target}`{hint}; jobs: {}", names::list(jobs.keys()))));
    };
    for entry in &site.parameters {
        if !job.parameters.contains_key(entry.key) {
            let hint = names::suggestion(entry.key, job.parameters.keys().map(String::as_str));
            return Err(entry.key_error(format!(
                "job `{target}` declares no parameter `{}`{hint}; its parameters: {}",
                entry.key,
                names::list(job.parameters.keys())
            )));
        }
    }
    Ok(())
}

/// A cycle of jobs each running the next, as (job, the `run_job` site it runs the next
/// one from), starting at its alphabetically first job; `None` when there is none.
fn find_cycle<'s, 'a>(sites: &'s BTreeMap<String, Vec<RunJobSite<'a>>>) -> Option<Vec<(&'s str, &'s RunJobSite<'a>)>> {
    let mut done = BTreeSet::new();
    for start in sites.keys() {
        let mut path = Vec::new();
        if let Some(mut cycle) = visit(start, sites, &mut done, &mut path) {
            let first = cycle.iter().enumerate().min_by_key(|(_, (job, _))| *job).map_or(0, |(at, _)| at);
            cycle.rotate_left(first);
            return Some(cycle);
        }
    }
    None
}

/// Depth-first walk from `job` along `run_job` sites; `path` holds the jobs being
/// walked with the site taken out of each. Returns the cycle when it comes back onto `path`.
fn visit<'s, 'a>(
    job: &'s str,
    sites: &'s BTreeMap<String, Vec<RunJobSite<'a>>>,
    done: &mut BTreeSet<&'s str>,
    path: &mut Vec<(&'s str, &'s RunJobSite<'a>)>,
) -> Option<Vec<(&'s str, &'s RunJobSite<'a>)>> {
    if let Some(at) = path.iter().position(|(seen, _)| *seen == job) {
        return Some(path[at..].to_vec());
    }
    if done.contains(job) {
        return None;
    }
    for site in sites.get(job).into_iter().flatten() {
        path.push((job, site));
        if let Some(cycle) = visit(site.target(), sites, done, path) {
            return Some(cycle);
        }
        path.pop();
    }
    done.insert(job);
    None
}
