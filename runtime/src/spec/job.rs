//! Jobs and their tasks: fields, limits, secrets, and the `{{ … }}` references in params.

use std::collections::{BTreeMap, BTreeSet};

use super::build::{check_key_name, checked_name};
use super::error::SpecError;
use super::graph::{self, Graph};
use super::names;
use super::read::{Node, Table};
use super::template::{self, Reference};
use super::{ComponentSpec, JobSpec, Limits, TaskSpec};

const JOB_KEYS: &[&str] = &["parameters", "timeout", "tasks"];
const TASK_KEYS: &[&str] = &[
    "key",
    "component",
    "depends_on",
    "params",
    "timeout",
    "limits",
    "secrets",
];
const LIMIT_KEYS: &[&str] = &["memory", "max_log", "max_output"];

/// Where a task's parts are in the file, kept for checks that need the whole job.
pub(crate) struct TaskSite<'a> {
    /// The `key = "…"` value.
    pub key: Node<'a>,
    /// Each `depends_on` element, in the order listed (parallel to `TaskSpec::depends_on`).
    pub depends_on: Vec<Node<'a>>,
    /// Each param value with its name, in file order.
    pub params: Vec<(String, Node<'a>)>,
}

/// Reads and validates one job, returning its tasks in topological order.
pub(crate) fn job(
    name: &str,
    node: &Node<'_>,
    components: &BTreeMap<String, ComponentSpec>,
) -> Result<JobSpec, SpecError> {
    let table = node.table()?;
    table.deny_unknown(JOB_KEYS)?;
    let parameters = match table.get("parameters") {
        Some(node) => job_parameters(node)?,
        None => BTreeMap::new(),
    };
    let timeout = table.get("timeout").map(Node::duration).transpose()?;

    let task_nodes = task_nodes(name, &table)?;
    let mut tasks = Vec::with_capacity(task_nodes.len());
    let mut sites = Vec::with_capacity(task_nodes.len());
    for task_node in &task_nodes {
        let (spec, site) = task(task_node, components)?;
        tasks.push(spec);
        sites.push(site);
    }
    let graph = graph::check(name, &tasks, &sites)?;
    for (index, site) in sites.iter().enumerate() {
        check_task_references(name, &tasks[index], site, &parameters, &graph, &tasks)?;
    }
    Ok(JobSpec {
        name: name.to_string(),
        parameters,
        timeout,
        tasks: in_order(tasks, &graph.order),
    })
}

/// `tasks` (in file order) rearranged into `order` (file positions).
fn in_order(tasks: Vec<TaskSpec>, order: &[usize]) -> Vec<TaskSpec> {
    let mut slots: Vec<Option<TaskSpec>> = tasks.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&index| slots.get_mut(index).and_then(Option::take))
        .collect()
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
fn job_parameters(node: &Node<'_>) -> Result<BTreeMap<String, String>, SpecError> {
    let table = node.table()?;
    let mut parameters = BTreeMap::new();
    for entry in table.entries() {
        check_key_name(entry, "parameter")?;
        let value = entry.node.param_string()?;
        let references = template::references(&value).map_err(|why| entry.node.error(why))?;
        if let Some(bad) = references
            .iter()
            .find(|reference| !reference.is_run_level())
        {
            return Err(entry.node.error(format!(
                "job parameters may only reference job.run_id, job.name, job.start_time.iso_date and \
                 job.start_time.iso_datetime; found `{{{{ {bad} }}}}`"
            )));
        }
        parameters.insert(entry.key.to_string(), value);
    }
    Ok(parameters)
}

fn task<'a>(
    node: &Node<'a>,
    components: &BTreeMap<String, ComponentSpec>,
) -> Result<(TaskSpec, TaskSite<'a>), SpecError> {
    let table = node.table()?;
    table.deny_unknown(TASK_KEYS)?;
    let key_node = table.require("key")?.clone();
    let key = checked_name(&key_node)?.to_string();
    let component = component(table.require("component")?, components)?;
    let depends_on = match table.get("depends_on") {
        Some(node) => node.strings()?,
        None => Vec::new(),
    };
    let (params, param_sites) = match table.get("params") {
        Some(node) => task_params(node)?,
        None => (BTreeMap::new(), Vec::new()),
    };
    let spec = TaskSpec {
        key,
        component,
        depends_on: depends_on.iter().map(|(_, dep)| dep.to_string()).collect(),
        params,
        timeout: table.get("timeout").map(Node::duration).transpose()?,
        limits: table
            .get("limits")
            .map(limits)
            .transpose()?
            .unwrap_or_default(),
        secrets: table
            .get("secrets")
            .map(secrets)
            .transpose()?
            .unwrap_or_default(),
    };
    let site = TaskSite {
        key: key_node,
        depends_on: depends_on.into_iter().map(|(n, _)| n).collect(),
        params: param_sites,
    };
    Ok((spec, site))
}

