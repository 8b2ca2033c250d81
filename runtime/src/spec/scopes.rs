//! `[secret_scopes.NAME] acls = [{ principal = "…", permission = "READ" }]`: the secret
//! scopes a bundle needs and who may read, write or manage them, declared as code.
//!
//! This module owns reading those declarations with the vocabulary of
//! [`crate::secrets::acl`] (read < write < manage; the names are case-insensitive, Databricks
//! writes them upper-case). It must never hold or accept a secret's value — a `value` key is
//! refused with a hint — nor create scopes: applying them is the deploy module's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::read::{Node, Table};
use crate::secrets::{AclEntry, Permission};

pub(crate) const SCOPE_KEYS: &[&str] = &["acls"];
pub(crate) const ACL_KEYS: &[&str] = &["principal", "permission"];
/// Keys that would carry a secret's value: refused with a hint rather than "unknown key".
pub(crate) const VALUE_KEYS: &[&str] = &["value", "values", "secrets", "string_value", "bytes_value"];

/// A secret scope the bundle declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretScopeSpec {
    pub name: String,
    /// Who may do what with the scope (one entry per principal).
    pub acls: Vec<AclEntry>,
}

/// Reads `[secret_scopes]` (merged from the bundle and its includes).
pub(crate) fn secret_scopes(table: &Table<'_>) -> Result<BTreeMap<String, SecretScopeSpec>, SpecError> {
    let mut out = BTreeMap::new();
    for entry in table.entries() {
        crate::secrets::check_name("scope", entry.key).map_err(|why| entry.key_error(why.to_string()))?;
        let scope = entry.node.table()?;
        if let Some(value) = VALUE_KEYS.iter().find_map(|key| scope.get(key)) {
            return Err(value.error(
                "secret values never go in the bundle (it is code, kept in Git); put them with \
                 `sluice secrets put SCOPE KEY` (the value read from stdin)",
            ));
        }
        scope.deny_unknown(SCOPE_KEYS)?;
        let acls = match scope.get("acls") {
            Some(node) => acls(node)?,
            None => Vec::new(),
        };
        out.insert(entry.key.to_string(), SecretScopeSpec { name: entry.key.to_string(), acls });
    }
    Ok(out)
}

fn acls(node: &Node<'_>) -> Result<Vec<AclEntry>, SpecError> {
    let mut out: Vec<AclEntry> = Vec::new();
    for item in node.array()? {
        let table = item.table()?;
        table.deny_unknown(ACL_KEYS)?;
        let who = table.require("principal")?;
        let principal = who.str()?.to_string();
        crate::secrets::check_principal(&principal).map_err(|why| who.error(why.to_string()))?;
        let level = table.require("permission")?;
        let permission: Permission = level.str()?.parse().map_err(|_| {
            level.error(format!("`{}` is not a permission: use READ, WRITE or MANAGE", level.str().unwrap_or("")))
        })?;
        if out.iter().any(|entry| entry.principal == principal) {
            return Err(who.error(format!("principal `{principal}` is listed twice")));
        }
        out.push(AclEntry { principal, permission });
    }
    Ok(out)
}
