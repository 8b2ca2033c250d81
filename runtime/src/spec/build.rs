//! From the TOML tree to a [`Bundle`]: the top level, `[bundle]` and `[components]`.
//! Jobs and tasks are read in [`super::job`]; `run_job` links between jobs are checked
//! in [`super::calls`] once every job is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::calls;
use super::error::{Locator, SpecError};
use super::job;
use super::mounts::Roots;
use super::names;
use super::read::{Entry, Node, Table};
use super::{Bundle, ComponentSpec, JobSpec};

const TOP_KEYS: &[&str] = &["bundle", "components", "jobs", "targets", "destinations"];
const TARGET_KEYS: &[&str] = &["default", "limits", "allow_absolute_paths"];
const BUNDLE_KEYS: &[&str] = &["name", "data_roots"];
const COMPONENT_KEYS: &[&str] = &["path"];

/// Parses `text` and validates it into a bundle rooted at the absolute `root`.
pub(crate) fn bundle(text: &str, file: &Path, root: PathBuf) -> Result<Bundle, SpecError> {
    let loc = Locator::new(file, text);
    let document = DeTable::parse(text).map_err(|error| loc.syntax(&error))?;
    let span = document.span();
    let value = Spanned::new(span, DeValue::Table(document.into_inner()));
    let top = Node::root(&loc, &value).table()?;
    top.deny_unknown(TOP_KEYS)?;

    let (name, mut roots) = bundle_table(&top, &root)?;
    let targets = match top.get("targets") {
        Some(node) => targets(node)?,
        None => BTreeMap::new(),
    };
    roots.anywhere = targets.values().any(|t| t.allow_absolute_paths);
    let components = match top.get("components") {
        Some(node) => components(node, &root)?,
        None => BTreeMap::new(),
    };
    let mut jobs = match top.get("jobs") {
        Some(node) => jobs(node, &components, &roots)?,
        None => BTreeMap::new(),
    };
    super::notify::attach(&top, &mut jobs)?;
    Ok(Bundle { name, root, file: file.to_path_buf(), data_roots: roots.data, components, jobs, targets })
}

/// `[targets.NAME] limits = { … }`: defaults for every task of runs of that target; at
/// most one target is the `default = true`.
fn targets(node: &Node<'_>) -> Result<BTreeMap<String, super::TargetSpec>, SpecError> {
    let mut out = BTreeMap::new();
    let mut default: Option<String> = None;
    for entry in node.table()?.entries() {
        check_key_name(entry, "target")?;
        let name = entry.key.to_string();
        let table = entry.node.table()?;
        table.deny_unknown(TARGET_KEYS)?;
        let limits = table.get("limits").map(super::exec::limits).transpose()?.unwrap_or_default();
        let allow_absolute_paths = table.get("allow_absolute_paths").map(Node::bool).transpose()?.unwrap_or(false);
        let is_default = match table.get("default") {
            Some(flag) if flag.bool()? => {
                if let Some(first) = &default {
                    return Err(flag.error(format!(
                        "target `{first}` is already the default; only one target may say `default = true`"
                    )));
                }
                default = Some(name.clone());
                true
            }
            Some(_) | None => false,
        };
        out.insert(name, super::TargetSpec { limits, allow_absolute_paths, default: is_default });
    }
    Ok(out)
}

/// `[bundle]`: the name, and the roots host paths must stay under.
fn bundle_table(top: &Table<'_>, root: &Path) -> Result<(String, Roots), SpecError> {
    let Some(node) = top.get("bundle") else {
        let message = "missing required table `[bundle]` (with `name = \"…\"`)";
        return Err(top.node.loc.invalid(&top.node.span, "bundle", message));
    };
    let table = node.table()?;
    table.deny_unknown(BUNDLE_KEYS)?;
    let name = checked_name(table.require("name")?)?.to_string();
    let mut roots = Roots::new(root);
    if let Some(node) = table.get("data_roots") {
        roots.read_data_roots(node)?;
    }
    Ok((name, roots))
}

/// A string value that must follow the name rule.
pub(crate) fn checked_name<'a>(node: &Node<'a>) -> Result<&'a str, SpecError> {
    let text = node.str()?;
    names::check_name(text).map_err(|why| node.error(why))?;
    Ok(text)
}

/// A table key that must follow the name rule; the error points at the key.
pub(crate) fn check_key_name(entry: &Entry<'_>, what: &str) -> Result<(), SpecError> {
    names::check_name(entry.key)
        .map_err(|why| entry.node.loc.invalid(&entry.key_span, &entry.node.path, format!("bad {what} name: {why}")))
}

fn components(node: &Node<'_>, root: &Path) -> Result<BTreeMap<String, ComponentSpec>, SpecError> {
    let table = node.table()?;
    let mut components = BTreeMap::new();
    for entry in table.entries() {
        check_key_name(entry, "component")?;
        let path = component_path(&entry.node)?;
        let name = entry.key.to_string();
        components.insert(name.clone(), ComponentSpec { name, path: root.join(path) });
    }
    Ok(components)
}

/// `name = "path"` or `name = { path = "path" }`.
fn component_path<'a>(node: &Node<'a>) -> Result<&'a str, SpecError> {
    let (path_node, path) = match node.value {
        DeValue::String(_) => (node.clone(), node.str()?),
        DeValue::Table(_) => {
            let table = node.table()?;
            table.deny_unknown(COMPONENT_KEYS)?;
            let path_node = table.require("path")?.clone();
            let path = path_node.str()?;
            (path_node, path)
        }
        _ => return Err(node.error("expected a path string or a table `{ path = \"…\" }`")),
    };
    if path.trim().is_empty() {
        return Err(path_node.error("component path is empty"));
    }
    Ok(path)
}

fn jobs(
    node: &Node<'_>,
    components: &BTreeMap<String, ComponentSpec>,
    roots: &Roots,
) -> Result<BTreeMap<String, JobSpec>, SpecError> {
    let table = node.table()?;
    let mut jobs = BTreeMap::new();
    let mut run_jobs = BTreeMap::new();
    for entry in table.entries() {
        check_key_name(entry, "job")?;
        let (job, sites) = job::job(entry.key, &entry.node, components, roots)?;
        jobs.insert(entry.key.to_string(), job);
        run_jobs.insert(entry.key.to_string(), sites);
    }
    calls::check(&jobs, &run_jobs)?;
    Ok(jobs)
}
