//! Writing the result: Parquet (Snappy-compressed), CSV with a header, or JSON Lines; and the
//! result's schema as the JSON the task publishes (`[{"name", "type", "nullable"}]`).

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use serde_json::{Value, json};

use crate::spec::Format;

/// Write `batch` to `path` in `format`, atomically: a `.partial` file renamed into place, so a
/// failed write leaves no half-written output.
pub fn write(batch: &RecordBatch, path: &Path, format: Format) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let partial = path.with_extension("partial");
    let file = File::create(&partial).map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let written = match format {
        Format::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .build();
            parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))
                .and_then(|mut w| {
                    w.write(batch)?;
                    w.close().map(|_| ())
                })
                .map_err(|e| e.to_string())
        }
        Format::Csv => {
            let mut w = arrow_csv::WriterBuilder::new().with_header(true).build(file);
            w.write(batch).map_err(|e| e.to_string())
        }
        Format::JsonLines => {
            let mut w = arrow_json::LineDelimitedWriter::new(file);
            w.write(batch).and_then(|_| w.finish()).map_err(|e| e.to_string())
        }
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    std::fs::rename(&partial, path).map_err(|e| format!("cannot move {} into place: {e}", path.display()))
}

/// The result's columns: name, Arrow type and nullability.
pub fn schema_json(batch: &RecordBatch) -> Value {
    let schema = batch.schema();
    let fields = schema
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable() }));
    Value::Array(fields.collect())
}
