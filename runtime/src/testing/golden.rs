//! Golden files: a task's `/out` compared with files kept in the bundle, or rewritten from
//! it (`--update-golden`). A golden *file* is compared with the file of the same name in
//! `/out`; a golden *directory* with the whole of `/out` (no file missing, none extra).
//! `.json` files are compared as JSON (the diff names the path that differs), other text
//! line by line, anything else byte for byte.
//!
//! A golden `.json` file that does not parse is bad input ([`TestingError::Golden`]). It
//! must never write anything but under `update`, and then only the golden path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Failure, GoldenUpdate, TestingError, diff};

/// Whether `golden` names a directory: it is one, or it does not exist yet and has no
/// extension.
fn is_dir(golden: &Path) -> bool {
    golden.is_dir() || (!golden.exists() && golden.extension().is_none())
}

/// `None` when `task`'s `/out` (materialised at `out`) matches `golden`, else the failure.
pub fn compare(task: &str, golden: &Path, out: Option<&Path>, line: usize) -> Result<Option<Failure>, TestingError> {
    if !golden.exists() {
        let message = format!(
            "task `{task}`: golden {} does not exist; `sluice test --update-golden` writes it from the current output",
            golden.display()
        );
        return Ok(Some(Failure { line, message, diff: None }));
    }
    let diff = differences(golden, out)?;
    Ok((!diff.is_empty()).then(|| Failure {
        line,
        message: format!("task `{task}`: /out differs from golden {}", golden.display()),
        diff: Some(diff),
    }))
}

/// Rewrites `golden` from `task`'s `/out`, reporting what changed.
pub fn update(task: &str, golden: &Path, out: Option<&Path>) -> Result<GoldenUpdate, TestingError> {
    let diff = if golden.exists() { differences(golden, out)? } else { format!("(new) {}", golden.display()) };
    if is_dir(golden) {
        if golden.exists() {
            std::fs::remove_dir_all(golden).map_err(|e| TestingError::io(golden, e))?;
        }
        std::fs::create_dir_all(golden).map_err(|e| TestingError::io(golden, e))?;
        if let Some(out) = out {
            for rel in files_under(out)? {
                let dest = golden.join(&rel);
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| TestingError::io(parent, e))?;
                }
                std::fs::copy(out.join(&rel), &dest).map_err(|e| TestingError::io(&dest, e))?;
            }
        }
    } else {
        let actual = actual_file(golden, out);
        let Some(actual) = actual.filter(|a| a.is_file()) else {
            return Err(TestingError::Io {
                path: golden.display().to_string(),
                message: format!("task `{task}` wrote no /out/{} to update this golden file from", name(golden)),
            });
        };
        if let Some(parent) = golden.parent() {
            std::fs::create_dir_all(parent).map_err(|e| TestingError::io(parent, e))?;
        }
        std::fs::copy(&actual, golden).map_err(|e| TestingError::io(golden, e))?;
    }
    Ok(GoldenUpdate { task: task.to_string(), path: golden.display().to_string(), diff })
}

fn name(golden: &Path) -> String {
    golden.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn actual_file(golden: &Path, out: Option<&Path>) -> Option<PathBuf> {
    out.map(|out| out.join(name(golden)))
}

/// The whole difference between `golden` and `/out` (empty when equal).
fn differences(golden: &Path, out: Option<&Path>) -> Result<String, TestingError> {
    if !is_dir(golden) {
        let actual = actual_file(golden, out).filter(|a| a.is_file());
        return file_diff(golden, actual.as_deref());
    }
    let expected = files_under(golden)?;
    let actual = match out {
        Some(out) => files_under(out)?,
        None => BTreeSet::new(),
    };
    let mut parts = Vec::new();
    for rel in expected.union(&actual) {
        let (e, a) = (expected.contains(rel), actual.contains(rel));
        let shown = rel.display();
        if !a {
            // read all the same: a malformed golden file is bad input wherever it is
            file_diff(&golden.join(rel), None)?;
            parts.push(format!("{shown}: missing from /out"));
        } else if !e {
            parts.push(format!("{shown}: in /out but not in the golden directory"));
        } else if let Some(out) = out {
            let d = file_diff(&golden.join(rel), Some(&out.join(rel)))?;
            if !d.is_empty() {
                parts.push(format!("{shown}:\n{d}"));
            }
        }
    }
    Ok(parts.join("\n"))
}

/// How `actual` differs from the golden file `expected` (empty when equal).
fn file_diff(expected: &Path, actual: Option<&Path>) -> Result<String, TestingError> {
    let want = std::fs::read(expected).map_err(|e| TestingError::io(expected, e))?;
    let is_json = expected.extension().is_some_and(|x| x == "json");
    let want_json = if is_json {
        let parsed = serde_json::from_slice::<serde_json::Value>(&want);
        Some(
            parsed
                .map_err(|e| TestingError::Golden { path: expected.display().to_string(), message: e.to_string() })?,
        )
    } else {
        None
    };
    let Some(actual) = actual else {
        return Ok(format!("/out has no {}", name(expected)));
    };
    let got = std::fs::read(actual).map_err(|e| TestingError::io(actual, e))?;
    if want == got {
        return Ok(String::new());
    }
    if let (Some(want), Ok(got)) = (&want_json, serde_json::from_slice::<serde_json::Value>(&got)) {
        return Ok(diff::json_diff(want, &got, "$").join("\n"));
    }
    match (std::str::from_utf8(&want), std::str::from_utf8(&got)) {
        (Ok(w), Ok(g)) => Ok(diff::text_diff(w, g)),
        _ => Ok(format!(
            "binary files differ: expected {} bytes (blake3 {}), got {} bytes (blake3 {})",
            want.len(),
            &blake3::hash(&want).to_hex()[..16],
            got.len(),
            &blake3::hash(&got).to_hex()[..16]
        )),
    }
}

/// Every regular file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Result<BTreeSet<PathBuf>, TestingError> {
    let mut out = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).map_err(|e| TestingError::io(&at, e))? {
            let path = entry.map_err(|e| TestingError::io(&at, e))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.insert(rel.to_path_buf());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_files_and_directories_compare_update_and_refuse_malformed_json() {
        let dir = tempfile::tempdir().unwrap();
        let (out, golden) = (dir.path().join("out"), dir.path().join("golden"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("a.csv"), "x,y\n1,2\n").unwrap();
        std::fs::write(out.join("b.json"), r#"{"n": 2}"#).unwrap();
        // a directory golden that does not exist yet: a failure, then written by update
        assert!(compare("t", &golden, Some(&out), 3).unwrap().unwrap().message.contains("does not exist"));
        update("t", &golden, Some(&out)).unwrap();
        assert_eq!(compare("t", &golden, Some(&out), 3).unwrap(), None);
        std::fs::write(out.join("b.json"), r#"{"n": 3}"#).unwrap();
        let failure = compare("t", &golden, Some(&out), 3).unwrap().unwrap();
        assert_eq!(failure.diff.as_deref(), Some("b.json:\n$.n: expected 2, got 3"));
        // one golden file: text diff; malformed JSON golden: bad input
        let file = golden.join("a.csv");
        std::fs::write(out.join("a.csv"), "x,y\n1,3\n").unwrap();
        let failure = compare("t", &file, Some(&out), 3).unwrap().unwrap();
        assert!(failure.diff.unwrap().contains("- 1,2\n+ 1,3"));
        std::fs::write(golden.join("b.json"), "{oops").unwrap();
        let err = compare("t", &golden.join("b.json"), Some(&out), 3).unwrap_err();
        assert!(matches!(err, TestingError::Golden { .. }), "{err}");
    }
}
