//! Groups: who belongs to which group, so that a `group_name` grant in `permissions`
//! (Databricks' levels) reaches its members. `sluice groups add|remove|list` keeps the
//! directory; only a local caller (the owner's user) changes or lists it, as for tokens.
//!
//! Groups are account-wide, like Databricks' account groups: one directory per state
//! directory, whatever the workspace (a principal's workspace is still its token's). It
//! owns membership only; it must never decide a level (`access` and `deploy::rules` do).

use super::{Caller, Service, ServiceError};
use crate::store::GroupRecord;

/// The most members one group holds: membership is read on every permission check.
pub const MAX_GROUP_MEMBERS: usize = 10_000;

impl Service {
    /// Add `add` to group `name` and take `remove` out of it; a group left without
    /// members no longer exists. Answers the group as it now is.
    pub fn update_group(
        &self,
        caller: &Caller,
        name: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<GroupRecord, ServiceError> {
        self.local_only(caller, "change groups")?;
        crate::secrets::check_principal(name).map_err(|e| ServiceError::Invalid(format!("group name: {e}")))?;
        for member in add.iter().chain(remove) {
            crate::secrets::check_principal(member).map_err(|e| ServiceError::Invalid(format!("member: {e}")))?;
        }
        let services = self.inner.rt.services();
        let mut group = services.groups()?.into_iter().find(|g| g.name == name).unwrap_or_else(|| GroupRecord {
            name: name.to_string(),
            members: Default::default(),
            updated_at: 0,
        });
        if let Some(missing) = remove.iter().find(|m| !group.members.contains(*m)) {
            return Err(ServiceError::NotFound(format!("`{missing}` is not a member of group `{name}`")));
        }
        group.members.extend(add.iter().cloned());
        group.members.retain(|m| !remove.contains(m));
        if group.members.len() > MAX_GROUP_MEMBERS {
            return Err(ServiceError::Invalid(format!(
                "group `{name}` would have {} members; at most {MAX_GROUP_MEMBERS}",
                group.members.len()
            )));
        }
        group.updated_at = self.inner.rt.clock().now_millis();
        services.put_group(&group)?;
        Ok(group)
    }

    /// Every group and its members.
    pub fn groups(&self, caller: &Caller) -> Result<Vec<GroupRecord>, ServiceError> {
        self.local_only(caller, "list groups")?;
        Ok(self.inner.rt.services().groups()?)
    }

    /// The groups `principal` belongs to, by name.
    pub(crate) fn groups_of(&self, principal: &str) -> Result<Vec<String>, ServiceError> {
        let groups = self.inner.rt.services().groups()?;
        Ok(groups.into_iter().filter(|g| g.members.contains(principal)).map(|g| g.name).collect())
    }
}
