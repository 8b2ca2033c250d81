//! Files: what upstream tasks wrote (`/in/<task>/…`, read-only) and what this task writes
//! for its dependents (`/out/…`).
//!
//! In a component these are plain WASI file operations on the directories the host
//! grants; natively (unit tests) they read and write the in-memory
//! [`crate::testing::MockHost`] (`MockHost::input`, `testing::output`), so a task that
//! does its file I/O through this module is tested with plain `cargo test`.
//!
//! Paths are relative (`rows.csv`, `daily/2026-12-01.csv`): no leading `/`, no `..`. A
//! missing input or a bad path is a permanent error (the same inputs fail the same way on
//! retry); a write that fails is transient (a full disk may clear up).

use crate::TaskError;

/// Where the host offers upstream tasks' files.
pub const IN_DIR: &str = "/in";
/// Where this task's files go.
pub const OUT_DIR: &str = "/out";

/// `path` checked to stay inside its directory.
fn checked(path: &str) -> Result<&str, TaskError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.split('/').any(|part| part == ".." || part == "." || part.is_empty());
    if bad {
        return Err(TaskError::permanent(format!(
            "file path `{path}` must be relative, without `.`, `..` or empty parts"
        )));
    }
    Ok(path)
}

/// The bytes of `path` in what `task` wrote to its `/out` (offered at `/in/<task>/<path>`).
pub fn read_input(task: &str, path: &str) -> Result<Vec<u8>, TaskError> {
    let path = checked(path)?;
    imp::read_input(task, path).map_err(|e| TaskError::permanent(format!("reading {IN_DIR}/{task}/{path}: {e}")))
}

/// [`read_input`] as UTF-8 text.
pub fn read_input_to_string(task: &str, path: &str) -> Result<String, TaskError> {
    let bytes = read_input(task, path)?;
    String::from_utf8(bytes).map_err(|_| TaskError::permanent(format!("{IN_DIR}/{task}/{path} is not UTF-8 text")))
}

/// The files `task` offers, as relative paths, sorted (empty when it offers none).
pub fn list_inputs(task: &str) -> Result<Vec<String>, TaskError> {
    imp::list_inputs(task).map_err(|e| TaskError::permanent(format!("listing {IN_DIR}/{task}: {e}")))
}

/// Writes `data` to `/out/<path>` (parent directories created), replacing what was there.
pub fn write_output(path: &str, data: impl AsRef<[u8]>) -> Result<(), TaskError> {
    let path = checked(path)?;
    imp::write_output(path, data.as_ref()).map_err(|e| TaskError::transient(format!("writing {OUT_DIR}/{path}: {e}")))
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::path::{Path, PathBuf};

    pub fn read_input(task: &str, path: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(Path::new(super::IN_DIR).join(task).join(path))
    }

    pub fn list_inputs(task: &str) -> std::io::Result<Vec<String>> {
        let root = Path::new(super::IN_DIR).join(task);
        let mut out = Vec::new();
        if root.is_dir() {
            walk(&root, &root, &mut out)?;
        }
        out.sort();
        Ok(out)
    }

    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path: PathBuf = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }

    pub fn write_output(path: &str, data: &[u8]) -> std::io::Result<()> {
        let file = Path::new(super::OUT_DIR).join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, data)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use crate::testing::with_host;

    fn not_found() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file (the MockHost offers none there)")
    }

    pub fn read_input(task: &str, path: &str) -> std::io::Result<Vec<u8>> {
        with_host(|h| h.inputs.get(&(task.to_string(), path.to_string())).cloned()).ok_or_else(not_found)
    }

    pub fn list_inputs(task: &str) -> std::io::Result<Vec<String>> {
        Ok(with_host(|h| h.inputs.keys().filter(|(t, _)| t == task).map(|(_, p)| p.clone()).collect()))
    }

    pub fn write_output(path: &str, data: &[u8]) -> std::io::Result<()> {
        with_host(|h| h.outputs.insert(path.to_string(), data.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, MockHost};

    #[test]
    fn inputs_and_outputs_go_through_the_mock_host() {
        MockHost::new().input("load", "rows.csv", "id\n1\n").input("load", "a/b.txt", "x").install();
        assert_eq!(read_input_to_string("load", "rows.csv").unwrap(), "id\n1\n");
        assert_eq!(list_inputs("load").unwrap(), ["a/b.txt", "rows.csv"]);
        assert!(list_inputs("other").unwrap().is_empty());
        let missing = read_input("load", "nope.csv").unwrap_err();
        assert!(missing.is_permanent() && missing.message().starts_with("reading /in/load/nope.csv: "), "{missing}");
        write_output("out/report.txt", "done").unwrap();
        assert_eq!(testing::output("out/report.txt").as_deref(), Some(&b"done"[..]));
        for bad in ["/etc/passwd", "../x", "a//b", ""] {
            assert!(write_output(bad, "x").unwrap_err().is_permanent(), "{bad}");
        }
    }
}
