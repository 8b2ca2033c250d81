//! A typed, located view over the span-preserving TOML tree.
//!
//! Each [`Node`] knows its dotted key path and its byte span, so every check made on it
//! can produce a `file:line:col: key.path: message` error without extra bookkeeping.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Locator, SpecError};
use super::names;
use crate::util::{parse_duration, parse_size};

/// One value in the bundle file, with where it is and how it was reached.
#[derive(Clone)]
pub(crate) struct Node<'a> {
    pub loc: &'a Locator<'a>,
    pub path: String,
    pub span: Range<usize>,
    pub value: &'a DeValue<'a>,
}

/// A key of a table and the value under it.
#[derive(Clone)]
pub(crate) struct Entry<'a> {
    pub key: &'a str,
    pub key_span: Range<usize>,
    pub node: Node<'a>,
}

/// A table, its entries in file order.
pub(crate) struct Table<'a> {
    pub node: Node<'a>,
    entries: Vec<Entry<'a>>,
}

impl<'a> Node<'a> {
    /// The document root.
    pub fn root(loc: &'a Locator<'a>, value: &'a Spanned<DeValue<'a>>) -> Self {
        Node { loc, path: String::new(), span: value.span(), value: value.get_ref() }
    }

    /// An error pointing at this value.
    pub fn error(&self, message: impl Into<String>) -> SpecError {
        self.loc.invalid(&self.span, &self.path, message)
    }

    /// The 1-based line this value starts on.
    pub fn line(&self) -> usize {
        self.loc.line(self.span.start)
    }

    fn wrong_type(&self, expected: &str) -> SpecError {
        self.error(format!("expected {expected}, found {}", describe(self.value)))
    }

    pub fn table(&self) -> Result<Table<'a>, SpecError> {
        match self.value {
            DeValue::Table(table) => Ok(Table::new(self.clone(), table)),
            _ => Err(self.wrong_type("a table")),
        }
    }

    pub fn str(&self) -> Result<&'a str, SpecError> {
        match self.value {
            DeValue::String(text) => Ok(text.as_ref()),
            _ => Err(self.wrong_type("a string")),
        }
    }

    pub fn bool(&self) -> Result<bool, SpecError> {
        match self.value {
            DeValue::Boolean(flag) => Ok(*flag),
            _ => Err(self.wrong_type("a boolean (true or false)")),
        }
    }

    /// A whole number that fits in 64 bits.
    pub fn integer(&self) -> Result<i64, SpecError> {
        match self.value {
            DeValue::Integer(int) => integer(int.as_str(), int.radix()).map_err(|why| self.error(why)),
            _ => Err(self.wrong_type("an integer")),
        }
    }

    /// A finite number; integers are accepted too (`2` reads as `2.0`).
    pub fn number(&self) -> Result<f64, SpecError> {
        let value = match self.value {
            DeValue::Float(float) => float.as_str().parse::<f64>().ok(),
            DeValue::Integer(int) => integer(int.as_str(), int.radix()).ok().map(|n| n as f64),
            _ => return Err(self.wrong_type("a number")),
        };
        value.filter(|number| number.is_finite()).ok_or_else(|| self.error("expected a finite number"))
    }

    /// Whether the value is a scalar (not an array or a table).
    pub fn is_scalar(&self) -> bool {
        !matches!(self.value, DeValue::Array(_) | DeValue::Table(_))
    }

    /// The elements of an array, each with its `path[i]`.
    pub fn array(&self) -> Result<Vec<Node<'a>>, SpecError> {
        let DeValue::Array(items) = self.value else {
            return Err(self.wrong_type("an array"));
        };
        Ok(items.iter().enumerate().map(|(i, item)| self.element(i, item)).collect())
    }

    fn element(&self, index: usize, item: &'a Spanned<DeValue<'a>>) -> Node<'a> {
        Node { loc: self.loc, path: format!("{}[{index}]", self.path), span: item.span(), value: item.get_ref() }
    }

    /// An array of strings; each element keeps its own node for precise errors.
    pub fn strings(&self) -> Result<Vec<(Node<'a>, &'a str)>, SpecError> {
        self.array()?.into_iter().map(|item| item.str().map(|text| (item.clone(), text))).collect()
    }

    /// A duration written as a string such as `"10s"`; zero is refused.
    pub fn duration(&self) -> Result<Duration, SpecError> {
        let text = match self.value {
            DeValue::String(text) => text.as_ref(),
            DeValue::Integer(_) | DeValue::Float(_) => {
                return Err(self.error(format!(
                    "expected a duration string such as \"10s\", found {}; add a unit (ms, s, m, h or d)",
                    describe(self.value)
                )));
            }
            _ => return Err(self.wrong_type("a duration string such as \"10s\"")),
        };
        let duration = parse_duration(text).map_err(|why| self.error(format!("bad duration: {why}")))?;
        if duration.is_zero() {
            return Err(self.error("duration must be greater than zero"));
        }
        Ok(duration)
    }

    /// A size in bytes: a string such as `"64MiB"` or a non-negative integer.
    pub fn size(&self) -> Result<u64, SpecError> {
        match self.value {
            DeValue::String(text) => parse_size(text).map_err(|why| self.error(format!("bad size: {why}"))),
            DeValue::Integer(int) => u64::from_str_radix(int.as_str(), int.radix())
                .map_err(|_| self.error("size must be a non-negative number of bytes")),
            _ => Err(self.wrong_type("a size such as \"64MiB\" or a number of bytes")),
        }
    }

    /// The value as a parameter string: strings as they are, numbers, booleans and
    /// datetimes as written, arrays and tables as JSON text.
    pub fn param_string(&self) -> Result<String, SpecError> {
        match self.value {
            DeValue::String(text) => Ok(text.to_string()),
            DeValue::Array(_) | DeValue::Table(_) => {
                let json = to_json(self.value).map_err(|why| self.error(why))?;
                serde_json::to_string(&json).map_err(|why| self.error(format!("cannot write as JSON: {why}")))
            }
            scalar => scalar_string(scalar).map_err(|why| self.error(why)),
        }
    }
}

