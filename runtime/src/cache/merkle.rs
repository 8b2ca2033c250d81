//! The Merkle root of a directory tree: one hash for its directories, files and links,
//! from their relative paths and contents only (see [`merkle_root`]).
//!
//! Pure: it hashes what it is given and never reads a file; `tree` walks directories.

use super::hash::Hash;

/// Domain separator of [`merkle_root`]; bump the version if the encoding ever changes.
pub(crate) const TREE_DOMAIN: &[u8] = b"sluice-tree-v1\0";

/// The Merkle root of a tree of files and directories: [`merkle_root`] without links.
pub fn tree_root<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a Hash)>,
    dirs: impl IntoIterator<Item = &'a str>,
) -> Hash {
    merkle_root(files, dirs, [])
}

/// One node of [`merkle_root`]'s encoding; the order is the tie-break between kinds.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Node<'a> {
    Dir,
    File(&'a Hash),
    Link(&'a str),
}

/// The Merkle root of a tree: blake3 over [`TREE_DOMAIN`] and each node in byte order of
/// its path — `d`, u64-LE path length, path for a directory; `f`, u64-LE path length, path,
/// 32-byte content hash for a file; `l`, u64-LE path length, path, u64-LE target length,
/// target for a symbolic link. Every field has a fixed or prefixed length, so two different
/// trees never encode alike, and a tree without links has the root it had before links
/// were part of trees.
pub fn merkle_root<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a Hash)>,
    dirs: impl IntoIterator<Item = &'a str>,
    links: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Hash {
    let mut nodes: Vec<(&str, Node<'_>)> = dirs.into_iter().map(|d| (d, Node::Dir)).collect();
    nodes.extend(files.into_iter().map(|(path, hash)| (path, Node::File(hash))));
    nodes.extend(links.into_iter().map(|(path, target)| (path, Node::Link(target))));
    nodes.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then_with(|| a.1.cmp(&b.1)));
    let mut hasher = blake3::Hasher::new();
    hasher.update(TREE_DOMAIN);
    for (path, node) in nodes {
        let kind: &[u8] = match node {
            Node::Dir => b"d",
            Node::File(_) => b"f",
            Node::Link(_) => b"l",
        };
        hasher.update(kind);
        hasher.update(&(path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        match node {
            Node::Dir => {}
            Node::File(hash) => {
                hasher.update(hash.as_bytes());
            }
            Node::Link(target) => {
                hasher.update(&(target.len() as u64).to_le_bytes());
                hasher.update(target.as_bytes());
            }
        }
    }
    Hash::from(hasher.finalize())
}
