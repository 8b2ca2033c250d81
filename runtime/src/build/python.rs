//! A Python task built by the Python SDK's build (`python -m sluice_sdk.build`), which runs
//! componentize-py, bundles pure-Python requirements and fails naming an unreachable module.

use std::path::Path;
use std::process::{Command, Stdio};

use super::Tools;

pub(super) fn build(dir: &Path, out: &Path, tools: &Tools) -> Result<(), String> {
    let sdk_python = tools.sdk()?.join("python");
    let mut path = std::ffi::OsString::from(&sdk_python);
    if let Some(old) = std::env::var_os("PYTHONPATH") {
        path.push(":");
        path.push(old);
    }
    let status = Command::new(&tools.python)
        .args(["-m", "sluice_sdk.build"])
        .arg(dir)
        .arg("-o")
        .arg(out)
        .env("PYTHONPATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| {
            format!("cannot start {}: {e} (set SLUICE_PYTHON to a Python with componentize-py)", tools.python.display())
        })?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(format!("the Python build of {} failed (exit {code}; its output is above)", dir.display())),
        None => Err(format!("the Python build of {} was killed", dir.display())),
    }
}
