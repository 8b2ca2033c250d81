//! What changed between two plans of a run, in words a person reads in `runs show`:
//! components by blake3, the job's settings and parameter defaults, each task's spec
//! (params one by one, other keys by name), tasks added, the jobs `run_job` tasks start,
//! and the target's limits. Empty when nothing that changes what runs changed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::RunPlan;
use crate::spec::JobSpec;

use super::plan::short;

/// Longest value quoted in a change before it is cut short.
const SHOWN_VALUE_CHARS: usize = 60;

/// Every change from `old` to `new`, in a stable order.
pub(crate) fn changes(old: &RunPlan, new: &RunPlan) -> Vec<String> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = old.components.keys().chain(new.components.keys()).collect();
    for name in names {
        match (old.components.get(name), new.components.get(name)) {
            (Some(a), Some(b)) if a.hash != b.hash => {
                out.push(format!("component `{name}`: blake3 {} → {}", short(&a.hash), short(&b.hash)));
            }
            (None, Some(b)) => out.push(format!("component `{name}` added (blake3 {})", short(&b.hash))),
            (Some(_), None) => out.push(format!("component `{name}` no longer used")),
            _ => {}
        }
    }
    job_changes(&old.job, &new.job, &mut out);
    for (name, job) in &new.jobs {
        if old.jobs.get(name).is_some_and(|before| before != job) {
            out.push(format!("job `{name}` (started by run_job) changed"));
        }
    }
    if old.target_limits != new.target_limits {
        out.push("the target's limits changed".into());
    }
    out
}

fn job_changes(old: &JobSpec, new: &JobSpec, out: &mut Vec<String>) {
    let (a, b) = (settings(old), settings(new));
    for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        if a.get(key) != b.get(key) {
            out.push(format!("job `{}`: {key} {}", new.name, change(a.get(key), b.get(key))));
        }
    }
    for t in &new.tasks {
        let Some(before) = old.task(&t.key) else {
            out.push(format!("task `{}` added", t.key));
            continue;
        };
        let (a, b) = (fields(before), fields(t));
        for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
            match (a.get(key), b.get(key)) {
                (Some(Value::Object(pa)), Some(Value::Object(pb))) if key == "params" => {
                    for p in pa.keys().chain(pb.keys()).collect::<BTreeSet<_>>() {
                        if pa.get(p) != pb.get(p) {
                            out.push(format!("task `{}`: param `{p}` {}", t.key, change(pa.get(p), pb.get(p))));
                        }
                    }
                }
                (x, y) if x != y => out.push(format!("task `{}`: `{key}` changed", t.key)),
                _ => {}
            }
        }
    }
}

/// A job's settings and parameter defaults, flat: `parameter `x``, `timeout`, ….
fn settings(job: &JobSpec) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in &job.parameters {
        out.insert(format!("parameter `{k}` default"), Value::String(v.clone()));
    }
    if let Value::Object(map) = serde_json::to_value(job).unwrap_or(Value::Null) {
        for (k, v) in map {
            if !matches!(k.as_str(), "tasks" | "parameters" | "name") {
                out.insert(format!("`{k}`"), v);
            }
        }
    }
    out
}

/// A task spec's top-level fields (the execution spec's are flattened in).
fn fields(task: &crate::spec::TaskSpec) -> serde_json::Map<String, Value> {
    match serde_json::to_value(task) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

fn change(a: Option<&Value>, b: Option<&Value>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{} → {}", shown(a), shown(b)),
        (None, Some(b)) => format!("added ({})", shown(b)),
        (Some(a), None) => format!("removed (was {})", shown(a)),
        (None, None) => "unchanged".into(),
    }
}

fn shown(v: &Value) -> String {
    // a duration, as serde writes one: as a person writes it
    if let Some((secs, nanos)) = v.get("secs").and_then(Value::as_u64).zip(v.get("nanos").and_then(Value::as_u64)) {
        return crate::util::human_duration(std::time::Duration::new(secs, nanos as u32));
    }
    if v.is_null() {
        return "none".into();
    }
    let text = v.to_string();
    match text.char_indices().nth(SHOWN_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PinnedComponent;

    fn plan(text: &str) -> RunPlan {
        let bundle = crate::spec::parse(text, std::path::Path::new("sluice.toml"), std::path::Path::new("/b")).unwrap();
        let job = bundle.jobs["j"].clone();
        let components = BTreeMap::from([(
            "c".to_string(),
            PinnedComponent {
                path: "/b/c.wasm".into(),
                hash: if text.contains("v2") { "b".repeat(64) } else { "a".repeat(64) },
            },
        )]);
        RunPlan {
            bundle_root: "/b".into(),
            bundle: "t".into(),
            job,
            jobs: BTreeMap::new(),
            components,
            parent: None,
            principal: "p".into(),
            workspace: "default".into(),
            target_limits: Default::default(),
            job_id: None,
            trigger: None,
        }
    }

    const HEAD: &str = "[bundle]\nname = \"t\"\n[components]\nc = \"c.wasm\"\n";

    #[test]
    fn changes_name_components_parameters_and_task_fields() {
        let old = plan(&format!(
            "{HEAD}[jobs.j]\nparameters = {{ day = \"mon\" }}\n[[jobs.j.tasks]]\nkey = \"a\"\ncomponent = \"c\"\n\
             params = {{ fail = \"permanent\" }}\n"
        ));
        assert!(changes(&old, &old).is_empty(), "nothing changed");
        let new = plan(&format!(
            "# v2\n{HEAD}[jobs.j]\nparameters = {{ day = \"tue\" }}\ntimeout = \"1h\"\n[[jobs.j.tasks]]\nkey = \"a\"\n\
             component = \"c\"\nparams = {{ fail = \"\" }}\nretries = {{ max = 1 }}\n\
             [[jobs.j.tasks]]\nkey = \"b\"\ncomponent = \"c\"\n"
        ));
        let got = changes(&old, &new);
        let want = [
            format!("component `c`: blake3 {} → {}", "a".repeat(12), "b".repeat(12)),
            "job `j`: `timeout` none → 1h 0m".to_string(),
            "job `j`: parameter `day` default \"mon\" → \"tue\"".to_string(),
            "task `a`: param `fail` \"permanent\" → \"\"".to_string(),
            "task `a`: `retries` changed".to_string(),
            "task `b` added".to_string(),
        ];
        for w in &want {
            assert!(got.contains(w), "`{w}` missing from {got:#?}");
        }
    }
}
