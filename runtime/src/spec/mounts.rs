//! Host directories and object-storage prefixes a task sees (`mounts`), `[bundle]
//! data_roots`, and the rule every host path of the bundle file follows: it must exist and,
//! with symlinks resolved, lie under the bundle root or a data root.
//!
//! These are the module's only filesystem reads besides the bundle file: `stat` and
//! `canonicalize` of the paths named, never their contents. An object-storage mount
//! (`url = "s3://…"`) is only checked for form here; it is staged when an attempt starts.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::SpecError;
use super::names;
use super::read::{Node, Table};

pub(crate) const MOUNT_KEYS: &[&str] = &["host", "url", "location", "guest", "mode", "credentials"];
/// Guest paths the runtime provides itself: per-attempt scratch, upstream inputs, outputs.
pub const RESERVED_GUEST_PATHS: [&str; 3] = ["/tmp", "/in", "/out"];

/// A host directory offered to a task's guest as a WASI preopen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute and canonical (symlinks resolved); an existing directory under the bundle
    /// root or a data root. Empty for an object-storage mount until it is staged.
    pub host: PathBuf,
    /// Absolute and normalised (`/landing`, `/data/raw`); never `/` nor a reserved path.
    pub guest: String,
    pub mode: MountMode,
    /// The host path lies outside the bundle root and every data root: only runs of a
    /// target with `allow_absolute_paths = true` may use it (checked when a run starts).
    #[serde(default)]
    pub outside_roots: bool,
    /// An object-storage prefix the host stages into a local directory (`url = "s3://…"`)
    /// instead of a host directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectSource>,
}

/// Where an object-storage mount's files come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSource {
    /// `s3://bucket/prefix/`, `az://…`, `abfss://…` or `gs://…` (see `objstore::Location`).
    pub url: String,
    /// The secret (`scope/key`) whose JSON value opens the store; the host reads it for
    /// the run's principal (audited), the guest never sees it.
    pub credentials: String,
}

/// Whether the guest may change what it sees under a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountMode {
    /// Read-only (the default).
    Ro,
    /// Read-write: the task has side effects on the host.
    Rw,
}

/// What a host path must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// A directory.
    Dir,
    /// A directory to offer as a WASI preopen.
    Preopen,
    /// A regular file.
    File,
}

/// The directories host paths resolve against and must stay under.
pub(crate) struct Roots {
    /// The bundle root as given (absolute); relative paths are joined to it.
    root: PathBuf,
    /// The bundle root canonicalised, or why that failed (checked only when needed).
    canonical: Result<PathBuf, String>,
    /// `[bundle] data_roots`, canonical.
    pub data: Vec<PathBuf>,
    /// Some target allows absolute host paths: mounts outside the roots are accepted
    /// here and checked against the run's target when it starts.
    pub anywhere: bool,
    /// The target the bundle is read for (its variables filled the paths), for errors.
    pub target: Option<String>,
}

impl Roots {
    /// Roots with no data roots yet.
    pub fn new(root: &Path) -> Self {
        Roots {
            root: root.to_path_buf(),
            canonical: std::fs::canonicalize(root).map_err(|why| why.to_string()),
            data: Vec::new(),
            anywhere: false,
            target: None,
        }
    }

    /// ` (target `T`)`, or nothing when the bundle is read for no target.
    pub(crate) fn in_target(&self) -> String {
        self.target.as_ref().map(|t| format!(" (target `{t}`)")).unwrap_or_default()
    }

    /// Reads `[bundle] data_roots`: each an existing directory, canonicalised.
    pub fn read_data_roots(&mut self, node: &Node<'_>) -> Result<(), SpecError> {
        for (item, text) in node.strings()? {
            let path = self.existing(&item, text, "data root", Want::Dir)?;
            if path.parent().is_none() {
                return Err(item.error(format!(
                    "data root `{text}` is `/`, which would allow every path; name a narrower directory"
                )));
            }
            if self.data.contains(&path) {
                return Err(item.error(format!("data root `{text}` (`{}`) is listed twice", path.display())));
            }
            self.data.push(path);
        }
        Ok(())
    }

