//! What a WebAssembly file is, read without compiling it: a core module or a component,
//! and which names a component imports and exports at its top level.
//!
//! `sluice validate` uses this to say "this component is not a task" before anything runs,
//! in milliseconds where compiling takes seconds. It owns only the decoding (with
//! `wasmparser`, the parser wasmtime itself uses); it must never compile, link or run a
//! component, and the linker stays the final judge when a task runs.

use std::path::Path;

use wasmparser::{Encoding, Parser, Payload};

/// The export a sluice task component has (`export run: func(ctx) -> …` in sdk/wit).
pub const TASK_EXPORT: &str = "run";
/// The interface a `wasi:cli/command` component exports (any 0.2 version).
pub const COMMAND_EXPORT_PREFIX: &str = "wasi:cli/run@";
/// Import namespaces the runtime provides to a component (anything else cannot link).
pub const PROVIDED_IMPORTS: [&str; 2] = ["sluice:task/", "wasi:"];

/// What a WebAssembly file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A core module (a WASI preview1 program runs as a command through the adapter).
    Module,
    /// A component with these top-level imports and exports, in file order.
    Component { imports: Vec<String>, exports: Vec<String> },
}

impl Shape {
    /// Whether it exports the sluice task world's `run`.
    pub fn is_task(&self) -> bool {
        matches!(self, Shape::Component { exports, .. } if exports.iter().any(|e| e == TASK_EXPORT))
    }

    /// Whether it runs as a command: a `wasi:cli/run` component or a core module.
    pub fn is_command(&self) -> bool {
        match self {
            Shape::Module => true,
            Shape::Component { exports, .. } => exports.iter().any(|e| e.starts_with(COMMAND_EXPORT_PREFIX)),
        }
    }

    /// The imports sluice does not provide (a component importing them cannot link).
    pub fn foreign_imports(&self) -> Vec<&str> {
        match self {
            Shape::Module => Vec::new(),
            Shape::Component { imports, .. } => imports
                .iter()
                .map(String::as_str)
                .filter(|name| !PROVIDED_IMPORTS.iter().any(|prefix| name.starts_with(prefix)))
                .collect(),
        }
    }
}

/// Reads the file at `path` and decodes its shape; the error says why it is not WebAssembly.
pub fn inspect_file(path: &Path) -> Result<Shape, String> {
    let bytes = std::fs::read(path).map_err(|why| format!("cannot read {}: {why}", path.display()))?;
    inspect(&bytes)
}

/// Decodes the shape of WebAssembly bytes.
pub fn inspect(bytes: &[u8]) -> Result<Shape, String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("not a WebAssembly file (no `\\0asm` header)".to_string());
    }
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|why| format!("malformed WebAssembly: {why}"))?;
        match payload {
            Payload::Version { encoding: Encoding::Module, .. } if depth == 0 => return Ok(Shape::Module),
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports.push(import.map_err(|why| format!("malformed import: {why}"))?.name.0.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    exports.push(export.map_err(|why| format!("malformed export: {why}"))?.name.0.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(Shape::Component { imports, exports })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_modules_are_told_apart() {
        assert!(inspect(b"hello world").unwrap_err().contains("not a WebAssembly file"));
        let module = [0, b'a', b's', b'm', 1, 0, 0, 0];
        assert_eq!(inspect(&module), Ok(Shape::Module));
        assert!(Shape::Module.is_command() && !Shape::Module.is_task());
        let empty_component = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];
        let shape = inspect(&empty_component).unwrap();
        assert_eq!(shape, Shape::Component { imports: vec![], exports: vec![] });
        assert!(!shape.is_task() && !shape.is_command());
    }

    #[test]
    fn foreign_imports_are_named() {
        let shape = Shape::Component {
            imports: vec!["wasi:io/streams@0.2.0".into(), "sluice:task/params@0.1.0".into(), "acme:db/query".into()],
            exports: vec!["run".into()],
        };
        assert!(shape.is_task());
        assert_eq!(shape.foreign_imports(), ["acme:db/query"]);
    }
}
