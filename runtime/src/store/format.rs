//! The store's format version: a small file beside the engine's files, read before the
//! engine opens anything.
//!
//! Owns [`STORE_FORMAT`] and the marker file [`FORMAT_FILE`] (`{"format":1,"engine":…,
//! "written_by":"sluice 0.1.0"}`). A new store is stamped before the engine writes a byte;
//! a store whose marker names another format or engine is refused with an error naming
//! both versions and the sluice that wrote it, so that no sluice ever misreads a store
//! written by a newer (or different) one. A store without a marker that already holds
//! files was written before the marker existed, in format 1, and is stamped as such.
//!
//! It never opens the engine and never changes a marker that is present.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;

/// The layout of the store's records (trees, keys, encodings). Bump it whenever a
/// sluice writes something an earlier sluice would misread.
pub const STORE_FORMAT: u32 = 1;

/// The marker file, inside the store directory.
pub const FORMAT_FILE: &str = "sluice-format.json";

/// The largest marker file read: it is a few dozen bytes; anything bigger is not one.
const MAX_MARKER_BYTES: u64 = 4096;

/// What the marker file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub format: u32,
    /// The storage engine whose files sit beside the marker (`sled 0.34`).
    pub engine: String,
    /// `sluice <version>` that created the store (or stamped it).
    pub written_by: String,
}

impl Marker {
    /// The marker this sluice writes for `engine`.
    pub fn current(engine: &str) -> Marker {
        Marker { format: STORE_FORMAT, engine: engine.to_string(), written_by: this_sluice() }
    }
}

/// `sluice <version>` of this build.
pub fn this_sluice() -> String {
    format!("sluice {}", env!("CARGO_PKG_VERSION"))
}

/// The marker of the store in `dir`, if it has one.
pub fn read_marker(dir: &Path) -> Result<Option<Marker>, StoreError> {
    let path = dir.join(FORMAT_FILE);
    let bytes = match File::open(&path) {
        Ok(file) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_MARKER_BYTES), &mut bytes)
                .map_err(|e| unreadable(&path, e.to_string()))?;
            bytes
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(&path, e.to_string())),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| unreadable(&path, e.to_string()))
}

fn unreadable(path: &Path, why: String) -> StoreError {
    StoreError::Format {
        path: path.to_path_buf(),
        message: format!(
            "the store's format file {} is unreadable ({why}): the store may be damaged, or was not written by \
             sluice. {}",
            path.display(),
            super::DAMAGED_ADVICE
        ),
    }
}

/// Refuses a store whose marker is not this sluice's format and engine; stamps a store
/// that has none (a new one, or one written before markers existed, which is format 1).
pub(crate) fn check_or_stamp(dir: &Path, engine: &str) -> Result<(), StoreError> {
    match read_marker(dir)? {
        Some(marker) => check(dir, &marker, engine),
        None => write_marker(dir, &Marker::current(engine)),
    }
}

/// Refuses `marker` unless it is [`STORE_FORMAT`] of `engine`.
pub fn check(dir: &Path, marker: &Marker, engine: &str) -> Result<(), StoreError> {
    if marker.format == STORE_FORMAT && marker.engine == engine {
        return Ok(());
    }
    let advice = if marker.format > STORE_FORMAT {
        format!("use {} (or a newer sluice) with it", marker.written_by)
    } else if marker.format < STORE_FORMAT {
        format!("open it with {} and make a backup to restore elsewhere, or start an empty store", marker.written_by)
    } else {
        format!("it was written by {} for another storage engine", marker.written_by)
    };
    Err(StoreError::Format {
        path: dir.to_path_buf(),
        message: format!(
            "the store at {} has format {} ({}), written by {}; this sluice ({}) reads only format {STORE_FORMAT} \
             ({engine}). Refusing to open it so that nothing is misread: {advice}",
            dir.display(),
            marker.format,
            marker.engine,
            marker.written_by,
            this_sluice(),
        ),
    })
}

/// Writes `marker` atomically (temporary file, fsync, rename, fsync of the directory).
pub fn write_marker(dir: &Path, marker: &Marker) -> Result<(), StoreError> {
    let path = dir.join(FORMAT_FILE);
    let temp: PathBuf = dir.join(format!("{FORMAT_FILE}.tmp"));
    let io = |e: std::io::Error| StoreError::Open { path: path.clone(), message: format!("writing: {e}") };
    let bytes = serde_json::to_vec(marker).map_err(|e| StoreError::Io(e.to_string()))?;
    let mut file = File::create(&temp).map_err(io)?;
    file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(io)?;
    fs::rename(&temp, &path).map_err(io)?;
    sync_dir(dir).map_err(io)
}

/// Makes a directory's entries (a rename into it) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGINE: &str = "test-engine 1";

    #[test]
    fn a_new_store_is_stamped_and_then_accepted() {
        let dir = tempfile::tempdir().unwrap();
        check_or_stamp(dir.path(), ENGINE).unwrap();
        let marker = read_marker(dir.path()).unwrap().unwrap();
        assert_eq!(marker, Marker::current(ENGINE));
        check_or_stamp(dir.path(), ENGINE).unwrap();
    }

    #[test]
    fn other_formats_and_engines_are_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let newer = Marker { format: STORE_FORMAT + 1, engine: ENGINE.into(), written_by: "sluice 9.9.9".into() };
        write_marker(dir.path(), &newer).unwrap();
        let text = check_or_stamp(dir.path(), ENGINE).unwrap_err().to_string();
        assert!(text.contains(&format!("format {}", STORE_FORMAT + 1)), "{text}");
        assert!(text.contains(&format!("only format {STORE_FORMAT}")), "{text}");
        assert!(text.contains("sluice 9.9.9") && text.contains(&this_sluice()), "{text}");
        assert_eq!(read_marker(dir.path()).unwrap().unwrap(), newer, "a refused marker is left as it was");

        let other = Marker { format: STORE_FORMAT, engine: "fjall 3".into(), written_by: "sluice 2.0.0".into() };
        write_marker(dir.path(), &other).unwrap();
        let text = check_or_stamp(dir.path(), ENGINE).unwrap_err().to_string();
        assert!(text.contains("fjall 3") && text.contains(ENGINE), "{text}");
    }

    #[test]
    fn a_garbled_marker_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FORMAT_FILE), b"\x00\x01garbage").unwrap();
        let err = check_or_stamp(dir.path(), ENGINE).unwrap_err();
        assert!(matches!(err, StoreError::Format { .. }), "{err:?}");
        assert!(err.to_string().contains("sluice store restore"), "{err}");
        assert_eq!(fs::read(dir.path().join(FORMAT_FILE)).unwrap(), b"\x00\x01garbage");
    }
}