fn component(
    node: &Node<'_>,
    components: &BTreeMap<String, ComponentSpec>,
) -> Result<String, SpecError> {
    let name = node.str()?;
    if components.contains_key(name) {
        return Ok(name.to_string());
    }
    let hint = names::suggestion(name, components.keys().map(String::as_str));
    Err(node.error(format!(
        "unknown component `{name}`{hint}; components: {}",
        names::list(components.keys())
    )))
}

type Params<'a> = (BTreeMap<String, String>, Vec<(String, Node<'a>)>);

fn task_params<'a>(node: &Node<'a>) -> Result<Params<'a>, SpecError> {
    let table = node.table()?;
    let mut params = BTreeMap::new();
    let mut sites = Vec::new();
    for entry in table.entries() {
        check_key_name(entry, "param")?;
        params.insert(entry.key.to_string(), entry.node.param_string()?);
        sites.push((entry.key.to_string(), entry.node.clone()));
    }
    Ok((params, sites))
}

fn limits(node: &Node<'_>) -> Result<Limits, SpecError> {
    let table = node.table()?;
    table.deny_unknown(LIMIT_KEYS)?;
    let size = |key: &str| table.get(key).map(Node::size).transpose();
    let limits = Limits {
        memory: size("memory")?,
        max_log: size("max_log")?,
        max_output: size("max_output")?,
    };
    if let (Some(0), Some(node)) = (limits.memory, table.get("memory")) {
        return Err(node.error("memory limit must be greater than zero"));
    }
    Ok(limits)
}

fn secrets(node: &Node<'_>) -> Result<Vec<String>, SpecError> {
    let mut secrets: Vec<String> = Vec::new();
    for (item, name) in node.strings()? {
        names::check_secret_name(name).map_err(|why| item.error(why))?;
        if secrets.iter().any(|seen| seen == name) {
            return Err(item.error(format!("secret `{name}` is listed twice")));
        }
        secrets.push(name.to_string());
    }
    Ok(secrets)
}

/// Every reference in a task's params must name something that exists when it runs.
fn check_task_references(
    job: &str,
    task: &TaskSpec,
    site: &TaskSite<'_>,
    parameters: &BTreeMap<String, String>,
    graph: &Graph,
    tasks: &[TaskSpec],
) -> Result<(), SpecError> {
    let upstream = graph.upstream_of(&task.key);
    for (param, node) in &site.params {
        let value = task.params.get(param).map_or("", String::as_str);
        let context =
            |why: String| node.error(format!("task `{}`, param `{param}`: {why}", task.key));
        let references = template::references(value).map_err(context)?;
        for reference in &references {
            check_reference(job, &task.key, reference, parameters, upstream, tasks)
                .map_err(context)?;
        }
    }
    Ok(())
}

fn check_reference(
    job: &str,
    key: &str,
    reference: &Reference,
    parameters: &BTreeMap<String, String>,
    upstream: Option<&BTreeSet<String>>,
    tasks: &[TaskSpec],
) -> Result<(), String> {
    match reference {
        Reference::JobParameter(name) if !parameters.contains_key(name) => {
            let hint = names::suggestion(name, parameters.keys().map(String::as_str));
            Err(format!(
                "`{{{{ {reference} }}}}` names no parameter of job `{job}`{hint}; parameters: {}",
                names::list(parameters.keys())
            ))
        }
        Reference::TaskValue { task, .. } if task == key => Err(format!(
            "`{{{{ {reference} }}}}`: a task cannot read its own values"
        )),
        Reference::TaskValue { task, .. } if !tasks.iter().any(|t| &t.key == task) => {
            let hint = names::suggestion(task, tasks.iter().map(|t| t.key.as_str()));
            Err(format!(
                "`{{{{ {reference} }}}}`: no task `{task}` in job `{job}`{hint}"
            ))
        }
        Reference::TaskValue { task, .. } if !upstream.is_some_and(|up| up.contains(task)) => {
            Err(format!(
                "`{{{{ {reference} }}}}`: task `{task}` is not upstream of `{key}`; add it to `depends_on`"
            ))
        }
        _ => Ok(()),
    }
}
