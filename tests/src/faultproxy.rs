//! A fault-injecting HTTP proxy in front of an object-storage server, for the tests that
//! prove transient storage failures are absorbed by retries: it forwards each request to
//! the upstream unchanged (the Host header too, so SigV4 signatures still verify) and fails
//! a deterministic share of them by their arrival number — a `503 SlowDown` without
//! forwarding, a connection dropped after the upstream handled the request (its answer
//! lost: the client cannot know whether a PUT happened), and now and then a burst of 503s
//! long enough to exhaust the storage client's own retries.
//!
//! One request per connection (the upstream is asked to close, and so is the client), plain
//! HTTP/1.1 with `Content-Length` or chunked bodies: what S3 clients send. Test code only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What the proxy does with request number `n` (counted from 0 in arrival order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Forward,
    /// `503 SlowDown`, the request not forwarded.
    SlowDown,
    /// Forwarded, then the connection closed without the answer.
    Drop,
}

/// The plan: per 50 requests, requests 3, 13, 23, 33 dropped after forwarding, 6, 16, 26, 36
/// answered 503, and 40–49 a burst of 503s (36% in all).
pub fn fault_of(n: u64) -> Fault {
    match n % 50 {
        40..=49 => Fault::SlowDown,
        m if m % 10 == 3 => Fault::Drop,
        m if m % 10 == 6 => Fault::SlowDown,
        _ => Fault::Forward,
    }
}

/// A running proxy on 127.0.0.1; stops accepting when dropped.
pub struct FaultProxy {
    pub port: u16,
    /// Requests seen, and those failed (503 or dropped).
    pub requests: Arc<AtomicU64>,
    pub faults: Arc<AtomicU64>,
    /// While false every request is forwarded (the plan's count still advances).
    pub enabled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl FaultProxy {
    /// Proxy `127.0.0.1:upstream`, failing requests by [`fault_of`].
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let port = listener.local_addr().expect("addr").port();
        let proxy = FaultProxy {
            port,
            requests: Arc::default(),
            faults: Arc::default(),
            enabled: Arc::new(AtomicBool::new(true)),
            stop: Arc::default(),
        };
        let (requests, faults, enabled, stop) =
            (proxy.requests.clone(), proxy.faults.clone(), proxy.enabled.clone(), proxy.stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let n = requests.fetch_add(1, Ordering::SeqCst);
                let fault = if enabled.load(Ordering::SeqCst) { fault_of(n) } else { Fault::Forward };
                if fault != Fault::Forward {
                    faults.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, fault);
                });
            }
        });
        proxy
    }

    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                         <Message>Please reduce your request rate.</Message></Error>";

/// One request: read it whole, then answer as `fault` says.
fn serve(conn: TcpStream, upstream: u16, fault: Fault) -> std::io::Result<()> {
    let mut client = BufReader::new(conn.try_clone()?);
    let request = read_request(&mut client)?;
    let mut conn = conn;
    if fault == Fault::SlowDown {
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            SLOW_DOWN.len()
        );
        conn.write_all(head.as_bytes())?;
        conn.write_all(SLOW_DOWN.as_bytes())?;
        return conn.shutdown(Shutdown::Both);
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(&request)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if fault == Fault::Drop {
        return conn.shutdown(Shutdown::Both);
    }
    conn.write_all(&answer)?;
    conn.shutdown(Shutdown::Both)
}

/// A request's bytes, its `Connection` header replaced by `close`.
fn read_request(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let lower = line.to_ascii_lowercase();
        if line == "\r\n" || line == "\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        head.extend_from_slice(line.as_bytes());
    }
    if chunked {
        // forward the chunks as they are, through the last (empty) one and the trailer
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            head.extend_from_slice(size.as_bytes());
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            if n == 0 {
                let mut trailer = String::new();
                while r.read_line(&mut trailer)? > 2 {
                    head.extend_from_slice(trailer.as_bytes());
                    trailer.clear();
                }
                head.extend_from_slice(trailer.as_bytes());
                return Ok(head);
            }
            r.read_exact(&mut chunk)?;
            head.extend_from_slice(&chunk);
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    head.extend_from_slice(&body);
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_fails_a_fixed_share_with_a_burst() {
        let faults = (0..50).filter(|&n| fault_of(n) != Fault::Forward).count();
        assert_eq!(faults, 18);
        assert_eq!(fault_of(3), Fault::Drop);
        assert!((40..50).all(|n| fault_of(n) == Fault::SlowDown));
        assert_eq!(fault_of(53), Fault::Drop);
    }
}
