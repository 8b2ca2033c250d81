//! `ingest`: validate and summarise a CSV document.
//!
//! Params:
//! * `csv` — the CSV text; the first record is the header.
//! * `required` (optional) — comma-separated columns that must be non-empty.
//! * `numeric` (optional) — comma-separated columns that must parse as numbers (an empty cell is
//!   allowed unless the column is also `required`).
//! * `delimiter` (optional, default `,`) — one character; `tab` or `\t` for tabs.
//!
//! Output: `{ "columns", "rows", "valid", "invalid", "errors" (first 20), "sums" }` where
//! `sums` holds, per numeric column, the sum over valid rows. Publishes values `rows`, `valid`
//! and `invalid`. An empty CSV, a missing header or an unknown column name is a permanent error.
//!
//! Quoted fields (`"a, b"`, `"say ""hi"""`, embedded newlines) follow RFC 4180; blank lines are
//! skipped; `\r\n` line ends are accepted.

use serde::Serialize;
use sluice_sdk::{Context, Task, TaskError, params, values};

/// At most this many messages are kept in `errors`.
pub const MAX_ERRORS: usize = 20;

/// One CSV record and the (1-based) line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Split `text` into records. Fails only on an unterminated quoted field.
pub fn parse_csv(text: &str, delimiter: char) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut quoted_in_record = false;
    let mut in_quotes = false;
    let mut quote_line = 0;
    let mut chars = text.chars().peekable();

    let mut end_record = |fields: &mut Vec<String>, field: &mut String, quoted: bool, start| {
        fields.push(std::mem::take(field));
        let blank = !quoted && fields.len() == 1 && fields[0].is_empty();
        if blank {
            fields.clear();
        } else {
            records.push(Record {
                line: start,
                fields: std::mem::take(fields),
            });
        }
    };

    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                quoted_in_record = true;
                quote_line = line;
            }
            c if c == delimiter => fields.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut fields, &mut field, quoted_in_record, record_line);
                quoted_in_record = false;
                line += 1;
                record_line = line;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(format!("line {quote_line}: unterminated quoted field"));
    }
    if !field.is_empty() || !fields.is_empty() || quoted_in_record {
        end_record(&mut fields, &mut field, quoted_in_record, record_line);
    }
    Ok(records)
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub required: Vec<String>,
    pub numeric: Vec<String>,
}

/// The task's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub columns: Vec<String>,
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub errors: Vec<String>,
    pub sums: serde_json::Map<String, serde_json::Value>,
}

/// Validate `text` against `rules`. `Err` is a permanent problem with the document as a whole.
pub fn ingest(text: &str, delimiter: char, rules: &Rules) -> Result<Summary, String> {
    let mut records = parse_csv(text, delimiter)?.into_iter();
    let header = records.next().ok_or("empty csv: there is no header line")?;
    let columns: Vec<String> = header.fields.iter().map(|c| c.trim().to_string()).collect();
    if columns.iter().all(String::is_empty) {
        return Err(format!("line {}: the header names no columns", header.line));
    }
    let index_of = |name: &String, param: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("column `{name}` in `{param}` is not in the header {columns:?}"))
    };
    let required = rules
        .required
        .iter()
        .map(|n| index_of(n, "required"))
        .collect::<Result<Vec<_>, _>>()?;
    let numeric = rules
        .numeric
        .iter()
        .map(|n| index_of(n, "numeric"))
        .collect::<Result<Vec<_>, _>>()?;

    let mut sums = vec![0f64; numeric.len()];
    let mut out = Summary {
        columns: columns.clone(),
        rows: 0,
        valid: 0,
        invalid: 0,
        errors: Vec::new(),
        sums: serde_json::Map::new(),
    };
    let mut row_errors = Vec::new();
    let mut row_numbers = vec![0f64; numeric.len()];
    for record in records {
        out.rows += 1;
        row_errors.clear();
        let line = record.line;
        if record.fields.len() != columns.len() {
            row_errors.push(format!(
                "line {line}: expected {} columns, found {}",
                columns.len(),
                record.fields.len()
            ));
        } else {
            for &i in &required {
                if record.fields[i].trim().is_empty() {
                    row_errors.push(format!(
                        "line {line}: column `{}` is required but empty",
                        columns[i]
                    ));
                }
            }
            for (slot, &i) in numeric.iter().enumerate() {
                let cell = record.fields[i].trim();
                row_numbers[slot] = 0.0;
                if cell.is_empty() {
                    continue;
                }
                match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => row_numbers[slot] = v,
                    _ => row_errors.push(format!(
                        "line {line}: column `{}`: `{cell}` is not a number",
                        columns[i]
                    )),
                }
            }
        }
        if row_errors.is_empty() {
            out.valid += 1;
            for (sum, v) in sums.iter_mut().zip(&row_numbers) {
                *sum += v;
            }
        } else {
            out.invalid += 1;
            let room = MAX_ERRORS - out.errors.len();
            out.errors.extend(row_errors.drain(..).take(room));
        }
    }
    for (slot, &i) in numeric.iter().enumerate() {
        out.sums.insert(columns[i].clone(), number(sums[slot]));
    }
    Ok(out)
}

