//! Resolving parameters: job parameters (defaults, `--param` overrides,
//! run-level references) and a task's params (every `{{ … }}` reference filled
//! in just before the attempt starts). Reads upstream values from the store;
//! never writes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::model::RunId;
use crate::spec::JobSpec;
use crate::spec::template::{self, Reference};
use crate::store::Store;

use super::SchedulerError;

/// The job's parameters for this run: defaults overridden by `overrides`,
/// run-level references filled in. An override of a parameter the job does
/// not declare is an error naming the ones it does.
pub fn resolve_job_parameters(
    job: &JobSpec,
    overrides: &BTreeMap<String, String>,
    run_id: RunId,
    started: SystemTime,
) -> Result<BTreeMap<String, String>, SchedulerError> {
    for name in overrides.keys() {
        if !job.parameters.contains_key(name) {
            let known: Vec<&str> = job.parameters.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "it declares none".to_string()
            } else {
                format!("it declares {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
            };
            return Err(SchedulerError::Parameters(format!(
                "--param {name}: job `{}` has no parameter `{name}` ({hint})",
                job.name
            )));
        }
    }
    let mut resolved = BTreeMap::new();
    for (name, default) in &job.parameters {
        let raw = overrides.get(name).unwrap_or(default);
        let value = template::render(raw, &mut |r| run_level(r, job, run_id, started))
            .map_err(|e| SchedulerError::Parameters(format!("job parameter `{name}`: {e}")))?;
        resolved.insert(name.clone(), value);
    }
    Ok(resolved)
}

fn run_level(r: &Reference, job: &JobSpec, run_id: RunId, started: SystemTime) -> Option<String> {
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    match r {
        Reference::JobRunId => Some(run_id.to_string()),
        Reference::JobName => Some(job.name.clone()),
        Reference::JobStartDate => Some(stamp[..10].to_string()),
        Reference::JobStartDateTime => Some(stamp),
        _ => None,
    }
}

/// What references in a task's text resolve against.
pub(crate) struct Scope<'a> {
    pub job: &'a JobSpec,
    pub parameters: &'a BTreeMap<String, String>,
    pub run_id: RunId,
    pub started: SystemTime,
    pub attempt: u32,
    pub task: &'a str,
    /// A for_each iteration's input.
    pub input: Option<&'a str>,
    pub store: &'a dyn Store,
}

/// What one reference of a task's text resolves to (`None`: it cannot be resolved).
fn resolve(r: &Reference, scope: &Scope<'_>) -> Option<String> {
    match r {
        Reference::JobParameter(p) => scope.parameters.get(p).cloned(),
        Reference::TaskAttempt => Some(scope.attempt.to_string()),
        Reference::TaskKey => Some(scope.task.to_string()),
        Reference::Input => scope.input.map(str::to_string),
        Reference::TaskValue { task: up, name } => {
            scope.store.value(scope.run_id, up, name).ok().flatten().map(|json| unquote(&json))
        }
        other => run_level(other, scope.job, scope.run_id, scope.started),
    }
}

/// Fill in every reference of `text`. An upstream value that was never set
/// fails, naming it.
pub(crate) fn render(text: &str, scope: &Scope<'_>) -> Result<String, String> {
    let mut lookup = |r: &Reference| resolve(r, scope);
    template::render(text, &mut lookup)
}

/// Like [`render`], keeping secret references as parts for the sandbox to
/// reveal (a command task's `env`: the only place they are allowed).
pub(crate) fn render_parts(text: &str, scope: &Scope<'_>) -> Result<Vec<template::Part>, String> {
    let mut lookup = |r: &Reference| resolve(r, scope);
    template::render_parts(text, &mut lookup)
}

/// A task's params with every reference resolved.
pub(crate) fn render_all(
    params: &BTreeMap<String, String>,
    scope: &Scope<'_>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (name, raw) in params {
        let value = render(raw, scope).map_err(|e| format!("param `{name}`: {e} (was the value set by its task?)"))?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// A JSON string value is substituted without its quotes; anything else as JSON text.
fn unquote(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::String(s)) => s,
        _ => json.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn job(params: &[(&str, &str)]) -> JobSpec {
        JobSpec {
            name: "nightly".into(),
            parameters: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            timeout: None,
            max_parallel_tasks: None,
            max_concurrent_runs: crate::spec::DEFAULT_MAX_CONCURRENT_RUNS,
            queue: true,
            limits: Default::default(),
            tasks: vec![],
        }
    }

    #[test]
    fn overrides_replace_defaults_and_unknown_ones_are_refused() {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_115_200); // 2025-11-26
        let j = job(&[("day", "{{job.start_time.iso_date}}"), ("who", "world")]);
        let p = resolve_job_parameters(&j, &BTreeMap::from([("who".into(), "you".into())]), 7, start).unwrap();
        assert_eq!(p["day"], "2025-11-26");
        assert_eq!(p["who"], "you");
        let err = resolve_job_parameters(&j, &BTreeMap::from([("nope".into(), "1".into())]), 7, start)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no parameter `nope`") && err.contains("`day`"), "{err}");
    }

    #[test]
    fn string_values_substitute_without_quotes() {
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("3"), "3");
        assert_eq!(unquote("{\"a\":1}"), "{\"a\":1}");
    }
}