    /// A host path (`what` names it in errors): resolved against the bundle root,
    /// canonicalised, of the wanted type, under the bundle root or a data root.
    pub fn host_path(&self, node: &Node<'_>, text: &str, what: &str, want: Want) -> Result<PathBuf, SpecError> {
        let path = self.existing(node, text, what, want)?;
        if self.contains(&path) || (self.anywhere && want == Want::Preopen) {
            return Ok(path);
        }
        let joined = self.root.join(text);
        let how = if lexical(&joined).starts_with(lexical(&self.root)) {
            "leads through a symlink to"
        } else {
            "resolves to"
        };
        let root = match &self.canonical {
            Ok(root) => format!("the bundle root `{}`", root.display()),
            Err(why) => format!("the bundle root `{}` (unresolvable: {why})", self.root.display()),
        };
        let data = match self.data.as_slice() {
            [] => " (no data roots are declared)".to_string(),
            [one] => format!(" and the data root `{}`", one.display()),
            data => format!(" and the data roots {}", names::list(data.iter().map(|d| d.display().to_string()))),
        };
        Err(node.error(format!(
            "{what} `{text}` {how} `{path}`, outside {root}{data}; host paths must stay inside \
             the bundle or a data root: to allow this one, list `{path}` or a directory above it \
             in `[bundle] data_roots = [\"…\"]`",
            path = path.display()
        )))
    }

    /// Whether a canonical path lies under the bundle root or a data root.
    pub(crate) fn contains(&self, path: &Path) -> bool {
        self.canonical.as_ref().is_ok_and(|root| path.starts_with(root))
            || self.data.iter().any(|data| path.starts_with(data))
    }

    /// `text` joined to the root, canonicalised, and of the wanted type.
    fn existing(&self, node: &Node<'_>, text: &str, what: &str, want: Want) -> Result<PathBuf, SpecError> {
        if text.trim().is_empty() {
            return Err(node.error(format!("{what} path is empty")));
        }
        if text.contains("{{") {
            return Err(node.error(format!(
                "{what} `{text}` cannot hold `{{{{ … }}}}` references; host paths are checked when \
                 the bundle is loaded"
            )));
        }
        let joined = self.root.join(text);
        let path = std::fs::canonicalize(&joined).map_err(|why| {
            node.error(match why.kind() {
                ErrorKind::NotFound => format!("{what} `{text}` does not exist (looked for `{}`)", joined.display()),
                _ => format!("{what} `{text}` cannot be resolved: {why}"),
            })
        })?;
        let is_dir = path.is_dir();
        match want {
            Want::Dir if !is_dir => Err(node.error(format!("{what} `{text}` is not a directory"))),
            Want::Preopen if !is_dir => Err(node.error(format!(
                "{what} `{text}` is not a directory; only directories can be mounted (WASI \
                 preopens are directories), so mount the directory that holds it"
            ))),
            Want::File if !path.is_file() => Err(node.error(format!(
                "{what} `{text}` is {}, not a file",
                if is_dir { "a directory" } else { "not a regular file" }
            ))),
            _ => Ok(path),
        }
    }
}

/// A `mounts` array: host paths checked against `roots`, guest paths well formed,
/// reserved paths refused, no guest path equal to or inside another.
pub(crate) fn mounts(node: &Node<'_>, roots: &Roots) -> Result<Vec<Mount>, SpecError> {
    let mut mounts: Vec<Mount> = Vec::new();
    for item in node.array()? {
        let table = item.table()?;
        table.deny_unknown(MOUNT_KEYS)?;
        let (host, object) = source(&item, &table, roots)?;
        let guest_node = table.require("guest")?;
        let guest = guest_node.str()?;
        check_guest(guest).map_err(|why| guest_node.error(why))?;
        if let Some((index, other)) = mounts
            .iter()
            .enumerate()
            .find(|(_, m)| m.guest == guest || nested(&m.guest, guest) || nested(guest, &m.guest))
        {
            let relation = if other.guest == guest {
                "is already mounted"
            } else if nested(&other.guest, guest) {
                "lies inside"
            } else {
                "contains"
            };
            return Err(guest_node.error(format!(
                "guest path `{guest}` {relation} `{}` (mounts[{index}]); a task's mounts may not \
                 overlap: give each its own directory",
                other.guest
            )));
        }
        let mode = match table.get("mode") {
            Some(node) => mode(node)?,
            None => MountMode::Ro,
        };
        let outside_roots = object.is_none() && !roots.contains(&host);
        mounts.push(Mount { host, guest: guest.to_string(), mode, outside_roots, object });
    }
    Ok(mounts)
}

