//! Parquet datasets, row by row: the file's top-level columns, each decoded by the
//! `parquet` crate's column readers [`BATCH_ROWS`] values at a time, one row group after
//! another, so memory is one batch per selected column plus the pages being decoded —
//! never a row group, never the file. Values come back as text as [`super::dataset`]
//! gives them: numbers as written by Rust, strings (UTF-8 byte arrays) as they are,
//! dates `2024-01-31`, timestamps RFC 3339 in UTC, decimals with their scale, other byte
//! arrays as base64.
//!
//! Reads uncompressed and Snappy-compressed files (what Spark, pandas/pyarrow, DuckDB and
//! the SQL task write by default); another codec is an error naming it. Nested columns
//! (lists, maps, structs) are listed but cannot be checked. It must never write.

use std::fs::File;
use std::path::Path;

use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{DataType, Decimal};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::ColumnDescPtr;

/// Values decoded per column at a time: large enough that the decoder's per-call cost
/// vanishes, small enough that a batch of wide strings stays a few MiB.
pub const BATCH_ROWS: usize = 4096;

/// A Parquet file being read.
pub struct ParquetRows {
    reader: SerializedFileReader<File>,
    columns: Vec<String>,
    /// Per top-level column: its leaf column, `None` when it is nested.
    leaves: Vec<Option<ColumnDescPtr>>,
    leaf_index: Vec<Option<usize>>,
    /// The columns read (by [`ParquetRows::select`]; all flat ones by default).
    selected: Vec<usize>,
    /// The row group being read (its readers, one per selected column) and the next one.
    readers: Vec<ColumnReader>,
    next_group: usize,
    left_in_group: usize,
    /// The decoded batch, one vector per selected column, and the next row of it.
    batch: Vec<Vec<Option<String>>>,
    at: usize,
}

impl std::fmt::Debug for ParquetRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetRows").field("columns", &self.columns).field("next_group", &self.next_group).finish()
    }
}

impl ParquetRows {
    /// Opens `path` and reads its footer (the schema and where the row groups are).
    pub fn open(path: &Path) -> Result<ParquetRows, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let reader = SerializedFileReader::new(file).map_err(|e| format!("not a Parquet file: {e}"))?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let fields = schema.root_schema().get_fields();
        let mut leaves = vec![None; fields.len()];
        let mut leaf_index = vec![None; fields.len()];
        for (leaf, descr) in schema.columns().iter().enumerate() {
            let root = schema.get_column_root_idx(leaf);
            if fields[root].is_primitive() && descr.max_rep_level() == 0 {
                leaves[root] = Some(descr.clone());
                leaf_index[root] = Some(leaf);
            }
        }
        let columns: Vec<String> = fields.iter().map(|f| f.name().to_string()).collect();
        let selected = (0..columns.len()).filter(|&c| leaves[c].is_some()).collect();
        Ok(ParquetRows {
            reader,
            columns,
            leaves,
            leaf_index,
            selected,
            readers: Vec::new(),
            next_group: 0,
            left_in_group: 0,
            batch: Vec::new(),
            at: 0,
        })
    }

    /// The top-level columns, in the file's order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Reads only these columns; a nested one is an error naming it.
    pub fn select(&mut self, indices: &[usize]) -> Result<(), String> {
        for &c in indices {
            if self.leaves.get(c).is_none_or(Option::is_none) {
                let name = self.columns.get(c).map_or("?", String::as_str);
                return Err(format!(
                    "column `{name}` is nested (a list, map or struct): only flat columns are checked"
                ));
            }
        }
        self.selected = indices.to_vec();
        self.selected.sort_unstable();
        self.selected.dedup();
        Ok(())
    }

    /// The next row: one value per column (`None` for null and for columns not selected).
    pub fn next_row(&mut self) -> Result<Option<Vec<Option<String>>>, String> {
        if self.at >= self.batch.first().map_or(0, Vec::len) && !self.fill()? {
            return Ok(None);
        }
        let mut row = vec![None; self.columns.len()];
        for (values, &c) in self.batch.iter_mut().zip(&self.selected) {
            row[c] = values[self.at].take();
        }
        self.at += 1;
        Ok(Some(row))
    }

    /// Decodes the next batch; `false` at the end of the file.
    fn fill(&mut self) -> Result<bool, String> {
        while self.left_in_group == 0 {
            let metadata = self.reader.metadata();
            if self.next_group >= metadata.num_row_groups() {
                return Ok(false);
            }
            let rows = metadata.row_group(self.next_group).num_rows();
            let group = self.reader.get_row_group(self.next_group).map_err(|e| e.to_string())?;
            let mut readers = Vec::with_capacity(self.selected.len());
            for &c in &self.selected {
                let leaf = self.leaf_index[c].unwrap_or_default();
                readers.push(group.get_column_reader(leaf).map_err(|e| format!("column `{}`: {e}", self.columns[c]))?);
            }
            self.readers = readers;
            self.left_in_group = usize::try_from(rows).unwrap_or(0);
            self.next_group += 1;
        }
        let want = self.left_in_group.min(BATCH_ROWS);
        self.batch.resize_with(self.selected.len(), Vec::new);
        if self.selected.is_empty() {
            // only the row count is wanted: rows without values
            self.batch = vec![vec![None; want]];
        }
        for (i, &c) in self.selected.iter().enumerate() {
            let (Some(descr), Some(reader)) = (&self.leaves[c], self.readers.get_mut(i)) else { continue };
            let into = &mut self.batch[i];
            into.clear();
            read_batch(reader, descr, want, into).map_err(|e| format!("column `{}`: {e}", self.columns[c]))?;
            if into.len() != want {
                return Err(format!(
                    "column `{}`: {} values where the row group has {want} more rows",
                    self.columns[c],
                    into.len()
                ));
            }
        }
        self.left_in_group -= want;
        self.at = 0;
        Ok(true)
    }
}

