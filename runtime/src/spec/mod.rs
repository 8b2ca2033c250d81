//! The bundle file, `sluice.toml`: parsing, validation, parameters and `{{ … }}` references.
//!
//! This module owns the translation from the text a user wrote to a [`Bundle`] the rest of
//! the runtime can trust: every key is known, every name is well formed, every duration and
//! size parses, every task's component and dependencies exist, the task graph has no cycle
//! (tasks come back in a stable topological order), `run_job` tasks name other jobs without
//! forming a cycle of jobs, and every `{{ … }}` reference names something that will exist
//! when the task runs. Problems come back as a [`SpecError`] that points at
//! `file:line:col` and the key path, with a hint when one helps.
//!
//! Host paths a task may reach (`mounts`, `stdin_file`, `[bundle] data_roots`) are checked
//! on the filesystem, read-only: each is `stat`ed and canonicalised (symlinks resolved) so
//! that it exists, has the right type and stays under the bundle root or a data root.
//!
//! What it must never do: open or read any file but the bundle file and the files it
//! `include`s (component
//! paths are resolved, not opened; mounted directories and stdin files are checked, not
//! read), write anything, execute anything, or touch the store. Rendering references
//! ([`template::render`]) and evaluating conditions ([`ConditionOp::evaluate`]) are offered
//! as pure functions; the values come from the caller.
//!
//! The accepted format (anything else is an error):
//!
//! ```toml
//! include = ["jobs/*.toml"]                  # globs under the bundle root; see below
//!
//! [bundle]
//! name = "hello"
//! data_roots = ["../shared-data"]            # host paths may also lie under these
//!
//! [variables]                                # used as ${var.NAME} in any string value
//! lake = { default = "data", description = "root of the data lake" }
//! who = { description = "no default: --var, SLUICE_VAR_who or the target must set it" }
//!
//! [targets.dev]                             # when declared, only these targets exist
//! default = true                             # the one runs use unless --target/SLUICE_TARGET
//! mode = "development"                       # or "production"; absent: neither
//! variables = { who = "dev-team" }
//! [targets.test]
//! variables = { who = "qa" }
//! [targets.prod]
//! mode = "production"
//! limits = { memory = "256MiB" }
//! variables = { lake = "/srv/lake", who = "everyone" }
//! run_as = "svc-etl"                         # who the target's runs run as
//! git = { branch = "main" }                  # production deploys only from this branch
//! promote_from = "test"                      # another declared target
//! require_tests = true                       # a passing test verdict on the promoted hash
//! require_approval = 1                       # approvals needed (0: none)
//! permissions = [{ level = "CAN_VIEW", group_name = "analysts" }]   # on every job here
//! [targets.prod.jobs.hello]                  # per-target job overrides
//! parameters = { who = "prod-users" }        # only parameters the job declares
//! permissions = [{ level = "CAN_MANAGE_RUN", service_principal_name = "ops-bot" }]
//!
//! [secret_scopes.storage]                    # scopes and who may use them; never values
//! acls = [{ principal = "ana", permission = "MANAGE" }, { principal = "svc-etl", permission = "READ" }]
//!
//! [components]
//! ingest = { path = "tasks/ingest.wasm" }   # or: ingest = "tasks/ingest.wasm"
//! count = "tasks/count.wasm"
//!
//! [jobs.hello]
//! parameters = { who = "${var.who}", n = 10 }   # scalars become strings, arrays/tables JSON
//! permissions = [{ level = "IS_OWNER", user_name = "ana" }, { level = "CAN_MANAGE_RUN", group_name = "ops" }]
//! timeout = "1h"
//! cleanup_timeout = "5m"                     # failure handlers after a cancel or timeout
//! max_parallel_tasks = 4                     # at most this many tasks of a run at once
//! limits = { memory = "128MiB" }             # defaults for every task's limits
//!
//! # A task does exactly one of: component (optionally kind = "command"), condition,
//! # for_each, run_job.
//! [[jobs.hello.tasks]]
//! key = "extract"
//! component = "ingest"
//! params = { greeting = "hi {{ job.parameters.who }}" }
//! depends_on = []
//! timeout = "10s"
//! limits = { memory = "64MiB", max_log = "1MiB", max_output = "64KiB", fuel = 100_000_000, max_out = "10MiB" }
//! retries = { max = 3, initial = "1s", backoff = 2.0, max_interval = "1m", jitter = 0.1, on_timeout = false }
//! secrets = ["storage/access_key"]
//! mounts = [{ host = "${var.lake}/landing", guest = "/landing" }, { host = "data/scratch", guest = "/work", mode = "rw" }]
//! allow_hosts = ["https://api.example.com", "http://127.0.0.1:*"]   # empty or absent: no network
//! rerun_on_resume = false                    # after a crash: `interrupted`, rerun only by a repair
//!
//! [[jobs.hello.tasks]]
//! key = "hello_c"                            # any wasi:cli/command component
//! kind = "command"
//! component = "count"
//! depends_on = ["extract"]
//! args = ["--name", "{{ job.parameters.who }}"]
//! env = { GREETING = "hi" }                  # the whole environment it sees
//! stdin = "text"                             # or stdin_file = "data/input.txt"
//! stdout = "output"                          # "log" (default) | "output": also the JSON output
//!
//! [[jobs.hello.tasks]]
//! key = "big_enough"                         # outcome "true" or "false"
//! depends_on = ["extract"]
//! condition = { op = "greater_than", left = "{{ tasks.extract.values.rows }}", right = "100" }
//!
//! [[jobs.hello.tasks]]
//! key = "count_each"
//! depends_on = [{ task = "big_enough", outcome = "true" }]
//! for_each = { inputs = "{{ tasks.extract.values.files }}", concurrency = 2, task = { component = "count", params = { file = "{{ input }}" }, retries = { max = 1 } } }
//! # a template may also be a command (kind = "command", args/env/stdin) or a run_job;
//! # `{{ input.FIELD }}` reads a field of an object element
//!
//! [[jobs.hello.tasks]]
//! key = "report"
//! depends_on = ["count_each", { task = "big_enough", outcome = false }]
//! run_if = "at_least_one_success"            # all_success (default) | at_least_one_success |
//!                                            # none_failed | all_done | at_least_one_failed | all_failed
//! run_job = { job = "publish", parameters = { who = "{{ job.parameters.who }}" } }
//!
//! [jobs.publish]
//! parameters = { who = "nobody" }
//! tasks = [{ key = "send", component = "ingest", params = { to = "{{ job.parameters.who }}" } }]
//! ```
//!
//! `retries.max = -1` retries without limit; every other `retries` key has a default
//! (see [`RetryPolicy`]). `{{ input }}` and `{{ input.FIELD }}` are allowed only in a
//! `for_each` template. `run_if` needs `depends_on`. References: see [`Reference`].
//! The execution keys (`params`, `limits`, `secrets` with their `inject`ions, `mounts`,
//! `allow_hosts`, `cache`; see [`ExecSpec`]) go on component and command tasks and in
//! `for_each.task`, read by one reader (see [`Mount`], [`HostRule`]); guest paths `/tmp`,
//! `/in` and `/out` are the runtime's.
//!
//! Targets and variables: a bundle is loaded for one target ([`load_with`], [`LoadOptions`]).
//! A variable's value is the first of `--var NAME=VALUE`, `SLUICE_VAR_NAME`, the target's
//! `variables`, its `default`; `${var.NAME}` is replaced in every string value (never in
//! `[variables]` or a target's `variables`, which are literal; never in `{{ … }}` references,
//! which the runtime renders). A reference to an undeclared variable, or to one with no
//! value, is an error at the place it is written. `[targets.T.jobs.J] parameters` replace
//! job J's parameter defaults in target T. `mode` absent means neither development nor
//! production behaviour, as in Databricks. Permission levels (`CAN_VIEW` < `CAN_MANAGE_RUN`
//! < `CAN_MANAGE` < `IS_OWNER`) go on a job, a target (every job in it) or a target's job;
//! [`Bundle::job_permissions`] combines them. Principals: `user_name`, `group_name`,
//! `service_principal_name` (one per entry; a group is never `IS_OWNER`).
//!
//! `include` patterns are globs relative to the bundle root; each matched file may hold
//! `[components]`, `[jobs]`, `[variables]` and `[secret_scopes]` (plus the tables other
//! modules add to the bundle file, such as `tests`), merged with the bundle file's; a name
//! defined in two files is an error naming both, and errors inside an included file name it.

