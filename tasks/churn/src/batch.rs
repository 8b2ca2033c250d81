//! The file-triggered example's batch pipeline, pure parts: which files a run was started
//! for (`{{ trigger.files }}`), ingesting raw customer CSV files (validated, normalised,
//! each row tagged with the file it came from; bad rows rejected by file and line), the
//! model's feature vectors from them, and the CSV texts the steps exchange. No I/O: the
//! steps in `steps.rs` read and write; these test natively.

use serde_json::Value;

/// The raw files' header (what lands in the bucket).
pub const RAW_HEADER: &str = "customer,tenure_months,contract,monthly_charges,support_calls";
/// The ingested rows' header: the raw columns, normalised, after the file they came from.
pub const INGESTED_HEADER: &str = "file,customer,tenure_months,contract,monthly_charges,support_calls";
/// The feature rows' header: the file and customer, then the model's features in order.
pub const FEATURES_HEADER: &str = "file,customer,tenure_months,monthly_charges,support_calls,annual_contract";

/// One valid customer record of a landed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub file: String,
    pub customer: String,
    pub tenure_months: u32,
    /// `monthly` or `annual` (lower case).
    pub contract: String,
    pub monthly_charges: f64,
    pub support_calls: u32,
}

/// The paths of `{{ trigger.files }}` (a JSON array of `{ path, size, … }`), in order.
pub fn trigger_paths(json: &str) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let list = v.as_array().ok_or("not a JSON array of files")?;
    list.iter()
        .map(|f| f["path"].as_str().map(str::to_string).ok_or_else(|| format!("a file without `path`: {f}")))
        .collect()
}

/// The customers of one raw file, and a message per rejected line (`file:line: why`).
pub fn ingest(file: &str, text: &str) -> Result<(Vec<Customer>, Vec<String>), String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, h)) if h.trim() == RAW_HEADER => {}
        Some((_, h)) => return Err(format!("{file}:1: header `{h}` is not `{RAW_HEADER}`")),
        None => return Err(format!("{file}: empty")),
    }
    let (mut good, mut rejected) = (Vec::new(), Vec::new());
    for (n, line) in lines {
        match customer(file, line) {
            Ok(c) => good.push(c),
            Err(why) => rejected.push(format!("{file}:{}: {why}", n + 1)),
        }
    }
    Ok((good, rejected))
}

fn customer(file: &str, line: &str) -> Result<Customer, String> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    if f.len() != 5 {
        return Err(format!("{} fields, expected 5", f.len()));
    }
    let num = |i: usize, name: &str| f[i].parse::<f64>().map_err(|_| format!("{name} `{}` is not a number", f[i]));
    if f[0].is_empty() {
        return Err("no customer id".into());
    }
    let tenure = num(1, "tenure_months")?;
    let charges = num(3, "monthly_charges")?;
    let calls = num(4, "support_calls")?;
    let contract = f[2].to_ascii_lowercase();
    if contract != "monthly" && contract != "annual" {
        return Err(format!("contract `{}` is neither monthly nor annual", f[2]));
    }
    if !(0.0..=1200.0).contains(&tenure) || !(0.0..=10_000.0).contains(&charges) || !(0.0..=1000.0).contains(&calls) {
        return Err("a value out of range".into());
    }
    Ok(Customer {
        file: file.to_string(),
        customer: f[0].to_string(),
        tenure_months: tenure as u32,
        contract,
        monthly_charges: charges,
        support_calls: calls as u32,
    })
}

/// Ingested customers as CSV ([`INGESTED_HEADER`]).
pub fn ingested_csv(rows: &[Customer]) -> String {
    let mut out = format!("{INGESTED_HEADER}\n");
    for c in rows {
        out.push_str(&format!(
            "{},{},{},{},{:.2},{}\n",
            c.file, c.customer, c.tenure_months, c.contract, c.monthly_charges, c.support_calls
        ));
    }
    out
}

/// The customers of [`ingested_csv`]'s text.
pub fn from_ingested(text: &str) -> Result<Vec<Customer>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let (file, rest) = line.split_once(',').ok_or_else(|| format!("line {}: no file column", n + 1))?;
        out.push(customer(file, rest).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(out)
}

/// The model's features of a customer ([`crate::model::FEATURES`]' order).
pub fn features(c: &Customer) -> [f64; 4] {
    let annual = if c.contract == "annual" { 1.0 } else { 0.0 };
    [f64::from(c.tenure_months), c.monthly_charges, f64::from(c.support_calls), annual]
}

/// One scored row's input: file, customer, features.
pub type FeatureRow = (String, String, [f64; 4]);

/// Feature rows as CSV ([`FEATURES_HEADER`]).
pub fn features_csv(rows: &[Customer]) -> String {
    let mut out = format!("{FEATURES_HEADER}\n");
    for c in rows {
        let x = features(c);
        out.push_str(&format!("{},{},{},{:.2},{},{}\n", c.file, c.customer, x[0], x[1], x[2], x[3]));
    }
    out
}

/// The rows of [`features_csv`]'s text.
pub fn from_features(text: &str) -> Result<Vec<FeatureRow>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 6 {
            return Err(format!("line {}: {} fields, expected 6", n + 1, f.len()));
        }
        let mut x = [0.0; 4];
        for (i, v) in f[2..].iter().enumerate() {
            x[i] = v.trim().parse().map_err(|e| format!("line {}: `{v}`: {e}", n + 1))?;
        }
        out.push((f[0].to_string(), f[1].to_string(), x));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "customer,tenure_months,contract,monthly_charges,support_calls\n\
                       C1,12,Annual,50.5,2\nC2,,monthly,55.10,1\nC3,3,weekly,40,0\nC4,40,MONTHLY,99.99,0\n";

    #[test]
    fn ingest_normalises_and_rejects_bad_rows_by_file_and_line() {
        let (good, rejected) = ingest("a.csv", RAW).unwrap();
        assert_eq!(good.len(), 2);
        assert_eq!((good[0].contract.as_str(), good[1].contract.as_str()), ("annual", "monthly"));
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert!(rejected[0].starts_with("a.csv:3: tenure_months"), "{rejected:?}");
        assert!(rejected[1].contains("a.csv:4: contract `weekly`"), "{rejected:?}");
        assert!(ingest("b.csv", "x,y\n1,2\n").unwrap_err().contains("b.csv:1: header"));
    }

    #[test]
    fn rows_round_trip_through_the_csv_the_steps_exchange() {
        let (good, _) = ingest("day/a.csv", RAW).unwrap();
        assert_eq!(from_ingested(&ingested_csv(&good)).unwrap(), good);
        let rows = from_features(&features_csv(&good)).unwrap();
        assert_eq!(rows[0], ("day/a.csv".to_string(), "C1".to_string(), [12.0, 50.5, 2.0, 1.0]));
        assert_eq!(rows[1].2, [40.0, 99.99, 0.0, 0.0]);
    }

    #[test]
    fn trigger_files_give_their_paths() {
        let json = r#"[{"path":"a.csv","size":3},{"path":"day/b.csv","size":1,"etag":"x"}]"#;
        assert_eq!(trigger_paths(json).unwrap(), ["a.csv", "day/b.csv"]);
        assert!(trigger_paths("{}").is_err());
        assert!(trigger_paths(r#"[{"size":1}]"#).unwrap_err().contains("without `path`"));
    }
}
