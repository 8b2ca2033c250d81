//! Errors from loading and validating a bundle file.
//!
//! Every error is one line. Errors that belong to a place in the file read
//! `<file>:<line>:<col>: <key path>: <message>`, with `<file>` exactly as the caller
//! named it (never canonicalised) so that editors and terminals can jump to it.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a bundle file could not be turned into a [`Bundle`](super::Bundle).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The path handed to [`load`](super::load) does not exist.
    #[error("{}: does not exist", path.display())]
    NotFound { path: PathBuf },

    /// The path is a directory, but it holds no `sluice.toml`.
    #[error("{}: no sluice.toml in this directory (expected {})", dir.display(), dir.join(super::BUNDLE_FILE).display())]
    NoBundleFile { dir: PathBuf },

    /// The file exists but could not be read as UTF-8 text.
    #[error("{}: cannot read: {message}", path.display())]
    Read { path: PathBuf, message: String },

    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: TOML syntax error: {message}", file.display())]
    Syntax { file: PathBuf, line: usize, column: usize, message: String },

    /// The file is valid TOML but not a valid bundle.
    #[error("{}:{line}:{column}: {key}: {message}", file.display())]
    Invalid { file: PathBuf, line: usize, column: usize, key: String, message: String },

    /// [`Bundle::job`](super::Bundle::job) was asked for a job that does not exist.
    #[error("{}: no job named `{name}`{}", file.display(), describe_jobs(name, known))]
    UnknownJob { file: PathBuf, name: String, known: Vec<String> },

    /// [`Bundle::job`](super::Bundle::job) was asked for "the" job, but there is not exactly one.
    #[error("{}: {}", file.display(), describe_choice(known))]
    NoSingleJob { file: PathBuf, known: Vec<String> },

    /// [`Bundle::target`](super::Bundle::target) was asked for a target the bundle does not declare.
    #[error("{}: no target named `{name}`; the bundle declares {}{}", file.display(), known.join(", "), closest(name, known))]
    UnknownTarget { file: PathBuf, name: String, known: Vec<String> },

    /// No target was named, and the bundle's `[targets]` mark none `default = true`.
    #[error(
        "{}: no target given, and none of the bundle's targets ({}) says `default = true`; choose one with --target NAME (or SLUICE_TARGET)",
        file.display(),
        known.join(", ")
    )]
    NoDefaultTarget { file: PathBuf, known: Vec<String> },

    /// `--var NAME=…` names a variable the bundle does not declare.
    #[error("{}: --var {name}: the bundle declares no variable `{name}`; it declares {}{}", file.display(), super::names::list(known), closest(name, known))]
    UnknownVariable { file: PathBuf, name: String, known: Vec<String> },

    /// Several problems at once (each of them one of the other kinds), in file order.
    #[error("{}{}", errors.first().map(ToString::to_string).unwrap_or_default(), more(errors.len()))]
    Several { errors: Vec<SpecError> },
}

fn more(count: usize) -> String {
    match count {
        0 | 1 => String::new(),
        n => format!(" (and {} more; `sluice validate` lists them all)", n - 1),
    }
}

fn closest(name: &str, known: &[String]) -> String {
    match super::names::closest(name, known.iter().map(String::as_str)) {
        Some(close) => format!(" (did you mean `{close}`?)"),
        None => String::new(),
    }
}

impl SpecError {
    /// The 1-based line the error points at, when it points into the file.
    pub fn line(&self) -> Option<usize> {
        match self {
            SpecError::Syntax { line, .. } | SpecError::Invalid { line, .. } => Some(*line),
            SpecError::Several { errors } => errors.first().and_then(SpecError::line),
            _ => None,
        }
    }

    /// The 1-based column the error points at, when it points into the file.
    pub fn column(&self) -> Option<usize> {
        match self {
            SpecError::Syntax { column, .. } | SpecError::Invalid { column, .. } => Some(*column),
            SpecError::Several { errors } => errors.first().and_then(SpecError::column),
            _ => None,
        }
    }