mod access;
mod build;
mod calls;
mod command;
mod component;
pub mod datasets;
mod depends;
mod error;
mod exec;
pub mod expect;
mod graph;
mod hosts;
mod include;
mod job;
mod kinds;
mod locate;
pub mod models;
mod mounts;
pub mod names;
mod notify;
pub mod python;
mod read;
mod refs;
mod retries;
mod schema;
mod scopes;
pub mod suite;
mod target;
pub mod template;
pub mod triggers;
mod vars;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::util::{parse_duration, parse_size};
pub use access::{Permission, PermissionLevel, Principal, level_of};
pub use command::{CommandSpec, Stdin, check_out_path};
pub use component::{BUILD_DIR, ComponentSource, ComponentSpec, SourceLang};
pub use depends::{Dependency, RunIf};
pub use error::SpecError;
pub use exec::{ExecSpec, MAX_WORKER_LABELS, is_label_word};
pub use hosts::{HostRule, parse_host_rule};
pub use include::MAX_INCLUDED_FILES;
pub use kinds::{
    ConditionOp, DEFAULT_FOR_EACH_CONCURRENCY, ForEachTemplate, MAX_FOR_EACH_CONCURRENCY, TaskKind, iteration_key,
};
pub use locate::Place;
pub use mounts::{Mount, MountMode, ObjectSource, RESERVED_GUEST_PATHS, parse_mount_arg};
pub use notify::{Destination, JobNotify, Notifications, RUN_DURATION_SECONDS, SmtpTls, WebhookFormat};
pub use retries::RetryPolicy;
pub use schema::json_schema;
pub use scopes::SecretScopeSpec;
pub use target::{GitSpec, MAX_REQUIRED_APPROVALS, TargetJob, TargetMode, TargetSpec};
pub use template::Reference;
pub use vars::{LoadOptions, VAR_ENV_PREFIX, VarSource, VariableSpec};

