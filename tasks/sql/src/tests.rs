//! The engine end to end on real files: Parquet in and out, CSV, JSON Lines, parameters, errors.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{Value, json};

use crate::execute;
use crate::spec::Spec;

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let mut w = parquet::arrow::ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn orders_and_customers(dir: &Path) {
    let orders = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("amount", DataType::Float64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![10, 11, 10, 12, 11, 13])),
            Arc::new(Float64Array::from(vec![100.0, 20.0, 50.0, 5.0, 30.0, 400.0])),
        ],
    )
    .unwrap();
    let customers = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![10, 11, 12, 13])),
            Arc::new(StringArray::from(vec!["NL", "BE", "NL", "DE"])),
        ],
    )
    .unwrap();
    write_parquet(&dir.join("orders.parquet"), &orders);
    write_parquet(&dir.join("customers.parquet"), &customers);
}

fn spec(dir: &Path, pairs: &[(&str, String)]) -> Spec {
    let mut all: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    if !pairs.iter().any(|(k, _)| *k == "inputs") {
        let inputs = json!({
            "orders": dir.join("orders.parquet").to_str().unwrap(),
            "customers": dir.join("customers.parquet").to_str().unwrap(),
        });
        all.push(("inputs".into(), inputs.to_string()));
    }
    Spec::from_params(&all).unwrap()
}

fn read_parquet(path: &Path) -> RecordBatch {
    let data = bytes::Bytes::from(std::fs::read(path).unwrap());
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(data).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow_select_concat(&batches)
}

fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    assert_eq!(batches.len(), 1, "small results come back as one batch");
    batches[0].clone()
}

const BY_COUNTRY: &str = "SELECT c.country, COUNT(*) AS orders, SUM(o.amount) AS total \
     FROM orders o JOIN customers c USING (customer_id) \
     GROUP BY c.country HAVING SUM(o.amount) >= :min ORDER BY total DESC";

#[test]
fn join_and_aggregate_over_two_parquet_files_writes_parquet() {
    let dir = tempfile::tempdir().unwrap();
    orders_and_customers(dir.path());
    let out = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), &[("query", BY_COUNTRY.into()), ("params", r#"{"min": 100}"#.into())]);
    let result = execute(&s, out.path()).unwrap();
    assert_eq!(result["rows"], json!(2));
    assert_eq!(result["file"], json!("/out/result.parquet"));
    assert_eq!(
        result["schema"],
        json!([
            {"name": "country", "type": "Utf8", "nullable": true},
            {"name": "orders", "type": "Int64", "nullable": true},
            {"name": "total", "type": "Float64", "nullable": true},
        ])
    );
    let batch = read_parquet(&out.path().join("result.parquet"));
    let country = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
    let total = batch.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!((country.value(0), total.value(0)), ("DE", 400.0));
    assert_eq!((country.value(1), total.value(1)), ("NL", 155.0)); // BE's 50 is under :min
    assert_eq!(batch.num_rows(), 2);
}

#[test]
fn params_are_bound_not_spliced() {
    let dir = tempfile::tempdir().unwrap();
    orders_and_customers(dir.path());
    let out = tempfile::tempdir().unwrap();
    let sneaky = r#"{"c": "NL' OR '1'='1"}"#;
    let q = "SELECT COUNT(*) AS n FROM customers WHERE country = :c";
    let s = spec(dir.path(), &[("query", q.into()), ("params", sneaky.into()), ("output", "n.csv".into())]);
    execute(&s, out.path()).unwrap();
    assert_eq!(std::fs::read_to_string(out.path().join("n.csv")).unwrap(), "n\n0\n");
    let s = spec(
        dir.path(),
        &[("query", "SELECT ?1 + ?2 AS s".into()), ("params", "[40, 2]".into()), ("output", "s.csv".into())],
    );
    execute(&s, out.path()).unwrap();
    assert_eq!(std::fs::read_to_string(out.path().join("s.csv")).unwrap(), "s\n42\n");
}

#[test]
fn missing_and_unused_params_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    orders_and_customers(dir.path());
    let out = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), &[("query", BY_COUNTRY.into())]);
    let e = execute(&s, out.path()).unwrap_err();
    assert!(e.starts_with("query parameter `:min` has no value in `params`"), "{e}");
    let s = spec(dir.path(), &[("query", "SELECT 1 AS one".into()), ("params", r#"{"typo": 1}"#.into())]);
    assert_eq!(execute(&s, out.path()).unwrap_err(), "param `params`: `typo` is not used by the query");
    assert!(out.path().read_dir().unwrap().next().is_none(), "nothing written on failure");
}

#[test]
fn bad_sql_names_line_and_column_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    orders_and_customers(dir.path());
    let out = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), &[("query", "SELECT country,\n  COUNT(*) AS n\nFRM customers".into())]);
    let e = execute(&s, out.path()).unwrap_err();
    assert_eq!(e, "SQL error at line 3, column 1: near \"FRM\": syntax error\n  FRM customers\n  ^");
    let s = spec(dir.path(), &[("query", "SELECT * FROM nope".into())]);
    let e = execute(&s, out.path()).unwrap_err();
    assert!(e.contains("no such table: nope") && e.ends_with("(tables: customers, orders)"), "{e}");
    let s = spec(dir.path(), &[("query", "DELETE FROM orders".into())]);
    assert!(execute(&s, out.path()).unwrap_err().contains("must be read-only"));
    let s = spec(dir.path(), &[("query", "SELECT 1; SELECT 2".into())]);
    assert!(execute(&s, out.path()).unwrap_err().contains("must be one statement"));
}

