//! Resolving parameters: job parameters (defaults, `--param` overrides,
//! run-level references) and a task's params (every `{{ … }}` reference filled
//! in just before the attempt starts). Reads upstream values from the store;
//! never writes.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{RunId, TaskResult};
use crate::spec::JobSpec;
use crate::spec::template::{self, Reference, TimePart};
use crate::state::RunState;
use crate::store::Store;

use super::SchedulerError;

/// What run-level references (`job.*` known when a run starts) resolve against.
#[derive(Debug, Clone, Copy)]
pub struct RunLevel<'a> {
    /// The bundle's name (`job.id` is `<bundle>.<job>`).
    pub bundle: &'a str,
    pub job: &'a JobSpec,
    pub run_id: RunId,
    pub started: SystemTime,
    /// The trigger firing that started the run, if one did.
    pub trigger: Option<&'a crate::model::TriggerContext>,
}

impl<'a> RunLevel<'a> {
    /// Run `run_id` of `plan`, started (logically) at `started`.
    pub fn of(plan: &'a crate::model::RunPlan, run_id: RunId, started: SystemTime) -> RunLevel<'a> {
        RunLevel { bundle: &plan.bundle, job: &plan.job, run_id, started, trigger: plan.trigger.as_ref() }
    }
}

/// Check `--param` overrides before anything is created: each names a parameter the job
/// declares (the error names the ones it does) and uses only references known when a
/// run starts.
pub fn check_overrides(job: &JobSpec, overrides: &BTreeMap<String, String>) -> Result<(), SchedulerError> {
    for (name, value) in overrides {
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
        let refs =
            template::references(value).map_err(|e| SchedulerError::Parameters(format!("--param {name}: {e}")))?;
        if let Some(bad) = refs.iter().find(|r| !r.is_run_level()) {
            return Err(SchedulerError::Parameters(format!(
                "--param {name}: `{{{{ {bad} }}}}` is not known when a run starts; a job parameter may reference \
                 job.run_id, job.name, job.id and job.start_time.*"
            )));
        }
    }
    Ok(())
}

/// The job's parameters for this run: defaults overridden by `overrides`,
/// run-level references filled in. An override of a parameter the job does
/// not declare is an error naming the ones it does.
pub fn resolve_job_parameters(
    at: RunLevel<'_>,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, SchedulerError> {
    check_overrides(at.job, overrides)?;
    let mut resolved = BTreeMap::new();
    for (name, default) in &at.job.parameters {
        let raw = overrides.get(name).unwrap_or(default);
        let value = template::render(raw, &mut |r| run_level(r, at))
            .map_err(|e| SchedulerError::Parameters(format!("job parameter `{name}`: {e}")))?;
        resolved.insert(name.clone(), value);
    }
    Ok(resolved)
}

/// `text` with its run-level references filled in.
pub(crate) fn render_run_level(at: RunLevel<'_>, text: &str) -> Result<String, SchedulerError> {
    template::render(text, &mut |r| run_level(r, at)).map_err(SchedulerError::Parameters)
}

fn run_level(r: &Reference, at: RunLevel<'_>) -> Option<String> {
    let stamp = || humantime::format_rfc3339_seconds(at.started).to_string();
    match r {
        Reference::JobRunId => Some(at.run_id.to_string()),
        Reference::JobName => Some(at.job.name.clone()),
        Reference::JobId if at.bundle.is_empty() => Some(at.job.name.clone()),
        Reference::JobId => Some(format!("{}.{}", at.bundle, at.job.name)),
        Reference::JobStartDate => Some(stamp()[..10].to_string()),
        Reference::JobStartDateTime => Some(stamp()),
        Reference::JobStartTime(part) => Some(time_part(at.started, *part)),
        Reference::TriggerTime => Some(match at.trigger {
            Some(t) => humantime::format_rfc3339_millis(crate::model::time_of(t.time)).to_string(),
            None => stamp(),
        }),
        Reference::TriggerFiles => {
            Some(at.trigger.map_or_else(|| "[]".into(), |t| serde_json::to_string(&t.files).unwrap_or_default()))
        }
        Reference::TriggerTables => {
            Some(at.trigger.map_or_else(|| "[]".into(), |t| serde_json::to_string(&t.tables).unwrap_or_default()))
        }
        Reference::TriggerPayload => Some(match at.trigger.and_then(|t| t.payload.as_ref()) {
            Some(p) => p.to_string(),
            None => "{}".into(),
        }),
        Reference::TriggerPayloadField(path) => json_field(at.trigger?.payload.clone()?, path),
        _ => None,
    }
}

/// One part of `time`, in UTC, as a plain number (`7`, not `07`; Databricks' form).
fn time_part(time: SystemTime, part: TimePart) -> String {
    let millis = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    if part == TimePart::TimestampMs {
        return millis.to_string();
    }
    // RFC 3339 in UTC: YYYY-MM-DDTHH:MM:SSZ
    let stamp = humantime::format_rfc3339_seconds(time).to_string();
    let field = |from: usize, to: usize| stamp.get(from..to).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    let value = match part {
        TimePart::Year => field(0, 4),
        TimePart::Month => field(5, 7),
        TimePart::Day => field(8, 10),
        TimePart::Hour => field(11, 13),
        TimePart::Minute => field(14, 16),
        TimePart::Second => field(17, 19),
        TimePart::TimestampMs => 0,
    };
    value.to_string()
}

/// What references in a task's text resolve against.
pub(crate) struct Scope<'a> {
    pub run: RunLevel<'a>,
    /// The run so far: parameters in force, repairs, upstream results.
    pub state: &'a RunState,
    pub attempt: u32,
    pub task: &'a str,
    /// A for_each iteration's input.
    pub input: Option<&'a str>,
    pub store: &'a dyn Store,
}

