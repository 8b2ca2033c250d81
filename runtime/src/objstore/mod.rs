//! Object storage: S3 (and S3-compatible servers), Azure Blob / ADLS Gen2 and Google Cloud
//! Storage, through the `object_store` crate.
//!
//! Owns what a location URL means ([`Location::parse`]: `s3://bucket/prefix/`,
//! `az://container/prefix/`, `abfss://container@account.dfs.core.windows.net/prefix/`,
//! `gs://bucket/prefix/`), the credentials a location is opened with ([`Credentials`]: the
//! JSON value of a secret, parsed strictly per scheme), building a store from both
//! ([`Store::open`]), and listing, getting and putting objects under the location's prefix
//! (file-arrival triggers list; object-storage mounts get and put: [`stage`]).
//!
//! It must never read credentials from a bundle, the environment or instance metadata:
//! the caller hands over the secret's value (revealed through the vault, audited). Every
//! request has a timeout and few retries, so an unreachable endpoint is an error within
//! seconds, never a hang.

mod creds;
pub mod stage;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};

pub use creds::Credentials;

use crate::model::{Millis, TriggerFile};

/// How long one request may take, and one connection attempt.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an object store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum ObjstoreError {
    /// The URL is not one this module understands.
    #[error("{0}")]
    Url(String),
    /// The credentials' JSON is not what the scheme takes.
    #[error("credentials for {url}: {message}")]
    Credentials { url: String, message: String },
    /// The store answered with an error, or could not be reached. `transient`: a server
    /// error or a lost connection (worth another try), not a refusal (not found, denied).
    #[error("{url}: {message}")]
    Store { url: String, message: String, transient: bool },
}

impl ObjstoreError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ObjstoreError::Store { transient: true, .. })
    }
}

/// The kind of object store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Azure,
    Gcs,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Azure => "azure",
            Scheme::Gcs => "gcs",
        }
    }
}

/// A parsed object-store URL: bucket (container) and the prefix under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub scheme: Scheme,
    /// The bucket (S3, GCS) or container (Azure).
    pub bucket: String,
    /// The storage account an `abfss://` URL names.
    pub account: Option<String>,
    /// The prefix, without leading or trailing `/` (empty: the whole bucket).
    pub prefix: String,
    pub url: String,
}

/// Whether `url` names an object store (as opposed to a local directory).
pub fn is_object_url(url: &str) -> bool {
    ["s3://", "az://", "abfss://", "gs://"].iter().any(|s| url.starts_with(s))
}

impl Location {
    /// `s3://bucket/prefix/`, `az://container/prefix/`,
    /// `abfss://container@account.dfs.core.windows.net/prefix/` or `gs://bucket/prefix/`.
    pub fn parse(url: &str) -> Result<Location, ObjstoreError> {
        let bad = |why: String| ObjstoreError::Url(format!("\"{url}\": {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL".into()))?;
        let scheme = match scheme {
            "s3" => Scheme::S3,
            "az" | "abfss" => Scheme::Azure,
            "gs" => Scheme::Gcs,
            other => {
                return Err(bad(format!(
                    "unsupported scheme `{other}://`; object stores are s3://, az://, abfss:// and gs://"
                )));
            }
        };
        let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let (bucket, account) = match url.starts_with("abfss://") {
            true => {
                let (container, host) =
                    host.split_once('@').ok_or_else(|| bad("abfss:// names `container@account.dfs…`".into()))?;
                let account = host.split('.').next().unwrap_or_default();
                if account.is_empty() || !account.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(bad(format!("bad storage account `{account}`")));
                }
                (container.to_string(), Some(account.to_string()))
            }
            false => (host.to_string(), None),
        };
        check_bucket(&bucket, scheme).map_err(bad)?;
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == ".." || p == ".") || prefix.contains("//") {
            return Err(bad("`.`, `..` and empty segments are not allowed in a prefix".into()));
        }
        Ok(Location { scheme, bucket, account, prefix, url: url.to_string() })
    }
}

fn check_bucket(bucket: &str, scheme: Scheme) -> Result<(), String> {
    let what = if scheme == Scheme::Azure { "container" } else { "bucket" };
    let ok = (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == '_')
        && !bucket.starts_with(['-', '.']);
    if ok { Ok(()) } else { Err(format!("bad {what} name `{bucket}` (3 to 63 of a-z 0-9 . - _)")) }
}

/// An opened object store, confined to one location's prefix.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    location: Location,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.location.url).finish()
    }
}

