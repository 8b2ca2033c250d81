//! Who may do what with a job: `permissions = [{ level = "…", user_name = "…" }]`, as
//! Databricks writes them, on a job (`[jobs.NAME] permissions`), a target
//! (`[targets.T] permissions`, for every job of the target) or a target's job override.
//!
//! This module owns the vocabulary and its reading: levels ordered so that "at least
//! `CAN_MANAGE_RUN`" is a comparison, principals that are users, groups or service
//! principals. It must never decide whether a principal exists (that is `sluice validate`'s
//! job, which knows the store) nor enforce anything (the deploy and server modules do).

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::names;
use super::read::Node;

/// A permission level on a job, Databricks' names; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PermissionLevel {
    /// See the job, its runs and their logs.
    CanView,
    /// Also run it, cancel and repair its runs.
    CanManageRun,
    /// Also change, deploy and approve it, and change its permissions.
    CanManage,
    /// The job's owner (one user or service principal; never a group).
    IsOwner,
}

impl PermissionLevel {
    /// Every level, lowest first.
    pub const ALL: [PermissionLevel; 4] =
        [PermissionLevel::CanView, PermissionLevel::CanManageRun, PermissionLevel::CanManage, PermissionLevel::IsOwner];

    pub fn as_str(self) -> &'static str {
        match self {
            PermissionLevel::CanView => "CAN_VIEW",
            PermissionLevel::CanManageRun => "CAN_MANAGE_RUN",
            PermissionLevel::CanManage => "CAN_MANAGE",
            PermissionLevel::IsOwner => "IS_OWNER",
        }
    }

    /// Whether holding `self` allows what `needed` allows.
    pub fn allows(self, needed: PermissionLevel) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for PermissionLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PermissionLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<PermissionLevel, String> {
        PermissionLevel::ALL.into_iter().find(|level| level.as_str() == text).ok_or_else(|| {
            let known = PermissionLevel::ALL.map(PermissionLevel::as_str);
            format!(
                "`{text}` is not a permission level; use one of {}{}",
                names::list(known),
                names::suggestion(text, known)
            )
        })
    }
}

/// Who a permission is granted to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// `user_name = "…"`: a person (as `SLUICE_PRINCIPAL` or a token names them).
    User(String),
    /// `group_name = "…"`: every member of the group.
    Group(String),
    /// `service_principal_name = "…"`: a machine identity (an API token's principal).
    ServicePrincipal(String),
}

impl Principal {
    /// The name, whatever the kind.
    pub fn name(&self) -> &str {
        match self {
            Principal::User(name) | Principal::Group(name) | Principal::ServicePrincipal(name) => name,
        }
    }

    /// The key it is written under (`user_name`, `group_name`, `service_principal_name`).
    pub fn key(&self) -> &'static str {
        match self {
            Principal::User(_) => "user_name",
            Principal::Group(_) => "group_name",
            Principal::ServicePrincipal(_) => "service_principal_name",
        }
    }
}

/// One entry of a `permissions` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub level: PermissionLevel,
    pub principal: Principal,
}

pub(crate) const PERMISSION_KEYS: &[&str] = &["level", "user_name", "group_name", "service_principal_name"];
pub(crate) const PRINCIPAL_KEYS: [&str; 3] = ["user_name", "group_name", "service_principal_name"];

/// Reads a `permissions` array: each entry one level and exactly one principal; a
/// principal listed twice, a group as `IS_OWNER` or two owners are refused.
pub(crate) fn permissions(node: &Node<'_>) -> Result<Vec<Permission>, SpecError> {
    let mut out: Vec<Permission> = Vec::new();
    for item in node.array()? {
        let table = item.table()?;
        table.deny_unknown(PERMISSION_KEYS)?;
        let level_node = table.require("level")?;
        let level: PermissionLevel = level_node.str()?.parse().map_err(|why: String| level_node.error(why))?;
        let given: Vec<_> = PRINCIPAL_KEYS.iter().filter_map(|key| table.get(key).map(|node| (*key, node))).collect();
        let (key, name_node) = match given.as_slice() {
            [one] => *one,
            [] => return Err(item.error(format!("a permission needs one of {}", names::list(PRINCIPAL_KEYS)))),
            [_, (second, node), ..] => {
                return Err(node.error(format!("`{second}`: a permission names exactly one principal")));
            }
        };
        let name = name_node.str()?.trim();
        if name.is_empty() {
            return Err(name_node.error("principal name is empty"));
        }
        let principal = match key {
            "user_name" => Principal::User(name.to_string()),
            "group_name" => Principal::Group(name.to_string()),
            _ => Principal::ServicePrincipal(name.to_string()),
        };
        if level == PermissionLevel::IsOwner && matches!(principal, Principal::Group(_)) {
            return Err(level_node.error("a group cannot be IS_OWNER; name a user_name or service_principal_name"));
        }
        if out.iter().any(|p| p.principal == principal) {
            return Err(name_node.error(format!("{} `{name}` is listed twice", principal.key())));
        }
        if level == PermissionLevel::IsOwner && out.iter().any(|p| p.level == PermissionLevel::IsOwner) {
            return Err(level_node.error("only one principal may be IS_OWNER"));
        }
        out.push(Permission { level, principal });
    }
    Ok(out)
}

/// The highest level `permissions` give to any of `principals` (a user and their groups).
pub fn level_of<'p>(
    permissions: &[Permission],
    principals: impl IntoIterator<Item = &'p Principal>,
) -> Option<PermissionLevel> {
    let principals: Vec<&Principal> = principals.into_iter().collect();
    permissions.iter().filter(|p| principals.contains(&&p.principal)).map(|p| p.level).max()
}
