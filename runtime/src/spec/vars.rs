//! `[variables.NAME] = { default, description }` and `${var.NAME}` in the bundle's strings.
//!
//! A variable's value, for the target a bundle is loaded for, is the first of: `--var
//! NAME=VALUE`, the environment's `SLUICE_VAR_NAME`, the target's `variables = { NAME = … }`,
//! the variable's `default`. Substitution happens on the TOML tree before anything is read
//! into types, so `${var.NAME}` works in every string value (paths, params, schedules,
//! allow_hosts, mounts, …) and every error still points at the file and line where the
//! reference was written. `{{ … }}` run-time references are left untouched; so is any `${`
//! not followed by `var.` (a shell's `${HOME}` in a command's args). Only strings are
//! substituted: a number-valued key stays a number written in the file.
//!
//! This module owns declaring, resolving and substituting variables. It must never read
//! the process environment itself (the CLI passes `SLUICE_VAR_*` in [`LoadOptions::env`])
//! nor substitute inside `[variables]` or a target's `variables` (values are literal).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::DeValue;

use super::TargetSpec;
use super::build::check_key_name;
use super::error::{Locator, SpecError};
use super::names;
use super::read::{Node, Table};

/// The prefix of environment variables that set bundle variables (`SLUICE_VAR_lake`).
pub const VAR_ENV_PREFIX: &str = "SLUICE_VAR_";
pub(crate) const VARIABLE_KEYS: &[&str] = &["default", "description"];
const OPEN: &str = "${var.";

/// How to load a bundle: for which target, with which variable values from outside.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoadOptions {
    /// `--target` / `SLUICE_TARGET`; `None`: the bundle's default target.
    #[serde(default)]
    pub target: Option<String>,
    /// `--var NAME=VALUE`: each must name a declared variable.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// `SLUICE_VAR_NAME` values by NAME; names the bundle does not declare are ignored
    /// (one environment may serve several bundles).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The included files' texts by path relative to the bundle root, used instead of the
    /// files on disk: a deployment resolved again (promotion) must read the texts it was
    /// deployed with, never the working tree's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included: Option<BTreeMap<String, String>>,
}

impl LoadOptions {
    /// Options for `target` with `--var` pairs and the `SLUICE_VAR_*` entries of `env`.
    pub fn new(
        target: Option<String>,
        vars: impl IntoIterator<Item = (String, String)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> LoadOptions {
        let env = env
            .into_iter()
            .filter_map(|(key, value)| key.strip_prefix(VAR_ENV_PREFIX).map(|name| (name.to_string(), value)))
            .filter(|(name, _)| !name.is_empty())
            .collect();
        LoadOptions { target, vars: vars.into_iter().collect(), env, included: None }
    }
}

/// Where a variable's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarSource {
    /// `--var NAME=VALUE`.
    Flag,
    /// `SLUICE_VAR_NAME`.
    Env,
    /// The target's `variables`.
    Target,
    /// The variable's `default`.
    Default,
}

/// A declared variable and its value for the target the bundle was loaded for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableSpec {
    pub name: String,
    pub description: Option<String>,
    pub default: Option<String>,
    /// The resolved value; `None` when nothing sets it (an error only where it is used).
    pub value: Option<String>,
    pub source: Option<VarSource>,
}

/// Reads `[variables]` (merged from the bundle and its includes).
pub(crate) fn declared(table: Option<&Table<'_>>) -> Result<BTreeMap<String, VariableSpec>, SpecError> {
    let mut out = BTreeMap::new();
    for entry in table.map(Table::entries).unwrap_or_default() {
        check_key_name(entry, "variable")?;
        let spec = entry.node.table().map_err(|_| {
            entry.node.error("a variable is a table: `NAME = { default = \"…\", description = \"…\" }`")
        })?;
        spec.deny_unknown(VARIABLE_KEYS)?;
        let default = spec.get("default").map(literal).transpose()?;
        let description = spec.get("description").map(|node| node.str().map(str::to_string)).transpose()?;
        let name = entry.key.to_string();
        out.insert(name.clone(), VariableSpec { name, description, default, value: None, source: None });
    }
    Ok(out)
}

/// A variable's value as written: a scalar, not itself referring to variables.
pub(crate) fn literal(node: &Node<'_>) -> Result<String, SpecError> {
    if !node.is_scalar() {
        return Err(node.error("a variable's value is a string, number or boolean"));
    }
    let value = node.param_string()?;
    if value.contains(OPEN) {
        return Err(node.error("a variable's value cannot use `${var.…}`; values are literal"));
    }
    Ok(value)
}

