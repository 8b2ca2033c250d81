//! The task's spec, from its params: the query, its parameters, the input tables, the output.
//!
//! Params (all strings, as the host hands them over):
//! * `query` — one SQL statement (SQLite dialect), read-only: `SELECT …` or `WITH … SELECT …`.
//! * `params` (optional) — the query's parameters as JSON: an object binds `:name` / `@name` /
//!   `$name`, an array binds `?1`, `?2`, …. Values are bound, never spliced into the text.
//! * `inputs` — JSON object, table name → file: `"/in/extract/orders.parquet"` or
//!   `{"path": "…", "format": "csv", "delimiter": ";"}`. Formats: `parquet`, `csv`, `jsonl`
//!   (from the extension `.parquet`/`.pq`, `.csv`, `.tsv`, `.jsonl`/`.ndjson` unless given).
//! * `output` (optional, default `result.parquet`) — file name under `/out`; its format from
//!   the extension (`.parquet`, `.csv`, `.jsonl`) or `format`.
//! * `copy` (optional) — JSON object, destination → source, both absolute: files copied after
//!   the output is written (`{"/gold/summary.csv": "/out/summary.csv", "/gold/x.parquet":
//!   "/in/up/x.parquet"}`), e.g. to publish into a read-write mount. Never into `/in` or `/out`.
//!
//! Every mistake is a [`SpecError`] naming the param and what is wrong; unknown params too.

use std::fmt;

use serde_json::Value;

/// Params this task reads; any other is an error (a typo must not be ignored).
pub const KNOWN_PARAMS: [&str; 6] = ["query", "params", "inputs", "output", "format", "copy"];

/// Where a task's output files go inside the sandbox.
pub const OUT_DIR: &str = "/out";

/// A file format the task reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
    JsonLines,
}

impl Format {
    fn parse(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "csv" | "tsv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::JsonLines),
            _ => None,
        }
    }

    fn from_path(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.').map(|(_, e)| e)?;
        Format::parse(ext)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }
}

/// One input table.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub table: String,
    pub path: String,
    pub format: Format,
    pub delimiter: u8,
}

/// A query parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// How the query's parameters were given.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    Named(Vec<(String, Param)>),
    Positional(Vec<Param>),
}

/// The whole spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub query: String,
    pub params: Params,
    pub inputs: Vec<Input>,
    /// File name under [`OUT_DIR`].
    pub output: String,
    pub output_format: Format,
    /// `(destination, source)` pairs, copied after the output is written.
    pub copies: Vec<(String, String)>,
}

/// A bad spec: which param, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError(msg.into()))
}

fn json(name: &str, text: &str) -> Result<Value, SpecError> {
    serde_json::from_str(text).map_err(|e| SpecError(format!("param `{name}` is not valid JSON: {e}")))
}

