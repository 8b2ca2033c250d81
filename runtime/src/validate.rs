//! `sluice validate`: a bundle checked as a whole, for one target, without running anything.
//!
//! The checks, in order: the bundle file and its includes parse and validate ([`spec`]:
//! keys, names, references, cycles, variables, mounts on disk); every component a task
//! uses exists and is the right kind of WebAssembly — a task component exports the sluice
//! world's `run` of this sluice's task world version, a command task's is a
//! `wasi:cli/command` component or a core module (decoded by [`crate::sandbox::world`], the
//! check the loader makes before compiling, never compiled); and every `user_name`/`service_principal_name` in `permissions` and
//! every target's `run_as` names a known principal, every `group_name` a known group. Problems are collected (all of a
//! kind, not only the first), each with file, line, column, key and message.
//!
//! Known principals: those holding API tokens in the state directory's store and the
//! members of its groups (given by the caller, who reads them through the owner), the
//! principal running the command, and the targets' `run_as`. Known groups: those of the
//! store's group directory (`sluice groups`).
//!
//! This module owns the checks and the problem list. It must never write anything, run a
//! component, or open the store itself (the caller passes the principals it knows).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sandbox::{World, world};
use crate::spec::{self, Bundle, LoadOptions, Permission, Principal, SpecError, TaskKind};

/// One problem, as `sluice validate --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place =
            [self.file.clone(), self.line.map(|l| l.to_string()), self.col.map(|c| c.to_string()), self.key.clone()];
        let place: Vec<String> = place.into_iter().flatten().collect();
        if !place.is_empty() {
            write!(f, "{}: ", place.join(":"))?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl From<&SpecError> for Problem {
    fn from(error: &SpecError) -> Problem {
        let message = error.message();
        // "… (did you mean `x`?)" becomes the hint
        let (message, hint) = match message.rsplit_once(" (did you mean ") {
            Some((text, close)) => (text.to_string(), Some(format!("did you mean {}", close.trim_end_matches(')')))),
            None => (message, None),
        };
        Problem {
            file: error.file().map(|f| f.display().to_string()),
            line: error.line(),
            col: error.column(),
            key: error.key().map(str::to_string),
            message,
            hint,
        }
    }
}

/// The outcome of validating one bundle for one target.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub valid: bool,
    /// The target it was validated for (absent when the bundle did not load that far).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub problems: Vec<Problem>,
}

/// Who the state directory knows: principals (token holders, group members, whoever runs
/// the command) and groups.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub principals: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

/// Validates the bundle at `path` for `opts`; `principals` are the known principals and
/// groups (`None`: not checked, e.g. when there is no store to ask).
pub fn validate(path: &Path, opts: &LoadOptions, principals: Option<&Known>) -> Report {
    let bundle = match spec::load_with(path, opts) {
        Ok(bundle) => bundle,
        Err(error) => {
            let problems = error.problems().into_iter().map(Problem::from).collect();
            return Report { valid: false, target: None, problems };
        }
    };
    let mut problems = components(&bundle);
    if let Some(known) = principals {
        problems.extend(principals_problems(&bundle, known));
    }
    Report { valid: problems.is_empty(), target: bundle.resolved_target.clone(), problems }
}

/// The targets the bundle file at `path` (a directory holding `sluice.toml`, or the file)
/// declares in `[targets]`, read from the file's TOML without loading the bundle (so a
/// target whose values do not load is still listed). Empty when it declares none.
pub fn declared_targets(path: &Path) -> Result<Vec<String>, String> {
    let file = if path.is_dir() { path.join("sluice.toml") } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {}", file.display(), e.message()))?;
    Ok(match table.get("targets") {
        Some(toml::Value::Table(targets)) => targets.keys().cloned().collect(),
        _ => Vec::new(),
    })
}

/// What each component is used as: (name, as a task, as a command).
fn uses(bundle: &Bundle) -> Vec<(&str, bool, bool)> {
    let mut out: Vec<(&str, bool, bool)> = bundle.components.keys().map(|name| (name.as_str(), false, false)).collect();
    let mut mark = |kind: &TaskKind| {
        let (name, task) = match kind {
            TaskKind::Component { component } => (component.as_str(), true),
            TaskKind::Command(command) => (command.component.as_str(), false),
            _ => return,
        };
        if let Some(entry) = out.iter_mut().find(|(n, _, _)| *n == name) {
            if task { entry.1 = true } else { entry.2 = true }
        }
    };
    for task in bundle.jobs.values().flat_map(|job| &job.tasks) {
        match &task.kind {
            TaskKind::ForEach { template, .. } => mark(&template.kind),
            kind => mark(kind),
        }
    }
    out
}

