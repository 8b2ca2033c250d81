//! Git metadata of the work tree a bundle is deployed from: the commit `HEAD` names, its
//! branch, the `origin` remote's URL, and whether tracked files changed since that commit
//! (`git describe --dirty`'s notion). Read by asking the `git` program (plumbing commands
//! with stable output) rather than linking `gix`: gix turns on features of crates wasmtime
//! shares (hashbrown, smallvec), which recompiles wasmtime's whole tree for four queries.
//!
//! It must never write to the repository, and a bundle outside any repository (or on a
//! machine without `git`) is not an error: it has no Git metadata.

use std::path::Path;
use std::process::Command;

use super::DeployError;
use super::model::GitInfo;

/// The metadata of the repository holding `dir`; `None` when `dir` is in none.
pub fn read(dir: &Path) -> Result<Option<GitInfo>, DeployError> {
    // not in a repository, or no git: no metadata
    let Ok(Some(_top)) = git(dir, &["rev-parse", "--show-toplevel"]) else { return Ok(None) };
    let commit = git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"])?;
    // `symbolic-ref` fails on a detached HEAD: no branch
    let branch = git(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"])?;
    let remote = git(dir, &["remote", "get-url", "origin"])?;
    // a repository without a commit is dirty by definition: nothing is committed
    let dirty = match commit {
        Some(_) => {
            let status = git(dir, &["status", "--porcelain", "--untracked-files=no", "--ignore-submodules=dirty"])?;
            status.is_some_and(|s| !s.is_empty())
        }
        None => true,
    };
    Ok(Some(GitInfo { commit, branch, remote, dirty }))
}

/// `git -C dir ARGS`'s trimmed stdout; `None` when it exits non-zero (the thing asked for
/// does not exist); an error only when `git` cannot be started.
fn git(dir: &Path, args: &[&str]) -> Result<Option<String>, DeployError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // the caller's environment must not point git elsewhere
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .map_err(|e| DeployError::Git(format!("running `git {}`: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap().status.success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn metadata_follows_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none(), "outside any repository");
        run(dir.path(), &["init", "-q", "-b", "release"]);
        let fresh = read(dir.path()).unwrap().unwrap();
        assert!(fresh.dirty && fresh.commit.is_none(), "{fresh:?}");
        std::fs::write(dir.path().join("sluice.toml"), "a").unwrap();
        run(dir.path(), &["add", "."]);
        run(dir.path(), &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "one"]);
        run(dir.path(), &["remote", "add", "origin", "https://example.com/r.git"]);
        let clean = read(dir.path()).unwrap().unwrap();
        assert_eq!(clean.branch.as_deref(), Some("release"));
        assert_eq!(clean.remote.as_deref(), Some("https://example.com/r.git"));
        assert_eq!(clean.commit.as_ref().map(String::len), Some(40));
        assert!(!clean.dirty);
        std::fs::write(dir.path().join("untracked"), "x").unwrap();
        assert!(!read(dir.path()).unwrap().unwrap().dirty, "untracked files do not make a tree dirty");
        std::fs::write(dir.path().join("sluice.toml"), "b").unwrap();
        assert!(read(dir.path()).unwrap().unwrap().dirty, "a changed tracked file does");
    }
}
