//! Deployments: a bundle snapshotted into the store for one target — its resolved spec,
//! every component by blake3 in the content-addressed blob store, the bundle's content
//! hash, who deployed, when, and the Git metadata of the tree it came from — numbered per
//! (workspace, bundle, target), with a current pointer that deploy, promote and rollback
//! move in one atomic write, and a journal of every change.
//!
//! Owns: reading a bundle into a [`Snapshot`] (client side: [`snapshot`]), the content
//! hash ([`bundle_hash`]), committing, planning, promoting (with its gates), approving,
//! rolling back and destroying (owner side, [`apply`]), the plan's diff ([`plan`]), the
//! target rules the bundle declares ([`rules`]), and the bundle a deployed job runs from
//! ([`jobs`]) — its components read from the blob store, never from the working tree.
//!
//! It must never speak HTTP, print, or name sled or wasmtime; it decides nothing about
//! runs (the service submits them).

pub mod apply;
pub mod gates;
pub(crate) mod git;
pub mod jobs;
pub mod model;
pub mod plan;
pub mod rules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use apply::{Actor, Deployments, Summary};
pub use model::{Action, DeployedJob, Deployment, GitInfo, JournalEntry, Origin, Snapshot};
pub use plan::{Plan, PlanItem};

use crate::spec::{self, Bundle};

/// The workspace deployments belong to until workspaces are named per deployment.
pub const DEFAULT_WORKSPACE: &str = crate::secrets::DEFAULT_WORKSPACE;

/// The version of the content hash's encoding: a change of encoding changes every hash.
const BUNDLE_HASH_VERSION: &str = "sluice-bundle/2";

/// Why a deployment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The bundle does not load (nothing was written).
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// A component file could not be read at deploy time.
    #[error("component `{name}` ({}): {message}; nothing was deployed", path.display())]
    Component { name: String, path: PathBuf, message: String },
    /// The deployment's blobs are not all in the store (a remote client must upload them).
    #[error("the store lacks the component blobs {0:?}; upload them first")]
    MissingBlobs(Vec<String>),
    /// Another deploy moved the target first.
    #[error(
        "conflict: target `{target}` is now at deployment {found}, not {expected} as this deploy expected \
         (another deploy to it won); plan and deploy again"
    )]
    Conflict { target: String, expected: String, found: String },
    /// A rule of the target refuses the deployment (production's Git rules, a gate).
    #[error("{0}")]
    Refused(String),
    /// The caller lacks a permission.
    #[error("{0}")]
    Denied(String),
    /// No such target, deployment or job.
    #[error("{0}")]
    NotFound(String),
    /// Bad input (a name, a number).
    #[error("{0}")]
    Invalid(String),
    #[error("reading Git metadata: {0}")]
    Git(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("blob store: {0}")]
    Blob(#[from] crate::cache::BlobError),
    #[error("corrupt deployment record: {0}")]
    Corrupt(String),
}

/// The bundle's content hash: blake3 over a version tag, the bundle file's text, every
/// included file's (path relative to the root, text) and every component's (name,
/// blake3), in name order, each part length-prefixed. It does not depend on the target (a
/// target's variables resolve the same text differently), so a promotion carries it
/// unchanged from test to prod, and `sluice test` records its verdicts under it; the
/// resolved spec of each target has its own hash ([`spec_hash`]).
pub fn bundle_hash(source: &str, includes: &BTreeMap<String, String>, components: &BTreeMap<String, String>) -> String {
    let mut h = blake3::Hasher::new();
    let mut part = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(BUNDLE_HASH_VERSION.as_bytes());
    part(source.as_bytes());
    part(&(includes.len() as u64).to_le_bytes());
    for (path, text) in includes {
        part(path.as_bytes());
        part(text.as_bytes());
    }
    for (name, hash) in components {
        part(name.as_bytes());
        part(hash.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// What a bundle's content hash covers, read from its files.
pub struct Content {
    /// The bundle file's text.
    pub source: String,
    /// Each included file's text, by path relative to the bundle root.
    pub includes: BTreeMap<String, String>,
    /// Each component's blake3 (hex), by name.
    pub components: BTreeMap<String, String>,
    /// Each component's file, by blake3.
    pub files: BTreeMap<String, PathBuf>,
    /// [`bundle_hash`] of the above.
    pub hash: String,
}

/// Read `bundle`'s files (its text, its includes', its components') into its [`Content`].
pub fn content(bundle: &Bundle) -> Result<Content, DeployError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| DeployError::from(spec::SpecError::Read { path: path.to_path_buf(), message: e.to_string() }))
    };
    let source = read(&bundle.file)?;
    let shown_dir = bundle.file.parent().unwrap_or(Path::new(""));
    let mut includes = BTreeMap::new();
    for shown in &bundle.includes {
        let relative = shown.strip_prefix(shown_dir).unwrap_or(shown);
        includes.insert(relative.to_string_lossy().into_owned(), read(&bundle.root.join(relative))?);
    }
    let mut components = BTreeMap::new();
    let mut files = BTreeMap::new();
    for (name, c) in &bundle.components {
        let failed = |e: std::io::Error| DeployError::Component {
            name: name.clone(),
            path: c.path.clone(),
            message: format!("{e} (did you build the tasks?)"),
        };
        crate::build::check_fresh(c).map_err(|e| DeployError::Component {
            name: name.clone(),
            path: c.path.clone(),
            message: e.to_string(),
        })?;
        let mut file = std::fs::File::open(&c.path).map_err(failed)?;
        let mut hasher = blake3::Hasher::new();
        std::io::copy(&mut file, &mut hasher).map_err(failed)?;
        let hash = hasher.finalize().to_hex().to_string();
        files.insert(hash.clone(), c.path.clone());
        components.insert(name.clone(), hash);
    }
    let hash = bundle_hash(&source, &includes, &components);
    Ok(Content { source, includes, components, files, hash })
}

/// blake3 of the resolved spec's canonical encoding (JSON of ordered maps).
pub fn spec_hash(spec: &Bundle) -> String {
    let bytes = serde_json::to_vec(spec).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}

/// Read the bundle at `path` for `target` (default: the bundle's default target) into a
/// snapshot, hashing every component file; returns it with each component's file, by
/// hash (what must reach the blob store). Nothing is written.
pub fn snapshot(path: &Path, target: Option<&str>) -> Result<(Snapshot, BTreeMap<String, PathBuf>), DeployError> {
    let opts = spec::LoadOptions::new(target.map(str::to_string), [], std::env::vars());
    snapshot_with(path, &opts)
}

/// [`snapshot`] with `--var` values and `SLUICE_VAR_*` (in `opts`).
pub fn snapshot_with(
    path: &Path,
    opts: &spec::LoadOptions,
) -> Result<(Snapshot, BTreeMap<String, PathBuf>), DeployError> {
    let target = opts.target.as_deref();
    let bundle = spec::load_with(path, opts)?;
    let target = bundle.target(target)?;
    let Content { source, includes, components, files, hash } = content(&bundle)?;
    let git = git::read(&bundle.root)?;
    let snapshot = Snapshot {
        bundle: bundle.name.clone(),
        target,
        bundle_hash: hash,
        source,
        includes,
        components,
        spec: bundle,
        git,
    };
    Ok((snapshot, files))
}

#[cfg(test)]
mod tests;