/// Integral sums as JSON integers (`6`, not `6.0`), the rest as floats.
fn number(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// `a, b,,c` → `["a", "b", "c"]`.
pub fn column_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The `delimiter` param: one character, or `tab` / `\t`.
pub fn delimiter(s: &str) -> Result<char, String> {
    match s {
        "tab" | "\\t" => return Ok('\t'),
        _ => {}
    }
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c != '"' && c != '\n' && c != '\r' => Ok(c),
        _ => Err(format!(
            "param `delimiter`: `{s}` is not a single usable character"
        )),
    }
}

pub struct Ingest;

impl Task for Ingest {
    type Output = Summary;

    fn run(_ctx: &Context) -> Result<Summary, TaskError> {
        let csv: String = params::require("csv")?;
        let delimiter = delimiter(&params::get("delimiter").unwrap_or_else(|| ",".into()))
            .map_err(TaskError::permanent)?;
        let rules = Rules {
            required: column_list(&params::get("required").unwrap_or_default()),
            numeric: column_list(&params::get("numeric").unwrap_or_default()),
        };
        let summary = ingest(&csv, delimiter, &rules).map_err(TaskError::permanent)?;
        values::set("rows", &summary.rows)?;
        values::set("valid", &summary.valid)?;
        values::set("invalid", &summary.invalid)?;
        Ok(summary)
    }
}

sluice_sdk::export_task!(Ingest);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_sdk::testing::{self, MockHost};

    fn rec(line: usize, fields: &[&str]) -> Record {
        Record {
            line,
            fields: fields.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn parses_quotes_commas_and_newlines() {
        let text = "a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\n\n2,\"multi\nline\",\n\"\"\n";
        let r = parse_csv(text, ',').unwrap();
        assert_eq!(
            r,
            vec![
                rec(1, &["a", "b", "c"]),
                rec(2, &["1", "x, y", "say \"hi\""]),
                rec(4, &["2", "multi\nline", ""]),
                rec(6, &[""]),
            ]
        );
    }

    #[test]
    fn last_line_without_newline_and_other_delimiters() {
        assert_eq!(
            parse_csv("a;b\n1;2", ';').unwrap(),
            vec![rec(1, &["a", "b"]), rec(2, &["1", "2"])]
        );
        assert_eq!(
            parse_csv("a\tb\n", '\t').unwrap(),
            vec![rec(1, &["a", "b"])]
        );
        assert_eq!(parse_csv("", ',').unwrap(), vec![]);
        assert_eq!(parse_csv("\n\n", ',').unwrap(), vec![]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(
            parse_csv("a\n\"oops\n", ',').unwrap_err(),
            "line 2: unterminated quoted field"
        );
    }

    #[test]
    fn validates_and_sums() {
        let text = "id,name,qty,price\n1,apple,3,0.5\n2,,4,1\n3,pear,x,2\n4,fig\n5,kiwi,,1.25\n";
        let rules = Rules {
            required: column_list("name"),
            numeric: column_list("qty, price"),
        };
        let s = ingest(text, ',', &rules).unwrap();
        assert_eq!(s.columns, vec!["id", "name", "qty", "price"]);
        assert_eq!((s.rows, s.valid, s.invalid), (5, 2, 3));
        assert_eq!(
            s.errors,
            vec![
                "line 3: column `name` is required but empty",
                "line 4: column `qty`: `x` is not a number",
                "line 5: expected 4 columns, found 2",
            ]
        );
        assert_eq!(json!(s.sums), json!({ "qty": 3, "price": 1.75 }));
    }

    #[test]
    fn errors_are_capped() {
        let mut text = String::from("n\n");
        for _ in 0..50 {
            text.push_str("nan\n");
        }
        let s = ingest(
            &text,
            ',',
            &Rules {
                required: vec![],
                numeric: vec!["n".into()],
            },
        )
        .unwrap();
        assert_eq!((s.rows, s.invalid, s.errors.len()), (50, 50, MAX_ERRORS));
    }

    #[test]
    fn document_level_errors() {
        assert_eq!(
            ingest("", ',', &Rules::default()).unwrap_err(),
            "empty csv: there is no header line"
        );
        assert_eq!(
            ingest("\n \n", ',', &Rules::default()).unwrap_err(),
            "line 2: the header names no columns"
        );
        let e = ingest(
            "a,b\n1,2\n",
            ',',
            &Rules {
                required: vec!["c".into()],
                numeric: vec![],
            },
        )
        .unwrap_err();
        assert!(
            e.starts_with("column `c` in `required` is not in the header"),
            "{e}"
        );
    }

    #[test]
    fn delimiters() {
        assert_eq!(delimiter(",").unwrap(), ',');
        assert_eq!(delimiter("tab").unwrap(), '\t');
        assert!(delimiter(";;").is_err());
        assert!(delimiter("").is_err());
    }

    #[test]
    fn run_end_to_end() {
        MockHost::new()
            .param("csv", "a,b\n1,2\n3,x\n")
            .param("numeric", "a,b")
            .install();
        let out = testing::run::<Ingest>(&Context::default()).unwrap();
        assert_eq!(out["rows"], 2);
        assert_eq!(out["valid"], 1);
        assert_eq!(out["sums"], json!({ "a": 1, "b": 2 }));
        assert_eq!(testing::published("invalid"), Some(json!(1)));

        MockHost::new().param("csv", "").install();
        let e = testing::run::<Ingest>(&Context::default()).unwrap_err();
        assert!(e.is_permanent());
        MockHost::new().install();
        assert!(
            testing::run::<Ingest>(&Context::default())
                .unwrap_err()
                .is_permanent()
        );
    }
}