#[test]
fn csv_and_json_lines_inputs_with_inferred_types() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id;score;name\n1;2.5;x\n2;3.5;y\n").unwrap();
    std::fs::write(dir.path().join("b.jsonl"), "{\"id\": 1, \"tag\": \"red\"}\n{\"id\": 2, \"tag\": null}\n").unwrap();
    let inputs = json!({
        "a": {"path": dir.path().join("a.csv").to_str().unwrap(), "delimiter": ";"},
        "b": dir.path().join("b.jsonl").to_str().unwrap(),
    });
    let q = "SELECT a.name, a.score * 2 AS double, b.tag FROM a JOIN b USING (id) ORDER BY a.id";
    let out = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), &[("query", q.into()), ("inputs", inputs.to_string()), ("output", "r.jsonl".into())]);
    let result = execute(&s, out.path()).unwrap();
    assert_eq!(result["schema"][1], json!({"name": "double", "type": "Float64", "nullable": true}));
    let text = std::fs::read_to_string(out.path().join("r.jsonl")).unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows, vec![json!({"name": "x", "double": 5.0, "tag": "red"}), json!({"name": "y", "double": 7.0})]);
}

#[test]
fn missing_input_file_names_the_table_and_path() {
    let out = tempfile::tempdir().unwrap();
    let s = spec(Path::new("/nowhere"), &[("query", "SELECT 1 AS x".into())]);
    let e = execute(&s, out.path()).unwrap_err();
    // inputs load in table-name order, so the first missing one is `customers`
    assert!(
        e.starts_with("input `customers` (/nowhere/customers.parquet): cannot open /nowhere/customers.parquet"),
        "{e}"
    );
}

#[test]
fn spec_errors_name_the_param() {
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let e = |v: &[(&str, &str)]| Spec::from_params(&pairs(v)).unwrap_err().0;
    assert_eq!(e(&[]), "missing required param `query`");
    assert!(e(&[("query", "x"), ("qeury", "y")]).starts_with("unknown param `qeury`"));
    assert!(e(&[("query", "x"), ("inputs", "{")]).starts_with("param `inputs` is not valid JSON"));
    assert!(e(&[("query", "x"), ("inputs", r#"{"t": "rel.csv"}"#)]).contains("must be absolute"));
    assert!(e(&[("query", "x"), ("inputs", r#"{"t": "/a/b.xlsx"}"#)]).contains("cannot tell the format"));
    assert!(e(&[("query", "x"), ("inputs", r#"{"bad name": "/a.csv"}"#)]).contains("table name `bad name`"));
    assert!(e(&[("query", "x"), ("output", "../x.csv")]).contains("relative file name under /out"));
    assert!(e(&[("query", "x"), ("params", r#"{"a": [1]}"#)]).contains("must be a string, number, bool or null"));
}

#[test]
fn positions_count_lines_and_characters() {
    assert_eq!(crate::query::position("SELECT\n  ë FRM", 11), (2, 4));
    assert_eq!(crate::query::position("abc", 0), (1, 1));
}

#[test]
fn null_only_columns_and_unused_arrays() {
    let out = tempfile::tempdir().unwrap();
    let s = Spec::from_params(&[("query".into(), "SELECT NULL AS n".into()), ("output".into(), "n.parquet".into())])
        .unwrap();
    execute(&s, out.path()).unwrap();
    let batch = read_parquet(&out.path().join("n.parquet"));
    assert_eq!(batch.column(0).null_count(), 1);
}

#[test]
fn copy_publishes_the_output_and_inputs_into_another_directory() {
    let dir = tempfile::tempdir().unwrap();
    orders_and_customers(dir.path());
    let out = dir.path().join("out");
    let gold = dir.path().join("gold");
    let copy = json!({
        gold.join("day/n.csv").to_str().unwrap(): out.join("n.csv").to_str().unwrap(),
        gold.join("orders.parquet").to_str().unwrap(): dir.path().join("orders.parquet").to_str().unwrap(),
    });
    let s = spec(
        dir.path(),
        &[("query", "SELECT COUNT(*) AS n FROM orders".into()), ("output", "n.csv".into()), ("copy", copy.to_string())],
    );
    // the copy's sources are absolute: point the output at the temp dir's out/
    std::fs::create_dir_all(&out).unwrap();
    let result = execute(&s, &out).unwrap();
    assert_eq!(result["copied"].as_array().unwrap().len(), 2, "{result}");
    assert_eq!(std::fs::read(gold.join("day/n.csv")).unwrap(), std::fs::read(out.join("n.csv")).unwrap());
    assert!(gold.join("orders.parquet").exists());
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let e = |c: &str| Spec::from_params(&pairs(&[("query", "x"), ("copy", c)])).unwrap_err().0;
    assert!(e(r#"{"/out/x.csv": "/in/a/x.csv"}"#).contains("copy into a mount"));
    assert!(e(r#"{"gold/x.csv": "/out/x.csv"}"#).contains("absolute, normalised"));
    assert!(e(r#"["/gold/x"]"#).contains("destination → source"));
}
