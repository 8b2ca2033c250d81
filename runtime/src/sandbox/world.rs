//! Which world a component implements, read from its bytes before anything is compiled.
//!
//! Owns [`inspect`] (the top-level imports and exports of a component, decoded with
//! wasmparser in milliseconds) and [`check`] (whether that fits the way a task uses it,
//! with a hint that says what to change): compiling an 18 MB component of the wrong kind
//! takes seconds before wasmtime's linker refuses it. It never compiles or runs anything;
//! wasmtime's own type check at link time stays the final word.

use std::collections::BTreeSet;

use super::cache::World;

/// The task world's package and the version this sluice provides.
pub const TASK_PACKAGE: &str = "sluice:task";
pub const TASK_WORLD_VERSION: &str = "0.1.0";
/// The export a command component provides (`wasi:cli/run@0.2.x`).
const CLI_RUN: &str = "wasi:cli/run@";

/// The top-level imports and exports of a component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub imports: BTreeSet<String>,
    pub exports: BTreeSet<String>,
}

impl Shape {
    /// Exports a plain `run` function (a sluice task).
    pub fn exports_task_run(&self) -> bool {
        self.exports.contains("run")
    }

    /// Exports `wasi:cli/run` (a command).
    pub fn exports_cli_run(&self) -> bool {
        self.exports.iter().any(|e| e.starts_with(CLI_RUN))
    }

    /// The versions of `sluice:task` interfaces it imports.
    pub fn task_versions(&self) -> BTreeSet<&str> {
        let prefix = format!("{TASK_PACKAGE}/");
        self.imports
            .iter()
            .filter(|i| i.starts_with(&prefix))
            .filter_map(|i| i.split_once('@').map(|(_, v)| v))
            .collect()
    }
}

/// The imports and exports of component `bytes` (`Err`: why it cannot be read).
pub fn inspect(bytes: &[u8]) -> Result<Shape, String> {
    let mut shape = Shape::default();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("cannot read the component: {e}"))? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| format!("cannot read the component's imports: {e}"))?;
                    shape.imports.insert(import.name.0.to_string());
                }
            }
            wasmparser::Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| format!("cannot read the component's exports: {e}"))?;
                    shape.exports.insert(export.name.0.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(shape)
}

/// Whether a component of this shape can run as `world`; `Err` says why not and what to do.
pub fn check(shape: &Shape, world: World) -> Result<(), String> {
    let versions = shape.task_versions();
    match world {
        World::Task => {
            if let Some(other) = versions.iter().find(|v| **v != TASK_WORLD_VERSION) {
                return Err(format!(
                    "it was built against {TASK_PACKAGE}@{other}, and this sluice provides \
                     {TASK_PACKAGE}@{TASK_WORLD_VERSION}: rebuild it with the sluice-sdk (or sdk/wit) of this version"
                ));
            }
            if !shape.exports_task_run() && shape.exports_cli_run() {
                return Err("no export `run`: this is a command (it exports `wasi:cli/run`, a program with \
                            `main`); run it as a command task: add `kind = \"command\"` (or `sluice task run --command`)"
                    .into());
            }
            if !shape.exports_task_run() {
                return Err(format!(
                    "no export `run`: a task component exports `run` of {TASK_PACKAGE}/task@{TASK_WORLD_VERSION} \
                     (build it with the sluice-sdk); it exports {}",
                    listed(&shape.exports)
                ));
            }
            Ok(())
        }
        World::Command if !shape.exports_cli_run() && shape.exports_task_run() => {
            Err("this is a sluice task component (it exports `run`), not a command: remove `kind = \"command\"` \
             (and `--command`) to run it as a task"
                .into())
        }
        World::Command if !shape.exports_cli_run() => Err(format!(
            "no export `wasi:cli/run`: a command is a program with `main` built for wasm32-wasip2 (or a \
             wasm32-wasip1 module); it exports {}",
            listed(&shape.exports)
        )),
        World::Command => Ok(()),
    }
}

/// Read `bytes` and check them for `world` in one step (for `sluice validate` and the
/// component cache): `Ok` when nothing speaks against running it so.
pub fn check_bytes(bytes: &[u8], world: World) -> Result<(), String> {
    check(&inspect(bytes)?, world)
}

fn listed(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "nothing".into();
    }
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(imports: &[&str], exports: &[&str]) -> Shape {
        Shape {
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: exports.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn each_mismatch_says_what_to_change() {
        let command = shape(&["wasi:cli/stdout@0.2.3"], &["wasi:cli/run@0.2.3"]);
        let task = shape(&["sluice:task/params@0.1.0"], &["run"]);
        assert!(check(&task, World::Task).is_ok() && check(&command, World::Command).is_ok());
        let e = check(&command, World::Task).unwrap_err();
        assert!(e.contains("no export `run`") && e.contains("kind = \"command\""), "{e}");
        let e = check(&task, World::Command).unwrap_err();
        assert!(e.contains("remove `kind = \"command\"`"), "{e}");
        let newer = shape(&["sluice:task/params@0.2.0", "sluice:task/values@0.2.0"], &["run"]);
        let e = check(&newer, World::Task).unwrap_err();
        assert!(e.contains("sluice:task@0.2.0") && e.contains("sluice:task@0.1.0"), "{e}");
        let e = check(&shape(&[], &["other"]), World::Task).unwrap_err();
        assert!(e.contains("`other`"), "{e}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(inspect(b"\0asm\x0d\0\x01\0garbage").is_err());
    }
}
