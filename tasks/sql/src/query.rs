//! Running the query: prepare (bad SQL → an error with line, column and a caret), bind the
//! parameters (never spliced), and collect the result as one Arrow record batch whose column
//! types follow the values (all integers → Int64, integers and reals → Float64, any text →
//! Utf8, blobs → Binary; a column of only NULLs takes its declared type, else Utf8).

use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, Statement};

use crate::spec::{Param, Params};

/// A failed query, its message ready for the task error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

/// `line L, column C` (1-based, columns in characters) of byte `offset` in `sql`.
pub fn position(sql: &str, offset: usize) -> (usize, usize) {
    let before = &sql[..offset.min(sql.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The error text for bad SQL: what SQLite said, where, and the line with a caret under it.
pub fn describe_sql_error(sql: &str, msg: &str, offset: Option<usize>) -> String {
    let Some(offset) = offset else { return format!("SQL error: {msg}") };
    let (line, column) = position(sql, offset);
    let text = sql.lines().nth(line - 1).unwrap_or("");
    format!("SQL error at line {line}, column {column}: {msg}\n  {text}\n  {}^", " ".repeat(column - 1))
}

fn prepare<'c>(conn: &'c Connection, sql: &str, tables: &[String]) -> Result<Statement<'c>, QueryError> {
    let stmt = conn.prepare(sql).map_err(|e| {
        let mut text = match &e {
            rusqlite::Error::SqlInputError { msg, offset, .. } => {
                describe_sql_error(sql, msg, usize::try_from(*offset).ok())
            }
            rusqlite::Error::MultipleStatement => "SQL error: the query must be one statement".to_string(),
            other => format!("SQL error: {other}"),
        };
        if text.contains("no such table") {
            text.push_str(&format!(
                "\n(tables: {})",
                if tables.is_empty() { "none".into() } else { tables.join(", ") }
            ));
        }
        QueryError(text)
    })?;
    if !stmt.readonly() {
        return Err(QueryError("SQL error: the query must be read-only (SELECT or WITH … SELECT)".into()));
    }
    Ok(stmt)
}

fn to_sql(p: &Param) -> Sql {
    match p {
        Param::Null => Sql::Null,
        Param::Int(i) => Sql::Integer(*i),
        Param::Real(r) => Sql::Real(*r),
        Param::Text(t) => Sql::Text(t.clone()),
    }
}

fn bind(stmt: &mut Statement<'_>, params: &Params) -> Result<(), QueryError> {
    let count = stmt.parameter_count();
    let mut used = vec![
        false;
        match params {
            Params::Named(v) => v.len(),
            Params::Positional(v) => v.len(),
        }
    ];
    for i in 1..=count {
        let name = stmt.parameter_name(i).map(str::to_string);
        let value = match (params, &name) {
            (Params::Named(given), Some(n)) if !n.starts_with('?') => {
                let bare = &n[1..];
                let found = given.iter().position(|(k, _)| k == bare);
                let Some(j) = found else {
                    let names: Vec<&str> = given.iter().map(|(k, _)| k.as_str()).collect();
                    return Err(QueryError(format!(
                        "query parameter `{n}` has no value in `params` (given: {names:?})"
                    )));
                };
                used[j] = true;
                to_sql(&given[j].1)
            }
            (Params::Positional(given), _) => {
                let Some(v) = given.get(i - 1) else {
                    return Err(QueryError(format!(
                        "query parameter {i} has no value: `params` has {} items",
                        given.len()
                    )));
                };
                used[i - 1] = true;
                to_sql(v)
            }
            (Params::Named(_), _) => {
                return Err(QueryError(format!(
                    "query parameter {i} is positional (`?`): give `params` as a JSON array"
                )));
            }
        };
        stmt.raw_bind_parameter(i, value).map_err(|e| QueryError(format!("binding parameter {i}: {e}")))?;
    }
    if let Some(j) = used.iter().position(|u| !u) {
        let what = match params {
            Params::Named(v) => format!("`{}`", v[j].0),
            Params::Positional(_) => format!("item {}", j + 1),
        };
        return Err(QueryError(format!("param `params`: {what} is not used by the query")));
    }
    Ok(())
}

fn column_type(values: &[Sql], declared: Option<&str>) -> DataType {
    let (mut ints, mut reals, mut texts, mut blobs) = (0, 0, 0, 0);
    for v in values {
        match v {
            Sql::Integer(_) => ints += 1,
            Sql::Real(_) => reals += 1,
            Sql::Text(_) => texts += 1,
            Sql::Blob(_) => blobs += 1,
            Sql::Null => {}
        }
    }
    match (ints, reals, texts, blobs) {
        (0, 0, 0, 0) => match declared.map(str::to_ascii_uppercase).as_deref() {
            Some(d) if d.contains("INT") => DataType::Int64,
            Some(d) if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") => DataType::Float64,
            _ => DataType::Utf8,
        },
        (_, 0, 0, 0) => DataType::Int64,
        (_, _, 0, 0) => DataType::Float64,
        (0, 0, 0, _) => DataType::Binary,
        _ => DataType::Utf8,
    }
}

fn text_of(v: &Sql) -> Option<String> {
    match v {
        Sql::Null => None,
        Sql::Integer(i) => Some(i.to_string()),
        Sql::Real(r) => Some(r.to_string()),
        Sql::Text(t) => Some(t.clone()),
        Sql::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

fn array(values: &[Sql], t: &DataType) -> ArrayRef {
    match t {
        DataType::Int64 => Arc::new(
            values.iter().map(|v| if let Sql::Integer(i) = v { Some(*i) } else { None }).collect::<Int64Array>(),
        ),
        DataType::Float64 => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Sql::Integer(i) => Some(*i as f64),
                    Sql::Real(r) => Some(*r),
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        DataType::Binary => Arc::new(
            values
                .iter()
                .map(|v| if let Sql::Blob(b) = v { Some(b.as_slice()) } else { None })
                .collect::<BinaryArray>(),
        ),
        _ => Arc::new(values.iter().map(text_of).collect::<StringArray>()),
    }
}

/// Run `sql` with `params` over `conn`'s tables (`tables`, for hints); the result as one batch.
pub fn run(conn: &Connection, sql: &str, params: &Params, tables: &[String]) -> Result<RecordBatch, QueryError> {
    let mut stmt = prepare(conn, sql, tables)?;
    bind(&mut stmt, params)?;
    let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let declared: Vec<Option<String>> = stmt.columns().map(|c| c.decl_type().map(str::to_string)).collect();
    let mut columns: Vec<Vec<Sql>> = vec![Vec::new(); names.len()];
    let mut rows = stmt.raw_query();
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => return Err(QueryError(format!("SQL error while running the query: {e}"))),
        };
        for (i, col) in columns.iter_mut().enumerate() {
            let v = row.get_ref(i).map_err(|e| QueryError(e.to_string()))?;
            col.push(match v {
                ValueRef::Null => Sql::Null,
                ValueRef::Integer(i) => Sql::Integer(i),
                ValueRef::Real(r) => Sql::Real(r),
                ValueRef::Text(t) => Sql::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Sql::Blob(b.to_vec()),
            });
        }
    }
    let types: Vec<DataType> = columns.iter().zip(&declared).map(|(v, d)| column_type(v, d.as_deref())).collect();
    let fields: Vec<Field> = names.iter().zip(&types).map(|(n, t)| Field::new(n, t.clone(), true)).collect();
    let arrays: Vec<ArrayRef> = columns.iter().zip(&types).map(|(v, t)| array(v, t)).collect();
    let schema = Arc::new(Schema::new(fields));
    if arrays.is_empty() {
        return Err(QueryError("SQL error: the query returns no columns".into()));
    }
    RecordBatch::try_new(schema, arrays).map_err(|e| QueryError(e.to_string()))
}
