//! The JSON Schema of `sluice.toml` (`sluice schema`), for editors (taplo, Even Better TOML).
//!
//! The parser reads the TOML tree by hand (to point every error at its line), so the
//! schema comes from the dedicated types below rather than from the parser's own. They
//! cannot drift unnoticed: a unit test checks that every table's properties are exactly
//! the keys the parser accepts there (the same `*_KEYS` constants its `deny_unknown` uses),
//! and an end-to-end test validates every bundle in the repository against the schema.
//! The schema checks shape (keys, types, enumerations); the parser checks the rest
//! (references, cycles, files on disk, variables).
//!
//! This module owns only those types; it must never be used to read a bundle.
#![allow(dead_code)] // the fields exist for their schema only

use std::collections::BTreeMap;

use schemars::JsonSchema;

/// Generates the schema (draft 2020-12).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(BundleFile);
    serde_json::to_value(&schema).unwrap_or_default()
}

/// A sluice bundle file: jobs of WebAssembly tasks, their components, targets and variables.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BundleFile {
    /// Globs (relative to the bundle root) of files adding components, jobs, variables and
    /// secret scopes.
    include: Option<Vec<String>>,
    bundle: BundleSection,
    /// Declared variables, used as `${var.NAME}` in string values.
    variables: Option<BTreeMap<String, Variable>>,
    /// Deployment targets (dev, test, prod…).
    targets: Option<BTreeMap<String, Target>>,
    /// WebAssembly components by name.
    components: Option<BTreeMap<String, Component>>,
    /// Jobs by name.
    jobs: Option<BTreeMap<String, Job>>,
    /// Secret scopes and their ACLs (never values).
    secret_scopes: Option<BTreeMap<String, SecretScope>>,
    /// `[[tests]]` that `sluice test` runs (job, fixtures, assertions; see the README).
    tests: Option<Vec<serde_json::Value>>,
    /// Notification destinations by name (`kind = "webhook" | "email"`).
    destinations: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BundleSection {
    name: String,
    /// Directories outside the bundle that host paths may lie under.
    data_roots: Option<Vec<String>>,
}

