//! `[components]`: named WebAssembly components, given as a `.wasm` path or as sources
//! `sluice build` builds (`{ path = "tasks/x", lang = "python" | "rust" }`). This module only
//! reads the table; it never touches the files (the loader and `crate::build` do).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::DeValue;

use super::build::check_key_name;
use super::error::SpecError;
use super::read::{Node, Table};

pub(crate) const COMPONENT_KEYS: &[&str] = &["path", "lang"];

/// A named WebAssembly component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSpec {
    pub name: String,
    /// `root.join(path)`; existence is checked by whoever loads it, not here. For a
    /// component built from source, the artifact `sluice build` writes (`build/NAME.wasm`).
    pub path: PathBuf,
    /// `{ path = "tasks/x", lang = "python" | "rust" }`: the sources `path` is built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ComponentSource>,
}

/// The sources of a component that `sluice build` builds (see `crate::build`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentSource {
    /// The task's source directory (`root.join(path)`).
    pub dir: PathBuf,
    pub lang: SourceLang,
}

/// The languages `sluice build` builds a task from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceLang {
    /// A `run(ctx, params)` module, built with componentize-py through the Python SDK.
    Python,
    /// A cargo package using the Rust SDK, built for `wasm32-wasip2`.
    Rust,
}

impl SourceLang {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceLang::Python => "python",
            SourceLang::Rust => "rust",
        }
    }
}

/// Where `sluice build` writes source components, relative to the bundle root.
pub const BUILD_DIR: &str = "build";

pub(crate) fn components(table: &Table<'_>, root: &Path) -> Result<BTreeMap<String, ComponentSpec>, SpecError> {
    let mut components = BTreeMap::new();
    for entry in table.entries() {
        check_key_name(entry, "component")?;
        let (path, lang) = component_path(&entry.node)?;
        let name = entry.key.to_string();
        let spec = match lang {
            None => ComponentSpec { name: name.clone(), path: root.join(path), source: None },
            Some(lang) => ComponentSpec {
                name: name.clone(),
                path: root.join(BUILD_DIR).join(format!("{name}.wasm")),
                source: Some(ComponentSource { dir: root.join(path), lang }),
            },
        };
        components.insert(name, spec);
    }
    Ok(components)
}

/// `name = "path"` or `name = { path = "path", lang = "python" | "rust" }`.
fn component_path<'a>(node: &Node<'a>) -> Result<(&'a str, Option<SourceLang>), SpecError> {
    let (path_node, path, lang) = match node.value {
        DeValue::String(_) => (node.clone(), node.str()?, None),
        DeValue::Table(_) => {
            let table = node.table()?;
            table.deny_unknown(COMPONENT_KEYS)?;
            let path_node = table.require("path")?.clone();
            let path = path_node.str()?;
            let lang = match table.get("lang") {
                None => None,
                Some(n) => Some(match n.str()? {
                    "python" => SourceLang::Python,
                    "rust" => SourceLang::Rust,
                    other => return Err(n.error(format!("unknown lang `{other}`: expected `python` or `rust`"))),
                }),
            };
            (path_node, path, lang)
        }
        _ => return Err(node.error("expected a path string or a table `{ path = \"…\" }`")),
    };
    if path.trim().is_empty() {
        return Err(path_node.error("component path is empty"));
    }
    if lang.is_some() && path.ends_with(".wasm") {
        return Err(path_node.error("with `lang`, `path` is the task's source directory, not a .wasm file"));
    }
    Ok((path, lang))
}
