//! Where the master key comes from: `SLUICE_MASTER_KEY` (hex or base64 of 32
//! bytes), else the key file `<state>/master.key`, created on first use with
//! mode 0600.
//!
//! Owns the key file: the only file I/O of the secrets module. The key file
//! sits beside the store, never inside it, so that a copy of the store alone
//! (a backup, a bug report) holds nothing that opens the secrets. It never
//! prints a key, never creates one for a read (a read without a key is an
//! error that says how to supply it), and refuses a key file others can read.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{MasterKey, SecretsError};

/// The environment variable that holds the master key.
pub const MASTER_KEY_ENV: &str = "SLUICE_MASTER_KEY";

/// The key file's name inside the state directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// A source of the master key.
pub trait KeySource: Send + Sync {
    /// The master key. With `create`, a missing key is made (only writes may);
    /// without, a missing key is an error.
    fn load(&self, create: bool) -> Result<MasterKey, SecretsError>;
}

/// A fixed key (library users and tests).
impl KeySource for MasterKey {
    fn load(&self, _create: bool) -> Result<MasterKey, SecretsError> {
        Ok(self.clone())
    }
}

/// The key of a state directory: `SLUICE_MASTER_KEY` if set, else `<state>/master.key`.
#[derive(Debug, Clone)]
pub struct StateKey {
    file: PathBuf,
    /// Read from the environment when the key is loaded, unless fixed (tests).
    env: Option<Option<String>>,
}

impl StateKey {
    pub fn new(state_dir: &Path) -> StateKey {
        StateKey { file: state_dir.join(MASTER_KEY_FILE), env: None }
    }

    /// Like [`StateKey::new`] but with the variable's value given instead of read.
    pub fn with_env(state_dir: &Path, env: Option<String>) -> StateKey {
        StateKey { file: state_dir.join(MASTER_KEY_FILE), env: Some(env) }
    }

    /// The key file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    fn env_value(&self) -> Option<zeroize::Zeroizing<String>> {
        let value = match &self.env {
            Some(fixed) => fixed.clone(),
            None => std::env::var(MASTER_KEY_ENV).ok(),
        };
        value.filter(|v| !v.trim().is_empty()).map(zeroize::Zeroizing::new)
    }

    fn read_file(&self) -> Result<MasterKey, SecretsError> {
        let shown = self.file.display().to_string();
        check_permissions(&self.file)?;
        let text = std::fs::read_to_string(&self.file)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| SecretsError::MasterKey(format!("cannot read {shown}: {e}")))?;
        MasterKey::parse(&text, &shown)
    }

    fn create_file(&self) -> Result<MasterKey, SecretsError> {
        let shown = self.file.display().to_string();
        let key = MasterKey::generate(&shown);
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| SecretsError::MasterKey(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = match options.open(&self.file) {
            Ok(f) => f,
            // another process made it first: use theirs
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return self.read_file(),
            Err(e) => return Err(SecretsError::MasterKey(format!("cannot create {shown}: {e}"))),
        };
        let mut text = key.to_hex();
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| SecretsError::MasterKey(format!("cannot write {shown}: {e}")))?;
        if let Some(dir) = self.file.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        tracing::info!(file = %shown, "created a new master key");
        Ok(key)
    }
}

impl KeySource for StateKey {
    fn load(&self, create: bool) -> Result<MasterKey, SecretsError> {
        if let Some(text) = self.env_value() {
            return MasterKey::parse(&text, MASTER_KEY_ENV);
        }
        match std::fs::symlink_metadata(&self.file) {
            Ok(_) => self.read_file(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => self.create_file(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SecretsError::MasterKey(format!(
                "no master key: set {MASTER_KEY_ENV} or restore the key file {} (it is created by the first `sluice secrets put`)",
                self.file.display()
            ))),
            Err(e) => Err(SecretsError::MasterKey(format!("cannot read {}: {e}", self.file.display()))),
        }
    }
}

/// A key file must be a regular file only its owner can read or write.
fn check_permissions(path: &Path) -> Result<(), SecretsError> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| SecretsError::MasterKey(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(SecretsError::MasterKey(format!("{} is not a regular file", path.display())));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::MasterKey(format!(
                "{} has mode {mode:o}: others can read the master key; make it readable by its owner only (chmod 600)",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let source = StateKey::with_env(dir.path(), None);
        let err = source.load(false).unwrap_err().to_string();
        assert!(err.contains("no master key") && err.contains(MASTER_KEY_ENV), "{err}");
        assert!(!source.file().exists(), "a read must not create a key");
        let made = source.load(true).unwrap();
        let again = source.load(false).unwrap();
        assert!(again.matches(&made.key_check().unwrap()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(source.file()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(source.file(), std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = source.load(false).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn the_environment_wins_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate("x");
        let source = StateKey::with_env(dir.path(), Some(key.to_hex().to_string()));
        assert!(source.load(true).unwrap().matches(&key.key_check().unwrap()));
        assert!(!source.file().exists(), "the environment's key needs no file");
        let bad = StateKey::with_env(dir.path(), Some("zz".into())).load(true).unwrap_err().to_string();
        assert!(bad.contains(MASTER_KEY_ENV), "{bad}");
    }
}
