//! What a task does: run a component, decide a branch, loop a template over a JSON
//! array, or run another job. Exactly one of `component`, `condition`, `for_each` and
//! `run_job` says which; `kind = "command"` next to `component` makes it a command task
//! (see [`super::command`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::build::{check_key_name, checked_name};
use super::calls::RunJobSite;
use super::command::{self, CommandSpec};
use super::error::SpecError;
use super::exec::{self, ExecSpec};
use super::mounts::Roots;
use super::names;
use super::read::{Node, Table};
use super::refs::Templated;
use super::retries::{RetryPolicy, retries};
use super::{ComponentSpec, TaskSpec};

/// The keys that choose a task's kind.
pub(crate) const KIND_KEYS: [&str; 4] = ["component", "condition", "for_each", "run_job"];
pub(crate) const CONDITION_KEYS: &[&str] = &["op", "left", "right"];
pub(crate) const FOR_EACH_KEYS: &[&str] = &["inputs", "concurrency", "task"];
/// The task keys a `for_each.task` template does not take: it has no key, no place in
/// the graph, and is not itself a condition or a loop.
pub(crate) const NOT_IN_TEMPLATE: &[&str] =
    &["key", "condition", "for_each", "depends_on", "run_if", "expectations", "datasets", "register_model", "models"];
pub(crate) const RUN_JOB_KEYS: &[&str] = &["job", "parameters"];

/// The most iterations of a `for_each` task that may run at once.
pub const MAX_FOR_EACH_CONCURRENCY: u32 = 1000;
/// `for_each.concurrency` when not written.
pub const DEFAULT_FOR_EACH_CONCURRENCY: u32 = 4;

/// What a task does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskKind {
    /// Run a component of [`Bundle::components`](super::Bundle::components).
    Component { component: String },
    /// Run a `wasi:cli/command` component of [`Bundle::components`](super::Bundle::components);
    /// exit code 0 is success.
    Command(CommandSpec),
    /// Compare two rendered strings; the outcome (`true`/`false`) picks the branch that
    /// downstream tasks named in [`Dependency::outcome`](super::Dependency::outcome).
    Condition {
        op: ConditionOp,
        /// May hold `{{ … }}` references.
        left: String,
        /// May hold `{{ … }}` references.
        right: String,
    },
    /// Run `template` once per element of `inputs`, at most `concurrency` at a time.
    ForEach {
        /// Renders to a JSON array (may hold `{{ … }}` references).
        inputs: String,
        /// 1 ..= [`MAX_FOR_EACH_CONCURRENCY`].
        concurrency: u32,
        template: Box<ForEachTemplate>,
    },
    /// Start a run of another job of the bundle and wait for it.
    RunJob {
        /// A job of the same bundle, never the job itself; runs never form a cycle.
        job: String,
        /// Overrides of parameters the target job declares (may hold `{{ … }}` references).
        parameters: BTreeMap<String, String>,
    },
}

impl TaskKind {
    /// The kind's name: `"component"`, `"command"`, `"condition"`, `"for_each"`, `"run_job"`.
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Component { .. } => "component",
            TaskKind::Command(_) => "command",
            TaskKind::Condition { .. } => "condition",
            TaskKind::ForEach { .. } => "for_each",
            TaskKind::RunJob { .. } => "run_job",
        }
    }
}

/// The task a `for_each` task runs for each element (`{{ input }}` and `{{ input.FIELD }}`
/// in its params, args, env, stdin or child parameters): a component, a command or a
/// run_job, each iteration's timeout, retries and resume rule, and the same [`ExecSpec`]
/// a plain component task has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredTemplate")]
pub struct ForEachTemplate {
    /// [`TaskKind::Component`], [`TaskKind::Command`] or [`TaskKind::RunJob`].
    pub kind: TaskKind,
    pub timeout: Option<Duration>,
    /// Retries of each iteration on its own.
    pub retries: Option<RetryPolicy>,
    /// See [`TaskSpec::rerun_on_resume`].
    #[serde(default = "super::yes")]
    pub rerun_on_resume: bool,
    #[serde(flatten)]
    pub exec: ExecSpec,
}

