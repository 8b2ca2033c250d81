//! What a trigger hands the run it starts: the firing's kind and logical time, the files
//! a file-arrival trigger consumed, a webhook's JSON body, the dataset versions a
//! table-update trigger consumed. Pinned into the run's plan, so
//! `{{ trigger.time }}`, `{{ trigger.files }}`, `{{ trigger.tables }}` and
//! `{{ trigger.payload.FIELD }}` resolve
//! the same on resume and repair.

use serde::{Deserialize, Serialize};

use super::Millis;

/// Why a run started, when a trigger started it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerContext {
    /// `schedule`, `periodic`, `file_arrival`, `webhook`, `continuous`; `manual` for
    /// `sluice triggers fire`.
    pub kind: String,
    /// The firing's logical time (a schedule's tick, the moment files were taken, a
    /// webhook's arrival).
    pub time: Millis,
    /// The new files a file-arrival trigger started the run for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<TriggerFile>,
    /// A webhook's JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// The dataset versions a table-update trigger started the run for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TriggerTable>,
}

/// One new dataset version a table-update trigger started a run for (`{{ trigger.tables }}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TriggerTable {
    /// The dataset's name (`sales.orders`).
    pub name: String,
    /// Its version number in the workspace and target (1, 2, …).
    pub version: u64,
    /// blake3 (hex) of its content.
    pub hash: String,
    /// The run and task that produced it.
    pub run: super::RunId,
    pub task: String,
}

/// One file a run was started for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TriggerFile {
    /// Relative to the watched location.
    pub path: String,
    pub size: u64,
    /// An object store's entity tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The modification time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<Millis>,
}

impl TriggerFile {
    /// What makes this version of the file another one: its etag, else size and mtime.
    pub fn version(&self) -> String {
        match &self.etag {
            Some(etag) => format!("etag:{etag}"),
            None => format!("{}:{}", self.size, self.mtime.unwrap_or_default()),
        }
    }
}
