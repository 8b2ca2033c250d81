//! A command's stdout written to a file of its `/out` (`stdout = "file:NAME"`).
//!
//! Owns the host side of that file: created empty when the attempt starts, written as the
//! guest writes, and bounded by the task's `/out` limit (one byte past it is kept, so the
//! collection of `/out` sees the overflow and fails the attempt naming the limit). It never
//! reads the file back and never writes outside the path it is given.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// How many bytes the guest may hand over in one write (as for the log).
const WRITE_BUDGET: usize = 64 << 10;

struct Sink {
    file: File,
    written: u64,
    /// Bytes kept at most: the `/out` limit plus one; `None`: unbounded.
    keep: Option<u64>,
}

/// stdout into a host file, bounded.
#[derive(Clone)]
pub(crate) struct FileOut {
    inner: Arc<Mutex<Sink>>,
}

impl FileOut {
    /// Create (truncate) `path`, creating its parent directories; `limit`: the `/out` limit.
    pub(crate) fn create(path: &Path, limit: Option<u64>) -> io::Result<FileOut> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::create(path)?;
        let keep = limit.map(|l| l.saturating_add(1));
        Ok(FileOut { inner: Arc::new(Mutex::new(Sink { file, written: 0, keep })) })
    }

    fn append(&self, data: &[u8]) -> io::Result<()> {
        let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = s.keep.map_or(u64::MAX, |k| k.saturating_sub(s.written));
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
        s.file.write_all(&data[..take])?;
        s.written += take as u64;
        Ok(())
    }
}

impl IsTerminal for FileOut {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for FileOut {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for FileOut {
    async fn ready(&mut self) {}
}

impl OutputStream for FileOut {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes).map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl AsyncWrite for FileOut {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.append(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_byte_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        let mut out = FileOut::create(&path, Some(4)).unwrap();
        OutputStream::write(&mut out, Bytes::from_static(b"abc")).unwrap();
        OutputStream::write(&mut out, Bytes::from_static(b"defgh")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
        let mut free = FileOut::create(&dir.path().join("all"), None).unwrap();
        OutputStream::write(&mut free, Bytes::from_static(b"abcdefgh")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("all")).unwrap(), b"abcdefgh");
    }
}
