//! The service's side of the model registry: `sluice models list|show|stage` in the
//! caller's workspace — each model's versions (hash, metrics, run, commit) and what each
//! target loads. Asked for as deployments requests ([`super::DeployOp::ModelsList`], …):
//! staging a model for a target is a deployment decision, and it travels the same socket
//! and HTTP route (`POST /api/sluice/v1/deployments/op`).
//!
//! Versions are registered by the scheduler; this module only reads them and records
//! stages, and refuses unknown models and versions with the ones that exist.

use serde::{Deserialize, Serialize};

use super::{Caller, Service, ServiceError};
use crate::store::{ModelStage, ModelVersion};

/// One model, as `sluice models` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelView {
    pub name: String,
    /// Oldest first (only the one asked for, when `show` names a version).
    pub versions: Vec<ModelVersion>,
    /// What each target loads.
    pub stages: Vec<ModelStage>,
}

impl Service {
    /// Every model of the caller's workspace; `name`: only that one (its `version` only,
    /// if given), else not found.
    pub fn models(
        &self,
        caller: &Caller,
        name: Option<&str>,
        version: Option<u64>,
    ) -> Result<Vec<ModelView>, ServiceError> {
        let store = self.inner.rt.models();
        let ws = &caller.workspace;
        let names = store.names(ws)?;
        if let Some(name) = name {
            self.known_model(&names, ws, name)?;
        }
        let mut out = Vec::new();
        for model in names.iter().filter(|m| name.is_none_or(|n| n == m.as_str())) {
            let mut versions = store.versions(ws, model)?;
            if let Some(v) = version {
                versions.retain(|x| x.version == v);
                if versions.is_empty() {
                    return Err(no_version(model, v, &store.versions(ws, model)?));
                }
            }
            out.push(ModelView { name: model.clone(), versions, stages: store.stages(ws, model)? });
        }
        Ok(out)
    }

    /// Stage `version` of `name` for `target`: what its runs' `models` load from now on.
    pub fn stage_model(
        &self,
        caller: &Caller,
        name: &str,
        version: u64,
        target: &str,
    ) -> Result<ModelView, ServiceError> {
        let store = self.inner.rt.models();
        let ws = &caller.workspace;
        self.known_model(&store.names(ws)?, ws, name)?;
        crate::spec::names::check_name(target).map_err(|why| ServiceError::Invalid(format!("target: {why}")))?;
        if store.get(ws, name, version)?.is_none() {
            return Err(no_version(name, version, &store.versions(ws, name)?));
        }
        let at = self.inner.rt.clock().now_millis();
        let stage = ModelStage { target: target.into(), version, by: caller.principal.clone(), at };
        store.stage(ws, name, &stage)?;
        tracing::info!(model = name, version, target, by = %caller.principal, "staged a model version");
        let mut views = self.models(caller, Some(name), None)?;
        views.pop().ok_or_else(|| ServiceError::Internal(format!("model `{name}` vanished")))
    }

    fn known_model(&self, names: &[String], ws: &str, name: &str) -> Result<(), ServiceError> {
        if names.iter().any(|n| n == name) {
            return Ok(());
        }
        Err(ServiceError::NotFound(format!(
            "no model `{name}` in workspace `{ws}`{} (models: {}); a task registers one with \
             `register_model = {{ name = \"{name}\", file = \"model.json\" }}`",
            crate::spec::names::suggestion(name, names.iter().map(String::as_str)),
            if names.is_empty() { "none yet".to_string() } else { names.join(", ") }
        )))
    }
}

fn no_version(name: &str, version: u64, versions: &[ModelVersion]) -> ServiceError {
    let known: Vec<String> = versions.iter().map(|v| v.version.to_string()).collect();
    ServiceError::NotFound(format!("model `{name}` has no version {version} (versions: {})", known.join(", ")))
}
