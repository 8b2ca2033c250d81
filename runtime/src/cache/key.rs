//! The cache key: [`KeyParts`], their canonical encoding and hash, and [`explain`]ing how two
//! sets of parts differ.
//!
//! Owns what a key is made of and the one byte encoding it is hashed from. It must never
//! hold a secret's value or a host path (mounts enter by content, secrets by name and
//! version), never do I/O, and never change the encoding without bumping
//! [`KEY_FORMAT_VERSION`].
//!
//! # Canonical encoding ([`KeyParts::canonical`])
//!
//! The domain tag `sluice-cache-key\0`, then the twelve fields in the order of the struct,
//! each as a one-byte field number followed by its value. Values: `u32`/`u64` little-endian;
//! a string as its u64 byte length and bytes; a list as its u64 count and items; a map as
//! its u64 count and (key, value) pairs in key order; an option as `0`, or `1` and the
//! value. Every value is self-delimiting and the order is fixed, so two different sets of
//! parts never share an encoding (a byte cannot move from one field to the next). Sets are
//! canonicalised before encoding: capabilities sorted and deduplicated, mounts sorted by
//! guest path (a reordered `mounts` list is not a different task).
//!
//! # Limits in the key ([`limit_parts`])
//!
//! Only limits that can change what a *successful* execution returns or whether the same
//! execution succeeds: `memory` (a guest sees allocation failures and may adapt), `fuel`
//! (decides whether the run finishes), `max_output` (caps the output, and a command's
//! stdout-as-output) and `max_out` (caps `/out`; the guest sees write errors). Not in the
//! key: `max_log` (it truncates the captured log, which the guest cannot observe and which
//! is not part of a reused result) and `timeout` (wall time, not part of a deterministic
//! result: giving a slow task more time must not discard its results).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::hash::Hash;

/// Version of the key's parts and encoding. Bump it when either changes: every stored
/// result then misses, explained as "key format version changed".
pub const KEY_FORMAT_VERSION: u32 = 2;

const KEY_DOMAIN: &[u8] = b"sluice-cache-key\0";
const UPSTREAM_DOMAIN: &[u8] = b"sluice-upstream\0";
const LINEAGE_DOMAIN: &[u8] = b"sluice-lineage\0";

/// Longest value a [`Difference`] text repeats before cutting it with `…`.
const SHOWN_VALUE_CHARS: usize = 60;

/// A mount as the key sees it: where the guest sees it, how, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MountPart {
    /// The guest path (`/landing`).
    pub guest: String,
    /// `ro` or `rw`.
    pub mode: String,
    /// The Merkle root of the mounted tree (hex); never the host path.
    pub content: String,
}

/// Everything that can change a task's result. See the module docs for the encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyParts {
    /// [`KEY_FORMAT_VERSION`] when the parts were made.
    pub format: u32,
    /// blake3 of the component's bytes, hex.
    pub component: String,
    /// The task's params after templating.
    pub params: BTreeMap<String, String>,
    /// The limits that change behaviour (see [`limit_parts`]), as text.
    pub limits: BTreeMap<String, String>,
    pub mounts: Vec<MountPart>,
    /// Everything else that flows in: `upstream.<task>` → the [`lineage`] (hex) of each task
    /// the task depends on directly (which covers every task whose output, values or `/out`
    /// it can read, however far upstream); `context.job`,
    /// `context.task`, `context.target` → the context fields a guest sees that are stable
    /// across runs (the run id and attempt number are not keyed: a task's result must not
    /// depend on them); `context.workspace` → the run's workspace, so one tenant is never
    /// handed another tenant's result.
    pub inputs: BTreeMap<String, String>,
    /// What was granted ([`capabilities_of`]); a set, encoded sorted.
    pub capabilities: Vec<String>,
    /// Granted secret name → version; never values.
    pub secrets: BTreeMap<String, u64>,
    /// A command task's declared env, rendered, with each secret reference replaced by the
    /// secret's name and version — never its value.
    pub env: BTreeMap<String, String>,
    /// A command task's args after templating.
    pub args: Vec<String>,
    /// blake3 (hex) of a command task's stdin bytes, if it has stdin.
    pub stdin: Option<String>,
    /// The sandbox ABI version ([`crate::sandbox::SANDBOX_ABI_VERSION`]).
    pub abi: u32,
}

