//! Checks that every `{{ … }}` reference in a task names something that exists when the
//! task runs: a declared job parameter, an upstream task's values, result or error code,
//! or (in a `for_each` template only) the current input or one of its fields. Secret references (`{{ secrets/<scope>/<key> }}`)
//! are refused everywhere but a command task's `env`: anywhere else their value would
//! be rendered into text the run stores (params, conditions, inputs, child parameters).

use std::collections::BTreeMap;

use super::TaskSpec;
use super::error::SpecError;
use super::graph::Graph;
use super::names;
use super::read::Node;
use super::template::{self, Reference};

/// A value of a task that may hold references, and where it was written.
pub(crate) struct Templated<'a> {
    /// What the value is, for errors: "param `day`", "condition `left`", ….
    pub label: String,
    pub value: String,
    pub node: Node<'a>,
    /// Whether `{{ input }}` is allowed (the params of a `for_each` template).
    pub input: bool,
    /// Whether `{{ secrets/<scope>/<key> }}` is allowed (a command task's `env` only).
    pub secrets: bool,
}

impl<'a> Templated<'a> {
    pub fn new(label: String, value: &str, node: &Node<'a>, input: bool) -> Self {
        Templated { label, value: value.to_string(), node: node.clone(), input, secrets: false }
    }

    /// The value may hold secret references (a command task's `env`: the sandbox
    /// reveals them when the program starts; nothing stores the rendered text).
    pub fn allowing_secrets(mut self) -> Self {
        self.secrets = true;
        self
    }
}

/// The job-wide facts references are checked against.
pub(crate) struct Scope<'j> {
    pub job: &'j str,
    pub parameters: &'j BTreeMap<String, String>,
    pub graph: &'j Graph,
    pub tasks: &'j [TaskSpec],
}

/// Every reference in `templates` (the values of `task`) must resolve when it runs.
pub(crate) fn check_task(scope: &Scope<'_>, task: &TaskSpec, templates: &[Templated<'_>]) -> Result<(), SpecError> {
    let upstream = |up: &str| scope.graph.is_upstream(&task.key, up);
    for templated in templates {
        let context = |why: String| templated.node.error(format!("task `{}`, {}: {why}", task.key, templated.label));
        let references = template::references(&templated.value).map_err(context)?;
        for reference in &references {
            if matches!(reference, Reference::Secret { .. }) && !templated.secrets {
                return Err(context(secret_not_allowed(reference)));
            }
            check_reference(scope, &task.key, reference, &upstream, templated.input).map_err(context)?;
        }
    }
    Ok(())
}

/// Why a secret reference is refused where it was written.
pub(crate) fn secret_not_allowed(reference: &Reference) -> String {
    let name = match reference {
        Reference::Secret { scope, key } => format!("{scope}/{key}"),
        other => other.to_string(),
    };
    format!(
        "`{{{{ {reference} }}}}`: secret references are allowed only in a command task's `env`; \
         a task component lists the secrets it needs (`secrets = [\"{name}\"]`) and reads them \
         at run time with `secrets.reveal`"
    )
}

fn check_reference(
    scope: &Scope<'_>,
    key: &str,
    reference: &Reference,
    upstream: &dyn Fn(&str) -> bool,
    input_allowed: bool,
) -> Result<(), String> {
    let Scope { job, parameters, tasks, .. } = scope;
    match reference {
        Reference::JobParameter(name) if !parameters.contains_key(name) => {
            let hint = names::suggestion(name, parameters.keys().map(String::as_str));
            Err(format!(
                "`{{{{ {reference} }}}}` names no parameter of job `{job}`{hint}; parameters: {}",
                names::list(parameters.keys())
            ))
        }
        other if other.upstream() == Some(key) => {
            Err(format!("`{{{{ {reference} }}}}`: a task cannot read its own values or result"))
        }
        other if other.upstream().is_some_and(|task| !tasks.iter().any(|t| t.key == task)) => {
            let task = other.upstream().unwrap_or_default();
            let hint = names::suggestion(task, tasks.iter().map(|t| t.key.as_str()));
            Err(format!("`{{{{ {reference} }}}}`: no task `{task}` in job `{job}`{hint}"))
        }
        other if other.upstream().is_some_and(|task| !upstream(task)) => {
            let task = other.upstream().unwrap_or_default();
            Err(format!("`{{{{ {reference} }}}}`: task `{task}` is not upstream of `{key}`; add it to `depends_on`"))
        }
        other if other.is_input() && !input_allowed => Err(format!(
            "`{{{{ {other} }}}}` is only available in a for_each task template (`for_each.task`: its params, \
             args, env, stdin or run_job parameters)"
        )),
        _ => Ok(()),
    }
}
