//! Moving content by hash through the JetStream object stores: component bytes (uploaded
//! once by the server, fetched once by each worker) and file contents of `/in` and `/out`
//! trees (between the server's blob store and a worker's).
//!
//! Every download is checked against the blake3 it was asked for; nothing here decides
//! what is uploaded when (the executor and the worker do).

use std::path::Path;

use async_nats::jetstream::object_store::ObjectStore;
use tokio::io::AsyncReadExt;

use super::{ScaleoutError, nats};
use crate::cache::{BlobStore, Hash, TreeManifest};

/// Upload `bytes` under `name` unless an object of that name is there already.
async fn put_once(store: &ObjectStore, name: &str, bytes: &[u8]) -> Result<(), ScaleoutError> {
    if store.info(name).await.is_ok() {
        return Ok(());
    }
    let mut reader = bytes;
    store.put(name, &mut reader).await.map_err(|e| nats(&format!("uploading {name}"), e))?;
    Ok(())
}

/// The object `name`, whole.
async fn get(store: &ObjectStore, name: &str) -> Result<Vec<u8>, ScaleoutError> {
    let mut object = store.get(name).await.map_err(|e| nats(&format!("fetching {name}"), e))?;
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await.map_err(|e| nats(&format!("reading {name}"), e))?;
    Ok(bytes)
}

/// Upload the component file at `path`, which must hold the code of blake3 `hash`.
pub(crate) async fn put_component(store: &ObjectStore, hash: &str, path: &Path) -> Result<(), ScaleoutError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| ScaleoutError::Invalid(format!("reading component {}: {e}", path.display())))?;
    let actual = blake3::hash(&bytes).to_hex();
    if actual.as_str() != hash {
        return Err(ScaleoutError::Invalid(format!(
            "component {} changed since the run pinned it ({} → {}): workers run exactly the pinned code",
            path.display(),
            &hash[..hash.len().min(12)],
            &actual.as_str()[..12]
        )));
    }
    put_once(store, hash, &bytes).await
}

/// The bytes of component `hash`, checked.
pub(crate) async fn get_component(store: &ObjectStore, hash: &str) -> Result<Vec<u8>, ScaleoutError> {
    let bytes = get(store, hash).await?;
    if blake3::hash(&bytes).to_hex().as_str() != hash {
        return Err(ScaleoutError::Invalid(format!("component {hash}: the bytes fetched do not have that hash")));
    }
    Ok(bytes)
}

/// Upload blob `hash` from `blobs` unless the bucket has it.
pub(crate) async fn put_blob(store: &ObjectStore, blobs: &BlobStore, hash: &Hash) -> Result<(), ScaleoutError> {
    let name = hash.to_hex();
    if store.info(&name).await.is_ok() {
        return Ok(());
    }
    let bytes = blobs.get(hash).map_err(|e| ScaleoutError::Invalid(format!("blob {name}: {e}")))?;
    put_once(store, &name, &bytes).await
}

/// Fetch blob `hash` into `blobs` unless it is there, checking it against its hash.
pub(crate) async fn get_blob(store: &ObjectStore, blobs: &BlobStore, hash: &Hash) -> Result<(), ScaleoutError> {
    if blobs.contains(hash) {
        return Ok(());
    }
    let name = hash.to_hex();
    let bytes = get(store, &name).await?;
    let stored: Hash = blobs.put_bytes(&bytes).map_err(|e| ScaleoutError::Invalid(format!("blob {name}: {e}")))?;
    if stored != *hash {
        return Err(ScaleoutError::Invalid(format!("blob {name}: the bytes fetched do not have that hash")));
    }
    Ok(())
}

/// Upload every blob of `trees` from `blobs` (those already in the bucket are skipped).
pub(crate) async fn put_trees(
    store: &ObjectStore,
    blobs: &BlobStore,
    trees: &[&TreeManifest],
) -> Result<(), ScaleoutError> {
    for tree in trees {
        for entry in &tree.entries {
            let name = entry.hash.to_hex();
            if store.info(&name).await.is_ok() {
                continue;
            }
            let bytes = blobs.get(&entry.hash).map_err(|e| ScaleoutError::Invalid(format!("blob {name}: {e}")))?;
            put_once(store, &name, &bytes).await?;
        }
    }
    Ok(())
}

/// Fetch every blob of `trees` that `blobs` lacks, checking each against its hash.
pub(crate) async fn get_trees(
    store: &ObjectStore,
    blobs: &BlobStore,
    trees: &[&TreeManifest],
) -> Result<(), ScaleoutError> {
    for tree in trees {
        for entry in &tree.entries {
            if blobs.contains(&entry.hash) {
                continue;
            }
            let name = entry.hash.to_hex();
            let bytes = get(store, &name).await?;
            let stored: Hash =
                blobs.put_bytes(&bytes).map_err(|e| ScaleoutError::Invalid(format!("blob {name}: {e}")))?;
            if stored != entry.hash {
                return Err(ScaleoutError::Invalid(format!("blob {name}: the bytes fetched do not have that hash")));
            }
        }
    }
    Ok(())
}