impl KeyParts {
    /// Parts of the current format for `component` (blake3 hex) run by sandbox ABI
    /// version `abi`, nothing else.
    pub fn new(component: impl Into<String>, abi: u32) -> KeyParts {
        KeyParts { format: KEY_FORMAT_VERSION, component: component.into(), abi, ..KeyParts::default() }
    }

    /// The cache key: blake3 of [`KeyParts::canonical`].
    pub fn key(&self) -> Hash {
        Hash::of(&self.canonical())
    }

    /// The canonical encoding the key hashes (see the module docs).
    pub fn canonical(&self) -> Vec<u8> {
        let mut e = Encoder(KEY_DOMAIN.to_vec());
        e.field(1).u32(self.format);
        e.field(2).str(&self.component);
        e.field(3).map(&self.params);
        e.field(4).map(&self.limits);
        let mut mounts: Vec<&MountPart> = self.mounts.iter().collect();
        mounts.sort();
        e.field(5).u64(mounts.len() as u64);
        for mount in mounts {
            e.str(&mount.guest).str(&mount.mode).str(&mount.content);
        }
        e.field(6).map(&self.inputs);
        let capabilities: BTreeSet<&String> = self.capabilities.iter().collect();
        e.field(7).u64(capabilities.len() as u64);
        for capability in capabilities {
            e.str(capability);
        }
        e.field(8).u64(self.secrets.len() as u64);
        for (name, version) in &self.secrets {
            e.str(name).u64(*version);
        }
        e.field(9).map(&self.env);
        e.field(10).u64(self.args.len() as u64);
        for arg in &self.args {
            e.str(arg);
        }
        e.field(11);
        match &self.stdin {
            None => e.byte(0),
            Some(stdin) => e.byte(1).str(stdin),
        };
        e.field(12).u32(self.abi);
        e.0
    }
}

/// Builds a canonical encoding.
struct Encoder(Vec<u8>);

impl Encoder {
    fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }
    fn field(&mut self, number: u8) -> &mut Self {
        self.byte(number)
    }
    fn u32(&mut self, n: u32) -> &mut Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    fn u64(&mut self, n: u64) -> &mut Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn map(&mut self, map: &BTreeMap<String, String>) -> &mut Self {
        self.u64(map.len() as u64);
        for (k, v) in map {
            self.str(k).str(v);
        }
        self
    }
}

/// The `inputs` name of upstream task `task`.
pub fn upstream_input(task: &str) -> String {
    format!("upstream.{task}")
}

/// What a downstream task's key records of an upstream result: blake3 over its JSON output,
/// its values (sorted by key) and the root of its `/out` tree, canonically encoded.
pub fn upstream_digest(output: Option<&str>, values: &[(String, String)], out_tree: Option<&Hash>) -> Hash {
    let mut e = Encoder(UPSTREAM_DOMAIN.to_vec());
    match output {
        None => e.byte(0),
        Some(output) => e.byte(1).str(output),
    };
    let values: BTreeMap<String, String> = values.iter().cloned().collect();
    e.map(&values);
    match out_tree {
        None => e.byte(0),
        Some(root) => e.byte(1).str(&root.to_string()),
    };
    Hash::of(&e.0)
}

/// What a downstream key records of an upstream task: the [`upstream_digest`] of its
/// result and, for each task it depends on directly (by key), that task's lineage (`None`:
/// it did not succeed). A Merkle hash over the upstream graph: it changes when anything the
/// task could read changes, and a key costs its direct upstreams however deep the graph is
/// (a table of every transitive upstream made a chain's keys quadratic in its length).
pub fn lineage(digest: Option<&Hash>, upstreams: &BTreeMap<String, Option<Hash>>) -> Hash {
    let mut e = Encoder(LINEAGE_DOMAIN.to_vec());
    match digest {
        None => e.byte(0),
        Some(d) => e.byte(1).str(&d.to_string()),
    };
    e.u64(upstreams.len() as u64);
    for (key, up) in upstreams {
        e.str(key);
        match up {
            None => e.byte(0),
            Some(l) => e.byte(1).str(&l.to_string()),
        };
    }
    Hash::of(&e.0)
}

/// The key's `limits`: the effective values (after defaults) of the limits that change
/// behaviour (see the module docs). `fuel: None` is unmetered, `max_out: None` unlimited.
pub fn limit_parts(memory: u64, fuel: Option<u64>, max_output: u64, max_out: Option<u64>) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("memory".to_string(), crate::util::exact_size(memory)),
        ("fuel".to_string(), fuel.map_or_else(|| "unmetered".to_string(), |f| f.to_string())),
        ("max_output".to_string(), crate::util::exact_size(max_output)),
        ("max_out".to_string(), max_out.map_or_else(|| "unlimited".to_string(), crate::util::exact_size)),
    ])
}

