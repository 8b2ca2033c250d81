//! `include = ["jobs/*.toml"]`: a bundle split over several files.
//!
//! Patterns are globs relative to the bundle root; the files they match (sorted, each read
//! once, the bundle file itself skipped) may hold only [`INCLUDE_KEYS`] tables, and those
//! are merged with the bundle file's: a name defined in two files is refused, naming both.
//! Every value keeps the file it came from, so errors inside an included file name that
//! file and line.
//!
//! This module owns finding, reading and merging included files. It must never read a file
//! outside the bundle root (absolute patterns and `..` are refused) nor write anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::error::SpecError;
use super::read::{Entry, Node, Table};

/// Top-level tables an included file may contribute (other helpers' tables — `tests`,
/// `destinations` — are merged too once the bundle file knows them).
pub(crate) const INCLUDE_KEYS: &[&str] = &["components", "jobs", "variables", "secret_scopes", "tests", "destinations"];

/// Top-level tables merged across the bundle file and its includes.
pub(crate) const MERGED_KEYS: &[&str] = &["components", "jobs", "variables", "secret_scopes"];

/// The most files `include` may bring in: far more than any real bundle splits into, few
/// enough that a pattern like `**/*.toml` over a data directory fails clearly, not slowly.
pub const MAX_INCLUDED_FILES: usize = 1000;

/// An included file: its path as shown in errors, and its text.
pub(crate) struct Source {
    pub file: PathBuf,
    pub text: String,
}

/// Reads the files the bundle's `include` patterns match: from disk, or from `texts` (by
/// path relative to the root) when given.
pub(crate) fn read(
    top: &Table<'_>,
    file: &Path,
    root: &Path,
    texts: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Source>, SpecError> {
    let Some(node) = top.get("include") else { return Ok(Vec::new()) };
    let main = std::fs::canonicalize(file).ok();
    let shown_dir = file.parent().unwrap_or(Path::new(""));
    let mut found: BTreeSet<PathBuf> = BTreeSet::new();
    let mut out = Vec::new();
    for (pattern_node, pattern) in node.strings()? {
        let matches = match texts {
            Some(texts) => expand_in(&pattern_node, pattern, texts)?,
            None => expand(&pattern_node, pattern, root)?,
        };
        if matches.is_empty() {
            return Err(pattern_node.error(format!(
                "`{pattern}` matches no file under {}; patterns are relative to the bundle root",
                root.display()
            )));
        }
        for relative in matches {
            let absolute = root.join(&relative);
            if main.is_some() && std::fs::canonicalize(&absolute).ok() == main {
                continue;
            }
            if !found.insert(relative.clone()) {
                continue;
            }
            if found.len() > MAX_INCLUDED_FILES {
                return Err(pattern_node.error(format!("more than {MAX_INCLUDED_FILES} files are included")));
            }
            let shown = shown_dir.join(&relative);
            let text = match texts.and_then(|t| t.get(&*relative.to_string_lossy())) {
                Some(text) => text.clone(),
                None => std::fs::read_to_string(&absolute)
                    .map_err(|why| SpecError::Read { path: shown.clone(), message: why.to_string() })?,
            };
            out.push(Source { file: shown, text });
        }
    }
    Ok(out)
}

/// The paths of `texts` (relative to the root, sorted) one pattern matches.
fn expand_in(node: &Node<'_>, pattern: &str, texts: &BTreeMap<String, String>) -> Result<Vec<PathBuf>, SpecError> {
    let glob = glob::Pattern::new(pattern).map_err(|why| node.error(format!("bad pattern: {why}")))?;
    Ok(texts.keys().filter(|path| glob.matches(path)).map(PathBuf::from).collect())
}

/// The files (relative to `root`, sorted) one pattern matches.
fn expand(node: &Node<'_>, pattern: &str, root: &Path) -> Result<Vec<PathBuf>, SpecError> {
    if Path::new(pattern).is_absolute() || Path::new(pattern).components().any(|c| c.as_os_str() == "..") {
        return Err(
            node.error("include patterns are relative to the bundle root and stay inside it (no `/…`, no `..`)")
        );
    }
    let escaped = glob::Pattern::escape(&root.to_string_lossy());
    let full = format!("{escaped}/{pattern}");
    let paths = glob::glob(&full).map_err(|why| node.error(format!("bad pattern: {why}")))?;
    let mut out = Vec::new();
    for path in paths {
        let path = path.map_err(|why| node.error(format!("cannot read {}: {}", why.path().display(), why.error())))?;
        if path.is_file() {
            out.push(path.strip_prefix(root).map(Path::to_path_buf).unwrap_or(path));
        }
    }
    out.sort();
    Ok(out)
}

/// The merged tables: the bundle file's top level, and each [`MERGED_KEYS`] table from
/// every file.
pub(crate) struct Sections<'a> {
    pub top: Table<'a>,
    merged: BTreeMap<&'static str, Table<'a>>,
    /// The `[[tests]]` arrays of every file, the bundle file's first (concatenated).
    pub tests: Vec<Node<'a>>,
}

impl<'a> Sections<'a> {
    /// `tops[0]` is the bundle file's top level, the rest its includes' (already checked
    /// for their keys).
    pub fn new(mut tops: Vec<Table<'a>>) -> Result<Self, SpecError> {
        let tests = tops.iter().filter_map(|part| part.get("tests").cloned()).collect();
        let top = tops.remove(0);
        let mut merged = BTreeMap::new();
        for key in MERGED_KEYS {
            let mut node: Option<Node<'a>> = None;
            let mut entries: Vec<Entry<'a>> = Vec::new();
            for part in std::iter::once(&top).chain(&tops) {
                let Some(section) = part.get(key) else { continue };
                let table = section.table()?;
                for entry in table.entries() {
                    if let Some(first) = entries.iter().find(|e| e.key == entry.key) {
                        let (line, _) = first.node.loc.line_col(first.key_span.start);
                        return Err(entry.key_error(format!(
                            "`{}` is defined twice: here and in {}:{line}",
                            entry.key,
                            first.node.loc.file().display()
                        )));
                    }
                    entries.push(entry.clone());
                }
                node.get_or_insert_with(|| table.node.clone());
            }
            if let Some(node) = node {
                merged.insert(*key, Table::merged(node, entries));
            }
        }
        Ok(Sections { top, merged, tests })
    }

    /// A merged section, when any file has it.
    pub fn get(&self, key: &str) -> Option<&Table<'a>> {
        self.merged.get(key)
    }
}