fn param_value(where_: &str, v: &Value) -> Result<Param, SpecError> {
    Ok(match v {
        Value::Null => Param::Null,
        Value::Bool(b) => Param::Int(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Param::Int(i),
            None => Param::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Param::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => {
            return err(format!("param `params`: {where_} must be a string, number, bool or null"));
        }
    })
}

fn parse_params(text: Option<&str>) -> Result<Params, SpecError> {
    let Some(text) = text else { return Ok(Params::Named(Vec::new())) };
    match json("params", text)? {
        Value::Object(map) => {
            let mut out = Vec::new();
            for (k, v) in &map {
                let name = k.trim_start_matches([':', '@', '$']).to_string();
                out.push((name, param_value(&format!("`{k}`"), v)?));
            }
            Ok(Params::Named(out))
        }
        Value::Array(items) => {
            let values = items.iter().enumerate().map(|(i, v)| param_value(&format!("item {}", i + 1), v));
            Ok(Params::Positional(values.collect::<Result<_, _>>()?))
        }
        _ => err("param `params` must be a JSON object (named: `:name`) or array (positional: `?1`)"),
    }
}

fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_input(table: &str, v: &Value) -> Result<Input, SpecError> {
    if !valid_table_name(table) {
        return err(format!("param `inputs`: table name `{table}` must be letters, digits and `_`"));
    }
    let (path, format, delimiter) = match v {
        Value::String(p) => (p.clone(), None, None),
        Value::Object(o) => {
            for k in o.keys() {
                if !["path", "format", "delimiter"].contains(&k.as_str()) {
                    return err(format!(
                        "param `inputs`: table `{table}`: unknown key `{k}` (path, format, delimiter)"
                    ));
                }
            }
            let Some(Value::String(p)) = o.get("path") else {
                return err(format!("param `inputs`: table `{table}` needs a string `path`"));
            };
            let format = o.get("format").and_then(Value::as_str).map(|f| {
                Format::parse(f)
                    .ok_or_else(|| SpecError(format!("param `inputs`: table `{table}`: unknown format `{f}`")))
            });
            (p.clone(), format.transpose()?, o.get("delimiter").and_then(Value::as_str).map(str::to_string))
        }
        _ => return err(format!("param `inputs`: table `{table}` must be a path or {{\"path\": …}}")),
    };
    if !path.starts_with('/') {
        return err(format!("param `inputs`: table `{table}`: path `{path}` must be absolute (a mount or /in/TASK/…)"));
    }
    let format = match format.or_else(|| Format::from_path(&path)) {
        Some(f) => f,
        None => {
            return err(format!("param `inputs`: table `{table}`: cannot tell the format of `{path}`; add \"format\""));
        }
    };
    let delimiter = match delimiter.as_deref() {
        None if path.ends_with(".tsv") => b'\t',
        None => b',',
        Some("tab" | "\\t" | "\t") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => return err(format!("param `inputs`: table `{table}`: delimiter `{d}` must be one character")),
    };
    Ok(Input { table: table.to_string(), path, format, delimiter })
}

fn parse_copies(text: &str) -> Result<Vec<(String, String)>, SpecError> {
    let Value::Object(map) = json("copy", text)? else {
        return err("param `copy` must be a JSON object: destination → source");
    };
    let mut out = Vec::new();
    for (dest, source) in map {
        let Value::String(source) = source else {
            return err(format!("param `copy`: `{dest}`: the source is a path string"));
        };
        for path in [&dest, &source] {
            if !path.starts_with('/') || path.split('/').skip(1).any(|p| p == ".." || p == "." || p.is_empty()) {
                return err(format!("param `copy`: `{path}` must be an absolute, normalised file path"));
            }
        }
        if dest.starts_with("/in/") || dest.starts_with("/out/") {
            return err(format!("param `copy`: destination `{dest}` lies in /in or /out; copy into a mount"));
        }
        out.push((dest, source));
    }
    Ok(out)
}

fn parse_output(output: Option<&str>, format: Option<&str>) -> Result<(String, Format), SpecError> {
    let name = output.unwrap_or("result.parquet").to_string();
    if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == ".." || p.is_empty()) {
        return err(format!("param `output`: `{name}` must be a relative file name under /out"));
    }
    let format = match format {
        Some(f) => Format::parse(f)
            .ok_or_else(|| SpecError(format!("param `format`: unknown format `{f}` (parquet, csv, jsonl)")))?,
        None => Format::from_path(&name)
            .ok_or_else(|| SpecError(format!("param `output`: cannot tell the format of `{name}`; set `format`")))?,
    };
    Ok((name, format))
}

impl Spec {
    /// The spec from the task's params (name, value pairs).
    pub fn from_params(pairs: &[(String, String)]) -> Result<Spec, SpecError> {
        for (k, _) in pairs {
            if !KNOWN_PARAMS.contains(&k.as_str()) {
                return err(format!("unknown param `{k}` (known: {})", KNOWN_PARAMS.join(", ")));
            }
        }
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let query = match get("query") {
            Some(q) if !q.trim().is_empty() => q.to_string(),
            _ => return err("missing required param `query`"),
        };
        let inputs = match get("inputs") {
            None => Vec::new(),
            Some(text) => match json("inputs", text)? {
                Value::Object(map) => map.iter().map(|(t, v)| parse_input(t, v)).collect::<Result<_, _>>()?,
                _ => return err("param `inputs` must be a JSON object: table name → file"),
            },
        };
        let (output, output_format) = parse_output(get("output"), get("format"))?;
        let copies = get("copy").map(parse_copies).transpose()?.unwrap_or_default();
        Ok(Spec { query, params: parse_params(get("params"))?, inputs, output, output_format, copies })
    }
}
