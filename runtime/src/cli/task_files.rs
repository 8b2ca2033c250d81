//! `sluice task run --stdout-file PATH`: the command writes stdout to a file of its `/out`
//! (`stdout = "file:stdout"`), and once the run has ended that file is copied from the
//! state directory's blob store to `PATH`. Owns nothing but that copy.

use std::path::Path;

use anyhow::Context as _;

use crate::cache::{BLOBS_DIR, BlobStore, TreeManifest};
use crate::model::RunView;

/// The `/out` file a `task run --stdout-file` command's stdout goes to.
pub(crate) const STDOUT_NAME: &str = "stdout";

/// Copy the stdout file the run's (only) task wrote to `to`. A failed run that wrote none
/// leaves `to` alone.
pub(crate) fn save_stdout(state: &Path, view: &RunView, to: &Path) -> anyhow::Result<()> {
    let Some(attempt) = view.tasks.first().and_then(|t| t.attempts.last()) else { return Ok(()) };
    let Some(manifest) = attempt.cache.as_ref().and_then(|c| c.artifacts.as_deref()) else {
        return Ok(());
    };
    let blobs = BlobStore::open(state.join(BLOBS_DIR)).context("opening the blob store")?;
    let read = |hash: &crate::cache::Hash| blobs.get(hash).context("reading the stdout file from the blob store");
    let manifest: TreeManifest = serde_json::from_slice(&read(&manifest.parse()?)?)?;
    let Some(entry) = manifest.entries.iter().find(|e| e.path == STDOUT_NAME) else { return Ok(()) };
    std::fs::write(to, read(&entry.hash)?).with_context(|| format!("writing {}", to.display()))?;
    Ok(())
}