/// The key's `mounts` entry for `mount` whose tree has root `content`.
pub fn mount_part(mount: &crate::spec::Mount, content: &Hash) -> MountPart {
    let mode = match mount.mode {
        crate::spec::MountMode::Ro => "ro",
        crate::spec::MountMode::Rw => "rw",
    };
    MountPart { guest: mount.guest.clone(), mode: mode.to_string(), content: content.to_string() }
}

/// The capabilities an execution spec grants, as key parts: `world:task` or
/// `world:command` (the same component behaves differently in the two worlds), `secrets`,
/// `mounts:ro`, `mounts:rw`, `network`, and for command tasks `stdin` and `stdout:output`
/// (stdout becomes the result). Sorted. The scheduler may add what it grants beyond the
/// spec (`in` for upstream files, say).
pub fn capabilities_of(exec: &crate::spec::ExecSpec, command: Option<&crate::spec::CommandSpec>) -> Vec<String> {
    use crate::spec::MountMode;
    let mut granted = BTreeSet::new();
    let mut named = Vec::new();
    match command {
        Some(command) => {
            granted.insert("world:command");
            if command.stdin.is_some() {
                granted.insert("stdin");
            }
            if command.stdout_is_output {
                granted.insert("stdout:output");
            }
            if let Some(name) = &command.stdout_file {
                named.push(format!("stdout:file:{name}"));
            }
            if let Some(crate::spec::Stdin::Upstream { task, file }) = &command.stdin {
                named.push(format!("stdin_from:{task}:{}", file.as_deref().unwrap_or("")));
            }
            if !command.success_exit_codes.is_empty() {
                let codes: Vec<String> = command.success_exit_codes.iter().map(i32::to_string).collect();
                named.push(format!("success_exit_codes:{}", codes.join(",")));
            }
        }
        None => {
            granted.insert("world:task");
        }
    }
    if !exec.secrets.is_empty() {
        granted.insert("secrets");
    }
    for mount in &exec.mounts {
        granted.insert(if mount.mode == MountMode::Rw { "mounts:rw" } else { "mounts:ro" });
    }
    if !exec.allow_hosts.is_empty() {
        granted.insert("network");
    }
    let mut all: Vec<String> = granted.into_iter().map(str::to_string).chain(named).collect();
    all.sort();
    all
}

/// Which part of a key differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "part", content = "name", rename_all = "snake_case")]
pub enum Part {
    Format,
    Component,
    Param(String),
    Limit(String),
    Mount(String),
    Input(String),
    Capability(String),
    Secret(String),
    Env(String),
    Args,
    Stdin,
    Abi,
}

/// One way two key parts differ, with a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub part: Part,
    /// `param day: 2026-11-25 → 2026-11-26`, `component changed: 3f2a91c0… → 9c1b22aa…`, …
    pub text: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How `new` differs from `old`, in the order of the key's fields; empty when the parts
