//! The records of deployments: what a client sends ([`Snapshot`]), what the store keeps
//! ([`Deployment`]) and what the journal says happened ([`JournalEntry`]).
//!
//! Owns their shapes and encoding (JSON, the store keeps the bytes). It must never do I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DeployError;
use crate::model::Millis;
use crate::spec::Bundle;

/// Git metadata of the tree a bundle was deployed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    /// The commit `HEAD` names (hex).
    pub commit: Option<String>,
    /// The branch `HEAD` is on (`None`: detached).
    pub branch: Option<String>,
    /// The URL of the `origin` remote (or the first remote).
    pub remote: Option<String>,
    /// Whether tracked files differ from the commit, or untracked files exist.
    pub dirty: bool,
}

/// A bundle as a client read it for one target: what `deploy` sends and `plan` compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `[bundle] name`.
    pub bundle: String,
    pub target: String,
    /// The bundle resolved for the target (variables, overrides applied by the parser).
    pub spec: Bundle,
    /// The bundle file's text: promotion resolves it again for the next target.
    pub source: String,
    /// Each included file's text by path relative to the bundle root: promotion resolves
    /// these, never the working tree's.
    #[serde(default)]
    pub includes: BTreeMap<String, String>,
    /// Each component's blake3 (hex), by name.
    pub components: BTreeMap<String, String>,
    /// The bundle's content hash (see [`super::bundle_hash`]).
    pub bundle_hash: String,
    /// `None`: not deployed from a Git work tree.
    pub git: Option<GitInfo>,
}

/// How a deployment came about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    Deploy,
    /// Promoted from deployment `number` of target `from`.
    Promote {
        from: String,
        number: u64,
    },
}

/// A deployed job as the target shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedJob {
    /// The name users see (`[dev PRINCIPAL] job` in development mode).
    pub display_name: String,
    /// Schedules and triggers are paused (development mode).
    pub paused: bool,
}

/// Deployment `number` of a target, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub number: u64,
    pub workspace: String,
    #[serde(flatten)]
    pub snapshot: Snapshot,
    /// blake3 of the canonical resolved spec (what `plan` compares besides components).
    pub spec_hash: String,
    /// Each job of the deployment, by name.
    pub jobs: BTreeMap<String, DeployedJob>,
    /// `development`, `production` or none.
    pub mode: Option<String>,
    /// Who deployed (the local user, or the API token's principal).
    pub principal: String,
    pub at: Millis,
    pub origin: Origin,
    /// Jobs this deployment keeps from an earlier deployment of its target (a promotion
    /// of one job, `promote --job`): job → the deployment it runs from. A pinned job's
    /// spec, components and permissions are that deployment's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pinned: BTreeMap<String, u64>,
}

/// What happened to a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Promote,
    Approve,
    Rollback,
    Destroy,
}

/// One journal entry: who did what, when, from which deployment (and hash) to which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub action: Action,
    pub target: String,
    pub principal: String,
    pub at: Millis,
    /// The deployment current before (and its bundle hash).
    pub from: Option<u64>,
    pub from_hash: Option<String>,
    /// The deployment current after, or the one approved.
    pub to: Option<u64>,
    pub to_hash: Option<String>,
    /// Promotions: the source target and deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, DeployError> {
    serde_json::to_vec(value).map_err(|e| DeployError::Corrupt(e.to_string()))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, DeployError> {
    serde_json::from_slice(bytes).map_err(|e| DeployError::Corrupt(format!("{what}: {e}")))
}
