//! Requests from other processes to a running run, through files.
//!
//! sled lets one process hold the store, so `sluice runs cancel` from another
//! terminal cannot append to the run's log itself. It leaves a request file in
//! `<state>/control/`; the coordinator running that run looks for it every
//! `CONTROL_POLL` (`coordinator.rs`) and acts on it (journaling the cancel itself).

use std::path::{Path, PathBuf};

/// The control directory of one state directory.
#[derive(Debug, Clone)]
pub struct Control {
    dir: PathBuf,
}

impl Control {
    pub fn new(dir: impl Into<PathBuf>) -> Control {
        Control { dir: dir.into() }
    }

    fn cancel_file(&self, run: u64) -> PathBuf {
        self.dir.join(format!("cancel-{run}"))
    }

    /// Ask the process running `run` to cancel it, on behalf of `workspace`
    /// (a request from another workspace is ignored).
    pub fn request_cancel(&self, run: u64, workspace: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.cancel_file(run), workspace.as_bytes())
    }

    /// Whether `workspace` asked for `run` to be canceled.
    pub fn cancel_requested(&self, run: u64, workspace: &str) -> bool {
        match std::fs::read(self.cancel_file(run)) {
            Ok(by) => by == workspace.as_bytes(),
            Err(_) => false,
        }
    }

    /// Forget requests about a run that has ended.
    pub fn clear(&self, run: u64) {
        let _ = std::fs::remove_file(self.cancel_file(run));
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_seen_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let c = Control::new(dir.path().join("control"));
        assert!(!c.cancel_requested(7, "default"));
        c.request_cancel(7, "default").unwrap();
        assert!(c.cancel_requested(7, "default") && !c.cancel_requested(8, "default"));
        assert!(!c.cancel_requested(7, "other"), "another workspace cannot cancel it");
        c.clear(7);
        assert!(!c.cancel_requested(7, "default"));
    }
}
