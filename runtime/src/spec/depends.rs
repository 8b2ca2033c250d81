//! How a task hangs off its upstream tasks: `depends_on` entries and `run_if`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use toml::de::DeValue;

use super::error::SpecError;
use super::names;
use super::read::Node;

pub(crate) const DEPENDENCY_KEYS: &[&str] = &["task", "outcome"];

/// One `depends_on` entry: `"a"` or `{ task = "check", outcome = "true" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dependency {
    /// The upstream task's key (a task of the same job).
    pub task: String,
    /// Only for a condition upstream: the outcome this task needs. `None` = the
    /// upstream finishing is enough; `Some(b)` = the task runs only on that branch
    /// (on the other branch the dependency counts as not met).
    pub outcome: Option<bool>,
}

impl Dependency {
    /// A dependency on `task` finishing, whatever its outcome.
    pub fn on(task: impl Into<String>) -> Self {
        Dependency { task: task.into(), outcome: None }
    }
}

/// When a task runs, given how its upstream tasks ended (Databricks' names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunIf {
    /// Every upstream task succeeded (the default).
    #[default]
    AllSuccess,
    /// At least one upstream task succeeded.
    AtLeastOneSuccess,
    /// No upstream task failed (some may have been excluded or skipped).
    NoneFailed,
    /// Every upstream task finished, however it ended.
    AllDone,
    /// At least one upstream task failed.
    AtLeastOneFailed,
    /// Every upstream task failed.
    AllFailed,
}

impl RunIf {
    /// Every value, in the order the documentation lists them.
    pub const ALL: [RunIf; 6] = [
        RunIf::AllSuccess,
        RunIf::AtLeastOneSuccess,
        RunIf::NoneFailed,
        RunIf::AllDone,
        RunIf::AtLeastOneFailed,
        RunIf::AllFailed,
    ];

    /// The name as written in the bundle file (`"all_success"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RunIf::AllSuccess => "all_success",
            RunIf::AtLeastOneSuccess => "at_least_one_success",
            RunIf::NoneFailed => "none_failed",
            RunIf::AllDone => "all_done",
            RunIf::AtLeastOneFailed => "at_least_one_failed",
            RunIf::AllFailed => "all_failed",
        }
    }
}

impl fmt::Display for RunIf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunIf {
    type Err = String;

    /// The value named as in the file; the error suggests the closest and lists all.
    fn from_str(name: &str) -> Result<Self, String> {
        let names = RunIf::ALL.map(RunIf::as_str);
        RunIf::ALL.into_iter().find(|run_if| run_if.as_str() == name).ok_or_else(|| {
            format!("unknown run_if `{name}`{}; expected one of {}", names::suggestion(name, names), names::list(names))
        })
    }
}

/// Where a dependency was written, for errors found once the whole job is known.
pub(crate) struct DependencySite<'a> {
    /// The node holding the upstream key (the string, or the table's `task`).
    pub task: Node<'a>,
    /// The `outcome` value, when given.
    pub outcome: Option<Node<'a>>,
}

/// Reads `run_if`.
pub(crate) fn run_if(node: &Node<'_>) -> Result<RunIf, SpecError> {
    node.str()?.parse().map_err(|why: String| node.error(why))
}

/// Reads a `depends_on` array.
pub(crate) fn depends_on<'a>(node: &Node<'a>) -> Result<(Vec<Dependency>, Vec<DependencySite<'a>>), SpecError> {
    let mut dependencies = Vec::new();
    let mut sites = Vec::new();
    for item in node.array()? {
        let (dependency, site) = dependency(&item)?;
        dependencies.push(dependency);
        sites.push(site);
    }
    Ok((dependencies, sites))
}

fn dependency<'a>(node: &Node<'a>) -> Result<(Dependency, DependencySite<'a>), SpecError> {
    match node.value {
        DeValue::String(_) => {
            let dependency = Dependency::on(node.str()?);
            let site = DependencySite { task: node.clone(), outcome: None };
            Ok((dependency, site))
        }
        DeValue::Table(_) => {
            let table = node.table()?;
            table.deny_unknown(DEPENDENCY_KEYS)?;
            let task = table.require("task")?.clone();
            let outcome = table.get("outcome").cloned();
            let dependency =
                Dependency { task: task.str()?.to_string(), outcome: outcome.as_ref().map(self::outcome).transpose()? };
            Ok((dependency, DependencySite { task, outcome }))
        }
        _ => Err(node.error(format!(
            "expected a task key or a table such as `{{ task = \"check\", outcome = \"true\" }}`, found {}",
            super::read::describe(node.value)
        ))),
    }
}

/// `true`, `false`, `"true"` or `"false"`.
fn outcome(node: &Node<'_>) -> Result<bool, SpecError> {
    match node.value {
        DeValue::Boolean(flag) => Ok(*flag),
        DeValue::String(text) if text.as_ref() == "true" => Ok(true),
        DeValue::String(text) if text.as_ref() == "false" => Ok(false),
        _ => Err(node.error("outcome is the branch of a condition task: \"true\" or \"false\" (or a TOML boolean)")),
    }
}