/// Where a mount's files come from: `host` (a directory), `url` (an object-storage
/// prefix) or `location` (either, told apart by its value after `${var.…}` substitution,
/// so one mount can read a directory in one target and a bucket in another). Exactly one
/// of the three; `credentials` only (and always) with an object-storage prefix.
fn source(item: &Node<'_>, table: &Table<'_>, roots: &Roots) -> Result<(PathBuf, Option<ObjectSource>), SpecError> {
    let given: Vec<(&str, &Node<'_>)> =
        ["host", "url", "location"].into_iter().filter_map(|k| table.get(k).map(|n| (k, n))).collect();
    let credentials = table.get("credentials");
    match given.as_slice() {
        [] => Err(item.error(
            "a mount needs `host = \"DIR\"` (a directory), `url = \"s3://bucket/prefix/\"` (an object-storage \
             prefix) or `location = \"DIR or URL\"` (either, e.g. `\"${var.landing}\"` set per target)",
        )),
        [(first, _), (second, node), ..] => Err(node.error(format!(
            "a mount takes one of `host` (a directory), `url` (an object-storage prefix) or `location` \
             (either), not both `{first}` and `{second}`"
        ))),
        [("url", node)] => {
            let url = node.str()?;
            if !crate::objstore::is_object_url(url) {
                return Err(node.error(format!(
                    "mount url `{url}`{} is not an object-storage URL (s3://, az://, abfss://, gs://); mount a \
                     local directory with `host = \"DIR\"`",
                    roots.in_target()
                )));
            }
            object_source(item, node, url, credentials, roots)
        }
        [(key, node)] => {
            let text = node.str()?;
            if *key == "location" && crate::objstore::is_object_url(text) {
                return object_source(item, node, text, credentials, roots);
            }
            if *key == "location" && text.contains("://") {
                return Err(node.error(format!(
                    "mount location `{text}`{} is neither a directory nor an object-storage URL (s3://, az://, \
                     abfss://, gs://)",
                    roots.in_target()
                )));
            }
            if let Some(node) = credentials.filter(|c| !matches!(c.str(), Ok(""))) {
                let what = match *key {
                    "host" => "not to `host`".to_string(),
                    _ => format!("but `location` is the directory `{text}`{}", roots.in_target()),
                };
                return Err(node.error(format!(
                    "`credentials` apply to object-storage mounts (`url`/`location = \"s3://…\"`), {what}; for a \
                     directory leave them out (or `\"\"`, e.g. a variable this target leaves empty)"
                )));
            }
            let what = match *key {
                "location" => format!("mount location{}", roots.in_target()),
                _ => "mount host".to_string(),
            };
            Ok((roots.host_path(node, text, &what, Want::Preopen)?, None))
        }
    }
}

/// An object-storage mount of `url` (from `node`): the URL well formed, `credentials`
/// naming a secret (`""` counts as none: an error).
fn object_source(
    item: &Node<'_>,
    node: &Node<'_>,
    url: &str,
    credentials: Option<&Node<'_>>,
    roots: &Roots,
) -> Result<(PathBuf, Option<ObjectSource>), SpecError> {
    crate::objstore::Location::parse(url).map_err(|e| node.error(format!("mount url {e}{}", roots.in_target())))?;
    let Some(creds) = credentials.filter(|c| !matches!(c.str(), Ok(""))) else {
        return Err(item.error(format!(
            "the mount of \"{url}\"{} needs `credentials = \"scope/key\"`: a secret whose value is the \
             store's JSON credentials (the host reads it; the task never does)",
            roots.in_target()
        )));
    };
    let name = creds.str()?;
    names::check_secret_name(name)
        .map_err(|why| creds.error(format!("credentials names a secret, `scope/key`: {why}")))?;
    Ok((PathBuf::new(), Some(ObjectSource { url: url.to_string(), credentials: name.to_string() })))
}

fn mode(node: &Node<'_>) -> Result<MountMode, SpecError> {
    match node.str()? {
        "ro" => Ok(MountMode::Ro),
        "rw" => Ok(MountMode::Rw),
        other => Err(node.error(format!(
            "unknown mode `{other}`{}; use `ro` (read-only, the default) or `rw` (read-write)",
            names::suggestion(other, ["ro", "rw"])
        ))),
    }
}

/// Whether guest path `inner` lies strictly inside `outer`.
pub(crate) fn nested(outer: &str, inner: &str) -> bool {
    inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
}

/// A guest path: absolute, normalised, not `/`, not reserved by the runtime.
pub(crate) fn check_guest(guest: &str) -> Result<(), String> {
    if !guest.starts_with('/') {
        let parts: Vec<&str> = guest.split('/').filter(|part| !part.is_empty() && *part != ".").collect();
        return Err(format!("guest path `{guest}` must be absolute, e.g. `/{}`", parts.join("/")));
    }
    if guest == "/" {
        return Err(
            "guest path `/` would hide the whole guest filesystem; mount at a directory such as `/data`".to_string()
        );
    }
    if guest.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!("guest path `{}` holds a control character or `\\`", guest.escape_debug()));
    }
    if guest.contains("//") || guest.ends_with('/') {
        let tidy: Vec<&str> = guest.split('/').filter(|part| !part.is_empty()).collect();
        return Err(format!(
            "guest path `{guest}` is not normalised (no `//`, no trailing `/`); write `/{}`",
            tidy.join("/")
        ));
    }
    if guest.split('/').any(|part| part == "." || part == "..") {
        return Err(format!("guest path `{guest}` has a `.` or `..` segment; write the path it means"));
    }
    if let Some(reserved) = RESERVED_GUEST_PATHS.iter().find(|reserved| guest == **reserved || nested(reserved, guest))
    {
        let role = match *reserved {
            "/tmp" => "per-attempt scratch, wiped after each attempt",
            "/in" => "upstream tasks' outputs, read-only",
            _ => "the task's output files",
        };
        return Err(format!(
            "guest path `{guest}` is reserved: the runtime provides `{reserved}` ({role}); \
             mount at another path such as `/data`"
        ));
    }
    Ok(())
}

