//! `fsprobe`: tries file operations the test asks for and reports each result.
//!
//! Params (all optional, each an operation whose result lands in the output
//! under its name as `{"ok": …}` or `{"err": "…"}`):
//! `read=PATH` (file contents), `list=DIR` (sorted entry names),
//! `write=PATH` with `data=TEXT`, `env=NAME` (an environment variable),
//! `env_all=1` (every variable), `fail=1` (fail after the other operations).

use std::fs;

use serde_json::{Map, Value, json};
use sluice_sdk::{Context, Task, TaskError, params};

fn report(r: std::io::Result<Value>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": e.to_string() }),
    }
}

pub struct FsProbe;

impl Task for FsProbe {
    type Output = Value;

    fn run(_ctx: &Context) -> Result<Value, TaskError> {
        let mut out = Map::new();
        if let Some(path) = params::get("write") {
            let data = params::get("data").unwrap_or_default();
            out.insert("write".into(), report(fs::write(&path, data).map(|()| Value::Bool(true))));
        }
        if let Some(path) = params::get("read") {
            out.insert("read".into(), report(fs::read_to_string(&path).map(Value::String)));
        }
        if let Some(dir) = params::get("list") {
            let listed = fs::read_dir(&dir).and_then(|entries| {
                let mut names = entries.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<Result<Vec<_>, _>>()?;
                names.sort();
                Ok(json!(names))
            });
            out.insert("list".into(), report(listed));
        }
        if let Some(name) = params::get("env") {
            out.insert("env".into(), std::env::var(&name).map_or(Value::Null, Value::String));
        }
        if params::get("env_all").is_some() {
            out.insert("env_all".into(), json!(std::env::vars().collect::<Vec<_>>()));
        }
        if params::get("fail").is_some() {
            return Err(TaskError::permanent(format!("asked to fail after {}", Value::Object(out))));
        }
        Ok(Value::Object(out))
    }
}

sluice_sdk::export_task!(FsProbe);
