//! Loading input files into SQLite tables: each file is read as Arrow record batches (Parquet,
//! CSV with a header and inferred types, JSON Lines with an inferred schema) and inserted into
//! an in-memory table whose columns are INTEGER, REAL, TEXT or BLOB.
//!
//! Integers and booleans become INTEGER, floats and decimals REAL, binary BLOB, and every other
//! type its text (dates and timestamps as ISO 8601, which SQLite's date functions understand).

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch, RecordBatchReader, StringArray,
};
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use rusqlite::{Connection, params_from_iter, types::Value as Sql};

use crate::spec::{Format, Input};

/// Rows per Arrow batch read from a file: large enough to amortise per-batch work, small enough
/// that one batch of a wide table stays a few MiB.
pub const BATCH_ROWS: usize = 8192;
/// CSV and JSON Lines types are inferred from this many leading records.
pub const INFER_RECORDS: usize = 1000;

/// The SQLite storage class a column is loaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    Integer,
    Real,
    Text,
    Blob,
}

impl Affinity {
    pub fn of(t: &DataType) -> Affinity {
        use DataType::*;
        match t {
            Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Affinity::Integer,
            Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => {
                Affinity::Real
            }
            Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => Affinity::Blob,
            _ => Affinity::Text,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Affinity::Integer => "INTEGER",
            Affinity::Real => "REAL",
            Affinity::Text => "TEXT",
            Affinity::Blob => "BLOB",
        }
    }

    fn target(self) -> DataType {
        match self {
            Affinity::Integer => DataType::Int64,
            Affinity::Real => DataType::Float64,
            Affinity::Text => DataType::Utf8,
            Affinity::Blob => DataType::Binary,
        }
    }
}

/// `"name"` with quotes doubled: safe as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, String>>>;

fn open(input: &Input) -> Result<(SchemaRef, Batches), String> {
    let file = File::open(&input.path).map_err(|e| format!("cannot open {}: {e}", input.path))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(format!("{} is a directory; name one file", input.path));
    }
    let wrap = |r: Result<RecordBatch, arrow_schema::ArrowError>| r.map_err(|e| e.to_string());
    match input.format {
        Format::Parquet => {
            // Whole file in memory: parquet reads a `File` through `try_clone`, which WASI lacks.
            let mut data = Vec::new();
            let mut file = file;
            file.read_to_end(&mut data).map_err(|e| format!("cannot read {}: {e}", input.path))?;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(Bytes::from(data))
                .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                .map_err(|e| e.to_string())?;
            Ok((reader.schema(), Box::new(reader.map(wrap))))
        }
        Format::Csv => {
            let mut file = file;
            let format = arrow_csv::reader::Format::default().with_header(true).with_delimiter(input.delimiter);
            let (schema, _) = format.infer_schema(&mut file, Some(INFER_RECORDS)).map_err(|e| e.to_string())?;
            file.rewind().map_err(|e| e.to_string())?;
            let schema = Arc::new(schema);
            let reader = arrow_csv::ReaderBuilder::new(schema.clone())
                .with_format(format)
                .with_batch_size(BATCH_ROWS)
                .build(file)
                .map_err(|e| e.to_string())?;
            Ok((schema, Box::new(reader.map(wrap))))
        }
        Format::JsonLines => {
            let mut reader = BufReader::new(file);
            let (schema, _) =
                arrow_json::reader::infer_json_schema(&mut reader, Some(INFER_RECORDS)).map_err(|e| e.to_string())?;
            reader.rewind().map_err(|e| e.to_string())?;
            let schema = Arc::new(schema);
            let reader = arrow_json::ReaderBuilder::new(schema.clone())
                .with_batch_size(BATCH_ROWS)
                .build(reader)
                .map_err(|e| e.to_string())?;
            Ok((schema, Box::new(reader.map(wrap))))
        }
    }
}

fn cell(column: &ArrayRef, row: usize) -> Sql {
    if column.is_null(row) {
        return Sql::Null;
    }
    let any = column.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        Sql::Integer(a.value(row))
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        Sql::Real(a.value(row))
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        Sql::Text(a.value(row).to_string())
    } else if let Some(a) = any.downcast_ref::<BinaryArray>() {
        Sql::Blob(a.value(row).to_vec())
    } else {
        Sql::Null
    }
}

/// Load `input` into a new table; the number of rows loaded.
pub fn load(conn: &Connection, input: &Input) -> Result<usize, String> {
    let (schema, batches) = open(input)?;
    let affinities: Vec<Affinity> = schema.fields().iter().map(|f| Affinity::of(f.data_type())).collect();
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .zip(&affinities)
        .map(|(f, a)| format!("{} {}", quote_ident(f.name()), a.sql()))
        .collect();
    let table = quote_ident(&input.table);
    conn.execute(&format!("CREATE TABLE {table} ({})", columns.join(", ")), []).map_err(|e| e.to_string())?;
    let marks = vec!["?"; affinities.len()].join(", ");
    let mut insert = conn.prepare(&format!("INSERT INTO {table} VALUES ({marks})")).map_err(|e| e.to_string())?;
    let mut rows = 0;
    for batch in batches {
        let batch = batch?;
        let cast: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(&affinities)
            .map(|(c, a)| arrow_cast::cast(c, &a.target()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            insert.execute(params_from_iter(cast.iter().map(|c| cell(c, row)))).map_err(|e| e.to_string())?;
        }
        rows += batch.num_rows();
    }
    Ok(rows)
}
