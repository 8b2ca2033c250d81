//! Jobs and their tasks: the fields every kind shares, limits, secrets, params, mounts
//! and allow_hosts. What a task does is read in [`super::kinds`].

use std::collections::BTreeMap;

use super::build::{check_key_name, checked_name};
use super::calls::RunJobSite;
use super::command::COMMAND_KEYS;
use super::depends::{self, DependencySite};
use super::error::SpecError;
use super::exec::{self, EXEC_KEYS};
use super::graph;
use super::kinds::{self, TaskKind};
use super::mounts::Roots;
use super::names;
use super::read::{Node, Table};
use super::refs::{self, Scope, Templated};
use super::retries::retries;
use super::template;
use super::{ComponentSpec, DEFAULT_MAX_CONCURRENT_RUNS, JobSpec, MAX_MAX_CONCURRENT_RUNS, TaskSpec};

pub(crate) const JOB_KEYS: &[&str] = &[
    "parameters",
    "timeout",
    "cleanup_timeout",
    "max_parallel_tasks",
    "max_concurrent_runs",
    "queue",
    "limits",
    "tasks",
    "permissions",
    "schedule",
    "trigger",
    "continuous",
    "notifications",
    "health",
    "notification_settings",
];
pub(crate) const TASK_KEYS: &[&str] = &[
    "key",
    "kind",
    "component",
    "condition",
    "for_each",
    "run_job",
    "depends_on",
    "run_if",
    "params",
    "timeout",
    "limits",
    "retries",
    "secrets",
    "mounts",
    "allow_hosts",
    "cache",
    "worker",
    "args",
    "env",
    "stdin",
    "stdin_file",
    "stdin_from",
    "stdout",
    "success_exit_codes",
    "script",
    "rerun_on_resume",
    "notifications",
    "health",
    "notification_settings",
    "expectations",
    "datasets",
    "register_model",
    "models",
];
/// Besides [`EXEC_KEYS`]: the task keys only some kinds take.
pub(crate) const SCHEDULE_KEYS: [&str; 3] = ["timeout", "retries", "rerun_on_resume"];

/// Where a task's parts are in the file, kept for checks that need the whole job.
pub(crate) struct TaskSite<'a> {
    /// The `key = "…"` value.
    pub key: Node<'a>,
    /// Each `depends_on` entry, in the order listed (parallel to `TaskSpec::depends_on`).
    pub depends_on: Vec<DependencySite<'a>>,
    /// Every value that may hold `{{ … }}` references, in file order.
    pub templates: Vec<Templated<'a>>,
    /// For a `run_job` task, where it names its job and parameters.
    pub run_job: Option<RunJobSite<'a>>,
}

/// Reads and validates one job, returning its tasks in topological order and its
/// `run_job` tasks for the bundle-wide checks.
pub(crate) fn job<'a>(
    name: &str,
    node: &Node<'a>,
    components: &BTreeMap<String, ComponentSpec>,
    roots: &Roots,
) -> Result<(JobSpec, Vec<RunJobSite<'a>>), SpecError> {
    let table = node.table()?;
    table.deny_unknown(JOB_KEYS)?;
    let parameters = match table.get("parameters") {
        Some(node) => job_parameters(node)?,
        None => BTreeMap::new(),
    };
    let timeout = table.get("timeout").map(Node::duration).transpose()?;
    let cleanup_timeout = table.get("cleanup_timeout").map(Node::duration).transpose()?;
    let job_limits = table.get("limits").map(exec::limits).transpose()?.unwrap_or_default();
    let max_parallel_tasks = table.get("max_parallel_tasks").map(max_parallel_tasks).transpose()?;
    let max_concurrent_runs =
        table.get("max_concurrent_runs").map(max_concurrent_runs).transpose()?.unwrap_or(DEFAULT_MAX_CONCURRENT_RUNS);
    let queue = table.get("queue").map(Node::bool).transpose()?.unwrap_or(true);
    let permissions = table.get("permissions").map(super::access::permissions).transpose()?.unwrap_or_default();
    let trigger = super::triggers::read(&table)?;

    let task_nodes = task_nodes(name, &table)?;
    let mut tasks = Vec::with_capacity(task_nodes.len());
    let mut sites = Vec::with_capacity(task_nodes.len());
    for task_node in &task_nodes {
        let (spec, site) = task(task_node, components, roots)?;
        tasks.push(spec);
        sites.push(site);
    }
    let graph = graph::check(name, &tasks, &sites)?;
    super::expect::check_blocks(&tasks, &sites.iter().map(|s| &s.key).collect::<Vec<_>>())?;
    let scope = Scope { job: name, parameters: &parameters, graph: &graph, tasks: &tasks };
    for (task, site) in tasks.iter().zip(&sites) {
        refs::check_task(&scope, task, &site.templates)?;
    }
    let run_jobs = sites.into_iter().filter_map(|site| site.run_job).collect();
    let job = JobSpec {
        name: name.to_string(),
        parameters,
        timeout,
        cleanup_timeout,
        max_parallel_tasks,
        max_concurrent_runs,
        queue,
        limits: job_limits,
        tasks: in_order(tasks, &graph.order),
        permissions,
        trigger,
        notify: Default::default(),
    };
    Ok((job, run_jobs))
}

