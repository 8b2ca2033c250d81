//! Components built from source: `component = { path = "tasks/x", lang = "python" | "rust" }`.
//!
//! Owns where a source component's artifact lives (`build/NAME.wasm` beside the bundle,
//! [`crate::spec::BUILD_DIR`]), the digest of its sources that makes builds content-addressed
//! (an unchanged task is not rebuilt; a changed one is refused by every loader until it is
//! rebuilt, so a run never uses a stale artifact), running each language's build tool, and
//! scaffolding new tasks from the SDK's templates ([`scaffold`]). It must never run a component
//! or touch the store: it only turns sources into `.wasm` files.

mod digest;
mod python;
mod rust;
pub mod scaffold;
mod tools;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::spec::{Bundle, ComponentSpec, SourceLang};
pub use digest::source_digest;
pub use tools::Tools;

/// Beside `build/NAME.wasm`: the digest of the sources it was built from, written last.
const RECORD_SUFFIX: &str = "source";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("component `{name}` is built from {} ({lang}) and has not been built: run `sluice build`", dir.display())]
    NotBuilt { name: String, dir: PathBuf, lang: &'static str },
    #[error(
        "component `{name}`: its sources in {} changed since the last `sluice build`: run `sluice build` again",
        dir.display()
    )]
    Stale { name: String, dir: PathBuf },
    #[error("component `{name}`: reading its sources in {}: {message}", dir.display())]
    Sources { name: String, dir: PathBuf, message: String },
    #[error("component `{name}`: {message}")]
    Failed { name: String, message: String },
    #[error("{0}")]
    Tool(String),
    #[error("no component named `{0}` is built from source in this bundle")]
    Unknown(String),
}

/// What building one component did.
#[derive(Debug, Clone, Serialize)]
pub struct Built {
    pub component: String,
    pub lang: &'static str,
    pub source: PathBuf,
    pub artifact: PathBuf,
    /// blake3 of the artifact (what a run pins).
    pub hash: String,
    /// `built` or `up to date`.
    pub outcome: &'static str,
    pub millis: u64,
}

/// Refuses a source component whose artifact is missing or was built from other sources;
/// `Ok` for a plain `.wasm` component.
pub fn check_fresh(spec: &ComponentSpec) -> Result<(), BuildError> {
    let Some(src) = &spec.source else { return Ok(()) };
    if !spec.path.is_file() {
        return Err(BuildError::NotBuilt { name: spec.name.clone(), dir: src.dir.clone(), lang: src.lang.as_str() });
    }
    let digest = digest_of(spec)?;
    if recorded(&spec.path).as_deref() != Some(digest.as_str()) {
        return Err(BuildError::Stale { name: spec.name.clone(), dir: src.dir.clone() });
    }
    Ok(())
}

/// The bundle's source components to build: all of them, or the one named.
pub fn selected<'a>(bundle: &'a Bundle, only: Option<&str>) -> Result<Vec<&'a ComponentSpec>, BuildError> {
    let all: Vec<_> = bundle.components.values().filter(|c| c.source.is_some()).collect();
    match only {
        None => Ok(all),
        Some(name) => match all.into_iter().find(|c| c.name == name) {
            Some(c) => Ok(vec![c]),
            None => Err(BuildError::Unknown(name.to_string())),
        },
    }
}

/// Builds `spec` unless its artifact was built from exactly these sources (`force`: always).
pub fn build(spec: &ComponentSpec, tools: &Tools, force: bool) -> Result<Built, BuildError> {
    let Some(src) = &spec.source else { return Err(BuildError::Unknown(spec.name.clone())) };
    let started = Instant::now();
    let digest = digest_of(spec)?;
    let fresh = spec.path.is_file() && recorded(&spec.path).as_deref() == Some(digest.as_str());
    let outcome = if fresh && !force {
        "up to date"
    } else {
        let failed = |message: String| BuildError::Failed { name: spec.name.clone(), message };
        let dir = spec.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| failed(format!("creating {}: {e}", dir.display())))?;
        // no record while building: a half-written artifact is never taken for a fresh one
        let _ = std::fs::remove_file(record_path(&spec.path));
        match src.lang {
            SourceLang::Python => python::build(&src.dir, &spec.path, tools).map_err(failed)?,
            SourceLang::Rust => rust::build(&src.dir, &spec.path, tools).map_err(failed)?,
        }
        // after the build: a build may add sources of its own (cargo writes Cargo.lock)
        let digest = digest_of(spec)?;
        std::fs::write(record_path(&spec.path), &digest)
            .map_err(|e| failed(format!("recording the build of {}: {e}", spec.path.display())))?;
        "built"
    };
    let bytes = std::fs::read(&spec.path).map_err(|e| BuildError::Failed {
        name: spec.name.clone(),
        message: format!("{}: {e}", spec.path.display()),
    })?;
    Ok(Built {
        component: spec.name.clone(),
        lang: src.lang.as_str(),
        source: src.dir.clone(),
        artifact: spec.path.clone(),
        hash: blake3::hash(&bytes).to_hex().to_string(),
        outcome,
        millis: started.elapsed().as_millis() as u64,
    })
}

fn digest_of(spec: &ComponentSpec) -> Result<String, BuildError> {
    let src = spec.source.as_ref().ok_or_else(|| BuildError::Unknown(spec.name.clone()))?;
    source_digest(&src.dir, src.lang).map_err(|e| BuildError::Sources {
        name: spec.name.clone(),
        dir: src.dir.clone(),
        message: e.to_string(),
    })
}

fn record_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".");
    name.push(RECORD_SUFFIX);
    PathBuf::from(name)
}

fn recorded(artifact: &Path) -> Option<String> {
    std::fs::read_to_string(record_path(artifact)).ok().map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests;