/// A string, number or boolean.
#[derive(JsonSchema)]
#[serde(untagged)]
pub(crate) enum Scalar {
    Text(String),
    Integer(i64),
    Number(f64),
    Flag(bool),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Variable {
    default: Option<Scalar>,
    description: Option<String>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Target {
    default: Option<bool>,
    limits: Option<Limits>,
    allow_absolute_paths: Option<bool>,
    mode: Option<Mode>,
    variables: Option<BTreeMap<String, Scalar>>,
    /// Per-job overrides in this target.
    jobs: Option<BTreeMap<String, TargetJob>>,
    run_as: Option<String>,
    permissions: Option<Vec<Permission>>,
    git: Option<Git>,
    promote_from: Option<String>,
    require_tests: Option<bool>,
    #[schemars(range(min = 0, max = 100))]
    require_approval: Option<u32>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    Development,
    Production,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetJob {
    parameters: Option<BTreeMap<String, serde_json::Value>>,
    permissions: Option<Vec<Permission>>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Git {
    branch: Option<String>,
}

/// One level for exactly one of `user_name`, `group_name`, `service_principal_name`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Permission {
    level: Level,
    user_name: Option<String>,
    group_name: Option<String>,
    service_principal_name: Option<String>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Level {
    CanView,
    CanManageRun,
    CanManage,
    IsOwner,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretScope {
    acls: Option<Vec<Acl>>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Acl {
    principal: String,
    permission: AclPermission,
}

/// READ, WRITE or MANAGE (the parser takes any case; the schema, the usual two).
#[derive(JsonSchema)]
pub(crate) enum AclPermission {
    #[serde(rename = "READ")]
    ReadUpper,
    #[serde(rename = "WRITE")]
    WriteUpper,
    #[serde(rename = "MANAGE")]
    ManageUpper,
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "write")]
    Write,
    #[serde(rename = "manage")]
    Manage,
}

/// A `.wasm` path, or `{ path = "…" }`, or sources `sluice build` builds:
/// `{ path = "tasks/x", lang = "python" | "rust" }`.
#[derive(JsonSchema)]
#[serde(untagged)]
pub(crate) enum Component {
    Path(String),
    Table(ComponentTable),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComponentTable {
    path: String,
    /// Build the component from the source directory `path` (`sluice build`).
    lang: Option<super::SourceLang>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Job {
    /// Scalars become strings, arrays and tables JSON.
    parameters: Option<BTreeMap<String, serde_json::Value>>,
    timeout: Option<Duration>,
    cleanup_timeout: Option<Duration>,
    #[schemars(range(min = 1))]
    max_parallel_tasks: Option<u32>,
    #[schemars(range(max = 1000))]
    max_concurrent_runs: Option<u32>,
    queue: Option<bool>,
    limits: Option<Limits>,
    tasks: Option<Vec<Task>>,
    permissions: Option<Vec<Permission>>,
    /// `{ cron, timezone, pause_status, dst, catch_up, catch_up_window }` (Quartz cron).
    schedule: Option<serde_json::Value>,
    /// `{ periodic | file_arrival | webhook | table_update = {…} }`.
    trigger: Option<Trigger>,
    /// `{ pause_status }`: a new run when the previous ends.
    continuous: Option<serde_json::Value>,
    /// `{ on_start, on_success, on_failure, on_duration_warning_threshold_exceeded }`: destination names.
    notifications: Option<serde_json::Value>,
    /// `{ rules = [{ metric = "RUN_DURATION_SECONDS", op = "GREATER_THAN", value }] }`.
    health: Option<serde_json::Value>,
    /// `{ no_alert_for_skipped_runs, no_alert_for_canceled_runs }`.
    notification_settings: Option<serde_json::Value>,
}

/// A duration such as "10s", "5m", "2h".
#[derive(JsonSchema)]
#[serde(transparent)]
pub(crate) struct Duration(String);

/// A size such as "64MiB", or a number of bytes.
#[derive(JsonSchema)]
#[serde(untagged)]
pub(crate) enum Size {
    Text(String),
    Bytes(u64),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limits {
    memory: Option<Size>,
    max_log: Option<Size>,
    max_output: Option<Size>,
    #[schemars(range(min = 1))]
    fuel: Option<u64>,
    max_out: Option<Size>,
}

/// A task: exactly one of `component` (optionally `kind = "command"`), `condition`,
/// `for_each`, `run_job`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Task {
    key: String,
    kind: Option<Kind>,
    component: Option<String>,
    condition: Option<Condition>,
    for_each: Option<ForEach>,
    run_job: Option<RunJob>,
    depends_on: Option<Vec<Dependency>>,
    run_if: Option<RunIf>,
    params: Option<BTreeMap<String, serde_json::Value>>,
    timeout: Option<Duration>,
    limits: Option<Limits>,
    retries: Option<Retries>,
    secrets: Option<Vec<SecretGrant>>,
    mounts: Option<Vec<Mount>>,
    allow_hosts: Option<Vec<String>>,
    cache: Option<bool>,
    /// Which scale-out workers may run it: `{ labels = { pool = "gpu" } }`.
    worker: Option<Worker>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    stdin: Option<String>,
    stdin_file: Option<String>,
    /// `"TASK"` or `"TASK:FILE"`: stdin from an upstream task's stdout file or `/out` file.
    stdin_from: Option<String>,
    /// `"log"` (default), `"output"` or `"file:NAME"` (lands in `/out/NAME`).
    stdout: Option<String>,
    /// Exit codes a command may end with and still succeed (default `[0]`).
    success_exit_codes: Option<Vec<i32>>,
    /// `kind = "python"`: the script file to run.
    script: Option<String>,
    rerun_on_resume: Option<bool>,
    notifications: Option<serde_json::Value>,
    health: Option<serde_json::Value>,
    notification_settings: Option<serde_json::Value>,
    /// Data-quality expectations on `/out` after each successful attempt: `{ dataset, expect,
    /// column, …, on_failure = "warn" | "fail" | "block", blocks = [TASK…] }`.
    expectations: Option<Vec<serde_json::Value>>,
    /// Named datasets this task publishes from its `/out`: `{ "sales.orders" = "orders.parquet" }`.
    datasets: Option<BTreeMap<String, String>>,
    /// Register a file of `/out` as the next version of a model: `{ name = "churn", file =
    /// "model.json", metrics = "metrics.json" }`.
    register_model: Option<RegisterModel>,
    /// Load the version of each model staged for the run's target, read-only:
    /// `[{ name = "churn", guest = "/model" }]`.
    models: Option<Vec<ModelUse>>,
}

/// A task's `register_model`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterModel {
    name: String,
    file: String,
    metrics: Option<String>,
}

/// One entry of a task's `models`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelUse {
    name: String,
    guest: String,
}

/// A job's trigger: exactly one of `periodic`, `file_arrival`, `webhook`, `table_update`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trigger {
    /// `{ interval, unit = "MINUTES" | "HOURS" | "DAYS" | "WEEKS" }`.
    periodic: Option<serde_json::Value>,
    /// `{ url, min_time_between_triggers, wait_after_last_change, credentials }`.
    file_arrival: Option<serde_json::Value>,
    /// `{ secret = "scope/key" }`.
    webhook: Option<serde_json::Value>,
    table_update: Option<TableUpdate>,
    pause_status: Option<PauseStatus>,
    catch_up: Option<String>,
    catch_up_window: Option<Duration>,
}

#[derive(JsonSchema)]
pub(crate) enum PauseStatus {
    #[serde(rename = "PAUSED")]
    Paused,
    #[serde(rename = "UNPAUSED")]
    Unpaused,
}

/// A run when named datasets (published by tasks' `datasets`) get new content.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TableUpdate {
    /// Dataset names, e.g. `["sales.orders"]`.
    tables: Vec<String>,
    condition: Option<TableCondition>,
    min_time_between_triggers: Option<Duration>,
    wait_after_last_change: Option<Duration>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum TableCondition {
    AnyUpdated,
    AllUpdated,
}

/// `worker = { labels = { … } }`: only workers holding every label run the task.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Worker {
    labels: Option<BTreeMap<String, String>>,
}

/// A `for_each` task's template: a component, command or run_job task without key,
/// dependencies or run_if.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskTemplate {
    kind: Option<Kind>,
    component: Option<String>,
    run_job: Option<RunJob>,
    params: Option<BTreeMap<String, serde_json::Value>>,
    timeout: Option<Duration>,
    limits: Option<Limits>,
    retries: Option<Retries>,
    secrets: Option<Vec<SecretGrant>>,
    mounts: Option<Vec<Mount>>,
    allow_hosts: Option<Vec<String>>,
    cache: Option<bool>,
    /// Which scale-out workers may run it: `{ labels = { pool = "gpu" } }`.
    worker: Option<Worker>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    stdin: Option<String>,
    stdin_file: Option<String>,
    /// `"TASK"` or `"TASK:FILE"`: stdin from an upstream task's stdout file or `/out` file.
    stdin_from: Option<String>,
    /// `"log"` (default), `"output"` or `"file:NAME"` (lands in `/out/NAME`).
    stdout: Option<String>,
    /// Exit codes a command may end with and still succeed (default `[0]`).
    success_exit_codes: Option<Vec<i32>>,
    /// `kind = "python"`: the script file to run.
    script: Option<String>,
    rerun_on_resume: Option<bool>,
    notifications: Option<serde_json::Value>,
    health: Option<serde_json::Value>,
    notification_settings: Option<serde_json::Value>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Component,
    Command,
    Python,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunIf {
    AllSuccess,
    AtLeastOneSuccess,
    NoneFailed,
    AllDone,
    AtLeastOneFailed,
    AllFailed,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Condition {
    op: Op,
    left: Scalar,
    right: Scalar,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Op {
    EqualTo,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForEach {
    /// Renders to a JSON array, e.g. "{{ tasks.list.values.files }}".
    inputs: String,
    #[schemars(range(min = 1))]
    concurrency: Option<u32>,
    task: TaskTemplate,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunJob {
    job: String,
    parameters: Option<BTreeMap<String, serde_json::Value>>,
}

/// A task key, or `{ task = "…", outcome = true | false }`.
#[derive(JsonSchema)]
#[serde(untagged)]
pub(crate) enum Dependency {
    Key(String),
    Table(DependencyTable),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DependencyTable {
    task: String,
    outcome: Option<Scalar>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Retries {
    /// -1: without limit.
    #[schemars(range(min = -1))]
    max: Option<i64>,
    initial: Option<Duration>,
    backoff: Option<f64>,
    max_interval: Option<Duration>,
    jitter: Option<f64>,
    on_timeout: Option<bool>,
}

/// `"scope/key"`, or `{ name = "scope/key", inject = "header:Name" }`.
#[derive(JsonSchema)]
#[serde(untagged)]
pub(crate) enum SecretGrant {
    Name(String),
    Table(SecretGrantTable),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretGrantTable {
    name: String,
    inject: Option<String>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Mount {
    /// A host directory (give one of `host`, `url`, `location`).
    host: Option<String>,
    /// An object-storage prefix, `s3://bucket/prefix/` (az://, abfss://, gs://), staged by the host.
    url: Option<String>,
    /// A host directory or an object-storage prefix, told apart by its value (e.g. a
    /// `${var.…}` each target sets: a directory in dev, a bucket in test and prod).
    location: Option<String>,
    guest: String,
    mode: Option<MountMode>,
    /// With an object-storage prefix: the secret (`scope/key`) holding the store's JSON
    /// credentials (`""` or absent for a directory).
    credentials: Option<String>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MountMode {
    Ro,
    Rw,
}
