//! `chatty`: prints param `bytes` (default 10 MiB) bytes of text to stdout, in 100-byte lines
//! (`line 0000001 xxxx…\n`, the last one possibly shorter), then succeeds with
//! `{"printed": bytes}`. For log capture limits and stdout backpressure.

use std::io::Write;

use sluice_sdk::{Context, Task, TaskError, params};

pub const LINE: usize = 100;

/// Line `i` (0-based), exactly [`LINE`] bytes including the newline.
pub fn line(i: u64) -> [u8; LINE] {
    let mut buf = [b'x'; LINE];
    let prefix = format!("line {:07} ", i + 1);
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    buf[LINE - 1] = b'\n';
    buf
}

pub struct Chatty;

impl Task for Chatty {
    type Output = serde_json::Value;

    fn run(_ctx: &Context) -> Result<serde_json::Value, TaskError> {
        let bytes: u64 = params::get_or("bytes", 10 << 20)?;
        let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
        let mut left = bytes;
        let mut i = 0;
        while left > 0 {
            let l = line(i);
            let n = left.min(LINE as u64) as usize;
            out.write_all(&l[..n])?;
            left -= n as u64;
            i += 1;
        }
        out.flush()?;
        Ok(serde_json::json!({ "printed": bytes }))
    }
}

sluice_sdk::export_task!(Chatty);

#[cfg(test)]
mod tests {
    #[test]
    fn lines_are_fixed_width() {
        let l = super::line(41);
        assert_eq!(&l[..13], b"line 0000042 ");
        assert_eq!(l[99], b'\n');
    }
}
