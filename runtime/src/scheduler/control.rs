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

    /// Ask the process running `run` to cancel it, on behalf of `workspace` (a request
    /// from another workspace is ignored); asking again stops its cleanup too. Each
    /// request is a line naming the workspace.
    pub fn request_cancel(&self, run: u64, workspace: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.dir)?;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(self.cancel_file(run))?;
        file.write_all(format!("{workspace}\n").as_bytes())
    }

    /// How many times `workspace` asked for `run` to be canceled.
    pub fn cancel_requests(&self, run: u64, workspace: &str) -> usize {
        match std::fs::read_to_string(self.cancel_file(run)) {
            Ok(by) => by.lines().filter(|line| *line == workspace).count(),
            Err(_) => 0,
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
        assert_eq!(c.cancel_requests(7, "default"), 0);
        c.request_cancel(7, "default").unwrap();
        assert_eq!((c.cancel_requests(7, "default"), c.cancel_requests(8, "default")), (1, 0));
        assert_eq!(c.cancel_requests(7, "other"), 0, "another workspace cannot cancel it");
        c.request_cancel(7, "default").unwrap();
        assert_eq!(c.cancel_requests(7, "default"), 2, "asked again: cleanup stops too");
        c.clear(7);
        assert_eq!(c.cancel_requests(7, "default"), 0);
    }
}