/// How long cleanup (failure-handling tasks) may run after a cancel or a job timeout when
/// the job does not say: long enough for a notification or a rollback, short enough that a
/// canceled run does not linger (Databricks gives its cleanup no bound; a stuck handler
/// must not keep a canceled run alive for hours).
pub const DEFAULT_CLEANUP_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// `true`, for `#[serde(default = "yes")]`.
pub(crate) fn yes() -> bool {
    true
}

/// The file name looked for when [`load`] is given a directory.
pub const BUNDLE_FILE: &str = "sluice.toml";

/// A parsed and validated bundle file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// `bundle.name`.
    pub name: String,
    /// The absolute directory that relative paths in the file resolve against.
    pub root: PathBuf,
    /// The bundle file, as the caller named it.
    pub file: PathBuf,
    /// `[bundle] data_roots`: canonical directories outside the bundle that host paths
    /// (mounts, stdin files) may also lie under.
    pub data_roots: Vec<PathBuf>,
    /// Components by name.
    pub components: BTreeMap<String, ComponentSpec>,
    /// Jobs by name.
    pub jobs: BTreeMap<String, JobSpec>,
    /// Deployment targets (`[targets.dev]`, …) and their defaults.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetSpec>,
    /// `[variables]`, each with its value for [`Bundle::resolved_target`].
    #[serde(default)]
    pub variables: BTreeMap<String, VariableSpec>,
    /// The target whose variables and job parameter overrides this bundle was read with;
    /// `None` when none was named and the bundle's targets name no default (then only
    /// defaults, `--var` and `SLUICE_VAR_*` give variables their values).
    #[serde(default)]
    pub resolved_target: Option<String>,
    /// The files `include` brought in, as shown in errors (the bundle file not among them).
    #[serde(default)]
    pub includes: Vec<PathBuf>,
    /// `[secret_scopes]`: scopes and ACLs the bundle declares (never values).
    #[serde(default)]
    pub secret_scopes: BTreeMap<String, SecretScopeSpec>,
    /// `[[tests]]`: what `sluice test` runs (see [`suite`]).
    #[serde(default)]
    pub tests: Vec<suite::TestSpec>,
}