/// A template as runs recorded it: `kind`, or (before for_each ran commands and jobs) the
/// component alone. Runs recorded before keep folding.
#[derive(Deserialize)]
struct StoredTemplate {
    #[serde(default)]
    kind: Option<TaskKind>,
    #[serde(default)]
    component: Option<String>,
    timeout: Option<Duration>,
    retries: Option<RetryPolicy>,
    #[serde(default = "super::yes")]
    rerun_on_resume: bool,
    #[serde(flatten)]
    exec: ExecSpec,
}

impl From<StoredTemplate> for ForEachTemplate {
    fn from(t: StoredTemplate) -> Self {
        let kind = t.kind.unwrap_or_else(|| TaskKind::Component { component: t.component.unwrap_or_default() });
        ForEachTemplate {
            kind,
            timeout: t.timeout,
            retries: t.retries,
            rerun_on_resume: t.rerun_on_resume,
            exec: t.exec,
        }
    }
}

impl ForEachTemplate {
    /// The component each iteration runs (a component or command template).
    pub fn component(&self) -> Option<&str> {
        match &self.kind {
            TaskKind::Component { component } | TaskKind::Command(CommandSpec { component, .. }) => Some(component),
            _ => None,
        }
    }

    /// Iteration `n` of for_each task `key`: a task of its own (`KEY[n]`).
    pub fn iteration(&self, key: &str, n: usize) -> TaskSpec {
        TaskSpec {
            key: iteration_key(key, n),
            kind: self.kind.clone(),
            depends_on: Vec::new(),
            run_if: Default::default(),
            timeout: self.timeout,
            retries: self.retries.clone(),
            rerun_on_resume: self.rerun_on_resume,
            exec: self.exec.clone(),
            expectations: Vec::new(),
            datasets: Default::default(),
            register_model: None,
            models: Vec::new(),
        }
    }
}

/// The key of iteration `i` of for_each task `task`: `task[i]`.
pub fn iteration_key(task: &str, i: usize) -> String {
    format!("{task}[{i}]")
}

/// How a condition task compares `left` with `right`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOp {
    EqualTo,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
}

impl ConditionOp {
    pub const ALL: [ConditionOp; 6] = [
        ConditionOp::EqualTo,
        ConditionOp::NotEqual,
        ConditionOp::GreaterThan,
        ConditionOp::GreaterThanOrEqual,
        ConditionOp::LessThan,
        ConditionOp::LessThanOrEqual,
    ];

    /// The name as written in the bundle file (`"equal_to"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionOp::EqualTo => "equal_to",
            ConditionOp::NotEqual => "not_equal",
            ConditionOp::GreaterThan => "greater_than",
            ConditionOp::GreaterThanOrEqual => "greater_than_or_equal",
            ConditionOp::LessThan => "less_than",
            ConditionOp::LessThanOrEqual => "less_than_or_equal",
        }
    }

    /// The outcome of `left <op> right` on rendered operands. Equality compares the
    /// strings exactly; the ordering operators compare both sides as numbers
    /// (surrounding whitespace ignored) and fail, naming the side, when one is not a
    /// finite number.
    pub fn evaluate(self, left: &str, right: &str) -> Result<bool, String> {
        let ordering = match self {
            ConditionOp::EqualTo => return Ok(left == right),
            ConditionOp::NotEqual => return Ok(left != right),
            _ => number(self, "left", left)?.partial_cmp(&number(self, "right", right)?),
        };
        let Some(ordering) = ordering else {
            return Err(format!("cannot compare `{left}` with `{right}`"));
        };
        Ok(match self {
            ConditionOp::GreaterThan => ordering.is_gt(),
            ConditionOp::GreaterThanOrEqual => ordering.is_ge(),
            ConditionOp::LessThan => ordering.is_lt(),
            _ => ordering.is_le(),
        })
    }
}

fn number(op: ConditionOp, side: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
        .ok_or_else(|| format!("{side} side `{text}` is not a number; `{op}` compares numbers"))
}

impl fmt::Display for ConditionOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConditionOp {
    type Err = String;

    /// The operator named as in the file; the error suggests the closest and lists all.
    fn from_str(name: &str) -> Result<Self, String> {
        let names = ConditionOp::ALL.map(ConditionOp::as_str);
        ConditionOp::ALL.into_iter().find(|op| op.as_str() == name).ok_or_else(|| {
            format!("unknown op `{name}`{}; expected one of {}", names::suggestion(name, names), names::list(names))
        })
    }
}

