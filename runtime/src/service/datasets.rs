//! The service's side of named datasets: `sluice datasets list|show` in the caller's
//! workspace — each dataset's versions, the run and task that produced each, and the runs
//! a table-update trigger started for it (lineage). Asked for on the triggers route
//! ([`super::TriggerAction::Datasets`]), since the table-update trigger is their consumer.
//!
//! Read only: versions are recorded by the scheduler, uses with a trigger's run.

use serde::Serialize;

use super::{Caller, Service, ServiceError};
use crate::store::datasets::{DatasetUse, DatasetVersion, Namespace};

/// One dataset in one target, as `sluice datasets` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetView {
    pub name: String,
    pub target: String,
    /// Oldest first; each with the runs that consumed it.
    pub versions: Vec<VersionView>,
}

/// One version and its lineage.
#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    #[serde(flatten)]
    pub version: DatasetVersion,
    pub consumed_by: Vec<DatasetUse>,
}

impl Service {
    /// Every dataset of the caller's workspace (`name`: only that one, else not found).
    pub fn datasets(&self, caller: &Caller, name: Option<&str>) -> Result<Vec<DatasetView>, ServiceError> {
        let store = self.inner.rt.datasets();
        let all = store.names(&caller.workspace)?;
        let mut out = Vec::new();
        for (target, dataset) in &all {
            if name.is_some_and(|n| n != dataset) {
                continue;
            }
            let ns = Namespace { workspace: &caller.workspace, target };
            let uses = store.uses(ns, dataset)?;
            let versions = store
                .versions(ns, dataset)?
                .into_iter()
                .map(|v| VersionView {
                    consumed_by: uses.iter().filter(|u| u.version == v.version).cloned().collect(),
                    version: v,
                })
                .collect();
            out.push(DatasetView { name: dataset.clone(), target: target.clone(), versions });
        }
        if let (Some(name), true) = (name, out.is_empty()) {
            let known: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
            return Err(ServiceError::NotFound(format!(
                "no dataset `{name}` in workspace `{}`{} (datasets: {})",
                caller.workspace,
                crate::spec::names::suggestion(name, known.iter().copied()),
                if known.is_empty() { "none yet".to_string() } else { known.join(", ") }
            )));
        }
        Ok(out)
    }
}
