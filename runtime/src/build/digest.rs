//! The digest of a task's sources: what decides whether its artifact is current.

use std::io;
use std::path::Path;

use crate::spec::SourceLang;

/// The most files a task's source directory may hold: a task is a handful of files, and a
/// digest walks all of them on every load, so a directory this large is a mistake (a
/// dataset or a virtualenv inside the task) to report, not to hash.
pub const MAX_SOURCE_FILES: usize = 5_000;

/// Directories that are build output or caches, never sources.
const SKIPPED_DIRS: &[&str] = &["target", "__pycache__", "build", "node_modules"];

/// blake3 over the language and every source file's relative path and bytes, in path order.
/// Hidden entries, [`SKIPPED_DIRS`], `.wasm` and `.pyc` files are not sources.
pub fn source_digest(dir: &Path, lang: SourceLang) -> io::Result<String> {
    if !dir.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
    }
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = blake3::Hasher::new();
    hasher.update(lang.as_str().as_bytes());
    for rel in &files {
        let bytes = std::fs::read(dir.join(rel))?;
        hasher.update(rel.as_bytes()).update(&[0]).update(&(bytes.len() as u64).to_le_bytes()).update(&bytes);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                collect(root, &entry.path(), out)?;
            }
        } else if kind.is_file() && !name.ends_with(".wasm") && !name.ends_with(".pyc") {
            let rel = entry.path().strip_prefix(root).map(|p| p.to_string_lossy().into_owned()).unwrap_or(name);
            out.push(rel);
            if out.len() > MAX_SOURCE_FILES {
                return Err(io::Error::other(format!(
                    "more than {MAX_SOURCE_FILES} files: is a dataset or an environment inside the task's directory?"
                )));
            }
        }
    }
    Ok(())
}
