//! What a deploy would change, Terraform-style: jobs added, removed or changed (which of
//! their settings), components changed by hash, schedules and triggers, permissions, and
//! the target's own settings — a snapshot against the target's current deployment.
//!
//! Pure: it compares two values. A plan right after a deploy of the same tree is empty,
//! since both sides are the same resolved spec and the same hashes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Deployment, Snapshot};

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    /// `add`, `remove` or `change`.
    pub action: String,
    /// `job`, `component`, `schedule`, `permissions` or `target`.
    pub kind: String,
    pub name: String,
    /// What changed: the settings of a job, a component's hashes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What a deploy of a snapshot would do to its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub bundle: String,
    pub target: String,
    /// The deployment the plan compares with (`None`: the target has none).
    pub current: Option<u64>,
    pub bundle_hash: String,
    pub items: Vec<PlanItem>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

fn item(action: &str, kind: &str, name: &str, detail: String) -> PlanItem {
    PlanItem { action: action.into(), kind: kind.into(), name: name.into(), detail }
}

/// Job settings that are a job's schedule or triggers.
const SCHEDULE_KEYS: &[&str] = &["schedule", "triggers", "trigger", "continuous"];

/// Compare `next` with what the target runs now.
pub fn diff(next: &Snapshot, current: Option<&Deployment>) -> Plan {
    let mut items = Vec::new();
    let (no_jobs, no_components) = (Default::default(), Default::default());
    let (now_jobs, now_components) = match current {
        Some(d) => (&d.snapshot.spec.jobs, &d.snapshot.components),
        None => (&no_jobs, &no_components),
    };
    for (name, hash) in &next.components {
        match now_components.get(name) {
            None => items.push(item("add", "component", name, short(hash))),
            Some(old) if old != hash => {
                items.push(item("change", "component", name, format!("{} → {}", short(old), short(hash))))
            }
            Some(_) => {}
        }
    }
    for (name, old) in now_components {
        if !next.components.contains_key(name) {
            items.push(item("remove", "component", name, short(old)));
        }
    }
    for (name, job) in &next.spec.jobs {
        let Some(old) = now_jobs.get(name) else {
            items.push(item("add", "job", name, String::new()));
            continue;
        };
        let (a, b) = (to_value(old), to_value(job));
        let mut settings = Vec::new();
        for key in keys(&a, &b) {
            if a.get(&key) == b.get(&key) {
                continue;
            }
            if SCHEDULE_KEYS.contains(&key.as_str()) {
                items.push(item("change", "schedule", name, key));
            } else if key == "permissions" {
                items.push(item("change", "permissions", name, String::new()));
            } else {
                settings.push(key);
            }
        }
        if !settings.is_empty() {
            items.push(item("change", "job", name, settings.join(", ")));
        }
    }
    for name in now_jobs.keys() {
        if !next.spec.jobs.contains_key(name) {
            items.push(item("remove", "job", name, String::new()));
        }
    }
    if let Some(d) = current {
        target_items(next, d, &mut items);
    }
    Plan {
        bundle: next.bundle.clone(),
        target: next.target.clone(),
        current: current.map(|d| d.number),
        bundle_hash: next.bundle_hash.clone(),
        items,
    }
}

/// The target's own settings (permissions among them).
fn target_items(next: &Snapshot, d: &Deployment, items: &mut Vec<PlanItem>) {
    let a = to_value(&d.snapshot.spec.targets.get(&d.snapshot.target));
    let b = to_value(&next.spec.targets.get(&next.target));
    let mut settings = Vec::new();
    for key in keys(&a, &b) {
        if a.get(&key) != b.get(&key) {
            if key == "permissions" {
                items.push(item("change", "permissions", &next.target, "target".into()));
            } else {
                settings.push(key);
            }
        }
    }
    if !settings.is_empty() {
        items.push(item("change", "target", &next.target, settings.join(", ")));
    }
}

fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn keys(a: &Value, b: &Value) -> BTreeSet<String> {
    let of = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    of(a).into_iter().chain(of(b)).collect()
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}