/// Checks that every target's `variables` names declared variables.
pub(crate) fn check_targets(targets: &Node<'_>, declared: &BTreeMap<String, VariableSpec>) -> Result<(), SpecError> {
    for target in targets.table()?.entries() {
        let Some(values) = target.node.table()?.get("variables").cloned() else { continue };
        for entry in values.table()?.entries() {
            if !declared.contains_key(entry.key) {
                return Err(entry.key_error(undeclared(entry.key, declared)));
            }
        }
    }
    Ok(())
}

/// Fills in each variable's value for `target`; a `--var` naming no declared variable is
/// refused.
pub(crate) fn resolve(
    file: &Path,
    declared: &mut BTreeMap<String, VariableSpec>,
    target: Option<&TargetSpec>,
    opts: &LoadOptions,
) -> Result<(), SpecError> {
    if let Some(name) = opts.vars.keys().find(|name| !declared.contains_key(*name)) {
        return Err(SpecError::UnknownVariable {
            file: file.to_path_buf(),
            name: name.clone(),
            known: declared.keys().cloned().collect(),
        });
    }
    for (name, spec) in declared.iter_mut() {
        let from_target = target.and_then(|t| t.variables.get(name));
        let (value, source) = if let Some(value) = opts.vars.get(name) {
            (Some(value), Some(VarSource::Flag))
        } else if let Some(value) = opts.env.get(name) {
            (Some(value), Some(VarSource::Env))
        } else if let Some(value) = from_target {
            (Some(value), Some(VarSource::Target))
        } else {
            (spec.default.as_ref(), spec.default.as_ref().map(|_| VarSource::Default))
        };
        spec.value = value.cloned();
        spec.source = source;
    }
    Ok(())
}

fn undeclared(name: &str, declared: &BTreeMap<String, VariableSpec>) -> String {
    let hint = names::suggestion(name, declared.keys().map(String::as_str));
    format!(
        "no variable `{name}` is declared{hint}; declare it as [variables.{name}] with a `default` or a description"
    )
}

/// Replaces every `${var.NAME}` in the strings of `doc`; returns every problem found.
pub(crate) fn substitute(
    doc: &mut Spanned<DeValue<'_>>,
    loc: &Locator<'_>,
    vars: &BTreeMap<String, VariableSpec>,
    target: Option<&str>,
) -> Vec<SpecError> {
    let mut walk = Walk { loc, vars, target, errors: Vec::new() };
    walk.value(doc, "", 0);
    walk.errors
}

struct Walk<'w> {
    loc: &'w Locator<'w>,
    vars: &'w BTreeMap<String, VariableSpec>,
    target: Option<&'w str>,
    errors: Vec<SpecError>,
}

impl Walk<'_> {
    fn value(&mut self, value: &mut Spanned<DeValue<'_>>, path: &str, depth: usize) {
        let span = value.span();
        match value.get_mut() {
            DeValue::String(text) if text.contains(OPEN) => match self.replace(text) {
                Ok(new) => *text = Cow::Owned(new),
                Err(why) => self.errors.push(self.loc.invalid(&span, path, why)),
            },
            DeValue::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    self.value(item, &format!("{path}[{index}]"), depth + 1);
                }
            }
            DeValue::Table(table) => {
                for (key, item) in table.iter_mut() {
                    let literal =
                        key.get_ref() == "variables" && (depth == 0 || (depth == 2 && path.starts_with("targets.")));
                    if !literal {
                        self.value(item, &names::child_path(path, key.get_ref()), depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    /// The string with its references replaced, or why it cannot be.
    fn replace(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(OPEN) {
            out.push_str(&rest[..at]);
            let after = &rest[at + OPEN.len()..];
            let Some(end) = after.find('}') else {
                return Err(format!("`{OPEN}` is not closed; write `${{var.NAME}}`"));
            };
            let name = after[..end].trim();
            let Some(spec) = self.vars.get(name) else {
                return Err(format!("`${{var.{name}}}`: {}", undeclared(name, self.vars)));
            };
            let Some(value) = &spec.value else {
                let (target, table) = match self.target {
                    Some(t) => (format!(" in target `{t}`"), format!("[targets.{t}] variables")),
                    None => (String::new(), "a target's variables (with --target)".to_string()),
                };
                return Err(format!(
                    "variable `{name}` has no value{target}: give it a `default`, set it in {table}, \
                     or pass --var {name}=VALUE (or set {VAR_ENV_PREFIX}{name})"
                ));
            };
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}
