//! Writes the benchmark's Parquet dataset (`scripts/bench-expectations`): the rows its CSV
//! holds (`id`, `country`, `amount`, `note`), Snappy-compressed, in row groups of
//! [`GROUP_ROWS`], until the file reaches the size asked for.
//!
//! `cargo run --release --example parquet_gen -- OUT.parquet SIZE_MB`

// a command-line tool: it says what it wrote
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::File;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// Rows per row group: about what Spark and pyarrow write (tens of MiB per group).
const GROUP_ROWS: i64 = 1_000_000;

const COUNTRIES: [&str; 5] = ["NL", "BE", "DE", "FR", "XX"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, size_mb] = args.as_slice() else {
        eprintln!("usage: parquet_gen OUT.parquet SIZE_MB");
        std::process::exit(2);
    };
    let target = size_mb.parse::<u64>()? * 1024 * 1024;
    let schema = "message rows { required int64 id; required binary country (UTF8); required double amount; \
                  required binary note (UTF8); }";
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer =
        SerializedFileWriter::new(File::create(out)?, Arc::new(parse_message_type(schema)?), props.into())?;
    let (mut first, mut written) = (0i64, 0u64);
    while written < target {
        let ids: Vec<i64> = (first..first + GROUP_ROWS).collect();
        let mut group = writer.next_row_group()?;
        let mut column = group.next_column()?.ok_or("no id column")?;
        column.typed::<Int64Type>().write_batch(&ids, None, None)?;
        column.close()?;
        let mut column = group.next_column()?.ok_or("no country column")?;
        let countries: Vec<ByteArray> = ids.iter().map(|i| ByteArray::from(COUNTRIES[(i % 5) as usize])).collect();
        column.typed::<ByteArrayType>().write_batch(&countries, None, None)?;
        column.close()?;
        let mut column = group.next_column()?.ok_or("no amount column")?;
        let amounts: Vec<f64> = ids.iter().map(|i| ((i * 7919) % 10000) as f64 / 10.0).collect();
        column.typed::<DoubleType>().write_batch(&amounts, None, None)?;
        column.close()?;
        let mut column = group.next_column()?.ok_or("no note column")?;
        let notes: Vec<ByteArray> =
            ids.iter().map(|i| ByteArray::from(format!("row number {i} of the benchmark").into_bytes())).collect();
        column.typed::<ByteArrayType>().write_batch(&notes, None, None)?;
        column.close()?;
        written += group.close()?.compressed_size() as u64;
        first += GROUP_ROWS;
    }
    writer.close()?;
    println!("{out}: {first} rows");
    Ok(())
}
