//! A Rust task built with cargo for `wasm32-wasip2`; the artifact is the `.wasm` cargo
//! reports for the task's own package (read from cargo's JSON messages, not guessed).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Tools;

const TARGET: &str = "wasm32-wasip2";

pub(super) fn build(dir: &Path, out: &Path, tools: &Tools) -> Result<(), String> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(format!("{} does not exist (a Rust task is a cargo package)", manifest.display()));
    }
    let mut child = Command::new(&tools.cargo)
        .args(["build", "--release", "--target", TARGET, "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", tools.cargo.display()))?;
    let stdout = child.stdout.take().ok_or("cargo's output is not readable")?;
    let mut wasm: Option<PathBuf> = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
        if let Some(found) = artifact(&line, &manifest) {
            wasm = Some(found);
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build of {} failed (its output is above; `rustup target add {TARGET}` if the target is missing)",
            dir.display()
        ));
    }
    let wasm = wasm.ok_or_else(|| {
        format!("cargo built no .wasm for {}: the package needs `crate-type = [\"cdylib\"]`", manifest.display())
    })?;
    std::fs::copy(&wasm, out).map_err(|e| format!("copying {} to {}: {e}", wasm.display(), out.display()))?;
    Ok(())
}

/// The `.wasm` of a `compiler-artifact` message for the package at `manifest`.
fn artifact(line: &str, manifest: &Path) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" {
        return None;
    }
    let same = |p: &str| Path::new(p).canonicalize().ok() == manifest.canonicalize().ok();
    if !msg["manifest_path"].as_str().is_some_and(same) {
        return None;
    }
    msg["filenames"].as_array()?.iter().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm")).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifact_is_the_packages_own_wasm() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(&manifest, "").unwrap();
        let line = |m: &Path, files: &str| {
            format!(r#"{{"reason":"compiler-artifact","manifest_path":"{}","filenames":[{files}]}}"#, m.display())
        };
        let ours = line(&manifest, r#""/t/libx.rlib","/t/x.wasm""#);
        assert_eq!(artifact(&ours, &manifest), Some(PathBuf::from("/t/x.wasm")));
        let dep = line(Path::new("/elsewhere/Cargo.toml"), r#""/t/dep.wasm""#);
        assert_eq!(artifact(&dep, &manifest), None);
        assert_eq!(artifact(r#"{"reason":"build-finished","success":true}"#, &manifest), None);
        assert_eq!(artifact("not json", &manifest), None);
    }
}
