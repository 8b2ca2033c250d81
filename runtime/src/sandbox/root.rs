//! The guest's `/`: a read-only directory holding nothing but empty directories named
//! after the attempt's mount points (`/data`, `/in/extract`, `/out`, `/tmp`, …), offered as
//! the preopen `/` beside the real ones.
//!
//! Owns those synthetic roots. Without a `/` preopen, `stat("/")` fails, so the usual
//! idioms (`os.makedirs("/out", exist_ok=True)`, `Path("/out").mkdir(parents=True,
//! exist_ok=True)`, listing `/`) fail although the directory exists. The root grants
//! nothing: it is read-only, holds no file, and every path under a mount point resolves
//! through that mount's own (longer) preopen. One root is made per distinct layout and
//! reused by every attempt with that layout, under the scratch pool's directory (removed
//! with it). It never holds anything of the host's but those empty directories.

use std::path::{Path, PathBuf};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Where the synthetic roots live under the scratch pool's directory (its scratch dirs
/// are named `<pid>-<n>`, so this name cannot clash).
const ROOTS_DIR: &str = "roots";

/// Offer `/` read-only: a directory holding an empty directory for each of `guests`
/// (absolute guest paths of the attempt's preopens).
pub(crate) fn grant_root(wasi: &mut WasiCtxBuilder, base: &Path, guests: &[String]) -> Result<(), String> {
    let root = synthetic_root(base, guests)?;
    wasi.preopened_dir(&root, "/", FsPerms::ReadOnly).map_err(|e| format!("cannot offer `/`: {e:#}"))?;
    Ok(())
}

/// The root directory for this layout, made once.
fn synthetic_root(base: &Path, guests: &[String]) -> Result<PathBuf, String> {
    let mut layout: Vec<&str> = guests.iter().map(|g| g.trim_start_matches('/')).filter(|g| !g.is_empty()).collect();
    layout.sort_unstable();
    layout.dedup();
    let digest = blake3::hash(layout.join("\n").as_bytes()).to_hex();
    let dir = base.join(ROOTS_DIR).join(&digest[..16]);
    if dir.is_dir() {
        return Ok(dir);
    }
    let failed = |e: std::io::Error| format!("making the guest's `/`: {e}");
    // made aside and renamed into place: attempts starting together may race
    let tmp = base.join(ROOTS_DIR).join(format!(".{}-{}", &digest[..16], std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for guest in &layout {
        std::fs::create_dir_all(tmp.join(guest)).map_err(failed)?;
    }
    std::fs::create_dir_all(&tmp).map_err(failed)?;
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.is_dir() {
            return Err(failed(e));
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_lists_the_mount_points_and_is_reused_per_layout() {
        let base = tempfile::tempdir().unwrap();
        let guests = ["/data/raw".to_string(), "/out".into(), "/in/extract".into(), "/tmp".into()];
        let root = synthetic_root(base.path(), &guests).unwrap();
        let mut top: Vec<String> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        top.sort();
        assert_eq!(top, ["data", "in", "out", "tmp"]);
        assert!(root.join("data/raw").is_dir() && root.join("in/extract").is_dir());
        let mut shuffled = guests.to_vec();
        shuffled.reverse();
        assert_eq!(synthetic_root(base.path(), &shuffled).unwrap(), root, "same layout, same root");
        assert_ne!(synthetic_root(base.path(), &guests[..2]).unwrap(), root);
    }
}