impl Store {
    /// Open `url` with the JSON value of its credentials secret.
    pub fn open(url: &str, credentials: &str) -> Result<Store, ObjstoreError> {
        let location = Location::parse(url)?;
        let creds = Credentials::parse(location.scheme, credentials)
            .map_err(|message| ObjstoreError::Credentials { url: url.to_string(), message })?;
        let inner = creds::build(&location, &creds)
            .map_err(|e| ObjstoreError::Credentials { url: url.to_string(), message: e.to_string() })?;
        Ok(Store { inner, location })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn path(&self, rel: &str) -> Result<ObjPath, ObjstoreError> {
        let joined = match self.location.prefix.is_empty() {
            true => rel.to_string(),
            false => format!("{}/{rel}", self.location.prefix),
        };
        ObjPath::parse(&joined).map_err(|e| self.fail(e))
    }

    fn fail(&self, e: impl std::fmt::Display) -> ObjstoreError {
        ObjstoreError::Store { url: self.location.url.clone(), message: e.to_string(), transient: false }
    }

    /// An error of the store itself: transient unless it is a refusal.
    fn failed(&self, e: object_store::Error) -> ObjstoreError {
        let transient = matches!(e, object_store::Error::Generic { .. } | object_store::Error::JoinError { .. });
        ObjstoreError::Store { url: self.location.url.clone(), message: e.to_string(), transient }
    }

    /// Every object under the prefix (at most `max`), relative paths in order, with size,
    /// etag and modification time. Objects whose name starts with `.` are skipped, as
    /// hidden files are in a local directory.
    pub async fn list(&self, max: usize) -> Result<Vec<TriggerFile>, ObjstoreError> {
        let prefix = match self.location.prefix.is_empty() {
            true => None,
            false => Some(ObjPath::from(self.location.prefix.as_str())),
        };
        let mut stream = self.inner.list(prefix.as_ref());
        let mut out = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| self.failed(e))?;
            let full = meta.location.as_ref();
            let rel = match self.location.prefix.is_empty() {
                true => full,
                false => full.strip_prefix(self.location.prefix.as_str()).unwrap_or(full).trim_start_matches('/'),
            };
            if rel.is_empty() || rel.split('/').any(|p| p.starts_with('.')) {
                continue;
            }
            out.push(TriggerFile {
                path: rel.to_string(),
                size: meta.size,
                etag: meta.e_tag.filter(|e| !e.is_empty()),
                mtime: Some(meta.last_modified.timestamp_millis() as Millis),
            });
            if out.len() >= max {
                break;
            }
        }
        out.sort();
        Ok(out)
    }

    /// The bytes of the object at `rel` (relative to the prefix).
    pub async fn get(&self, rel: &str) -> Result<bytes::Bytes, ObjstoreError> {
        let path = self.path(rel)?;
        let got = self.inner.get(&path).await.map_err(|e| self.failed(e))?;
        got.bytes().await.map_err(|e| self.failed(e))
    }

    /// Write `data` to `rel` (relative to the prefix), replacing what is there.
    pub async fn put(&self, rel: &str, data: bytes::Bytes) -> Result<(), ObjstoreError> {
        let path = self.path(rel)?;
        self.inner.put(&path, data.into()).await.map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// Delete the object at `rel` (relative to the prefix).
    pub async fn delete(&self, rel: &str) -> Result<(), ObjstoreError> {
        let path = self.path(rel)?;
        self.inner.delete(&path).await.map_err(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_scheme_bucket_and_prefix() {
        let l = Location::parse("s3://landing-bucket/in/day/").unwrap();
        assert_eq!((l.scheme, l.bucket.as_str(), l.prefix.as_str()), (Scheme::S3, "landing-bucket", "in/day"));
        let l = Location::parse("az://container").unwrap();
        assert_eq!((l.scheme, l.prefix.as_str()), (Scheme::Azure, ""));
        let l = Location::parse("abfss://lake@myacct.dfs.core.windows.net/raw/").unwrap();
        assert_eq!((l.bucket.as_str(), l.account.as_deref(), l.prefix.as_str()), ("lake", Some("myacct"), "raw"));
        let l = Location::parse("gs://bkt/x").unwrap();
        assert_eq!(l.scheme, Scheme::Gcs);
        assert!(Location::parse("ftp://bkt/x").unwrap_err().to_string().contains("ftp://"));
        assert!(Location::parse("s3://B/x").is_err());
        assert!(Location::parse("s3://bkt/a/../b").is_err());
        assert!(Location::parse("abfss://lake/raw").is_err());
    }
}
