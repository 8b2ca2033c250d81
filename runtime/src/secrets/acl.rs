//! Permissions on a scope and who holds them.
//!
//! Three levels, each including the ones below it (Databricks' secret ACLs):
//! `read` reveals values and lists names; `write` also puts and deletes
//! secrets; `manage` also changes the ACL and deletes the scope. The creator of
//! a scope gets `manage`. A scope always keeps at least one manager.
//! Pure logic: no I/O, no knowledge of where entries are stored.

use serde::{Deserialize, Serialize};

use super::AclEntry;

/// What a principal may do with a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Read,
    Write,
    Manage,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Manage => "manage",
        }
    }

    /// Whether holding `self` allows what `needed` allows.
    pub fn allows(self, needed: Permission) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Permission, String> {
        match s.to_ascii_lowercase().as_str() {
            "read" => Ok(Permission::Read),
            "write" => Ok(Permission::Write),
            "manage" => Ok(Permission::Manage),
            _ => Err(format!("`{s}` is not a permission: use read, write or manage")),
        }
    }
}

/// The permission `principal` holds in `acl`, if any.
pub fn permission_of(acl: &[AclEntry], principal: &str) -> Option<Permission> {
    acl.iter().filter(|e| e.principal == principal).map(|e| e.permission).max()
}

/// Whether `principal` may do what `needed` allows.
pub fn allowed(acl: &[AclEntry], principal: &str, needed: Permission) -> bool {
    permission_of(acl, principal).is_some_and(|p| p.allows(needed))
}

/// Whether the ACL still has a manager after `principal`'s entry becomes
/// `new` (`None`: removed).
pub fn keeps_a_manager(acl: &[AclEntry], principal: &str, new: Option<Permission>) -> bool {
    new == Some(Permission::Manage)
        || acl.iter().any(|e| e.principal != principal && e.permission == Permission::Manage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, permission: Permission) -> AclEntry {
        AclEntry { principal: p.into(), permission }
    }

    #[test]
    fn levels_include_the_ones_below() {
        use Permission::*;
        assert!(Manage.allows(Write) && Manage.allows(Read) && Write.allows(Read));
        assert!(!Read.allows(Write) && !Write.allows(Manage));
        let acl = [entry("alice", Manage), entry("bob", Read)];
        assert!(allowed(&acl, "alice", Write));
        assert!(allowed(&acl, "bob", Read) && !allowed(&acl, "bob", Write));
        assert!(!allowed(&acl, "mallory", Read), "no entry, no access");
        assert!(!allowed(&acl, "Alice", Read), "principals are exact");
        assert_eq!(permission_of(&acl, "bob"), Some(Read));
        assert_eq!("MANAGE".parse::<Permission>(), Ok(Manage));
        assert!("owner".parse::<Permission>().is_err());
    }

    #[test]
    fn the_last_manager_stays() {
        use Permission::*;
        let acl = [entry("alice", Manage), entry("bob", Read)];
        assert!(!keeps_a_manager(&acl, "alice", None));
        assert!(!keeps_a_manager(&acl, "alice", Some(Write)));
        assert!(keeps_a_manager(&acl, "alice", Some(Manage)));
        assert!(keeps_a_manager(&acl, "bob", None));
        let two = [entry("alice", Manage), entry("carol", Manage)];
        assert!(keeps_a_manager(&two, "alice", None));
    }
}