fn max_parallel_tasks(node: &Node<'_>) -> Result<u32, SpecError> {
    let value = node.integer()?;
    u32::try_from(value).ok().filter(|&n| n >= 1).ok_or_else(|| {
        node.error(format!("max_parallel_tasks must be a whole number from 1 to {}, found {value}", u32::MAX))
    })
}

fn max_concurrent_runs(node: &Node<'_>) -> Result<u32, SpecError> {
    let value = node.integer()?;
    u32::try_from(value).ok().filter(|&n| n <= MAX_MAX_CONCURRENT_RUNS).ok_or_else(|| {
        node.error(format!(
            "max_concurrent_runs must be a whole number from 0 (skip every run) to {MAX_MAX_CONCURRENT_RUNS}, found {value}"
        ))
    })
}

/// `tasks` (in file order) rearranged into `order` (file positions).
fn in_order(tasks: Vec<TaskSpec>, order: &[usize]) -> Vec<TaskSpec> {
    let mut slots: Vec<Option<TaskSpec>> = tasks.into_iter().map(Some).collect();
    order.iter().filter_map(|&index| slots.get_mut(index).and_then(Option::take)).collect()
}

/// The task tables of a job; a job without tasks is an error.
fn task_nodes<'a>(job: &str, table: &Table<'a>) -> Result<Vec<Node<'a>>, SpecError> {
    let no_tasks = format!("job `{job}` has no tasks; add at least one [[jobs.{job}.tasks]] table");
    let Some(tasks) = table.get("tasks") else {
        let path = names::child_path(&table.node.path, "tasks");
        return Err(table.node.loc.invalid(&table.node.span, &path, no_tasks));
    };
    let nodes = tasks.array()?;
    if nodes.is_empty() {
        return Err(tasks.error(no_tasks));
    }
    Ok(nodes)
}

/// Job parameters: names follow the name rule; values may only use run-level references.
pub(crate) fn job_parameters(node: &Node<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    let table = node.table()?;
    let mut parameters = BTreeMap::new();
    for entry in table.entries() {
        check_key_name(entry, "parameter")?;
        let value = entry.node.param_string()?;
        let references = template::references(&value).map_err(|why| entry.node.error(why))?;
        if let Some(secret) = references.iter().find(|r| matches!(r, template::Reference::Secret { .. })) {
            return Err(entry.node.error(super::refs::secret_not_allowed(secret)));
        }
        if let Some(bad) = references.iter().find(|reference| !reference.is_run_level()) {
            return Err(entry.node.error(format!(
                "job parameters may only reference job.run_id, job.name, job.id and job.start_time.*; \
                 found `{{{{ {bad} }}}}`"
            )));
        }
        parameters.insert(entry.key.to_string(), value);
    }
    Ok(parameters)
}

