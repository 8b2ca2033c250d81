//! The owner's side of deployments: commit a snapshot, roll back, destroy, approve and
//! promote — each one compare-and-swap write of the target's records (see
//! [`crate::store::DeploymentStore`]) with its journal entry — and the reads `deployments
//! list|show` and the API make.
//!
//! A deploy writes its blobs first (the client, or the upload route), then checks here that
//! every one is in the blob store, then makes one atomic write: a crash at any point leaves
//! the old deployment or the new one. It must never read the working tree (a snapshot
//! arrives whole), print, or speak HTTP.

use serde::{Deserialize, Serialize};

use super::model::{Action, Deployment, JournalEntry, Origin, Snapshot, decode, encode};
use super::{DeployError, gates, rules};
use crate::cache::{BlobStore, Hash};
use crate::scheduler::Runtime;
use crate::store::{Applied, Change, Pointer, TargetKey};

/// Who acts, in which workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub principal: String,
    pub workspace: String,
    /// The groups the principal belongs to (`group_name` grants reach it through them).
    pub groups: Vec<String>,
}

impl Actor {
    /// The actor as permission rules see it.
    pub fn member(&self) -> rules::Member<'_> {
        rules::Member { principal: &self.principal, groups: &self.groups }
    }
}

/// A deployment in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub number: u64,
    pub current: bool,
    pub bundle_hash: String,
    pub principal: String,
    pub at: u64,
    pub origin: Origin,
    pub git_commit: Option<String>,
}

/// Deployments of one runtime's store.
pub struct Deployments<'r> {
    rt: &'r Runtime,
}

