//! Where a key path (`targets.prod.permissions[0].user_name`) is written in a bundle: the
//! file (the bundle file or an included one), line and column — for checks made after
//! loading (`sluice validate`'s component and principal checks) that still owe the user a
//! `file:line`.
//!
//! This module owns only that lookup; it reads the bundle's files again, read-only, and
//! must never change or judge what it finds.

use std::path::PathBuf;

use toml::de::{DeTable, DeValue};

use super::Bundle;
use super::error::Locator;

/// A place in one of the bundle's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Bundle {
    /// Where `key` (a dotted path as errors show it) is written, if it is.
    pub fn locate(&self, key: &str) -> Option<Place> {
        let segments = segments(key)?;
        std::iter::once(&self.file).chain(&self.includes).find_map(|shown| {
            let path = if shown.is_absolute() || shown.exists() { shown.clone() } else { self.root.join(shown) };
            let text = std::fs::read_to_string(&path).ok()?;
            let start = find(&text, &segments)?;
            let (line, column) = Locator::new(shown, &text).line_col(start);
            Some(Place { file: shown.clone(), line, column })
        })
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

/// `a.b[2]."c.d"` as keys and indexes.
fn segments(key: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        rest = rest.strip_prefix('.').unwrap_or(rest);
        if let Some(after) = rest.strip_prefix('[') {
            let (index, tail) = after.split_once(']')?;
            out.push(Segment::Index(index.parse().ok()?));
            rest = tail;
        } else if rest.starts_with('"') {
            let end = rest[1..].find('"')? + 1;
            out.push(Segment::Key(rest[1..end].to_string()));
            rest = &rest[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Segment::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    Some(out)
}

/// The byte offset where the value (or, for a table key, the key) at `segments` starts.
fn find(text: &str, segments: &[Segment]) -> Option<usize> {
    let document = DeTable::parse(text).ok()?;
    let root = DeValue::Table(document.into_inner());
    let mut value = &root;
    let mut at = 0;
    for segment in segments {
        match (segment, value) {
            (Segment::Key(key), DeValue::Table(table)) => {
                let (name, item) = table.iter().find(|(name, _)| name.get_ref() == key)?;
                at = name.span().start;
                value = item.get_ref();
            }
            (Segment::Index(index), DeValue::Array(items)) => {
                let item = items.get(*index)?;
                at = item.span().start;
                value = item.get_ref();
            }
            _ => return None,
        }
    }
    Some(at)
}
