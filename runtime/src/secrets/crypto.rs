//! Sealing secret values: XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`)
//! under a 32-byte master key, a fresh random 24-byte nonce per sealed record.
//!
//! Owns the master key's in-memory form (zeroized on drop, never printed), the
//! associated data that binds a record to where it belongs (workspace, target,
//! scope, key, version: a record copied or swapped to another place fails to
//! open), and the key check: a known plaintext sealed once per store, so that
//! a wrong key is recognised before anything is written with it.
//! It never does I/O and never returns a value it could not authenticate.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{ScopeId, SecretsError};

/// Length of the master key in bytes.
pub const KEY_BYTES: usize = 32;
/// Length of an XChaCha20 nonce: long enough that random nonces never repeat.
pub const NONCE_BYTES: usize = 24;

const KEY_CHECK_PLAINTEXT: &[u8] = b"sluice master key check v1";
const KEY_CHECK_AAD: &[u8] = b"sluice/key-check/v1";
const SECRET_AAD_TAG: &[u8] = b"sluice/secret/v1";

/// The master key. Zeroized when dropped; `Debug` shows where it came from, never the bytes.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_BYTES]>,
    /// Where the key came from, for error messages (`SLUICE_MASTER_KEY`, a path).
    source: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("source", &self.source).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate(source: &str) -> MasterKey {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
        bytes.copy_from_slice(&key);
        MasterKey { bytes, source: source.to_string() }
    }

    /// Parse a key written as 64 hex digits or as base64 (standard or URL-safe,
    /// padded or not) of 32 bytes. Errors never repeat the text.
    pub fn parse(text: &str, source: &str) -> Result<MasterKey, SecretsError> {
        let text = text.trim();
        let decoded: Option<Zeroizing<Vec<u8>>> =
            if text.len() == 2 * KEY_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                decode_hex(text)
            } else {
                [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
                    .iter()
                    .find_map(|engine| engine.decode(text).ok())
                    .map(Zeroizing::new)
            };
        match decoded {
            Some(d) if d.len() == KEY_BYTES => {
                let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
                bytes.copy_from_slice(&d);
                Ok(MasterKey { bytes, source: source.to_string() })
            }
            Some(d) => Err(SecretsError::MasterKey(format!(
                "{source} holds {} bytes; a master key is 32 bytes (64 hex digits or 44 base64 characters)",
                d.len()
            ))),
            None => Err(SecretsError::MasterKey(format!("{source} is neither 64 hex digits nor base64 of 32 bytes"))),
        }
    }

    /// The key as 64 lowercase hex digits (for the key file).
    pub fn to_hex(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(2 * KEY_BYTES));
        for b in self.bytes.iter() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Where the key came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.as_slice().into())
    }

    /// Seal `plaintext` bound to `aad`, with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, SecretsError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher()
            .encrypt(&nonce, Payload { msg: plaintext, aad })
            .map_err(|_| SecretsError::MasterKey("sealing failed".into()))?;
        Ok(Sealed { nonce: nonce.to_vec(), ciphertext })
    }

    /// Open a sealed record bound to `aad`; `None` if it does not authenticate
    /// (wrong key, tampered bytes, or a record moved to another place).
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.nonce.len() != NONCE_BYTES {
            return None;
        }
        let nonce = XNonce::from_slice(&sealed.nonce);
        self.cipher().decrypt(nonce, Payload { msg: &sealed.ciphertext, aad }).ok().map(Zeroizing::new)
    }

    /// The key check to store the first time this key seals anything.
    pub fn key_check(&self) -> Result<Sealed, SecretsError> {
        self.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)
    }

    /// Whether `check` was made with this key.
    pub fn matches(&self, check: &Sealed) -> bool {
        self.open(check, KEY_CHECK_AAD).is_some_and(|p| p.as_slice() == KEY_CHECK_PLAINTEXT)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let digit = |b: u8| char::from(b).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 2));
    for pair in bytes.chunks(2) {
        let [hi, lo] = pair else { return None };
        out.push(u8::try_from(digit(*hi)? << 4 | digit(*lo)?).ok()?);
    }
    Some(out)
}

/// The associated data of one secret version: where it belongs, length-prefixed
/// so that no two places share an encoding.
pub fn secret_aad(scope: &ScopeId, key: &str, version: u32) -> Vec<u8> {
    let mut aad = SECRET_AAD_TAG.to_vec();
    for part in [&scope.workspace, &scope.target, &scope.name, key] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// A sealed record: nonce and ciphertext (with its 16-byte tag), stored as base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(target: &str) -> ScopeId {
        ScopeId::new("default", target, "db").unwrap()
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let key = MasterKey::generate("test");
        let aad = secret_aad(&scope("prod"), "password", 1);
        let a = key.seal(b"hunter2", &aad).unwrap();
        let b = key.seal(b"hunter2", &aad).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(key.open(&a, &aad).unwrap().as_slice(), b"hunter2");
        assert!(!a.ciphertext.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn tampering_moving_and_wrong_keys_are_detected() {
        let key = MasterKey::generate("test");
        let aad = secret_aad(&scope("prod"), "password", 1);
        let sealed = key.seal(b"hunter2", &aad).unwrap();
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 1;
            assert!(key.open(&bad, &aad).is_none(), "flipped byte {i}");
        }
        let mut bad = sealed.clone();
        bad.nonce[0] ^= 1;
        assert!(key.open(&bad, &aad).is_none());
        // the same record read as another version, key, scope or target
        assert!(key.open(&sealed, &secret_aad(&scope("prod"), "password", 2)).is_none());
        assert!(key.open(&sealed, &secret_aad(&scope("prod"), "user", 1)).is_none());
        assert!(key.open(&sealed, &secret_aad(&scope("test"), "password", 1)).is_none());
        assert!(MasterKey::generate("other").open(&sealed, &aad).is_none());
        assert!(key.open(&Sealed { nonce: vec![0; 3], ciphertext: sealed.ciphertext.clone() }, &aad).is_none());
    }

    #[test]
    fn key_checks_tell_keys_apart() {
        let key = MasterKey::generate("a");
        let check = key.key_check().unwrap();
        assert!(key.matches(&check));
        assert!(!MasterKey::generate("b").matches(&check));
    }

    #[test]
    fn keys_parse_from_hex_and_base64_and_errors_hide_the_text() {
        let key = MasterKey::generate("a");
        let hex = key.to_hex();
        let again = MasterKey::parse(&format!(" {}\n", hex.as_str()), "env").unwrap();
        assert!(again.matches(&key.key_check().unwrap()));
        let b64 = STANDARD.encode(*key.bytes);
        assert!(MasterKey::parse(&b64, "env").unwrap().matches(&key.key_check().unwrap()));
        assert!(MasterKey::parse(b64.trim_end_matches('='), "env").is_ok());
        let short = MasterKey::parse("c2hvcnQ=", "SLUICE_MASTER_KEY").unwrap_err().to_string();
        assert!(short.contains("5 bytes") && short.contains("SLUICE_MASTER_KEY"), "{short}");
        let junk = MasterKey::parse("not a key!", "SLUICE_MASTER_KEY").unwrap_err().to_string();
        assert!(!junk.contains("not a key!"), "{junk}");
        assert!(!format!("{key:?}").contains(&hex[..8]));
    }
}