/// `path` with `.` dropped and `..` applied, without touching the filesystem.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A mount given on the command line (`sluice task run --mount HOST:GUEST[:ro|rw]`): the
/// host directory must exist (made absolute and canonical), the guest path follows the
/// bundle's rules, the mode defaults to `ro`. The person typing it grants it, so no bundle
/// root applies.
pub fn parse_mount_arg(arg: &str) -> Result<Mount, String> {
    let shape = || format!("--mount `{arg}`: write HOST:GUEST or HOST:GUEST:ro|rw, e.g. `./data:/data:ro`");
    let (host, rest) = arg.split_once(':').ok_or_else(shape)?;
    let (guest, mode) = match rest.rsplit_once(':') {
        Some((guest, "ro")) => (guest, MountMode::Ro),
        Some((guest, "rw")) => (guest, MountMode::Rw),
        Some((_, other)) => return Err(format!("--mount `{arg}`: unknown mode `{other}`; use `ro` or `rw`")),
        None => (rest, MountMode::Ro),
    };
    if host.is_empty() || guest.is_empty() {
        return Err(shape());
    }
    let canonical = std::fs::canonicalize(host).map_err(|e| format!("--mount `{arg}`: host path `{host}`: {e}"))?;
    if !canonical.is_dir() {
        return Err(format!("--mount `{arg}`: host path `{host}` is not a directory"));
    }
    check_guest(guest).map_err(|why| format!("--mount `{arg}`: {why}"))?;
    Ok(Mount { host: canonical, guest: guest.to_string(), mode, outside_roots: false, object: None })
}