/// are equal as the key sees them (so their keys are equal).
pub fn explain(old: &KeyParts, new: &KeyParts) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut push = |part: Part, text: String| out.push(Difference { part, text });
    if old.format != new.format {
        push(Part::Format, format!("key format version changed ({} → {})", old.format, new.format));
    }
    if old.component != new.component {
        push(Part::Component, format!("component changed: {} → {}", short(&old.component), short(&new.component)));
    }
    map_diff(&old.params, &new.params, |name, change| push(Part::Param(name.into()), change.text("param", name)));
    map_diff(&old.limits, &new.limits, |name, change| push(Part::Limit(name.into()), change.text("limit", name)));
    mount_diff(&old.mounts, &new.mounts, &mut push);
    map_diff(&old.inputs, &new.inputs, |name, change| {
        let text = match change {
            Change::Changed(a, b) if is_hash(a) && is_hash(b) => format!("input {name} changed"),
            Change::Added(v) | Change::Removed(v) if is_hash(v) => {
                let verb = if matches!(change, Change::Added(_)) { "added" } else { "removed" };
                format!("input {name} {verb}")
            }
            _ => change.text("input", name),
        };
        push(Part::Input(name.into()), text)
    });
    let (old_caps, new_caps): (BTreeSet<&String>, BTreeSet<&String>) =
        (old.capabilities.iter().collect(), new.capabilities.iter().collect());
    for cap in new_caps.difference(&old_caps) {
        push(Part::Capability((*cap).clone()), format!("capability {cap} granted"));
    }
    for cap in old_caps.difference(&new_caps) {
        push(Part::Capability((*cap).clone()), format!("capability {cap} no longer granted"));
    }
    let as_text = |m: &BTreeMap<String, u64>| -> BTreeMap<String, String> {
        m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    };
    map_diff(&as_text(&old.secrets), &as_text(&new.secrets), |name, change| {
        let text = match change {
            Change::Changed(a, b) => format!("secret {name}: version {a} → {b}"),
            Change::Added(v) => format!("secret {name} granted (version {v})"),
            Change::Removed(_) => format!("secret {name} no longer granted"),
        };
        push(Part::Secret(name.into()), text)
    });
    map_diff(&old.env, &new.env, |name, change| push(Part::Env(name.into()), change.text("env", name)));
    if old.args != new.args {
        push(Part::Args, format!("args changed: {} → {}", shown(&old.args.join(" ")), shown(&new.args.join(" "))));
    }
    match (&old.stdin, &new.stdin) {
        (a, b) if a == b => {}
        (None, Some(_)) => push(Part::Stdin, "stdin added".into()),
        (Some(_), None) => push(Part::Stdin, "stdin removed".into()),
        _ => push(Part::Stdin, "stdin changed".into()),
    }
    if old.abi != new.abi {
        push(Part::Abi, format!("sandbox ABI changed ({} → {})", old.abi, new.abi));
    }
    out
}

/// The candidate with the fewest differences from `new` (ties: the latest given).
pub fn nearest<'a>(new: &KeyParts, candidates: impl Iterator<Item = &'a KeyParts>) -> Option<&'a KeyParts> {
    let mut best: Option<(usize, &'a KeyParts)> = None;
    for candidate in candidates {
        let distance = explain(candidate, new).len();
        if best.is_none_or(|(d, _)| distance <= d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, parts)| parts)
}

enum Change<'a> {
    Changed(&'a str, &'a str),
    Added(&'a str),
    Removed(&'a str),
}

impl Change<'_> {
    /// `{what} {name}: a → b`, `{what} {name} added (= v)`, `{what} {name} removed (was v)`.
    fn text(&self, what: &str, name: &str) -> String {
        match self {
            Change::Changed(a, b) => format!("{what} {name}: {} → {}", shown(a), shown(b)),
            Change::Added(v) => format!("{what} {name} added (= {})", shown(v)),
            Change::Removed(v) => format!("{what} {name} removed (was {})", shown(v)),
        }
    }
}

fn map_diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>, mut report: impl FnMut(&str, Change<'_>)) {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        match (old.get(name), new.get(name)) {
            (Some(a), Some(b)) if a != b => report(name, Change::Changed(a, b)),
            (None, Some(b)) => report(name, Change::Added(b)),
            (Some(a), None) => report(name, Change::Removed(a)),
            _ => {}
        }
    }
}

fn mount_diff(old: &[MountPart], new: &[MountPart], push: &mut impl FnMut(Part, String)) {
    let by_guest = |mounts: &[MountPart]| -> BTreeMap<String, MountPart> {
        mounts.iter().map(|m| (m.guest.clone(), m.clone())).collect()
    };
    let (old, new) = (by_guest(old), by_guest(new));
    let guests: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for guest in guests {
        let part = || Part::Mount(guest.clone());
        match (old.get(guest), new.get(guest)) {
            (Some(a), Some(b)) => {
                if a.mode != b.mode {
                    push(part(), format!("mount {guest} mode: {} → {}", a.mode, b.mode));
                }
                if a.content != b.content {
                    push(part(), format!("mount {guest} content changed"));
                }
            }
            (None, Some(b)) => push(part(), format!("mount {guest} added ({})", b.mode)),
            (Some(_), None) => push(part(), format!("mount {guest} removed")),
            (None, None) => {}
        }
    }
}

fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A hash shortened for messages: `3f2a91c0…`.
fn short(hash: &str) -> String {
    if hash.chars().count() <= 8 {
        return hash.to_string();
    }
    let mut text: String = hash.chars().take(8).collect();
    text.push('…');
    text
}

/// A value cut to [`SHOWN_VALUE_CHARS`] for messages.
fn shown(value: &str) -> String {
    if value.chars().count() <= SHOWN_VALUE_CHARS {
        return value.to_string();
    }
    let mut text: String = value.chars().take(SHOWN_VALUE_CHARS).collect();
    text.push('…');
    text
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