/// The target a run uses when a bundle declares none and none is named.
pub const DEFAULT_TARGET: &str = "dev";

/// A job: parameters and a DAG of tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    /// Parameter defaults, as strings (may hold run-level `{{ job.… }}` references).
    pub parameters: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    /// How long failure-handling tasks (`run_if` all_done, at_least_one_failed, all_failed)
    /// may still run after a cancel or the job's timeout; `None`: [`DEFAULT_CLEANUP_TIMEOUT`].
    #[serde(default)]
    pub cleanup_timeout: Option<Duration>,
    /// At most this many tasks of one run at once (≥ 1); `None` = the runtime's limit.
    pub max_parallel_tasks: Option<u32>,
    /// Defaults for every task's limits (a task's own `limits` win, key by key).
    #[serde(default)]
    pub limits: Limits,
    /// Runs of this job (in one workspace) active at once; a run beyond it waits `queued`
    /// (with [`JobSpec::queue`]) or is `skipped`. 0 skips every run (as in Databricks).
    #[serde(default = "default_max_concurrent_runs")]
    pub max_concurrent_runs: u32,
    /// Whether a run beyond `max_concurrent_runs` waits its turn (else it is skipped).
    #[serde(default = "default_queue")]
    pub queue: bool,
    /// Topologically sorted; tasks keep their file order wherever dependencies allow.
    pub tasks: Vec<TaskSpec>,
    /// `permissions = [{ level, user_name | group_name | service_principal_name }]`.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// What starts runs of the job inside `sluice serve` (`schedule`, `trigger`, `continuous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<triggers::TriggerSpec>,
    /// Notifications of the job and its tasks, with the destinations they name.
    #[serde(default, skip_serializing_if = "JobNotify::is_empty")]
    pub notify: JobNotify,
}

/// Databricks' default: one active run per job.
pub const DEFAULT_MAX_CONCURRENT_RUNS: u32 = 1;
/// The most concurrent runs a job may allow (Databricks' bound too).
pub const MAX_MAX_CONCURRENT_RUNS: u32 = 1000;

fn default_max_concurrent_runs() -> u32 {
    DEFAULT_MAX_CONCURRENT_RUNS
}

fn default_queue() -> bool {
    true
}

/// One task of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub key: String,
    /// What the task does.
    pub kind: TaskKind,
    /// Tasks of the same job this one waits for, as listed.
    pub depends_on: Vec<Dependency>,
    /// When the task runs, given how its upstream tasks ended.
    pub run_if: RunIf,
    /// For a component or command task its attempt, for a for_each task the whole loop;
    /// `None` for condition and run_job tasks.
    pub timeout: Option<Duration>,
    /// `None` = a failed attempt is final. Component, command and run_job tasks only; a
    /// for_each task's iterations retry by [`ForEachTemplate::retries`].
    pub retries: Option<RetryPolicy>,
    /// Whether an attempt cut short by the death of the process running it is run again
    /// when the run resumes (without counting as a retry). `false`: it ends `interrupted`
    /// and waits for a repair (for side effects that must not happen twice). Component and
    /// command tasks (and for_each templates); `true` when not written.
    #[serde(default = "yes")]
    pub rerun_on_resume: bool,
    /// What a component or command task executes with (the default for other kinds; a
    /// for_each task's iterations use [`ForEachTemplate::exec`]).
    #[serde(flatten)]
    pub exec: ExecSpec,
    /// Data-quality expectations checked on `/out` after every successful attempt
    /// (component and command tasks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<expect::TaskExpectation>,
    /// `datasets = { NAME = "path in /out" }`: what a successful attempt publishes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub datasets: BTreeMap<String, String>,
    /// `register_model = { name, file, metrics }`: the `/out` file a successful attempt
    /// registers as the model's next version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_model: Option<models::RegisterModel>,
    /// `models = [{ name, guest }]`: the versions staged for the run's target it loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<models::ModelUse>,
}

