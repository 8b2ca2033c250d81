//! The JSON Schema (`sluice schema`) names exactly the keys the parser accepts.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::spec::{
    access, build, component, datasets, depends, exec, job, kinds, mounts, retries, scopes, target, vars,
};

/// The property names of the object schema at `pointer` (following one `$ref`).
fn properties(schema: &Value, pointer: &str) -> BTreeSet<String> {
    let mut node = schema.pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in the schema"));
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        node = schema.pointer(reference.trim_start_matches('#')).expect("$ref resolves");
    }
    let props = node.get("properties").and_then(Value::as_object).unwrap_or_else(|| panic!("{pointer}: no properties"));
    props.keys().cloned().collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[test]
fn every_table_in_the_schema_has_exactly_the_parsers_keys() {
    let schema = crate::spec::json_schema();
    let def = |name: &str| properties(&schema, &format!("/$defs/{name}"));
    assert_eq!(properties(&schema, ""), set(build::TOP_KEYS));
    assert_eq!(def("BundleSection"), set(build::BUNDLE_KEYS));
    assert_eq!(def("ComponentTable"), set(component::COMPONENT_KEYS));
    assert_eq!(def("Variable"), set(vars::VARIABLE_KEYS));
    assert_eq!(def("Target"), set(target::TARGET_KEYS));
    assert_eq!(def("TargetJob"), set(target::TARGET_JOB_KEYS));
    assert_eq!(def("Git"), set(target::GIT_KEYS));
    assert_eq!(def("Permission"), set(access::PERMISSION_KEYS));
    assert_eq!(def("SecretScope"), set(scopes::SCOPE_KEYS));
    assert_eq!(def("Acl"), set(scopes::ACL_KEYS));
    assert_eq!(def("Job"), set(job::JOB_KEYS));
    assert_eq!(def("Task"), set(job::TASK_KEYS));
    let template: Vec<&str> = job::TASK_KEYS.iter().copied().filter(|k| !kinds::NOT_IN_TEMPLATE.contains(k)).collect();
    assert_eq!(def("TaskTemplate"), set(&template));
    assert_eq!(def("Limits"), set(exec::LIMIT_KEYS));
    assert_eq!(def("SecretGrantTable"), set(exec::SECRET_GRANT_KEYS));
    assert_eq!(def("Worker"), set(exec::WORKER_KEYS));
    assert_eq!(def("Retries"), set(retries::RETRY_KEYS));
    assert_eq!(def("Mount"), set(mounts::MOUNT_KEYS));
    assert_eq!(def("DependencyTable"), set(depends::DEPENDENCY_KEYS));
    assert_eq!(def("Condition"), set(kinds::CONDITION_KEYS));
    assert_eq!(def("ForEach"), set(kinds::FOR_EACH_KEYS));
    assert_eq!(def("RunJob"), set(kinds::RUN_JOB_KEYS));
    assert_eq!(def("Trigger"), set(crate::spec::triggers::TRIGGER_KEYS));
    assert_eq!(def("TableUpdate"), set(datasets::TABLE_UPDATE_KEYS));
}

#[test]
fn tables_refuse_unknown_keys_in_the_schema() {
    let schema = crate::spec::json_schema();
    assert_eq!(schema["additionalProperties"], Value::Bool(false), "top level");
    for (name, def) in schema["$defs"].as_object().expect("$defs") {
        if def.get("properties").is_some() {
            assert_eq!(def["additionalProperties"], Value::Bool(false), "{name} allows unknown keys");
        }
    }
}
