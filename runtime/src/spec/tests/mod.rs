//! Tests of the bundle file: valid bundles round-trip, invalid ones say where and why.

use std::path::Path;

use super::{SpecError, parse};

mod calls;
mod command;
mod errors;
mod flow;
mod hosts;
mod include;
mod kinds;
mod references;
mod sandbox;
mod schema;
mod targets;
mod valid;
mod vars;

const FILE: &str = "examples/hello/sluice.toml";

const HEAD: &str = r#"[bundle]
name = "hello"

[components]
ingest = { path = "ingest.wasm" }
clean = "clean.wasm"
"#;

/// HEAD plus one job `hello` whose tasks are given as TOML.
fn with_job(job: &str) -> String {
    format!("{HEAD}\n{job}")
}

fn task(lines: &str) -> String {
    with_job(&format!("[[jobs.hello.tasks]]\n{lines}\n"))
}

/// The bundle `text` describes; panics with the error when it is refused.
fn bundle_of(text: &str) -> super::Bundle {
    parse(text, Path::new(FILE), Path::new("/b")).unwrap_or_else(|error| panic!("refused: {error}"))
}

/// The task `key` of job `hello` in `text`.
fn task_of(text: &str, key: &str) -> super::TaskSpec {
    let bundle = bundle_of(text);
    match bundle.jobs["hello"].task(key) {
        Some(task) => task.clone(),
        None => panic!("no task `{key}`"),
    }
}

fn error_of(text: &str) -> SpecError {
    error_in(Path::new("/b"), text)
}

/// The error parsing `text` with bundle root `root` gives.
fn error_in(root: &Path, text: &str) -> SpecError {
    match parse(text, Path::new(FILE), root) {
        Ok(bundle) => panic!("accepted an invalid bundle: {bundle:?}"),
        Err(error) => error,
    }
}

/// The 1-based line on which `needle` first appears in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` not in text"));
    text[..at].matches('\n').count() + 1
}

/// Asserts the error's line, key path and that its message holds `needle`.
fn assert_error(text: &str, line: usize, key: &str, needle: &str) -> String {
    assert_error_in(Path::new("/b"), text, line, key, needle)
}

/// [`assert_error`] for a bundle rooted at `root`.
fn assert_error_in(root: &Path, text: &str, line: usize, key: &str, needle: &str) -> String {
    let error = error_in(root, text);
    let shown = error.to_string();
    assert_eq!(error.line(), Some(line), "wrong line in: {shown}");
    assert_eq!(error.key(), Some(key), "wrong key in: {shown}");
    assert!(shown.starts_with(&format!("{FILE}:{line}:")), "no location in: {shown}");
    assert!(shown.contains(&format!(": {key}: ")), "no key path in: {shown}");
    assert!(shown.contains(needle), "`{needle}` missing from: {shown}");
    assert!(!shown.contains('\n'), "multi-line error: {shown}");
    shown
}

/// A temporary bundle root `<tmp>/b` holding the directories the module docs' example
/// names (`data/landing`, `data/scratch`, an included `jobs/extra.toml`), next to its data
/// root `<tmp>/shared-data`.
fn docs_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("b");
    for sub in ["b/data/landing", "b/data/scratch", "shared-data"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    std::fs::create_dir_all(root.join("jobs")).expect("mkdir");
    std::fs::write(root.join("jobs/extra.toml"), "[components]\nextra = \"extra.wasm\"\n").expect("write");
    (dir, root)
}

const TASK_A: &str = "[[jobs.hello.tasks]]\nkey = \"a\"\ncomponent = \"ingest\"\n";