fn task<'a>(
    node: &Node<'a>,
    components: &BTreeMap<String, ComponentSpec>,
    roots: &Roots,
) -> Result<(TaskSpec, TaskSite<'a>), SpecError> {
    let table = node.table()?;
    table.deny_unknown(TASK_KEYS)?;
    let key_node = table.require("key")?.clone();
    let key = checked_name(&key_node)?.to_string();
    let mut templates = Vec::new();
    let (kind, run_job) = kinds::kind(&table, &key, components, roots, &mut templates)?;
    check_kind_bound_keys(&table, &format!("task `{key}`"), &kind)?;
    let (depends_on, dependency_sites) = match table.get("depends_on") {
        Some(node) => depends::depends_on(node)?,
        None => (Vec::new(), Vec::new()),
    };
    super::command::check_stdin_from(&table, &key, &kind, &depends_on)?;
    let run_if = table.get("run_if").map(depends::run_if).transpose()?;
    if let (Some(_), Some(node), true) = (run_if, table.get("run_if"), depends_on.is_empty()) {
        return Err(node.error(format!(
            "task `{key}` has `run_if` but no `depends_on`: run_if decides from how upstream tasks ended, \
             and a task without any always runs; add `depends_on` or remove `run_if`"
        )));
    }
    let kind_name = kind.name();
    let datasets = super::datasets::task_datasets(&table, &key, &kind)?;
    let register_model = super::models::register_model(&table, &key, &kind)?;
    let exec = exec::read(&table, roots, "param", false, &mut templates)?;
    let models = super::models::model_uses(&table, &key, &kind, &exec.mounts)?;
    let spec = TaskSpec {
        key,
        kind,
        depends_on,
        run_if: run_if.unwrap_or_default(),
        timeout: table.get("timeout").map(Node::duration).transpose()?,
        retries: table.get("retries").map(retries).transpose()?,
        rerun_on_resume: table.get("rerun_on_resume").map(Node::bool).transpose()?.unwrap_or(true),
        exec,
        expectations: match table.get("expectations") {
            Some(node) if matches!(kind_name, "component" | "command") => super::expect::task_expectations(node)?,
            Some(node) => {
                return Err(node.error(format!(
                    "`expectations` check the files a component or command task writes to /out, not a {kind_name} task"
                )));
            }
            None => Vec::new(),
        },
        datasets,
        register_model,
        models,
    };
    let site = TaskSite { key: key_node, depends_on: dependency_sites, templates, run_job };
    Ok((spec, site))
}

/// The keys only some kinds take, only where the kind uses them: a component task takes
/// all of [`SCHEDULE_KEYS`] and [`EXEC_KEYS`], a command task all but `params` plus [`COMMAND_KEYS`], a
/// for_each task a `timeout` for the whole loop (the rest go in its template), a run_job
/// task `retries`, a condition task none. `task` names the table in errors ("task `x`").
pub(crate) fn check_kind_bound_keys(table: &Table<'_>, task: &str, kind: &TaskKind) -> Result<(), SpecError> {
    let is_command = matches!(kind, TaskKind::Command { .. });
    let is_python = matches!(kind, TaskKind::Command(c) if c.script.is_some());
    if let (false, Some(entry)) = (is_python, table.entries().iter().find(|e| e.key == "script")) {
        return Err(entry
            .key_error(format!("`script` applies only to `kind = \"python\"` tasks, not to {} {task}", kind.name())));
    }
    if let Some(entry) = table.entries().iter().find(|entry| !is_command && COMMAND_KEYS.contains(&entry.key)) {
        let hint = match kind {
            TaskKind::Component { .. } => {
                "; add `kind = \"command\"` to run the component as a `wasi:cli/command` program"
            }
            _ => "",
        };
        return Err(entry.key_error(format!(
            "`{}` applies only to command tasks, not to {} {task}{hint}",
            entry.key,
            kind.name()
        )));
    }
    let (allowed, hint): (&[&str], &str) = match kind {
        TaskKind::Component { .. } => return Ok(()),
        TaskKind::Command { .. } => (
            &["timeout", "limits", "retries", "rerun_on_resume", "secrets", "mounts", "allow_hosts", "cache"],
            "a command task takes its inputs from `args`, `env` and `stdin` (which may hold \
             `{{ … }}` references)",
        ),
        TaskKind::Condition { .. } => (&[], "a condition only compares `left` with `right`"),
        TaskKind::ForEach { .. } => (&["timeout"], "put it in `for_each.task`, the template each input runs"),
        TaskKind::RunJob { .. } => {
            (&["retries"], "the job it runs has its own settings (and a child run resumes on its own)")
        }
    };
    let refused = table.entries().iter().find(|entry| is_kind_bound(entry.key) && !allowed.contains(&entry.key));
    match refused {
        Some(entry) => {
            Err(entry.key_error(format!("`{}` does not apply to {} {task}; {hint}", entry.key, kind.name())))
        }
        None => Ok(()),
    }
}

/// Whether only some kinds take task key `key` (besides the command-only [`COMMAND_KEYS`]).
fn is_kind_bound(key: &str) -> bool {
    SCHEDULE_KEYS.contains(&key) || EXEC_KEYS.contains(&key)
}
