//! `[[tests]]`: the bundle's own tests, run by `sluice test`, read into [`TestSpec`]s.
//!
//! Owns reading and validating test entries: the job, the target, parameter overrides,
//! fixtures (a task's mount replaced by a fixture directory, a file of test-only secret
//! values, stubbed tasks), golden files and assertions — every error pointing at
//! `file:line:col` and the key path. Fixture directories and files are checked to exist
//! (`stat` only); golden files are not read here (`--update-golden` may create them).
//! It must never run anything, read a fixture's contents or touch the store.
//!
//! ```toml
//! [[tests]]
//! name = "revenue by country"
//! job = "revenue"
//! target = "test"                      # default: `test` when declared, else the bundle's default
//! parameters = { min_total = 10 }
//! mounts = { orders = { "/data" = "fixtures/data" } }
//! secrets_file = "fixtures/secrets.toml"   # [scope] key = "value"
//! stub = { customers = { values = { rows = 3 }, output = { rows = 3 }, files = "fixtures/customers" } }
//! # or a stub's values and output as recorded (JSON keeps nulls TOML cannot write):
//! # stub = { customers = { json = "fixtures/customers.json" } }  # {"values": {…}, "output": …}
//! golden = { by_country = "golden/by_country.csv" }   # a file: /out/<its name>; a directory: all of /out
//! assert = [
//!   { run = "success" },
//!   { task = "orders", result = "success" },
//!   { task = "orders", output = "$.rows", ">" = 2 },
//!   { task = "fib", value = "value", path = "$", "==" = 6765 },
//!   { task = "orders", dataset = "orders.csv", expect = "expect_column_values_to_not_be_null", column = "id" },
//! ]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::build::check_key_name;
use super::error::SpecError;
use super::read::{Node, Table};
use super::{JobSpec, TargetSpec};

const TEST_KEYS: &[&str] =
    &["name", "job", "target", "parameters", "mounts", "secrets_file", "stub", "golden", "assert", "description"];
const STUB_KEYS: &[&str] = &["values", "output", "files", "json"];
/// Comparison keys of an assertion, each with its operator.
const OPERATORS: &[(&str, CompareOp)] = &[
    ("==", CompareOp::Eq),
    ("equals", CompareOp::Eq),
    ("!=", CompareOp::Ne),
    ("not_equals", CompareOp::Ne),
    (">", CompareOp::Gt),
    (">=", CompareOp::Ge),
    ("<", CompareOp::Lt),
    ("<=", CompareOp::Le),
    ("contains", CompareOp::Contains),
];
const RUN_RESULTS: &[&str] = &["success", "success_with_failures", "failed", "timed_out", "canceled", "skipped"];
const TASK_RESULTS: &[&str] = &[
    "success",
    "failed",
    "timed_out",
    "canceled",
    "excluded",
    "upstream_failed",
    "upstream_canceled",
    "interrupted",
    "quality_failed",
];

/// One `[[tests]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSpec {
    pub name: String,
    /// The line of the entry's `name`, for reports pointing back at the file.
    pub line: usize,
    pub job: String,
    /// `None`: `test` when the bundle declares it, else the bundle's default target.
    pub target: Option<String>,
    pub parameters: BTreeMap<String, String>,
    /// Per task: guest path → the canonical fixture directory mounted there instead.
    pub mounts: BTreeMap<String, BTreeMap<String, PathBuf>>,
    /// `[scope] key = "value"` secrets put into the test's own isolated state only.
    pub secrets_file: Option<PathBuf>,
    /// Tasks not run: their values, output and `/out` files are these.
    pub stubs: BTreeMap<String, Stub>,
    /// Per task: the golden file or directory its `/out` must equal.
    pub golden: BTreeMap<String, PathBuf>,
    pub asserts: Vec<Assertion>,
}

/// What a stubbed task "produced".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stub {
    pub values: BTreeMap<String, serde_json::Value>,
    pub output: serde_json::Value,
    /// A canonical fixture directory offered downstream as the task's `/out`.
    pub files: Option<PathBuf>,
}

/// One assertion, with where it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assertion {
    pub line: usize,
    pub check: Check,
}

/// What an assertion checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// The run's result (`success`, `failed`, …).
    Run { result: String },
    /// A task's result.
    TaskResult { task: String, result: String },
    /// A part of a task's JSON output.
    Output { task: String, path: JsonPath, op: CompareOp, expected: serde_json::Value },
    /// A part of a task value.
    Value { task: String, key: String, path: JsonPath, op: CompareOp, expected: serde_json::Value },
    /// A data-quality expectation on a dataset the task wrote to `/out`.
    Expect { task: String, expectation: super::expect::Expectation },
}