impl Node<'_> {
    /// The value as JSON (tables and arrays recursively).
    pub fn json(&self) -> Result<serde_json::Value, SpecError> {
        to_json(self.value).map_err(|why| self.error(why))
    }
}

impl Entry<'_> {
    /// An error pointing at the key itself (not its value), under the key's path.
    pub fn key_error(&self, message: impl Into<String>) -> SpecError {
        self.node.loc.invalid(&self.key_span, &self.node.path, message)
    }
}

impl<'a> Table<'a> {
    fn new(node: Node<'a>, table: &'a DeTable<'a>) -> Self {
        let mut entries: Vec<Entry<'a>> = table
            .iter()
            .map(|(key, value)| Entry {
                key: key.get_ref().as_ref(),
                key_span: key.span(),
                node: Node {
                    loc: node.loc,
                    path: names::child_path(&node.path, key.get_ref()),
                    span: value.span(),
                    value: value.get_ref(),
                },
            })
            .collect();
        entries.sort_by_key(|entry| entry.key_span.start);
        Table { node, entries }
    }

    /// A table made of entries from several files (see [`super::include::Sections`]).
    pub fn merged(node: Node<'a>, entries: Vec<Entry<'a>>) -> Self {
        Table { node, entries }
    }

    /// Entries in the order they appear in the file.
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entries.iter().find(|entry| entry.key == key).map(|entry| &entry.node)
    }

    /// The value under `key`, or an error at the table naming the missing key.
    pub fn require(&self, key: &str) -> Result<&Node<'a>, SpecError> {
        self.get(key).ok_or_else(|| {
            let path = names::child_path(&self.node.path, key);
            self.node.loc.invalid(&self.node.span, &path, format!("missing required key `{key}`"))
        })
    }

    /// Refuses the first key (in file order) that is not in `known`.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), SpecError> {
        let Some(entry) = self.entries.iter().find(|entry| !known.contains(&entry.key)) else {
            return Ok(());
        };
        let message = match names::closest(entry.key, known.iter().copied()) {
            Some(close) => format!("unknown key (did you mean `{close}`?)"),
            None => format!("unknown key; expected one of {}", names::list(known)),
        };
        Err(self.node.loc.invalid(&entry.key_span, &entry.node.path, message))
    }
}

/// "a string", "an integer", …: the type of a value for error messages (never the value).
pub(crate) fn describe(value: &DeValue<'_>) -> String {
    let kind = value.type_str();
    match kind.chars().next() {
        Some('a' | 'i') => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

fn scalar_string(value: &DeValue<'_>) -> Result<String, String> {
    match value {
        DeValue::Integer(int) => integer(int.as_str(), int.radix()).map(|n| n.to_string()),
        DeValue::Float(float) => Ok(float_text(float.as_str())),
        DeValue::Boolean(flag) => Ok(flag.to_string()),
        DeValue::Datetime(datetime) => Ok(datetime.to_string()),
        DeValue::String(text) => Ok(text.to_string()),
        DeValue::Array(_) | DeValue::Table(_) => Err("expected a scalar".to_string()),
    }
}

fn integer(digits: &str, radix: u32) -> Result<i64, String> {
    i64::from_str_radix(digits, radix).map_err(|_| "integer does not fit in 64 bits".to_string())
}

/// A finite float as JSON would write it (`1.0`, `0.5`); `inf` and `nan` as written.
fn float_text(written: &str) -> String {
    match written.parse::<f64>() {
        Ok(value) if value.is_finite() => {
            serde_json::Number::from_f64(value).map_or_else(|| written.to_string(), |number| number.to_string())
        }
        _ => written.to_string(),
    }
}

/// Converts an array or table (recursively) to JSON.
fn to_json(value: &DeValue<'_>) -> Result<serde_json::Value, String> {
    use serde_json::Value as Json;
    Ok(match value {
        DeValue::String(text) => Json::String(text.to_string()),
        DeValue::Integer(int) => Json::from(integer(int.as_str(), int.radix())?),
        DeValue::Float(float) => {
            let number = float.as_str().parse::<f64>().ok().and_then(serde_json::Number::from_f64);
            Json::Number(number.ok_or("inf and nan cannot be written as JSON")?)
        }
        DeValue::Boolean(flag) => Json::Bool(*flag),
        DeValue::Datetime(datetime) => Json::String(datetime.to_string()),
        DeValue::Array(items) => {
            Json::Array(items.iter().map(|item| to_json(item.get_ref())).collect::<Result<_, _>>()?)
        }
        DeValue::Table(table) => {
            let mut map = serde_json::Map::new();
            for (key, item) in table.iter() {
                map.insert(key.get_ref().to_string(), to_json(item.get_ref())?);
            }
            Json::Object(map)
        }
    })
}