/// `want` values of one column into `into`, as text.
fn read_batch(
    reader: &mut ColumnReader,
    descr: &ColumnDescPtr,
    want: usize,
    into: &mut Vec<Option<String>>,
) -> Result<(), String> {
    match reader {
        ColumnReader::BoolColumnReader(r) => typed(r, descr, want, into, |d, v| Ok(Field::convert_bool(d, v))),
        ColumnReader::Int32ColumnReader(r) => typed(r, descr, want, into, |d, v| Ok(Field::convert_int32(d, v))),
        ColumnReader::Int64ColumnReader(r) => typed(r, descr, want, into, |d, v| Ok(Field::convert_int64(d, v))),
        ColumnReader::Int96ColumnReader(r) => typed(r, descr, want, into, |d, v| Ok(Field::convert_int96(d, v))),
        ColumnReader::FloatColumnReader(r) => typed(r, descr, want, into, |d, v| Ok(Field::convert_float(d, v))),
        ColumnReader::DoubleColumnReader(r) => typed(r, descr, want, into, |d, v| Ok(Field::convert_double(d, v))),
        ColumnReader::ByteArrayColumnReader(r) => typed(r, descr, want, into, Field::convert_byte_array),
        ColumnReader::FixedLenByteArrayColumnReader(r) => {
            typed(r, descr, want, into, |d, v| Field::convert_byte_array(d, v.into()))
        }
    }
}

type Convert<T> = fn(&ColumnDescPtr, T) -> parquet::errors::Result<Field>;

fn typed<T: DataType>(
    reader: &mut ColumnReaderImpl<T>,
    descr: &ColumnDescPtr,
    want: usize,
    into: &mut Vec<Option<String>>,
    convert: Convert<T::T>,
) -> Result<(), String> {
    let (mut values, mut defs) = (Vec::with_capacity(want), Vec::with_capacity(want));
    let nullable = descr.max_def_level() > 0;
    let (records, _, _) =
        reader.read_records(want, nullable.then_some(&mut defs), None, &mut values).map_err(|e| e.to_string())?;
    let mut values = values.into_iter();
    let mut text = |value: Option<T::T>| -> Result<(), String> {
        let field = value.map(|v| convert(descr, v)).transpose().map_err(|e| e.to_string())?;
        into.push(field.and_then(field_text));
        Ok(())
    };
    if nullable {
        for &def in defs.iter().take(records) {
            text(if def == descr.max_def_level() { values.next() } else { None })?;
        }
    } else {
        for value in values.take(records) {
            text(Some(value))?;
        }
    }
    Ok(())
}

/// A value as the expectations read it; `None` for null.
fn field_text(field: Field) -> Option<String> {
    use base64::Engine as _;
    use chrono::DateTime;
    let time = |t: Option<DateTime<chrono::Utc>>, raw: i64| {
        t.map_or_else(|| raw.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    Some(match field {
        Field::Null => return None,
        Field::Str(s) => s,
        Field::Bool(b) => b.to_string(),
        Field::Byte(v) => v.to_string(),
        Field::Short(v) => v.to_string(),
        Field::Int(v) => v.to_string(),
        Field::Long(v) => v.to_string(),
        Field::UByte(v) => v.to_string(),
        Field::UShort(v) => v.to_string(),
        Field::UInt(v) => v.to_string(),
        Field::ULong(v) => v.to_string(),
        Field::Float16(v) => v.to_string(),
        Field::Float(v) => v.to_string(),
        Field::Double(v) => v.to_string(),
        Field::Decimal(d) => decimal_text(&d),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => s.to_string(),
            Err(_) => base64::engine::general_purpose::STANDARD.encode(b.data()),
        },
        Field::Date(days) => DateTime::from_timestamp(i64::from(days) * 86_400, 0)
            .map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string()),
        Field::TimeMillis(ms) => {
            format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
        }
        Field::TimeMicros(us) => {
            format!(
                "{:02}:{:02}:{:02}.{:06}",
                us / 3_600_000_000,
                us / 60_000_000 % 60,
                us / 1_000_000 % 60,
                us % 1_000_000
            )
        }
        Field::TimestampMillis(ms) => time(DateTime::from_timestamp_millis(ms), ms),
        Field::TimestampMicros(us) => time(DateTime::from_timestamp_micros(us), us),
        // flat columns only (see `select`): nested values never reach here
        other => other.to_string(),
    })
}

/// A decimal's unscaled big-endian integer with its scale applied (`-12.50`).
fn decimal_text(decimal: &Decimal) -> String {
    let bytes = decimal.data();
    if bytes.is_empty() || bytes.len() > 16 {
        return base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    }
    // sign-extend the two's complement bytes into an i128
    let mut full = if bytes[0] & 0x80 != 0 { [0xffu8; 16] } else { [0u8; 16] };
    full[16 - bytes.len()..].copy_from_slice(bytes);
    let unscaled = i128::from_be_bytes(full);
    let scale = usize::try_from(decimal.scale()).unwrap_or(0);
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

#[cfg(test)]
#[path = "parquet_tests.rs"]
mod tests;
