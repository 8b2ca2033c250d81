//! Parquet files written by the `parquet` crate's own writer, read back as rows.

use std::path::Path;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::*;
use crate::quality::dataset::Dataset;
use crate::quality::expect;
use crate::spec::expect::{ExpectKind, Expectation};

const SCHEMA: &str = "message rows {
    required int64 id;
    optional binary country (UTF8);
    optional double amount;
    optional int32 day (DATE);
    optional int64 price (DECIMAL(10,2));
}";

/// One row: id, country, amount.
type Row<'a> = (i64, Option<&'a str>, Option<f64>);

/// One row group per slice of `rows`, snappy-compressed.
fn write(path: &Path, groups: &[&[Row<'_>]]) {
    let schema = Arc::new(parse_message_type(SCHEMA).unwrap());
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    for rows in groups {
        let mut group = writer.next_row_group().unwrap();
        let defs = |present: &dyn Fn(usize) -> bool| (0..rows.len()).map(|i| i16::from(present(i))).collect::<Vec<_>>();
        let mut column = group.next_column().unwrap().unwrap();
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        column.typed::<Int64Type>().write_batch(&ids, None, None).unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        let names: Vec<ByteArray> = rows.iter().filter_map(|r| r.1).map(ByteArray::from).collect();
        column.typed::<ByteArrayType>().write_batch(&names, Some(&defs(&|i| rows[i].1.is_some())), None).unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        let amounts: Vec<f64> = rows.iter().filter_map(|r| r.2).collect();
        column.typed::<DoubleType>().write_batch(&amounts, Some(&defs(&|i| rows[i].2.is_some())), None).unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        let days: Vec<i32> = rows.iter().map(|r| 19_753 + r.0 as i32).collect();
        column.typed::<Int32Type>().write_batch(&days, Some(&defs(&|_| true)), None).unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        let prices: Vec<i64> = rows.iter().map(|r| r.0 * 125 - 300).collect();
        column.typed::<Int64Type>().write_batch(&prices, Some(&defs(&|_| true)), None).unwrap();
        column.close().unwrap();
        group.close().unwrap();
    }
    writer.close().unwrap();
}

fn text(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn rows_come_back_as_text_across_row_groups_with_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    write(&path, &[&[(1, Some("NL"), Some(2.5)), (2, None, Some(10.0))], &[(3, Some("BE"), None)]]);
    let mut data = Dataset::open(&path).unwrap();
    assert_eq!(data.columns, vec!["id", "country", "amount", "day", "price"]);
    let first = data.next_row().unwrap().unwrap();
    assert_eq!(first, vec![text("1"), text("NL"), text("2.5"), text("2024-02-01"), text("-1.75")]);
    assert_eq!(data.next_row().unwrap().unwrap()[..3], [text("2"), None, text("10")]);
    assert_eq!(data.next_row().unwrap().unwrap()[..3], [text("3"), text("BE"), None]);
    assert_eq!(data.next_row().unwrap(), None);
}

#[test]
fn only_selected_columns_are_decoded_and_row_counts_need_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    let many: Vec<_> = (0..(BATCH_ROWS as i64 * 2 + 7)).map(|i| (i, Some("NL"), Some(i as f64))).collect();
    write(&path, &[&many, &many[..5]]);
    let mut data = Dataset::open(&path).unwrap();
    data.select(&[1]).unwrap();
    assert_eq!(data.next_row().unwrap().unwrap(), vec![None, text("NL"), None, None, None]);
    let mut data = Dataset::open(&path).unwrap();
    data.select(&[]).unwrap();
    let mut rows = 0;
    while data.next_row().unwrap().is_some() {
        rows += 1;
    }
    assert_eq!(rows, many.len() + 5);
}

#[test]
fn the_same_expectations_hold_on_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [(1, Some("NL"), Some(2.5)), (2, None, Some(10.0)), (2, Some("XX"), Some(2000.0))];
    write(&dir.path().join("rows.parquet"), &[&rows]);
    std::fs::write(dir.path().join("rows.csv"), "id,country,amount\n1,NL,2.5\n2,,10\n2,XX,2000\n").unwrap();
    let e = |column: &str, kind: ExpectKind| Expectation {
        name: "expect".into(),
        dataset: "rows".into(),
        column: Some(column.into()),
        mostly: None,
        kind,
    };
    let all = [
        e("id", ExpectKind::Unique),
        e("country", ExpectKind::NotNull),
        e("country", ExpectKind::InSet { values: vec!["NL".into(), "BE".into()] }),
        e("amount", ExpectKind::Between { min: Some(0.0), max: Some(1000.0) }),
        e("amount", ExpectKind::MeanBetween { min: Some(0.0), max: Some(1000.0) }),
        e("country", ExpectKind::MatchRegex { regex: "^[A-Z]{2}$".into() }),
    ];
    let list: Vec<&Expectation> = all.iter().collect();
    let csv = expect::evaluate(&dir.path().join("rows.csv"), &list).unwrap();
    let parquet = expect::evaluate(&dir.path().join("rows.parquet"), &list).unwrap();
    assert_eq!(csv, parquet);
    assert_eq!(parquet.iter().map(|o| o.success).collect::<Vec<_>>(), [false, false, false, false, true, true]);
    assert_eq!(parquet[0].rows, vec!["row 2: \"2\""]);
}

#[test]
fn a_file_that_is_not_parquet_and_a_nested_column_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    std::fs::write(&path, "id,name\n1,a\n").unwrap();
    assert!(Dataset::open(&path).unwrap_err().contains("not a Parquet file"), "{}", Dataset::open(&path).unwrap_err());
    let nested = dir.path().join("nested.parquet");
    let schema = "message m { required int32 id; optional group tags (LIST) { repeated group list { optional binary element (UTF8); } } }";
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let mut writer =
        SerializedFileWriter::new(File::create(&nested).unwrap(), schema, Arc::new(WriterProperties::default()))
            .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column.typed::<Int32Type>().write_batch(&[7], None, None).unwrap();
    column.close().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column.typed::<ByteArrayType>().write_batch(&[ByteArray::from("a")], Some(&[3]), Some(&[0])).unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
    let mut data = Dataset::open(&nested).unwrap();
    assert_eq!(data.columns, vec!["id", "tags"]);
    assert!(data.select(&[1]).unwrap_err().contains("column `tags` is nested"));
    data.select(&[0]).unwrap();
    assert_eq!(data.next_row().unwrap(), Some(vec![text("7"), None]));
}

#[test]
fn decimals_keep_their_scale() {
    assert_eq!(decimal_text(&Decimal::from_i64(-175, 5, 2)), "-1.75");
    assert_eq!(decimal_text(&Decimal::from_i64(5, 5, 3)), "0.005");
    assert_eq!(decimal_text(&Decimal::from_i32(1234, 6, 0)), "1234");
    assert_eq!(decimal_text(&Decimal::from_bytes(ByteArray::from(vec![0xffu8, 0x38]), 6, 1)), "-20.0");
}
