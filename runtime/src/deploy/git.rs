//! Git metadata of the work tree a bundle is deployed from, read with `gix` (no `git`
//! binary needed): the commit `HEAD` names, its branch, the `origin` remote's URL, and
//! whether tracked files changed since that commit (`git describe --dirty`'s notion).
//!
//! It must never write to the repository, and a bundle outside any repository is not an
//! error: it has no Git metadata.

use std::path::Path;

use super::DeployError;
use super::model::GitInfo;

/// The metadata of the repository holding `dir`; `None` when `dir` is in none.
pub fn read(dir: &Path) -> Result<Option<GitInfo>, DeployError> {
    let Ok(repo) = gix::discover(dir) else { return Ok(None) };
    let failed = |what: &str, e: &dyn std::fmt::Display| DeployError::Git(format!("{what}: {e}"));
    let commit = repo.head_id().ok().map(|id| id.to_string());
    let branch = repo.head_name().map_err(|e| failed("reading HEAD", &e))?.map(|name| name.shorten().to_string());
    let remote = repo
        .find_default_remote(gix::remote::Direction::Fetch)
        .and_then(Result::ok)
        .and_then(|r| r.url(gix::remote::Direction::Fetch).map(|u| u.to_bstring().to_string()));
    // a repository without a commit is dirty by definition: nothing is committed
    let dirty = match commit {
        Some(_) => repo.is_dirty().map_err(|e| failed("comparing the work tree with HEAD", &e))?,
        None => true,
    };
    Ok(Some(GitInfo { commit, branch, remote, dirty }))
}
