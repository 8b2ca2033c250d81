//! From the TOML tree to a [`Bundle`]: the top level, `[bundle]` and `[components]`.
//! Jobs and tasks are read in [`super::job`]; `run_job` links between jobs are checked
//! in [`super::calls`] once every job is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::calls;
use super::component::components;
use super::error::{Locator, SpecError};
use super::include::{self, Sections};
use super::job;
use super::mounts::Roots;
use super::names;
use super::read::{Entry, Node, Table};
use super::vars::{self, LoadOptions};
use super::{Bundle, ComponentSpec, JobSpec};
use super::{scopes, target};

pub(crate) const TOP_KEYS: &[&str] =
    &["bundle", "components", "jobs", "targets", "variables", "include", "secret_scopes", "tests", "destinations"];
pub(crate) const BUNDLE_KEYS: &[&str] = &["name", "data_roots"];

/// Parses `text` (and the files it includes), substitutes variables for the target `opts`
/// names, and validates it into a bundle rooted at the absolute `root`.
pub(crate) fn bundle(text: &str, file: &Path, root: PathBuf, opts: &LoadOptions) -> Result<Bundle, SpecError> {
    let main_loc = Locator::new(file, text);
    let main = parse_doc(&main_loc, text)?;
    let included = {
        let top = Node::root(&main_loc, &main).table()?;
        top.deny_unknown(TOP_KEYS)?;
        include::read(&top, file, &root, opts.included.as_ref())?
    };
    let mut locs = vec![main_loc];
    locs.extend(included.iter().map(|source| Locator::new(&source.file, &source.text)));
    let mut docs = vec![main];
    for (source, loc) in included.iter().zip(&locs[1..]) {
        docs.push(parse_doc(loc, &source.text)?);
    }
    let allowed: Vec<&str> = include::INCLUDE_KEYS.iter().copied().filter(|key| TOP_KEYS.contains(key)).collect();
    for (doc, loc) in docs.iter().zip(&locs).skip(1) {
        Node::root(loc, doc).table()?.deny_unknown(&allowed)?;
    }
    let (target, variables) = {
        let sections = sections(&locs, &docs)?;
        let targets = sections.top.get("targets").map(target::targets).transpose()?.unwrap_or_default();
        // no target named and none to default to: still a bundle (runs must then name one)
        let target = match target::choose(file, &targets, opts.target.as_deref()) {
            Err(SpecError::NoDefaultTarget { .. }) if opts.target.is_none() => None,
            chosen => Some(chosen?),
        };
        let mut variables = vars::declared(sections.get("variables"))?;
        if let Some(node) = sections.top.get("targets") {
            vars::check_targets(node, &variables)?;
        }
        vars::resolve(file, &mut variables, target.as_ref().and_then(|t| targets.get(t)), opts)?;
        (target, variables)
    };
    let errors: Vec<SpecError> = docs
        .iter_mut()
        .zip(&locs)
        .flat_map(|(doc, loc)| vars::substitute(doc, loc, &variables, target.as_deref()))
        .collect();
    if !errors.is_empty() {
        return Err(SpecError::several(errors));
    }
    let sections = sections(&locs, &docs)?;
    let top = &sections.top;
    let (name, mut roots) = bundle_table(top, &root)?;
    let targets = top.get("targets").map(target::targets).transpose()?.unwrap_or_default();
    roots.anywhere = targets.values().any(|t| t.allow_absolute_paths);
    roots.target = target.clone();
    let components = match sections.get("components") {
        Some(table) => components(table, &root)?,
        None => BTreeMap::new(),
    };
    let mut jobs = match sections.get("jobs") {
        Some(table) => jobs(table, &components, &roots)?,
        None => BTreeMap::new(),
    };
    super::notify::attach(top, &mut jobs)?;
    if let Some(node) = top.get("targets") {
        target::check_job_overrides(node, &jobs)?;
    }
    target::apply_job_overrides(&mut jobs, target.as_ref().and_then(|t| targets.get(t)));
    let secret_scopes = sections.get("secret_scopes").map(scopes::secret_scopes).transpose()?.unwrap_or_default();
    let tests = super::suite::tests(&sections.tests, &jobs, &targets, &root)?;
    let mut bundle = Bundle {
        name,
        root,
        file: file.to_path_buf(),
        data_roots: roots.data,
        components,
        jobs,
        targets,
        variables,
        resolved_target: target,
        includes: included.into_iter().map(|source| source.file).collect(),
        secret_scopes,
        tests,
    };
    super::python::add_runner(&mut bundle);
    Ok(bundle)
}

fn parse_doc<'t>(loc: &Locator<'_>, text: &'t str) -> Result<Spanned<DeValue<'t>>, SpecError> {
    let document = DeTable::parse(text).map_err(|error| loc.syntax(&error))?;
    let span = document.span();
    Ok(Spanned::new(span, DeValue::Table(document.into_inner())))
}

fn sections<'a>(locs: &'a [Locator<'a>], docs: &'a [Spanned<DeValue<'a>>]) -> Result<Sections<'a>, SpecError> {
    let tops = locs.iter().zip(docs).map(|(loc, doc)| Node::root(loc, doc).table()).collect::<Result<_, _>>()?;
    Sections::new(tops)
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

fn jobs(
    table: &Table<'_>,
    components: &BTreeMap<String, ComponentSpec>,
    roots: &Roots,
) -> Result<BTreeMap<String, JobSpec>, SpecError> {
    let mut jobs = BTreeMap::new();
    let mut run_jobs = BTreeMap::new();
    for entry in table.entries() {
        check_key_name(entry, "job")?;
        let (job, sites) = job::job(entry.key, &entry.node, components, roots)?;
        jobs.insert(entry.key.to_string(), job);
        run_jobs.insert(entry.key.to_string(), sites);
    }
    calls::check(&jobs, &run_jobs)?;
    super::datasets::check_triggers(table, &jobs)?;
    Ok(jobs)
}
