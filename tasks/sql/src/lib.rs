//! `sql`: the engine behind `kind = "sql"` tasks — one read-only SQL query (SQLite, compiled
//! into the component) over Parquet, CSV and JSON Lines files, its result written to `/out`.
//!
//! Params: see [`spec`] (`query`, `params`, `inputs`, `output`, `format`, `copy`). Each input file is
//! loaded into an in-memory table ([`load`]); the query runs with its parameters bound, never
//! spliced ([`query`]); the result is written as Parquet, CSV or JSON Lines ([`write`]).
//!
//! Output: `{"rows": N, "schema": [{"name", "type", "nullable"}], "file": "/out/…",
//! "format": "parquet"}`; values `rows` and `schema` are published for dependents. Every
//! failure is permanent (a bad spec, a missing file, bad SQL with its line and column): the same
//! inputs fail the same way on retry. Runs entirely inside the task's sandbox and limits.

pub mod load;
pub mod query;
pub mod spec;
pub mod write;

use std::path::Path;

use rusqlite::Connection;
use serde_json::{Value, json};
use sluice_sdk::{Context, Task, TaskError, params, values};

use spec::{OUT_DIR, Spec};

/// Run `spec`: load, query, write under `out_dir`. Returns the task's output.
pub fn execute(spec: &Spec, out_dir: &Path) -> Result<Value, String> {
    let conn = Connection::open_in_memory().map_err(|e| format!("cannot start SQLite: {e}"))?;
    conn.execute_batch("BEGIN").map_err(|e| e.to_string())?;
    let mut tables = Vec::new();
    for input in &spec.inputs {
        load::load(&conn, input).map_err(|e| format!("input `{}` ({}): {e}", input.table, input.path))?;
        tables.push(input.table.clone());
    }
    conn.execute_batch("COMMIT").map_err(|e| e.to_string())?;
    let batch = query::run(&conn, &spec.query, &spec.params, &tables).map_err(|e| e.0)?;
    let file = out_dir.join(&spec.output);
    write::write(&batch, &file, spec.output_format)?;
    let mut copied = Vec::new();
    for (dest, source) in &spec.copies {
        copy(Path::new(source), Path::new(dest)).map_err(|e| format!("copying {source} to {dest}: {e}"))?;
        copied.push(dest.clone());
    }
    let mut out = json!({
        "rows": batch.num_rows(),
        "schema": write::schema_json(&batch),
        "file": format!("{OUT_DIR}/{}", spec.output),
        "format": spec.output_format.name(),
    });
    if !copied.is_empty() {
        out["copied"] = json!(copied);
    }
    Ok(out)
}

/// `source` to `dest` through a temporary file beside it, so a failed copy leaves no
/// half-written destination.
fn copy(source: &Path, dest: &Path) -> std::io::Result<()> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = dest.with_extension("sluice-copy");
    std::fs::copy(source, &tmp)?;
    std::fs::rename(&tmp, dest)
}

/// The `sql` task.
pub struct Sql;

impl Task for Sql {
    type Output = Value;

    fn run(_ctx: &Context) -> Result<Value, TaskError> {
        let spec = Spec::from_params(&params::all()).map_err(|e| TaskError::permanent(e.0))?;
        let out = execute(&spec, Path::new(OUT_DIR)).map_err(TaskError::permanent)?;
        values::set("rows", &out["rows"])?;
        values::set("schema", &out["schema"])?;
        Ok(out)
    }
}

sluice_sdk::export_task!(Sql);

#[cfg(test)]
mod tests;
