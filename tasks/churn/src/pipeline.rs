//! The file-triggered example's steps (param `step`), each reading and writing files only:
//!
//! - `ingest`: the files of param `files` (`{{ trigger.files }}`) under `input_dir` (default
//!   `/incoming`, a read-only mount of the bucket's landing prefix) → `/out/customers.csv`,
//!   each row tagged with its file; bad rows are rejected by file and line (in the output).
//! - `features`: `/in/<from>/customers.csv` (`from` default `ingest`) → `/out/features.csv`,
//!   the model's feature vector per customer.
//! - `score_batch`: `/in/<from>/features.csv` (`from` default `features`) scored with
//!   `<model_dir>/model.json` (default `/model`, the registry's version staged for the
//!   target) → one `<out_dir>/<file stem>.scores.csv` per input file (default `/scores`, a
//!   read-write mount of the bucket's scores prefix, uploaded after success).
//!
//! Output: a JSON summary naming the files the step handled.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_sdk::{TaskError, params};

use crate::batch::{features_csv, from_features, from_ingested, ingest, ingested_csv, trigger_paths};
use crate::{load_model, read, write};

fn bad(what: &str) -> impl Fn(String) -> TaskError + '_ {
    move |e| TaskError::permanent(format!("{what}: {e}"))
}

pub fn step_ingest() -> Result<Value, TaskError> {
    let files = params::get("files").ok_or_else(|| TaskError::permanent("param `files` is missing"))?;
    let paths = trigger_paths(&files).map_err(bad("param `files`"))?;
    let dir = params::get("input_dir").unwrap_or_else(|| "/incoming".into());
    let (mut rows, mut rejected) = (Vec::new(), Vec::new());
    for path in &paths {
        if path.split('/').any(|p| p == ".." || p.is_empty()) || path.contains(',') {
            return Err(TaskError::permanent(format!("param `files`: `{path}` is not a plain relative path")));
        }
        let (good, bad_rows) = ingest(path, &read(&format!("{dir}/{path}"))?).map_err(TaskError::permanent)?;
        rows.extend(good);
        rejected.extend(bad_rows);
    }
    write("/out/customers.csv", &ingested_csv(&rows))?;
    for r in &rejected {
        eprintln!("rejected {r}");
    }
    Ok(json!({ "files": paths, "rows": rows.len(), "rejected": rejected }))
}

pub fn step_features() -> Result<Value, TaskError> {
    let from = params::get("from").unwrap_or_else(|| "ingest".into());
    let path = format!("/in/{from}/customers.csv");
    let rows = from_ingested(&read(&path)?).map_err(bad(&path))?;
    write("/out/features.csv", &features_csv(&rows))?;
    let mut files: Vec<&str> = rows.iter().map(|c| c.file.as_str()).collect();
    files.dedup();
    Ok(json!({ "files": files, "rows": rows.len() }))
}

pub fn step_score_batch() -> Result<Value, TaskError> {
    let dir = params::get("model_dir").unwrap_or_else(|| "/model".into());
    let model = load_model(&format!("{dir}/model.json"))?;
    let from = params::get("from").unwrap_or_else(|| "features".into());
    let out_dir = params::get("out_dir").unwrap_or_else(|| "/scores".into());
    let threshold: f64 = params::get_or("threshold", 0.5)?;
    let path = format!("/in/{from}/features.csv");
    let rows = from_features(&read(&path)?).map_err(bad(&path))?;
    let mut per_file: BTreeMap<&str, String> = BTreeMap::new();
    let mut at_risk = 0usize;
    for (file, customer, x) in &rows {
        let p = model.score(x);
        at_risk += usize::from(p >= threshold);
        let csv = per_file.entry(file).or_insert_with(|| "customer,churn_probability,at_risk\n".to_string());
        csv.push_str(&format!("{customer},{p:.4},{}\n", u8::from(p >= threshold)));
    }
    let mut written = Vec::new();
    for (file, csv) in &per_file {
        let stem = file.strip_suffix(".csv").unwrap_or(file);
        let out = format!("{out_dir}/{stem}.scores.csv");
        if let Some((parent, _)) = out.rsplit_once('/') {
            std::fs::create_dir_all(parent).map_err(|e| TaskError::permanent(format!("{parent}: {e}")))?;
        }
        write(&out, csv)?;
        written.push(format!("{stem}.scores.csv"));
    }
    let files: Vec<&str> = per_file.keys().copied().collect();
    Ok(json!({ "files": files, "written": written, "rows": rows.len(), "at_risk": at_risk, "model_seed": model.seed }))
}