/// Reads the one kind key of a task table (`task` is the task's key, for errors).
/// `{{ … }}` values are added to `templates` for checking once the job is known.
pub(crate) fn kind<'a>(
    table: &Table<'a>,
    task: &str,
    components: &BTreeMap<String, ComponentSpec>,
    roots: &Roots,
    templates: &mut Vec<Templated<'a>>,
) -> Result<(TaskKind, Option<RunJobSite<'a>>), SpecError> {
    if table.get("kind").and_then(|k| k.str().ok()) == Some("python") {
        let declared = components.contains_key(super::python::PYTHON_COMPONENT);
        return Ok((super::python::python(table, task, declared, roots, templates)?, None));
    }
    let choices = format!("give exactly one of {}", names::list(KIND_KEYS));
    let mut given = table.entries().iter().filter(|e| KIND_KEYS.contains(&e.key));
    let Some(entry) = given.next() else {
        return Err(table.node.error(format!("task `{task}` does not say what it does; {choices}")));
    };
    if let Some(second) = given.next() {
        return Err(second.key_error(format!("task `{task}` has both `{}` and `{}`; {choices}", entry.key, second.key)));
    }
    let node = &entry.node;
    let is_command = command::is_command(table, task, entry.key)?;
    let kind = match entry.key {
        "component" if is_command => {
            let component = component(node, components)?;
            command::command(table, task, component, roots, templates)?
        }
        "component" => TaskKind::Component { component: component(node, components)? },
        "condition" => condition(node, templates)?,
        "for_each" => return for_each(node, task, components, roots, templates),
        _ => return run_job(node, task, templates).map(|(kind, site)| (kind, Some(site))),
    };
    Ok((kind, None))
}

/// A component name that must be in `components`.
fn component(node: &Node<'_>, components: &BTreeMap<String, ComponentSpec>) -> Result<String, SpecError> {
    let name = node.str()?;
    if components.contains_key(name) {
        return Ok(name.to_string());
    }
    let hint = names::suggestion(name, components.keys().map(String::as_str));
    Err(node.error(format!("unknown component `{name}`{hint}; components: {}", names::list(components.keys()))))
}

fn condition<'a>(node: &Node<'a>, templates: &mut Vec<Templated<'a>>) -> Result<TaskKind, SpecError> {
    let table = node.table()?;
    table.deny_unknown(CONDITION_KEYS)?;
    let op_node = table.require("op")?;
    let op = op_node.str()?.parse().map_err(|why: String| op_node.error(why))?;
    let mut operand = |side: &str| -> Result<String, SpecError> {
        let node = table.require(side)?;
        if !node.is_scalar() {
            return Err(node.error("expected a string, number or boolean to compare"));
        }
        let value = node.param_string()?;
        templates.push(Templated::new(format!("condition `{side}`"), &value, node, false));
        Ok(value)
    };
    Ok(TaskKind::Condition { op, left: operand("left")?, right: operand("right")? })
}

fn for_each<'a>(
    node: &Node<'a>,
    task: &str,
    components: &BTreeMap<String, ComponentSpec>,
    roots: &Roots,
    templates: &mut Vec<Templated<'a>>,
) -> Result<(TaskKind, Option<RunJobSite<'a>>), SpecError> {
    let table = node.table()?;
    table.deny_unknown(FOR_EACH_KEYS)?;
    let inputs_node = table.require("inputs")?;
    let inputs = inputs_node.param_string()?;
    check_literal_inputs(inputs_node, &inputs)?;
    templates.push(Templated::new("for_each `inputs`".into(), &inputs, inputs_node, false));
    let concurrency = match table.get("concurrency") {
        Some(node) => concurrency(node)?,
        None => DEFAULT_FOR_EACH_CONCURRENCY,
    };
    let template_node = table.require("task")?;
    let (template, site) = template(template_node, task, components, roots, templates)?;
    Ok((TaskKind::ForEach { inputs, concurrency, template: Box::new(template) }, site))
}

/// Inputs without references are known now, so they must already be a JSON array.
fn check_literal_inputs(node: &Node<'_>, inputs: &str) -> Result<(), SpecError> {
    // Bad references are reported, with context, when the job's references are checked.
    if !super::template::references(inputs).is_ok_and(|found| found.is_empty()) {
        return Ok(());
    }
    match serde_json::from_str::<serde_json::Value>(inputs) {
        Ok(serde_json::Value::Array(_)) => Ok(()),
        Ok(_) | Err(_) => {
            Err(node.error("inputs must be a JSON array, e.g. `[\"a\", \"b\"]` or `\"{{ tasks.list.values.files }}\"`"))
        }
    }
}