    /// The dotted key path the error is about (`jobs.hello.tasks[0].timeout`), if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            SpecError::Invalid { key, .. } => Some(key),
            SpecError::Several { errors } => errors.first().and_then(SpecError::key),
            _ => None,
        }
    }

    /// The file the error is about (an included file for errors inside it).
    pub fn file(&self) -> Option<&Path> {
        match self {
            SpecError::NotFound { path } | SpecError::Read { path, .. } => Some(path),
            SpecError::NoBundleFile { dir } => Some(dir),
            SpecError::Syntax { file, .. }
            | SpecError::Invalid { file, .. }
            | SpecError::UnknownJob { file, .. }
            | SpecError::NoSingleJob { file, .. }
            | SpecError::UnknownTarget { file, .. }
            | SpecError::NoDefaultTarget { file, .. }
            | SpecError::UnknownVariable { file, .. } => Some(file),
            SpecError::Several { errors } => errors.first().and_then(SpecError::file),
        }
    }

    /// The message without the `file:line:col: key:` prefix.
    pub fn message(&self) -> String {
        match self {
            SpecError::Syntax { message, .. } | SpecError::Invalid { message, .. } => message.clone(),
            SpecError::Several { errors } => errors.first().map(SpecError::message).unwrap_or_default(),
            other => {
                let shown = other.to_string();
                let prefix = other.file().map(|f| format!("{}: ", f.display())).unwrap_or_default();
                shown.strip_prefix(&prefix).map_or(shown.clone(), str::to_string)
            }
        }
    }

    /// Every problem this error holds: itself, or each of [`SpecError::Several`]'s.
    pub fn problems(&self) -> Vec<&SpecError> {
        match self {
            SpecError::Several { errors } => errors.iter().flat_map(SpecError::problems).collect(),
            other => vec![other],
        }
    }

    /// One error from many: `Several` when there is more than one.
    pub(crate) fn several(mut errors: Vec<SpecError>) -> SpecError {
        if errors.len() == 1 { errors.remove(0) } else { SpecError::Several { errors } }
    }
}

fn describe_jobs(name: &str, known: &[String]) -> String {
    if known.is_empty() {
        return "; the bundle defines no jobs".to_string();
    }
    let mut text = format!("; jobs: {}", known.join(", "));
    if let Some(close) = super::names::closest(name, known.iter().map(String::as_str)) {
        text.push_str(&format!(" (did you mean `{close}`?)"));
    }
    text
}

fn describe_choice(known: &[String]) -> String {
    if known.is_empty() {
        "the bundle defines no jobs".to_string()
    } else {
        format!("the bundle defines several jobs ({}); choose one with --job NAME", known.join(", "))
    }
}

/// Turns byte offsets into 1-based line and column numbers, and builds located errors.
#[derive(Debug)]
pub(crate) struct Locator<'t> {
    file: &'t Path,
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> Locator<'t> {
    pub(crate) fn new(file: &'t Path, text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        Locator { file, text, line_starts }
    }

    /// The file, as the caller named it.
    pub(crate) fn file(&self) -> &Path {
        self.file
    }

    /// 1-based (line, column) of a byte offset; the column counts characters, not bytes.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line, column + 1)
    }

    /// An error about the value or key at `span`, reached by `key`.
    pub(crate) fn invalid(&self, span: &Range<usize>, key: &str, message: impl Into<String>) -> SpecError {
        let (line, column) = self.line_col(span.start);
        SpecError::Invalid {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: one_line(message.into()),
        }
    }

    /// A TOML syntax error, located by the parser's span when it has one.
    pub(crate) fn syntax(&self, error: &toml::de::Error) -> SpecError {
        let (line, column) = self.line_col(error.span().map_or(0, |span| span.start));
        SpecError::Syntax {
            file: self.file.to_path_buf(),
            line,
            column,
            message: one_line(error.message().to_string()),
        }
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.line_col(offset).0
    }
}

/// Keeps every error on one line, whatever the message carried.
fn one_line(message: String) -> String {
    if message.contains('\n') {
        message.split('\n').map(str::trim).filter(|part| !part.is_empty()).collect::<Vec<_>>().join("; ")
    } else {
        message
    }
}
