//! Capability: the attempt's log (the guest's stdout and stderr).
//!
//! Owns the capped buffer both streams write into. Bytes past the cap are
//! accepted and dropped (a guest's `println!` must not fail because the host
//! stopped listening) and the log is marked truncated. It never writes to the
//! host's own terminal.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::{Capability, Prepare};

/// How many bytes the guest may hand over in one write; a guest writing more
/// loops, which keeps host-side copies small.
const WRITE_BUDGET: usize = 64 << 10;

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

/// A log shared by the guest's stdout and stderr.
#[derive(Debug, Clone)]
pub(crate) struct CappedLog {
    inner: Arc<Mutex<Buffer>>,
}

impl CappedLog {
    pub(crate) fn new(cap: u64) -> Self {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        CappedLog { inner: Arc::new(Mutex::new(Buffer { bytes: Vec::new(), cap, dropped: 0 })) }
    }

    fn append(&self, data: &[u8]) {
        let mut b = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = b.cap.saturating_sub(b.bytes.len());
        let keep = room.min(data.len());
        b.bytes.extend_from_slice(&data[..keep]);
        b.dropped += (data.len() - keep) as u64;
    }

    /// A line of the host's own (kept like the guest's text, within the cap).
    pub(crate) fn append_host(&self, line: &str) {
        self.append(line.as_bytes());
    }

    /// The captured text (invalid UTF-8 replaced) and whether bytes were dropped.
    pub(crate) fn take(&self) -> (String, bool) {
        let mut b = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = std::mem::take(&mut b.bytes);
        (String::from_utf8_lossy(&bytes).into_owned(), b.dropped > 0)
    }
}

impl IsTerminal for CappedLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedLog {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl AsyncWrite for CappedLog {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What an attempt's standard streams are: for a command, its args, env and stdin too.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The whole argv (a command's argv\[0] is its task key); empty for task components.
    pub args: Vec<String>,
    /// The whole environment the program sees.
    pub env: Vec<(String, String)>,
    /// Bytes on stdin (closed when `None`).
    pub stdin: Option<Vec<u8>>,
    /// Whether stdout is the task's output (captured apart, up to `max_output`).
    pub stdout_is_output: bool,
    /// stdout goes to this host file (a file of the attempt's `/out`), bounded by the
    /// `/out` limit (`None`: unbounded); it is then not in the log.
    pub stdout_file: Option<(std::path::PathBuf, Option<u64>)>,
    /// stdin streamed from this host file (an upstream task's `/out` file) instead of `stdin`.
    pub stdin_path: Option<std::path::PathBuf>,
}

/// The logs capability of one attempt: where stdout and stderr went.
pub(crate) struct Logs {
    /// stdout+stderr (or only stderr when `stdout` is set), capped at `max_log`.
    pub(crate) log: CappedLog,
    /// stdout on its own, when it is the task's output (command tasks).
    pub(crate) stdout: Option<CappedLog>,
}

impl Capability for Logs {
    type Grant = Grant;

    fn prepare(grant: Grant, cx: &mut Prepare<'_>) -> Result<Self, String> {
        let log = CappedLog::new(cx.limits.max_log);
        let stdout = grant.stdout_is_output.then(|| CappedLog::new(cx.limits.max_output));
        match (&stdout, &grant.stdout_file) {
            (_, Some((path, limit))) => {
                let file = super::stdio::FileOut::create(path, *limit)
                    .map_err(|e| format!("cannot create the stdout file {}: {e}", path.display()))?;
                cx.wasi.stdout(file)
            }
            (Some(out), None) => cx.wasi.stdout(out.clone()),
            (None, None) => cx.wasi.stdout(log.clone()),
        };
        cx.wasi.stderr(log.clone()).args(&grant.args).envs(&grant.env);
        if let Some(path) = &grant.stdin_path {
            let file = std::fs::File::open(path).map_err(|e| format!("cannot open stdin {}: {e}", path.display()))?;
            cx.wasi.stdin(wasmtime_wasi::cli::InputFile::new(file));
        } else if let Some(stdin) = grant.stdin {
            cx.wasi.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(stdin));
        }
        Ok(Logs { log, stdout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_marks_truncation() {
        let log = CappedLog::new(5);
        let mut out = log.clone();
        OutputStream::write(&mut out, Bytes::from_static(b"abc")).unwrap();
        assert_eq!(log.take(), ("abc".to_string(), false));
        let log = CappedLog::new(5);
        let mut out = log.clone();
        OutputStream::write(&mut out, Bytes::from_static(b"abcdefgh")).unwrap();
        assert_eq!(log.take(), ("abcde".to_string(), true));
    }
}