/// How an actual value is compared with the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// A string containing a substring, or an array containing an element.
    Contains,
}

impl CompareOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Contains => "contains",
        }
    }
}

/// A JSON path such as `$.rows[0].id` or `$["odd key"]`: object keys and array indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonPath {
    pub text: String,
    pub steps: Vec<PathStep>,
}

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// Parses `$`, `.key`, `[n]` and `["key"]` steps.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let rest = text.strip_prefix('$').ok_or("a JSON path starts with `$`")?;
        let mut steps = Vec::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '.' => {
                    let mut key = String::new();
                    while let Some(&(_, c)) = chars.peek() {
                        if c == '.' || c == '[' {
                            break;
                        }
                        key.push(c);
                        chars.next();
                    }
                    if key.is_empty() {
                        return Err(format!("empty key after `.` at {}", at + 1));
                    }
                    steps.push(PathStep::Key(key));
                }
                '[' => {
                    let close = rest[at..].find(']').ok_or("`[` without `]`")? + at;
                    let inner = &rest[at + 1..close];
                    let step = if let Some(quoted) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        PathStep::Key(quoted.to_string())
                    } else {
                        PathStep::Index(inner.parse().map_err(|_| format!("`[{inner}]` is not an index or a \"key\""))?)
                    };
                    steps.push(step);
                    while chars.peek().is_some_and(|&(i, _)| i <= close) {
                        chars.next();
                    }
                }
                other => return Err(format!("unexpected `{other}` at {}; use .key or [index]", at + 1)),
            }
        }
        Ok(JsonPath { text: text.to_string(), steps })
    }

    /// The part of `value` this path names, if it is there.
    pub fn select<'v>(&self, value: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        self.steps.iter().try_fold(value, |v, step| match step {
            PathStep::Key(key) => v.get(key),
            PathStep::Index(i) => v.get(i),
        })
    }
}

/// Reads `[[tests]]` (of the bundle file, then of each included file) against the jobs
/// and targets already read; a test name is unique across all of them.
pub(crate) fn tests(
    nodes: &[Node<'_>],
    jobs: &BTreeMap<String, JobSpec>,
    targets: &BTreeMap<String, TargetSpec>,
    root: &Path,
) -> Result<Vec<TestSpec>, SpecError> {
    let mut out: Vec<TestSpec> = Vec::new();
    let items = nodes.iter().map(Node::array).collect::<Result<Vec<_>, _>>()?;
    for item in items.into_iter().flatten() {
        let test = test(&item, jobs, targets, root)?;
        if out.iter().any(|t| t.name == test.name) {
            return Err(item.table()?.require("name")?.error(format!("a test named `{}` exists already", test.name)));
        }
        out.push(test);
    }
    Ok(out)
}

fn test(
    node: &Node<'_>,
    jobs: &BTreeMap<String, JobSpec>,
    targets: &BTreeMap<String, TargetSpec>,
    root: &Path,
) -> Result<TestSpec, SpecError> {
    let table = node.table()?;
    table.deny_unknown(TEST_KEYS)?;
    let name_node = table.require("name")?;
    let name = name_node.str()?.trim().to_string();
    if name.is_empty() {
        return Err(name_node.error("a test needs a name"));
    }
    let job_node = table.require("job")?;
    let job = jobs.get(job_node.str()?).ok_or_else(|| {
        let known = super::names::list(jobs.keys());
        job_node.error(format!("no job named `{}`; jobs: {known}", job_node.str().unwrap_or_default()))
    })?;
    let target = match table.get("target") {
        Some(t) => {
            let name = t.str()?;
            if !targets.is_empty() && !targets.contains_key(name) {
                let known = super::names::list(targets.keys());
                return Err(t.error(format!("no target named `{name}`; targets: {known}")));
            }
            Some(name.to_string())
        }
        None => None,
    };
    let mut parameters = BTreeMap::new();
    if let Some(params) = table.get("parameters") {
        for entry in params.table()?.entries() {
            if !job.parameters.contains_key(entry.key) {
                let known = super::names::list(job.parameters.keys());
                return Err(
                    entry.key_error(format!("job `{}` has no parameter `{}`; it has {known}", job.name, entry.key))
                );
            }
            parameters.insert(entry.key.to_string(), entry.node.param_string()?);
        }
    }
    let secrets_file = table.get("secrets_file").map(|n| fixture(n, root, false)).transpose()?;
    Ok(TestSpec {
        name,
        line: name_node.line(),
        job: job.name.clone(),
        target,
        parameters,
        mounts: mounts(&table, job, root)?,
        secrets_file,
        stubs: stubs(&table, job, root)?,
        golden: golden(&table, job, root)?,
        asserts: match table.get("assert") {
            Some(list) => list.array()?.iter().map(|a| assertion(a, job)).collect::<Result<_, _>>()?,
            None => Vec::new(),
        },
    })
}

/// A fixture path: relative to the bundle root, existing, a directory (or a file).
fn fixture(node: &Node<'_>, root: &Path, dir: bool) -> Result<PathBuf, SpecError> {
    let written = node.str()?;
    let path = root.join(written);
    let what = if dir { "fixture directory" } else { "fixture file" };
    let canonical = std::fs::canonicalize(&path)
        .map_err(|e| node.error(format!("{what} `{written}` ({}): {e}", path.display())))?;
    if canonical.is_dir() != dir {
        let expected = if dir { "a directory" } else { "a file" };
        return Err(node.error(format!("{what} `{written}` is not {expected}")));
    }
    Ok(canonical)
}

/// A task key of `job` (a for_each iteration `KEY[i]` counts as its task).
fn task_key<'a>(node: &Node<'a>, key: &'a str, job: &JobSpec) -> Result<String, SpecError> {
    let base = key.split_once('[').map_or(key, |(base, _)| base);
    if job.task(base).is_none() {
        let known = job.tasks.iter().map(|t| t.key.as_str());
        let hint = super::names::closest(base, known).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
        return Err(node.error(format!("job `{}` has no task `{key}`{hint}", job.name)));
    }
    Ok(key.to_string())
}

