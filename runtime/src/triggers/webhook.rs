//! Checking a webhook request before anything starts: the body within
//! [`MAX_WEBHOOK_BODY`], a timestamp within [`MAX_SKEW`] of the engine's clock, and an
//! HMAC-SHA256 over `"<timestamp>.<body>"` with the job's secret, compared in constant
//! time (HMAC as RFC 2104 defines it, over the `sha2` crate; checked against RFC 4231's
//! test vectors). Binding the timestamp into the signature means an old request cannot be made
//! fresh; a replay of a fresh one is refused by the firing record its signature keys.
//!
//! Headers: `X-Sluice-Timestamp: <unix seconds>`,
//! `X-Sluice-Signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>`,
//! optionally `Idempotency-Key`.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::model::Millis;

/// The largest body a webhook accepts (413 beyond): a trigger's payload is a small JSON
/// document pinned into the run's plan, not a data transfer.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// How far a request's timestamp may be from now (either way) and still be accepted.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

pub const SIGNATURE_HEADER: &str = "x-sluice-signature";
pub const TIMESTAMP_HEADER: &str = "x-sluice-timestamp";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Why a webhook request was refused; nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("missing header {0}")]
    Missing(&'static str),
    #[error("{TIMESTAMP_HEADER} must be whole seconds since the Unix epoch")]
    BadTimestamp,
    #[error("the request's timestamp is {0} s away from the server's clock (at most {max} s)", max = MAX_SKEW.as_secs())]
    TooOld(u64),
    #[error("{SIGNATURE_HEADER} must read sha256=<64 hex digits>")]
    BadSignatureFormat,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the body is over {MAX_WEBHOOK_BODY} bytes")]
    TooLarge,
    #[error("the body must be a JSON object: {0}")]
    NotJson(String),
}

/// The signature header's value for `body` sent at `timestamp` (what a sender computes).
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!("sha256={}", hex(&signed(secret, timestamp, body)))
}

/// HMAC-SHA256 of `"<timestamp>.<body>"`.
fn signed(secret: &[u8], timestamp: u64, body: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, &[timestamp.to_string().as_bytes(), b".", body])
}

/// SHA-256's block size: HMAC pads (or hashes) the key to it.
const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Equal, in time that does not depend on where two equal-length inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Check a request; the parsed JSON body if it passes.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: Millis,
) -> Result<serde_json::Value, HookError> {
    if body.len() > MAX_WEBHOOK_BODY {
        return Err(HookError::TooLarge);
    }
    let timestamp = timestamp.ok_or(HookError::Missing(TIMESTAMP_HEADER))?;
    let signature = signature.ok_or(HookError::Missing(SIGNATURE_HEADER))?;
    let ts: u64 = timestamp.trim().parse().map_err(|_| HookError::BadTimestamp)?;
    let skew = (now / 1000).abs_diff(ts);
    if skew > MAX_SKEW.as_secs() {
        return Err(HookError::TooOld(skew));
    }
    let given = signature.trim().strip_prefix("sha256=").and_then(unhex).filter(|b| b.len() == 32);
    let given = given.ok_or(HookError::BadSignatureFormat)?;
    if !same(&signed(secret, ts, body), &given) {
        return Err(HookError::BadSignature);
    }
    let payload: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| HookError::NotJson(e.to_string()))?
    };
    if !payload.is_object() {
        return Err(HookError::NotJson("found another JSON value".into()));
    }
    Ok(payload)
}

/// The firing key a signature is remembered by (replays are refused by it).
pub fn signature_key(signature: &str) -> String {
    format!("hook-sig-{}", blake3::hash(signature.trim().as_bytes()).to_hex())
}

/// The firing key an `Idempotency-Key` is remembered by.
pub fn idempotency_key(key: &str) -> String {
    format!("hook-key-{}", blake3::hash(key.as_bytes()).to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;

    #[test]
    fn hmac_matches_rfc_4231() {
        // test cases 2 and 6 (a key longer than the block)
        let two = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex(&two), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let six = hmac_sha256(&[0xaa; 131], &[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        assert_eq!(hex(&six), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn a_signed_fresh_body_passes_and_anything_else_is_refused() {
        let body = br#"{"day": "2027-01-15"}"#;
        let ts = NOW / 1000;
        let sig = sign(b"s3cret", ts, body);
        let ok = verify(b"s3cret", Some(&ts.to_string()), Some(&sig), body, NOW).unwrap();
        assert_eq!(ok["day"], "2027-01-15");
        // wrong secret, altered body, old timestamp, timestamp not the signed one
        assert_eq!(verify(b"other", Some(&ts.to_string()), Some(&sig), body, NOW), Err(HookError::BadSignature));
        assert_eq!(
            verify(b"s3cret", Some(&ts.to_string()), Some(&sig), br#"{"day": "2027-01-16"}"#, NOW),
            Err(HookError::BadSignature)
        );
        let old = ts - 301;
        let old_sig = sign(b"s3cret", old, body);
        assert_eq!(verify(b"s3cret", Some(&old.to_string()), Some(&old_sig), body, NOW), Err(HookError::TooOld(301)));
        assert_eq!(verify(b"s3cret", Some(&(ts - 1).to_string()), Some(&sig), body, NOW), Err(HookError::BadSignature));
        assert_eq!(verify(b"s3cret", None, Some(&sig), body, NOW), Err(HookError::Missing(TIMESTAMP_HEADER)));
        assert_eq!(verify(b"s3cret", Some("x"), Some(&sig), body, NOW), Err(HookError::BadTimestamp));
        assert_eq!(
            verify(b"s3cret", Some(&ts.to_string()), Some("md5=00"), body, NOW),
            Err(HookError::BadSignatureFormat)
        );
        let big = vec![b' '; MAX_WEBHOOK_BODY + 1];
        assert_eq!(verify(b"s3cret", Some(&ts.to_string()), Some(&sig), &big, NOW), Err(HookError::TooLarge));
        let list = b"[1]";
        let list_sig = sign(b"s3cret", ts, list);
        assert!(matches!(
            verify(b"s3cret", Some(&ts.to_string()), Some(&list_sig), list, NOW),
            Err(HookError::NotJson(_))
        ));
    }
}
