//! `churn`: the ml-deploy example's model, one component with seven steps (param `step`):
//!
//! - `train`: generate `rows` customers from `seed` (a fraction `label_noise` of labels
//!   flipped), keep the last 20% as a holdout, fit logistic regression (`epochs`, `rate`);
//!   writes `/out/model.json` and `/out/holdout.csv`.
//! - `evaluate`: score `/in/<from>/holdout.csv` with `/in/<from>/model.json` (`from`
//!   default `train`); writes `/out/metrics.json`, publishes values `accuracy` and `auc`.
//! - `package`: copy the trained model and its metrics into `/out` (what `register_model`
//!   registers).
//! - `score`: load `<model_dir>/model.json` (default `/model`: the version staged for the
//!   run's target), score `rows` new customers from `seed`; writes `/out/scores.csv`.
//!
//! - `ingest`, `features`, `score_batch`: the file-triggered example's pipeline (see
//!   [`pipeline`]).
//!
//! Output: a JSON summary of the step. Bad input is a permanent error naming the file.

pub mod batch;
pub mod model;
mod pipeline;

use serde_json::{Value, json};
use sluice_sdk::{Context, Task, TaskError, params, values};

use model::{Model, evaluate, from_csv, generate, to_csv, train};

fn io(path: &str) -> impl Fn(std::io::Error) -> TaskError + '_ {
    move |e| TaskError::permanent(format!("{path}: {e}"))
}

pub(crate) fn read(path: &str) -> Result<String, TaskError> {
    std::fs::read_to_string(path).map_err(io(path))
}

pub(crate) fn write(path: &str, text: &str) -> Result<(), TaskError> {
    std::fs::write(path, text).map_err(io(path))
}

pub(crate) fn load_model(path: &str) -> Result<Model, TaskError> {
    let m: Model = serde_json::from_str(&read(path)?).map_err(|e| TaskError::permanent(format!("{path}: {e}")))?;
    m.check().map_err(|e| TaskError::permanent(format!("{path}: {e}")))?;
    Ok(m)
}

fn step_train() -> Result<Value, TaskError> {
    let rows: usize = params::get_or("rows", 5000)?;
    let seed: u64 = params::get_or("seed", 7)?;
    let noise: f64 = params::get_or("label_noise", 0.0)?;
    let epochs: u32 = params::get_or("epochs", 300)?;
    let rate: f64 = params::get_or("rate", 0.5)?;
    if !(10..=1_000_000).contains(&rows) {
        return Err(TaskError::permanent(format!("param `rows`: {rows} is not from 10 to 1000000")));
    }
    let data = generate(rows, seed, noise);
    let (fit, holdout) = data.split_at(rows * 4 / 5);
    let model = train(fit, epochs, rate, seed);
    let text = serde_json::to_string_pretty(&model).map_err(|e| TaskError::permanent(e.to_string()))?;
    write("/out/model.json", &text)?;
    write("/out/holdout.csv", &to_csv(holdout))?;
    Ok(json!({ "trained_rows": fit.len(), "holdout_rows": holdout.len(), "seed": seed, "weights": model.weights }))
}

fn step_evaluate() -> Result<Value, TaskError> {
    let from = params::get("from").unwrap_or_else(|| "train".into());
    let model = load_model(&format!("/in/{from}/model.json"))?;
    let path = format!("/in/{from}/holdout.csv");
    let holdout = from_csv(&read(&path)?).map_err(|e| TaskError::permanent(format!("{path}: {e}")))?;
    let metrics = evaluate(&model, &holdout);
    let text = serde_json::to_string_pretty(&metrics).map_err(|e| TaskError::permanent(e.to_string()))?;
    write("/out/metrics.json", &text)?;
    values::set("accuracy", &metrics.accuracy)?;
    values::set("auc", &metrics.auc)?;
    println!("holdout accuracy {} auc {} log loss {}", metrics.accuracy, metrics.auc, metrics.log_loss);
    serde_json::to_value(&metrics).map_err(|e| TaskError::permanent(e.to_string()))
}

fn step_package() -> Result<Value, TaskError> {
    let model = params::get("model_from").unwrap_or_else(|| "train".into());
    let metrics = params::get("metrics_from").unwrap_or_else(|| "evaluate".into());
    write("/out/model.json", &read(&format!("/in/{model}/model.json"))?)?;
    write("/out/metrics.json", &read(&format!("/in/{metrics}/metrics.json"))?)?;
    Ok(json!({ "packaged": ["model.json", "metrics.json"] }))
}

fn step_score() -> Result<Value, TaskError> {
    let dir = params::get("model_dir").unwrap_or_else(|| "/model".into());
    let model = load_model(&format!("{dir}/model.json"))?;
    let rows: usize = params::get_or("rows", 1000)?;
    let seed: u64 = params::get_or("seed", 99)?;
    let threshold: f64 = params::get_or("threshold", 0.5)?;
    let customers = generate(rows, seed, 0.0);
    let mut csv = String::from("customer,churn_probability,at_risk\n");
    let (mut at_risk, mut total) = (0usize, 0.0);
    for (i, c) in customers.iter().enumerate() {
        let p = model.score(&c.x);
        total += p;
        at_risk += usize::from(p >= threshold);
        csv.push_str(&format!("{i},{p:.4},{}\n", u8::from(p >= threshold)));
    }
    write("/out/scores.csv", &csv)?;
    let mean = (total / rows.max(1) as f64 * 10_000.0).round() / 10_000.0;
    Ok(json!({ "rows": rows, "at_risk": at_risk, "mean_probability": mean, "model_seed": model.seed }))
}

pub struct Churn;

impl Task for Churn {
    type Output = Value;

    fn run(_ctx: &Context) -> Result<Value, TaskError> {
        match params::get("step").as_deref() {
            Some("train") => step_train(),
            Some("evaluate") => step_evaluate(),
            Some("package") => step_package(),
            Some("score") => step_score(),
            Some("ingest") => pipeline::step_ingest(),
            Some("features") => pipeline::step_features(),
            Some("score_batch") => pipeline::step_score_batch(),
            other => Err(TaskError::permanent(format!(
                "param `step`: {other:?} is not one of train, evaluate, package, score, ingest, features, score_batch"
            ))),
        }
    }
}

sluice_sdk::export_task!(Churn);
