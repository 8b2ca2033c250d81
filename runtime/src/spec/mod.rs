//! The bundle file, `sluice.toml`: parsing, validation, parameters and `{{ … }}` references.
//!
//! This module owns the translation from the text a user wrote to a [`Bundle`] the rest of
//! the runtime can trust: every key is known, every name is well formed, every duration and
//! size parses, every task's component and dependencies exist, the task graph has no cycle
//! (tasks come back in a stable topological order), and every `{{ … }}` reference in a
//! parameter names something that will exist when the task runs. Problems come back as a
//! [`SpecError`] that points at `file:line:col` and the key path, with a hint when one helps.
//!
//! What it must never do: any I/O beyond reading the bundle file itself (component paths
//! are resolved, not opened), execute anything, or touch the store. Rendering references
//! ([`template::render`]) is offered as a pure function; the values come from the caller.
//!
//! The accepted format (anything else is an error):
//!
//! ```toml
//! [bundle]
//! name = "hello"
//!
//! [components]
//! ingest = { path = "tasks/ingest.wasm" }   # or: ingest = "tasks/ingest.wasm"
//!
//! [jobs.hello]
//! parameters = { who = "world", n = 10 }     # scalars become strings, arrays/tables JSON
//! timeout = "1h"
//!
//! [[jobs.hello.tasks]]
//! key = "extract"
//! component = "ingest"
//! params = { greeting = "hi {{ job.parameters.who }}" }
//! depends_on = []
//! timeout = "10s"
//! limits = { memory = "64MiB", max_log = "1MiB", max_output = "64KiB" }
//! secrets = ["storage/access_key"]
//! ```

mod build;
mod duration;
mod error;
mod graph;
mod job;
pub mod names;
mod read;
pub mod template;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::{parse_duration, parse_size};
pub use error::SpecError;
pub use template::Reference;

/// The file name looked for when [`load`] is given a directory.
pub const BUNDLE_FILE: &str = "sluice.toml";

/// A parsed and validated bundle file.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// `bundle.name`.
    pub name: String,
    /// The absolute directory that relative paths in the file resolve against.
    pub root: PathBuf,
    /// The bundle file, as the caller named it.
    pub file: PathBuf,
    /// Components by name.
    pub components: BTreeMap<String, ComponentSpec>,
    /// Jobs by name.
    pub jobs: BTreeMap<String, JobSpec>,
}

/// A named WebAssembly component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSpec {
    pub name: String,
    /// `root.join(path)`; existence is checked by whoever loads it, not here.
    pub path: PathBuf,
}

/// A job: parameters and a DAG of tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub name: String,
    /// Parameter defaults, as strings (may hold run-level `{{ job.… }}` references).
    pub parameters: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    /// Topologically sorted; tasks keep their file order wherever dependencies allow.
    pub tasks: Vec<TaskSpec>,
}

/// One task of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub key: String,
    /// The name of a component in [`Bundle::components`].
    pub component: String,
    /// Keys of tasks in the same job, as listed.
    pub depends_on: Vec<String>,
    /// Parameters as strings; values may hold `{{ … }}` references (see [`template`]).
    pub params: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    pub limits: Limits,
    /// Secret names (`scope/key`) the task may read.
    pub secrets: Vec<String>,
}

/// Resource limits of a task; `None` means the runtime default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes.
    pub memory: Option<u64>,
    /// Captured log (stdout + stderr), in bytes.
    pub max_log: Option<u64>,
    /// The task's JSON output, in bytes.
    pub max_output: Option<u64>,
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
                _ => Err(SpecError::NoSingleJob {
                    file: self.file.clone(),
                    known: known(),
                }),
            },
        }
    }
}

impl JobSpec {
    /// The task with this key.
    pub fn task(&self, key: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|task| task.key == key)
    }
}

/// Reads and validates a bundle. `path` is a bundle directory (then `<dir>/sluice.toml`
/// is read) or the bundle file itself. Relative paths in the file resolve against the
/// file's directory.
pub fn load(path: &Path) -> Result<Bundle, SpecError> {
    let file = bundle_file(path)?;
    let text = std::fs::read_to_string(&file).map_err(|why| SpecError::Read {
        path: file.clone(),
        message: why.to_string(),
    })?;
    let root = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parse(&text, &file, &root)
}

fn bundle_file(path: &Path) -> Result<PathBuf, SpecError> {
    if path.is_dir() {
        let file = path.join(BUNDLE_FILE);
        return if file.is_file() {
            Ok(file)
        } else {
            Err(SpecError::NoBundleFile {
                dir: path.to_path_buf(),
            })
        };
    }
    if path.exists() {
        Ok(path.to_path_buf())
    } else {
        Err(SpecError::NotFound {
            path: path.to_path_buf(),
        })
    }
}

/// Parses and validates bundle text. `file` is used only in errors and [`Bundle::file`];
/// `root` is the directory relative paths resolve against (made absolute here).
pub fn parse(text: &str, file: &Path, root: &Path) -> Result<Bundle, SpecError> {
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let root = std::path::absolute(root).map_err(|why| SpecError::Read {
        path: root.to_path_buf(),
        message: why.to_string(),
    })?;
    build::bundle(text, file, root)
}