fn per_task<'a>(table: &Table<'a>, key: &str, job: &JobSpec) -> Result<Vec<(String, Node<'a>)>, SpecError> {
    let Some(node) = table.get(key) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for entry in node.table()?.entries() {
        check_key_name(entry, "task")?;
        let task = job
            .task(entry.key)
            .map(|t| t.key.clone())
            .ok_or_else(|| entry.key_error(format!("job `{}` has no task `{}`", job.name, entry.key)))?;
        out.push((task, entry.node.clone()));
    }
    Ok(out)
}

fn mounts(
    table: &Table<'_>,
    job: &JobSpec,
    root: &Path,
) -> Result<BTreeMap<String, BTreeMap<String, PathBuf>>, SpecError> {
    let mut out = BTreeMap::new();
    for (task, node) in per_task(table, "mounts", job)? {
        let spec = job.task(&task).map(|t| &t.exec.mounts);
        let mut guests = BTreeMap::new();
        for entry in node.table()?.entries() {
            if !spec.is_some_and(|mounts| mounts.iter().any(|m| m.guest == entry.key)) {
                return Err(entry.key_error(format!("task `{task}` mounts nothing at `{}`", entry.key)));
            }
            guests.insert(entry.key.to_string(), fixture(&entry.node, root, true)?);
        }
        out.insert(task, guests);
    }
    Ok(out)
}

fn stubs(table: &Table<'_>, job: &JobSpec, root: &Path) -> Result<BTreeMap<String, Stub>, SpecError> {
    let mut out = BTreeMap::new();
    for (task, node) in per_task(table, "stub", job)? {
        let stub = node.table()?;
        stub.deny_unknown(STUB_KEYS)?;
        let (mut values, recorded) = match stub.get("json") {
            Some(node) => stub_json(node, root)?,
            None => (BTreeMap::new(), None),
        };
        if let Some(v) = stub.get("values") {
            for entry in v.table()?.entries() {
                values.insert(entry.key.to_string(), entry.node.json()?);
            }
        }
        let output = match (stub.get("output"), recorded) {
            (Some(o), _) => o.json()?,
            (None, Some(output)) => output,
            (None, None) => serde_json::Value::Object(values.clone().into_iter().collect()),
        };
        let files = stub.get("files").map(|f| fixture(f, root, true)).transpose()?;
        out.insert(task, Stub { values, output, files });
    }
    Ok(out)
}

/// A stub's `json` file: `{"values": {KEY: JSON…}, "output": JSON}` (both optional).
type StubJson = (BTreeMap<String, serde_json::Value>, Option<serde_json::Value>);