/// Components exist and are what their tasks need.
fn components(bundle: &Bundle) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (name, as_task, as_command) in uses(bundle) {
        let spec = &bundle.components[name];
        let key = crate::spec::names::child_path("components", name);
        let problem = |message: String, hint: Option<&str>| located(bundle, key.clone(), message, hint);
        if let Err(why) = crate::build::check_fresh(spec) {
            problems.push(problem(why.to_string(), Some("`sluice build` builds the bundle's source components")));
            continue;
        }
        let bytes = match std::fs::read(&spec.path) {
            Ok(bytes) => bytes,
            Err(_) if !spec.path.exists() => {
                let hint = "build it first (a Rust task: `cargo build --release --target wasm32-wasip2`)";
                problems
                    .push(problem(format!("component `{name}`: {} does not exist", spec.path.display()), Some(hint)));
                continue;
            }
            Err(why) => {
                problems.push(problem(format!("component `{name}`: {}: {why}", spec.path.display()), None));
                continue;
            }
        };
        // a core module runs only as a command (a WASI preview1 program, adapted at load)
        let core = wasmparser::Parser::is_core_wasm(&bytes);
        if as_task && core {
            problems.push(problem(
                format!("component `{name}` is a core module, but a task runs it as a sluice task component"),
                Some("a core module with `main` is a WASI preview1 program: use `kind = \"command\"`"),
            ));
        } else if as_task && let Err(why) = world::check_bytes(&bytes, World::Task) {
            problems.push(problem(format!("component `{name}`: {why}"), None));
        }
        if as_command
            && !core
            && let Err(why) = world::check_bytes(&bytes, World::Command)
        {
            problems.push(problem(format!("component `{name}`: {why}"), None));
        }
    }
    problems
}

/// Permissions and `run_as` name known principals.
fn principals_problems(bundle: &Bundle, known: &Known) -> Vec<Problem> {
    let mut principals = known.principals.clone();
    principals.extend(bundle.targets.values().filter_map(|t| t.run_as.clone()));
    let mut problems = Vec::new();
    let mut check = |permissions: &[Permission], key: String| {
        for (index, permission) in permissions.iter().enumerate() {
            let name = permission.principal.name();
            let (message, hint) = match &permission.principal {
                Principal::Group(_) if known.groups.contains(name) => continue,
                Principal::Group(_) => (
                    format!("`{name}` is not a known group"),
                    format!(
                        "known groups: {}; add its members with `sluice groups add {name} PRINCIPAL…`",
                        crate::spec::names::list(&known.groups)
                    ),
                ),
                _ if principals.contains(name) => continue,
                _ => (
                    format!("`{name}` is not a known principal"),
                    format!(
                        "known: {}; create a token for it with `sluice tokens create --principal {name}`",
                        crate::spec::names::list(&principals)
                    ),
                ),
            };
            problems.push(located(
                bundle,
                format!("{key}[{index}].{}", permission.principal.key()),
                message,
                Some(&hint),
            ));
        }
    };
    for job in bundle.jobs.values() {
        check(&job.permissions, format!("jobs.{}.permissions", job.name));
    }
    for (name, target) in &bundle.targets {
        check(&target.permissions, format!("targets.{name}.permissions"));
        for (job, over) in &target.jobs {
            check(&over.permissions, format!("targets.{name}.jobs.{job}.permissions"));
        }
    }
    problems
}

/// A problem at `key`, located in the bundle's files (the bundle file when not found).
fn located(bundle: &Bundle, key: String, message: String, hint: Option<&str>) -> Problem {
    let place = bundle.locate(&key);
    Problem {
        file: Some(place.as_ref().map_or(&bundle.file, |p| &p.file).display().to_string()),
        line: place.as_ref().map(|p| p.line),
        col: place.as_ref().map(|p| p.column),
        key: Some(key),
        message,
        hint: hint.map(str::to_string),
    }
}

/// The state directory a bundle's commands use by default, for reading principals.
pub fn default_state_dir(bundle_path: &Path) -> PathBuf {
    let dir = if bundle_path.is_dir() { bundle_path } else { bundle_path.parent().unwrap_or(Path::new(".")) };
    dir.join(".sluice")
}