impl<'r> Deployments<'r> {
    pub fn new(rt: &'r Runtime) -> Deployments<'r> {
        Deployments { rt }
    }

    fn blobs(&self) -> Result<&BlobStore, DeployError> {
        self.rt
            .cache
            .as_deref()
            .map(|c| &c.blobs)
            .ok_or_else(|| DeployError::Invalid("this runtime has no blob store".into()))
    }

    /// The hashes of `hashes` the blob store lacks (what a remote client must upload).
    pub fn missing(&self, hashes: &[String]) -> Result<Vec<String>, DeployError> {
        let blobs = self.blobs()?;
        let mut out = Vec::new();
        for hex in hashes {
            let hash: Hash = hex.parse().map_err(|_| DeployError::Invalid(format!("`{hex}` is not a blake3 hash")))?;
            if blobs.verify(&hash).is_err() {
                out.push(hex.clone());
            }
        }
        Ok(out)
    }

    /// Store an uploaded component; refused unless its content hashes to `hex`.
    pub fn put_blob(&self, hex: &str, bytes: &[u8]) -> Result<(), DeployError> {
        let actual = blake3::hash(bytes).to_hex().to_string();
        if actual != hex {
            return Err(DeployError::Invalid(format!("the uploaded blob hashes to {actual}, not {hex}")));
        }
        self.blobs()?.put_bytes(bytes)?;
        self.blobs()?.sync()?;
        Ok(())
    }

    pub fn key(ws: &str, bundle: &str, target: &str) -> TargetKey {
        TargetKey { workspace: ws.into(), bundle: bundle.into(), target: target.into() }
    }

    /// Deployment `number` of a target.
    pub fn get(&self, key: &TargetKey, number: u64) -> Result<Option<Deployment>, DeployError> {
        let Some(bytes) = self.rt.deployments().record(key, number)? else { return Ok(None) };
        let mut d: Deployment = decode(&bytes, &format!("deployment {number} of {}", key.target))?;
        d.number = number;
        Ok(Some(d))
    }

    /// The target's current deployment.
    pub fn current(&self, key: &TargetKey) -> Result<Option<Deployment>, DeployError> {
        match self.rt.deployments().current(key)? {
            Some(n) => self.get(key, n),
            None => Ok(None),
        }
    }

    /// Deployment `number` (or the current one), or an error naming what is missing.
    pub fn show(&self, key: &TargetKey, number: Option<u64>) -> Result<Deployment, DeployError> {
        let found = match number {
            Some(n) => self.get(key, n)?,
            None => self.current(key)?,
        };
        found.ok_or_else(|| {
            DeployError::NotFound(match number {
                Some(n) => format!("target `{}` of bundle `{}` has no deployment {n}", key.target, key.bundle),
                None => format!("target `{}` of bundle `{}` has no current deployment", key.target, key.bundle),
            })
        })
    }

    /// Every deployment of the target, oldest first.
    pub fn list(&self, key: &TargetKey) -> Result<Vec<Summary>, DeployError> {
        let current = self.rt.deployments().current(key)?;
        let mut out = Vec::new();
        for (n, bytes) in self.rt.deployments().records(key)? {
            let d: Deployment = decode(&bytes, &format!("deployment {n}"))?;
            out.push(Summary {
                number: n,
                current: current == Some(n),
                bundle_hash: d.snapshot.bundle_hash,
                principal: d.principal,
                at: d.at,
                origin: d.origin,
                git_commit: d.snapshot.git.and_then(|g| g.commit),
            });
        }
        Ok(out)
    }

    /// The target's journal, oldest first.
    pub fn journal(&self, key: &TargetKey) -> Result<Vec<JournalEntry>, DeployError> {
        self.rt.deployments().journal(key)?.iter().map(|b| decode(b, "journal entry")).collect()
    }

    /// Deploy `snapshot` as the actor: every component must be in the blob store; a
    /// production target's Git rules must hold; the target must still be at `expected`
    /// (`None`: whatever it was when this began).
    pub fn commit(
        &self,
        actor: &Actor,
        snapshot: Snapshot,
        expected: Option<Option<u64>>,
        origin: Origin,
    ) -> Result<Deployment, DeployError> {
        self.commit_only(actor, snapshot, expected, origin, None)
    }

    /// [`Self::commit`], of one job only when `only` names it and the deployment current
    /// before: every other job of that deployment stays pinned where it runs from.
    fn commit_only(
        &self,
        actor: &Actor,
        snapshot: Snapshot,
        expected: Option<Option<u64>>,
        origin: Origin,
        only: Option<(&str, &Deployment)>,
    ) -> Result<Deployment, DeployError> {
        // the target must be one the bundle declares
        snapshot.spec.target(Some(&snapshot.target))?;
        if origin == Origin::Deploy {
            rules::check_production(&snapshot.spec, &snapshot.target, snapshot.git.as_ref())?;
        }
        check_hashes(&snapshot)?;
        let hashes: Vec<String> = snapshot.components.values().cloned().collect();
        let missing = self.missing(&hashes)?;
        if !missing.is_empty() {
            return Err(DeployError::MissingBlobs(missing));
        }
        let key = Self::key(&actor.workspace, &snapshot.bundle, &snapshot.target);
        let before = self.current(&key)?;
        let expected = expected.unwrap_or(before.as_ref().map(|d| d.number));
        let mut d = self.record(actor, snapshot, origin);
        if let Some((job, kept)) = only {
            keep_all_but(&mut d, job, kept);
        }
        let action = if matches!(d.origin, Origin::Promote { .. }) { Action::Promote } else { Action::Deploy };
        let source = match &d.origin {
            Origin::Promote { from, number } => Some(format!("{from}/{number}")),
            Origin::Deploy => None,
        };
        let entry = self.entry(actor, action, &key, before.as_ref(), None, Some(&d.snapshot.bundle_hash), source);
        let change = Change { expected, record: Some(encode(&d)?), pointer: Pointer::New, journal: Vec::new() };
        let number = self.change(&key, change, entry)?;
        Ok(Deployment { number: number.unwrap_or_default(), ..d })
    }

    fn record(&self, actor: &Actor, snapshot: Snapshot, origin: Origin) -> Deployment {
        let dev = rules::is_development(&snapshot.spec, &snapshot.target);
        let jobs = snapshot
            .spec
            .jobs
            .keys()
            .map(|name| {
                let display_name = if dev { format!("[dev {}] {name}", actor.principal) } else { name.clone() };
                (name.clone(), super::DeployedJob { display_name, paused: dev })
            })
            .collect();
        Deployment {
            number: 0,
            workspace: actor.workspace.clone(),
            spec_hash: super::spec_hash(&snapshot.spec),
            mode: rules::mode_name(&snapshot.spec, &snapshot.target),
            jobs,
            principal: actor.principal.clone(),
            at: self.rt.clock().now_millis(),
            origin,
            snapshot,
            pinned: Default::default(),
        }
    }

    /// The deployment `job` of `d` (a deployment of `key`) runs from: `d` itself, or the
    /// earlier one a one-job promotion pinned it to.
    pub fn owner(&self, key: &TargetKey, d: Deployment, job: &str) -> Result<Deployment, DeployError> {
        let Some(&n) = d.pinned.get(job) else { return Ok(d) };
        self.get(key, n)?.ok_or_else(|| {
            DeployError::Corrupt(format!(
                "deployment {}/{} pins job `{job}` to {n}, which is gone",
                key.target, d.number
            ))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &self,
        actor: &Actor,
        action: Action,
        key: &TargetKey,
        from: Option<&Deployment>,
        to: Option<&Deployment>,
        to_hash: Option<&String>,
        source: Option<String>,
    ) -> JournalEntry {
        JournalEntry {
            action,
            target: key.target.clone(),
            principal: actor.principal.clone(),
            at: self.rt.clock().now_millis(),
            from: from.map(|d| d.number),
            from_hash: from.map(|d| d.snapshot.bundle_hash.clone()),
            to: to.map(|d| d.number),
            to_hash: to.map(|d| d.snapshot.bundle_hash.clone()).or_else(|| to_hash.cloned()),
            source,
        }
    }

    /// Apply one change with its journal entry (the entry's `to` filled in for a new record).
    fn change(&self, key: &TargetKey, mut change: Change, mut entry: JournalEntry) -> Result<Option<u64>, DeployError> {
        if change.pointer == Pointer::New {
            // the number the store gives the record: the last one plus one
            let last = self.rt.deployments().records(key)?.last().map_or(0, |(n, _)| *n);
            entry.to = Some(last + 1);
        }
        change.journal = encode(&entry)?;
        let expected = change.expected;
        match self.rt.deployments().apply(key, change)? {
            Applied::Done { number } => Ok(number),
            Applied::Conflict { current } => Err(DeployError::Conflict {
                target: key.target.clone(),
                expected: expected.map_or_else(|| "none".into(), |n| n.to_string()),
                found: current.map_or_else(|| "none".into(), |n| n.to_string()),
            }),
        }
    }

    /// Make deployment `to` (default: the one before the current) current again.
    pub fn rollback(&self, actor: &Actor, key: &TargetKey, to: Option<u64>) -> Result<Deployment, DeployError> {
        let before = self.show(key, None)?;
        self.require_manage(actor, &before, "roll back")?;
        let to = match to {
            Some(n) => n,
            None => before.number.checked_sub(1).filter(|n| *n > 0).ok_or_else(|| {
                DeployError::NotFound(format!("target `{}` has no deployment before {}", key.target, before.number))
            })?,
        };
        let target = self.show(key, Some(to))?;
        let entry = self.entry(actor, Action::Rollback, key, Some(&before), Some(&target), None, None);
        let change =
            Change { expected: Some(before.number), record: None, pointer: Pointer::Existing(to), journal: vec![] };
        self.change(key, change, entry)?;
        Ok(target)
    }

    /// Remove the target's deployed jobs (its records and run history stay).
    pub fn destroy(&self, actor: &Actor, key: &TargetKey) -> Result<Deployment, DeployError> {
        let before = self.show(key, None)?;
        self.require_manage(actor, &before, "destroy")?;
        let entry = self.entry(actor, Action::Destroy, key, Some(&before), None, None, None);
        let change = Change { expected: Some(before.number), record: None, pointer: Pointer::Clear, journal: vec![] };
        self.change(key, change, entry)?;
        Ok(before)
    }

    /// Approve deployment `number` of a target for promotion.
    pub fn approve(&self, actor: &Actor, key: &TargetKey, number: u64) -> Result<Deployment, DeployError> {
        let d = self.show(key, Some(number))?;
        if d.principal == actor.principal {
            return Err(DeployError::Denied(format!(
                "{} deployed {}/{number} and cannot approve their own deployment; another principal with CAN_MANAGE must",
                actor.principal, key.target
            )));
        }
        self.require_manage(actor, &d, "approve")?;
        let current = self.rt.deployments().current(key)?;
        let entry = self.entry(actor, Action::Approve, key, None, Some(&d), None, None);
        let change = Change { expected: current, record: None, pointer: Pointer::Keep, journal: vec![] };
        self.change(key, change, entry)?;
        Ok(d)
    }

    /// CAN_MANAGE on every job of the deployment.
    fn require_manage(&self, actor: &Actor, d: &Deployment, what: &str) -> Result<(), DeployError> {
        for job in d.snapshot.spec.jobs.keys() {
            rules::require(d, job, actor.member(), rules::Level::CanManage, what)?;
        }
        Ok(())
    }

    /// Deploy to `to` exactly the current deployment of `from`: the same bundle text and
    /// component hashes, resolved for `to`; refused unless `to`'s gates pass.
    pub fn promote(
        &self,
        actor: &Actor,
        bundle: &str,
        from: &str,
        to: &str,
        job: Option<&str>,
    ) -> Result<Deployment, DeployError> {
        let source_key = Self::key(&actor.workspace, bundle, from);
        let source = self.show(&source_key, None)?;
        let spec = &source.snapshot.spec;
        let kept = match job {
            Some(job) => Some(self.kept_for(&source, &Self::key(&actor.workspace, bundle, to), job)?),
            None => None,
        };
        if !spec.targets.contains_key(to) {
            let known: Vec<&String> = spec.targets.keys().collect();
            return Err(DeployError::NotFound(format!(
                "bundle `{bundle}` declares no target `{to}` to promote to (its targets: {known:?})"
            )));
        }
        let to_name = to.to_string();
        if let Some(want) = rules::target(spec, &to_name).promote_from
            && want != from
        {
            return Err(DeployError::Refused(format!(
                "target `{to}` promotes from `{want}` (promote_from), not from `{from}`"
            )));
        }
        gates::check(self.rt, &source, &to_name, &self.journal(&source_key)?)?;
        // the same text, resolved for the destination: its variables and permissions
        let opts = crate::spec::LoadOptions {
            target: Some(to_name.clone()),
            included: Some(source.snapshot.includes.clone()),
            ..Default::default()
        };
        let resolved = crate::spec::parse_with(&source.snapshot.source, &spec.file, &spec.root, &opts)?;
        let snapshot = Snapshot { target: to_name, spec: resolved, ..source.snapshot.clone() };
        let origin = Origin::Promote { from: from.to_string(), number: source.number };
        let only = job.zip(kept.as_ref());
        self.commit_only(actor, snapshot, None, origin, only)
    }

    /// The deployment a one-job promotion of `job` from `source` to `to` keeps the other
    /// jobs of: `to`'s current one (a target without one takes whole promotions only).
    fn kept_for(&self, source: &Deployment, to: &TargetKey, job: &str) -> Result<Deployment, DeployError> {
        if !source.jobs.contains_key(job) {
            let known: Vec<&String> = source.jobs.keys().collect();
            return Err(DeployError::NotFound(format!(
                "deployment {}/{} has no job `{job}` to promote (it has {known:?})",
                source.snapshot.target, source.number
            )));
        }
        self.current(to)?.ok_or_else(|| {
            DeployError::Refused(format!(
                "target `{}` has no deployment whose other jobs `--job {job}` could keep: promote the whole bundle first",
                to.target
            ))
        })
    }
}

/// Make `d` a deployment of `job` alone: every other job of `kept` (the deployment current
/// before) stays, pinned to the deployment it ran from; the source's other jobs are not
/// deployed.
fn keep_all_but(d: &mut Deployment, job: &str, kept: &Deployment) {
    let promoted = d.jobs.remove(job);
    d.jobs = kept.jobs.iter().filter(|(name, _)| name.as_str() != job).map(|(n, j)| (n.clone(), j.clone())).collect();
    d.pinned =
        d.jobs.keys().map(|name| (name.clone(), kept.pinned.get(name).copied().unwrap_or(kept.number))).collect();
    if let Some(promoted) = promoted {
        d.jobs.insert(job.to_string(), promoted);
    }
}

/// The snapshot's components are the spec's, and its bundle hash is theirs.
fn check_hashes(s: &Snapshot) -> Result<(), DeployError> {
    let names: Vec<&String> = s.spec.components.keys().collect();
    if names != s.components.keys().collect::<Vec<_>>() {
        return Err(DeployError::Invalid("the snapshot's components are not the bundle's".into()));
    }
    if super::bundle_hash(&s.source, &s.includes, &s.components) != s.bundle_hash {
        return Err(DeployError::Invalid("the snapshot's bundle hash is not its content's".into()));
    }
    Ok(())
}