fn stub_json(node: &Node<'_>, root: &Path) -> Result<StubJson, SpecError> {
    let path = fixture(node, root, false)?;
    let bad = |why: String| node.error(format!("stub file {}: {why}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let serde_json::Value::Object(mut top) = value else {
        return Err(bad("not a JSON object {\"values\": {…}, \"output\": …}".into()));
    };
    let values = match top.remove("values") {
        None => BTreeMap::new(),
        Some(serde_json::Value::Object(values)) => values.into_iter().collect(),
        Some(_) => return Err(bad("`values` is not an object".into())),
    };
    if let Some(other) = top.keys().find(|k| *k != "output") {
        return Err(bad(format!("unknown key `{other}` (expected `values`, `output`)")));
    }
    Ok((values, top.remove("output")))
}

fn golden(table: &Table<'_>, job: &JobSpec, root: &Path) -> Result<BTreeMap<String, PathBuf>, SpecError> {
    let mut out = BTreeMap::new();
    for (task, node) in per_task(table, "golden", job)? {
        let written = node.str()?;
        if written.trim().is_empty() || Path::new(written).is_absolute() {
            return Err(node.error("a golden path is relative to the bundle"));
        }
        out.insert(task, root.join(written));
    }
    Ok(out)
}

fn assertion(node: &Node<'_>, job: &JobSpec) -> Result<Assertion, SpecError> {
    let table = node.table()?;
    let line = node.line();
    let result = |n: &Node<'_>, allowed: &[&str]| -> Result<String, SpecError> {
        let text = n.str()?;
        if allowed.contains(&text) {
            Ok(text.to_string())
        } else {
            Err(n.error(format!("`{text}` is not one of {}", super::names::list(allowed))))
        }
    };
    if let Some(run) = table.get("run") {
        table.deny_unknown(&["run"])?;
        return Ok(Assertion { line, check: Check::Run { result: result(run, RUN_RESULTS)? } });
    }
    let task_node = table.get("task").ok_or_else(|| {
        node.error("an assertion is `{ run = RESULT }` or names a `task` (with `result`, `output` or `value`)")
    })?;
    let task = task_key(task_node, task_node.str()?, job)?;
    if table.get("expect").is_some() {
        let expectation = super::expect::expectation(&table, node)?;
        return Ok(Assertion { line, check: Check::Expect { task, expectation } });
    }
    if let Some(r) = table.get("result") {
        table.deny_unknown(&["task", "result"])?;
        return Ok(Assertion { line, check: Check::TaskResult { task, result: result(r, TASK_RESULTS)? } });
    }
    let mut known: Vec<&str> = vec!["task", "output", "value", "path"];
    known.extend(OPERATORS.iter().map(|(k, _)| *k));
    table.deny_unknown(&known)?;
    let compared: Vec<_> = table
        .entries()
        .iter()
        .filter_map(|e| OPERATORS.iter().find(|(k, _)| *k == e.key).map(|(_, op)| (*op, e.node.clone())))
        .collect();
    let [(op, expected)] = compared.as_slice() else {
        let ops = super::names::list(OPERATORS.iter().map(|(k, _)| *k));
        return Err(node.error(format!("an output or value assertion takes exactly one comparison: {ops}")));
    };
    let (op, expected) = (*op, expected.json()?);
    let check = match (table.get("output"), table.get("value")) {
        (Some(p), None) => Check::Output { task, path: json_path(Some(p), node)?, op, expected },
        (None, Some(k)) => {
            Check::Value { task, key: k.str()?.to_string(), path: json_path(table.get("path"), node)?, op, expected }
        }
        _ => {
            return Err(node.error("a task assertion takes one of `result`, `output` (a JSON path) or `value` (a key)"));
        }
    };
    Ok(Assertion { line, check })
}

/// The JSON path written at `node` (`$` when there is none), errors pointing at it.
fn json_path(node: Option<&Node<'_>>, assertion: &Node<'_>) -> Result<JsonPath, SpecError> {
    let text = node.map(Node::str).transpose()?.unwrap_or("$");
    JsonPath::parse(text).map_err(|why| node.unwrap_or(assertion).error(format!("bad JSON path: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_select_keys_and_indexes() {
        let value = serde_json::json!({ "rows": [{ "id": 7 }], "odd key": true });
        let path = JsonPath::parse("$.rows[0].id").unwrap();
        assert_eq!(path.select(&value), Some(&serde_json::json!(7)));
        assert_eq!(JsonPath::parse("$[\"odd key\"]").unwrap().select(&value), Some(&serde_json::json!(true)));
        assert_eq!(JsonPath::parse("$").unwrap().select(&value), Some(&value));
        assert_eq!(JsonPath::parse("$.rows[3]").unwrap().select(&value), None);
        for bad in ["rows", "$.", "$[x]", "$[1", "$x"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }
}