/// Resource limits of a task; `None` means the runtime default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Linear memory, in bytes.
    pub memory: Option<u64>,
    /// Captured log (stdout + stderr), in bytes.
    pub max_log: Option<u64>,
    /// The task's JSON output, in bytes.
    pub max_output: Option<u64>,
    /// Wasmtime fuel (a deterministic CPU budget, ≥ 1); `None` = unmetered.
    pub fuel: Option<u64>,
    /// Files the task writes under `/out`, in bytes in total.
    pub max_out: Option<u64>,
}

impl Bundle {
    /// The job called `name`, or with `None` the bundle's only job.
    pub fn job(&self, name: Option<&str>) -> Result<&JobSpec, SpecError> {
        let known = || self.jobs.keys().cloned().collect::<Vec<_>>();
        match name {
            Some(name) => self.jobs.get(name).ok_or_else(|| SpecError::UnknownJob {
                file: self.file.clone(),
                name: name.to_string(),
                known: known(),
            }),
            None => match self.jobs.values().collect::<Vec<_>>().as_slice() {
                [only] => Ok(only),
                _ => Err(SpecError::NoSingleJob { file: self.file.clone(), known: known() }),
            },
        }
    }
}

impl Bundle {
    /// The target a run uses: `named` (from `--target` or `SLUICE_TARGET`), else the one
    /// marked `default = true`, else [`DEFAULT_TARGET`]. When the bundle declares
    /// `[targets]`, only those exist: any other name is refused, naming the known ones.
    pub fn target(&self, named: Option<&str>) -> Result<String, SpecError> {
        target::choose(&self.file, &self.targets, named)
    }
}

impl JobSpec {
    /// The task with this key.
    pub fn task(&self, key: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|task| task.key == key)
    }
}

impl TaskSpec {
    /// The component a component or command task runs; `None` for the other kinds.
    pub fn component(&self) -> Option<&str> {
        match &self.kind {
            TaskKind::Component { component } | TaskKind::Command(CommandSpec { component, .. }) => Some(component),
            _ => None,
        }
    }

    /// A command task's program and inputs; `None` for the other kinds.
    pub fn command(&self) -> Option<&CommandSpec> {
        match &self.kind {
            TaskKind::Command(command) => Some(command),
            _ => None,
        }
    }

    /// The keys of the tasks this one depends on, as listed.
    pub fn upstream_keys(&self) -> impl Iterator<Item = &str> {
        self.depends_on.iter().map(|dependency| dependency.task.as_str())
    }
}

/// Reads and validates a bundle. `path` is a bundle directory (then `<dir>/sluice.toml`
/// is read) or the bundle file itself. Relative paths in the file resolve against the
/// file's directory.
pub fn load(path: &Path) -> Result<Bundle, SpecError> {
    load_with(path, &LoadOptions::default())
}

/// [`load`] for the target `opts` names (else the default one), with variable values
/// from `--var` and `SLUICE_VAR_*` (see [`LoadOptions`]).
pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Bundle, SpecError> {
    let file = bundle_file(path)?;
    let text = std::fs::read_to_string(&file)
        .map_err(|why| SpecError::Read { path: file.clone(), message: why.to_string() })?;
    let root = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parse_with(&text, &file, &root, opts)
}

fn bundle_file(path: &Path) -> Result<PathBuf, SpecError> {
    if path.is_dir() {
        let file = path.join(BUNDLE_FILE);
        return if file.is_file() { Ok(file) } else { Err(SpecError::NoBundleFile { dir: path.to_path_buf() }) };
    }
    if path.exists() { Ok(path.to_path_buf()) } else { Err(SpecError::NotFound { path: path.to_path_buf() }) }
}

/// Parses and validates bundle text. `file` is used only in errors and [`Bundle::file`];
/// `root` is the directory relative paths resolve against (made absolute here).
pub fn parse(text: &str, file: &Path, root: &Path) -> Result<Bundle, SpecError> {
    parse_with(text, file, root, &LoadOptions::default())
}

/// [`parse`] for the target and variable values `opts` gives.
pub fn parse_with(text: &str, file: &Path, root: &Path, opts: &LoadOptions) -> Result<Bundle, SpecError> {
    let root = if root.as_os_str().is_empty() { Path::new(".") } else { root };
    let root = std::path::absolute(root)
        .map_err(|why| SpecError::Read { path: root.to_path_buf(), message: why.to_string() })?;
    build::bundle(text, file, root, opts)
}