/// What one reference of a task's text resolves to (`None`: it cannot be resolved).
fn resolve(r: &Reference, scope: &Scope<'_>) -> Option<String> {
    let run_id = scope.run.run_id;
    match r {
        Reference::JobParameter(p) => scope.state.parameters().get(p).cloned(),
        Reference::JobRepairCount => Some(scope.state.view().repairs.len().to_string()),
        Reference::TaskAttempt => Some(scope.attempt.to_string()),
        Reference::TaskKey => Some(scope.task.to_string()),
        Reference::Input => scope.input.map(str::to_string),
        Reference::InputField(path) => input_field(scope.input?, path),
        Reference::TaskValue { task: up, name } => {
            scope.store.value(run_id, up, name).ok().flatten().map(|json| unquote(&json))
        }
        Reference::TaskResultState { task } => {
            let t = scope.state.task(scope.state.id_of(task)?);
            t.result.map(|r| r.as_str().to_string())
        }
        Reference::TaskOutput { task } => {
            let t = scope.state.task(scope.state.id_of(task)?);
            let attempt = t.attempts.last().filter(|_| t.result == Some(TaskResult::Success))?;
            attempt.output.as_deref().map(unquote)
        }
        Reference::TaskErrorCode { task } => {
            let t = scope.state.task(scope.state.id_of(task)?);
            Some(match t.result? {
                TaskResult::Success | TaskResult::Excluded => String::new(),
                other => t.attempts.last().and_then(|a| a.error_code.clone()).unwrap_or_else(|| other.as_str().into()),
            })
        }
        other => run_level(other, scope.run),
    }
}

/// Field `path` (`a` or `a.b`) of a for_each element that is a JSON object: strings
/// without their quotes, anything else as JSON text.
fn input_field(input: &str, path: &str) -> Option<String> {
    json_field(serde_json::from_str(input).ok()?, path)
}

/// Field `path` of a JSON object: strings without their quotes, anything else as JSON text.
fn json_field(mut value: serde_json::Value, path: &str) -> Option<String> {
    for field in path.split('.') {
        value = value.as_object_mut()?.remove(field)?;
    }
    Some(match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
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
            cleanup_timeout: None,
            max_parallel_tasks: None,
            max_concurrent_runs: crate::spec::DEFAULT_MAX_CONCURRENT_RUNS,
            queue: true,
            limits: Default::default(),
            tasks: vec![],
            permissions: vec![],
            trigger: None,
            notify: Default::default(),
        }
    }

    #[test]
    fn overrides_replace_defaults_and_unknown_ones_are_refused() {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_115_200); // 2025-11-26
        let j = job(&[("day", "{{job.start_time.iso_date}}"), ("who", "world")]);
        let at = RunLevel { bundle: "b", job: &j, run_id: 7, started: start, trigger: None };
        let p = resolve_job_parameters(at, &BTreeMap::from([("who".into(), "you".into())])).unwrap();
        assert_eq!(p["day"], "2025-11-26");
        assert_eq!(p["who"], "you");
        let err = resolve_job_parameters(at, &BTreeMap::from([("nope".into(), "1".into())])).unwrap_err().to_string();
        assert!(err.contains("no parameter `nope`") && err.contains("`day`"), "{err}");
        let err = check_overrides(&j, &BTreeMap::from([("who".into(), "{{ task.key }}".into())])).unwrap_err();
        assert!(err.to_string().contains("not known when a run starts"), "{err}");
    }

    #[test]
    fn run_level_references_name_the_job_and_each_part_of_its_start() {
        // 2025-11-26T07:05:09.250Z
        let start = UNIX_EPOCH + Duration::from_millis(1_764_140_709_250);
        let j = job(&[]);
        let at = RunLevel { bundle: "lake", job: &j, run_id: 7, started: start, trigger: None };
        let text = "{{job.id}} {{job.start_time.year}}-{{job.start_time.month}}-{{job.start_time.day}} \
                    {{job.start_time.hour}}:{{job.start_time.minute}}:{{job.start_time.second}} \
                    {{job.start_time.timestamp_ms}}";
        assert_eq!(render_run_level(at, text).unwrap(), "lake.nightly 2025-11-26 7:5:9 1764140709250");
    }

    #[test]
    fn input_fields_are_read_from_object_elements() {
        let input = r#"{"name": "orders", "size": 3, "at": {"day": "mon"}}"#;
        assert_eq!(input_field(input, "name").as_deref(), Some("orders"));
        assert_eq!(input_field(input, "size").as_deref(), Some("3"));
        assert_eq!(input_field(input, "at.day").as_deref(), Some("mon"));
        assert_eq!(input_field(input, "nope"), None);
        assert_eq!(input_field("\"plain\"", "name"), None);
    }

    #[test]
    fn string_values_substitute_without_quotes() {
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("3"), "3");
        assert_eq!(unquote("{\"a\":1}"), "{\"a\":1}");
    }
}
