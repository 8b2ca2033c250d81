//! Reading a dataset file row by row, in bounded memory: CSV (a header line, RFC 4180
//! quoting, an empty field is null), JSON Lines (one object per line; the first line's
//! keys, in their order, are the columns; a missing key or `null` is null) and Parquet
//! (top-level columns, read in batches by [`super::parquet`]). Every value comes back as
//! text (`None` for null): numbers as written, strings unquoted, booleans `true`/`false`,
//! arrays and objects as JSON.
//!
//! It must never hold more than one row (and one read buffer or batch) at a time, nor write.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::parquet::ParquetRows;

/// The longest row read (bytes): a file without line breaks must not exhaust memory.
pub const MAX_ROW_BYTES: usize = 16 * 1024 * 1024;

/// A dataset being read.
#[derive(Debug)]
pub struct Dataset {
    pub columns: Vec<String>,
    source: Source,
    line: String,
    /// The first JSON line, read for its keys, is the first row too.
    pending_first: bool,
}

#[derive(Debug)]
enum Source {
    Csv(BufReader<File>),
    Json(BufReader<File>),
    Parquet(Box<ParquetRows>),
}

impl Dataset {
    /// Opens `path` by its extension: `.csv`, `.jsonl`, `.ndjson` or `.parquet`.
    pub fn open(path: &Path) -> Result<Dataset, String> {
        let extension = path.extension().and_then(|x| x.to_str()).unwrap_or("").to_ascii_lowercase();
        let open = || {
            let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok::<_, String>(BufReader::with_capacity(1 << 20, file))
        };
        let source = match extension.as_str() {
            "csv" => Source::Csv(open()?),
            "jsonl" | "ndjson" => Source::Json(open()?),
            "parquet" => {
                let rows = ParquetRows::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let columns = rows.columns().to_vec();
                let source = Source::Parquet(Box::new(rows));
                return Ok(Dataset { columns, source, line: String::new(), pending_first: false });
            }
            _ => {
                return Err(format!(
                    "{}: cannot read this as a dataset: CSV (.csv), JSON Lines (.jsonl, .ndjson) and Parquet \
                     (.parquet) are read",
                    path.display()
                ));
            }
        };
        let mut data = Dataset { columns: Vec::new(), source, line: String::new(), pending_first: false };
        data.columns = match data.source {
            Source::Json(_) => data.first_keys()?,
            _ => data.csv_record()?.unwrap_or_default(),
        };
        Ok(data)
    }

    /// Reads only the columns at `indices` (the others come back null): Parquet stores
    /// columns apart, so the ones no expectation needs are never decoded. Text formats
    /// read every row whole either way.
    pub fn select(&mut self, indices: &[usize]) -> Result<(), String> {
        match &mut self.source {
            Source::Parquet(rows) => rows.select(indices),
            _ => Ok(()),
        }
    }

    /// The next row (one value per column), `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<Vec<Option<String>>>, String> {
        match &mut self.source {
            Source::Json(_) => return self.json_row(),
            Source::Parquet(rows) => return rows.next_row(),
            Source::Csv(_) => {}
        }
        let Some(fields) = self.csv_record()? else { return Ok(None) };
        let mut row: Vec<Option<String>> = fields.into_iter().map(|f| (!f.is_empty()).then_some(f)).collect();
        row.resize(self.columns.len(), None);
        Ok(Some(row))
    }

    /// Reads one line into `self.line` (without its line break); `false` at the end.
    fn read_line(&mut self, append: bool) -> Result<bool, String> {
        if !append {
            self.line.clear();
        }
        let before = self.line.len();
        let (Source::Csv(reader) | Source::Json(reader)) = &mut self.source else { return Ok(false) };
        let read =
            reader.take(MAX_ROW_BYTES as u64 + 1).read_line(&mut self.line).map_err(|e| format!("reading: {e}"))?;
        if self.line.len() > MAX_ROW_BYTES {
            return Err(format!("a row longer than {MAX_ROW_BYTES} bytes"));
        }
        while self.line.ends_with('\n') || self.line.ends_with('\r') {
            self.line.pop();
        }
        Ok(read > 0 || self.line.len() > before)
    }

    /// One CSV record (quoted fields may hold commas, `""` and line breaks).
    fn csv_record(&mut self) -> Result<Option<Vec<String>>, String> {
        if !self.read_line(false)? {
            return Ok(None);
        }
        while self.line.matches('"').count() % 2 == 1 {
            self.line.push('\n');
            if !self.read_line(true)? {
                return Err("a quoted field is not closed".into());
            }
        }
        Ok(Some(split_csv(&self.line)))
    }

    fn first_keys(&mut self) -> Result<Vec<String>, String> {
        loop {
            if !self.read_line(false)? {
                return Ok(Vec::new());
            }
            if !self.line.trim().is_empty() {
                break;
            }
        }
        let keys = ordered_keys(&self.line).map_err(|e| format!("line 1: {e}"))?;
        // the first row is read again by `json_row`
        self.pending_first = true;
        Ok(keys)
    }

    fn json_row(&mut self) -> Result<Option<Vec<Option<String>>>, String> {
        if !std::mem::take(&mut self.pending_first) {
            loop {
                if !self.read_line(false)? {
                    return Ok(None);
                }
                if !self.line.trim().is_empty() {
                    break;
                }
            }
        }
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.line).map_err(|e| format!("not a JSON object: {e}"))?;
        Ok(Some(self.columns.iter().map(|c| object.get(c).and_then(text)).collect()))
    }
}

/// A JSON value as text; `None` for null.
fn text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The fields of one CSV record.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let (mut field, mut quoted, mut chars) = (String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The keys of a JSON object in the order written (serde_json's map sorts them).
fn ordered_keys(line: &str) -> Result<Vec<String>, String> {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    serde_json::Deserializer::from_str(line).deserialize_map(Keys).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_json_key_order() {
        assert_eq!(split_csv(r#"a,"b,c","say ""hi""",,"#), vec!["a", "b,c", "say \"hi\"", "", ""]);
        assert_eq!(ordered_keys(r#"{"z": 1, "a": [1], "m": null}"#).unwrap(), vec!["z", "a", "m"]);
    }

    #[test]
    fn rows_of_csv_and_json_lines_with_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        std::fs::write(&csv, "id,note\n1,\"two\nlines\"\n2,\n").unwrap();
        let mut data = Dataset::open(&csv).unwrap();
        assert_eq!(data.columns, vec!["id", "note"]);
        assert_eq!(data.next_row().unwrap(), Some(vec![Some("1".into()), Some("two\nlines".into())]));
        assert_eq!(data.next_row().unwrap(), Some(vec![Some("2".into()), None]));
        assert_eq!(data.next_row().unwrap(), None);
        let jsonl = dir.path().join("d.jsonl");
        std::fs::write(&jsonl, "{\"b\": 1, \"a\": \"x\"}\n\n{\"a\": null}\n").unwrap();
        let mut data = Dataset::open(&jsonl).unwrap();
        assert_eq!(data.columns, vec!["b", "a"]);
        assert_eq!(data.next_row().unwrap(), Some(vec![Some("1".into()), Some("x".into())]));
        assert_eq!(data.next_row().unwrap(), Some(vec![None, None]));
        assert_eq!(data.next_row().unwrap(), None);
        assert!(Dataset::open(&dir.path().join("d.txt")).unwrap_err().contains("cannot read this as a dataset"));
    }
}