fn concurrency(node: &Node<'_>) -> Result<u32, SpecError> {
    let value = node.integer()?;
    u32::try_from(value)
        .ok()
        .filter(|n| (1..=MAX_FOR_EACH_CONCURRENCY).contains(n))
        .ok_or_else(|| node.error(format!("concurrency must be from 1 to {MAX_FOR_EACH_CONCURRENCY}, found {value}")))
}

/// `for_each.task`: a component (`kind = "command"` for a command) or a `run_job`, with
/// the keys that kind takes. Every value in it may use `{{ input }}`.
fn template<'a>(
    node: &Node<'a>,
    task: &str,
    components: &BTreeMap<String, ComponentSpec>,
    roots: &Roots,
    templates: &mut Vec<Templated<'a>>,
) -> Result<(ForEachTemplate, Option<RunJobSite<'a>>), SpecError> {
    let table = node.table()?;
    let keys: Vec<&str> = super::job::TASK_KEYS.iter().copied().filter(|k| !NOT_IN_TEMPLATE.contains(k)).collect();
    table.deny_unknown(&keys)?;
    let first = templates.len();
    let (kind, site) = match (table.get("component"), table.get("run_job")) {
        (Some(_), Some(_)) => {
            let entry = table.entries().iter().rfind(|e| e.key == "component" || e.key == "run_job");
            let message = "for_each.task has both `component` and `run_job`; give one";
            return Err(entry.map_or_else(|| node.error(message), |e| e.key_error(message)));
        }
        (None, None) => {
            return Err(node.error(
                "for_each.task says what each iteration does with `component` (with `kind = \"command\"` \
                 for a command) or `run_job`",
            ));
        }
        (None, Some(job)) => {
            command::is_command(&table, task, "run_job")?;
            let (kind, site) = run_job(job, task, templates)?;
            (kind, Some(site))
        }
        (Some(name), None) => {
            let component = component(name, components)?;
            match command::is_command(&table, task, "component")? {
                true => (command::command(&table, task, component, roots, templates)?, None),
                false => (TaskKind::Component { component }, None),
            }
        }
    };
    super::job::check_kind_bound_keys(&table, &format!("template (for_each.task of `{task}`)"), &kind)?;
    if let (TaskKind::Command(CommandSpec { stdin: Some(command::Stdin::Upstream { .. }), .. }), Some(node)) =
        (&kind, table.get("stdin_from"))
    {
        return Err(node.error(format!(
            "stdin_from is not available in a for_each template (for_each.task of `{task}`); \
             pass the upstream output with `stdin = \"{{{{ tasks.KEY.output }}}}\"` instead"
        )));
    }
    let template = ForEachTemplate {
        timeout: table.get("timeout").map(Node::duration).transpose()?,
        retries: table.get("retries").map(retries).transpose()?,
        rerun_on_resume: table.get("rerun_on_resume").map(Node::bool).transpose()?.unwrap_or(true),
        exec: exec::read(&table, roots, "for_each param", true, templates)?,
        kind,
    };
    for templated in &mut templates[first..] {
        templated.input = true;
    }
    Ok((template, site))
}

fn run_job<'a>(
    node: &Node<'a>,
    task: &str,
    templates: &mut Vec<Templated<'a>>,
) -> Result<(TaskKind, RunJobSite<'a>), SpecError> {
    let table = node.table()?;
    table.deny_unknown(RUN_JOB_KEYS)?;
    let job_node = table.require("job")?.clone();
    let job = checked_name(&job_node)?.to_string();
    let mut parameters = BTreeMap::new();
    let mut entries = Vec::new();
    if let Some(node) = table.get("parameters") {
        for entry in node.table()?.entries() {
            check_key_name(entry, "parameter")?;
            let value = entry.node.param_string()?;
            let label = format!("run_job parameter `{}`", entry.key);
            templates.push(Templated::new(label, &value, &entry.node, false));
            parameters.insert(entry.key.to_string(), value);
            entries.push(entry.clone());
        }
    }
    let site = RunJobSite { task: task.to_string(), job: job_node, parameters: entries };
    Ok((TaskKind::RunJob { job, parameters }, site))
}
