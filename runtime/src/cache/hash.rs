//! [`Hash`]: a blake3 digest as a value — what blobs, trees and cache keys are named by.
//!
//! Owns the one textual form of a digest (64 lowercase hex characters) used in file names,
//! JSON and messages, and its parsing. It must never hash anything itself beyond the
//! [`Hash::of`] convenience, and never do I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte blake3 digest. Displayed, parsed and serialised as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

/// Why a text is not a [`Hash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a blake3 hash: expected 64 hex characters, got {shown:?}")]
pub struct HashParseError {
    shown: String,
}

impl Hash {
    /// The blake3 hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Hash {
        Hash::from(blake3::hash(bytes))
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The first `n` hex characters followed by `…`, for messages (`3f2a91c0…`).
    pub fn short(&self) -> String {
        let mut text = self.to_string();
        text.truncate(8);
        text.push('…');
        text
    }
}

impl From<blake3::Hash> for Hash {
    fn from(hash: blake3::Hash) -> Self {
        Hash(*hash.as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(blake3::Hash::from_bytes(self.0).to_hex().as_str())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = HashParseError;

    /// Exactly 64 hex characters (either case).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        blake3::Hash::from_hex(text)
            .map(Hash::from)
            .map_err(|_| HashParseError { shown: text.chars().take(80).collect() })
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_matches_blake3() {
        let hash = Hash::of(b"hello");
        assert_eq!(hash.to_string(), blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(hash.to_string().parse::<Hash>(), Ok(hash));
        assert_eq!(hash.to_string().to_uppercase().parse::<Hash>(), Ok(hash));
        assert_eq!(hash.short().chars().count(), 9);
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65), &"é".repeat(32)] {
            assert!(bad.parse::<Hash>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_is_a_hex_string() {
        let hash = Hash::of(b"x");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{hash}\""));
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), hash);
        assert!(serde_json::from_str::<Hash>("\"nope\"").is_err());
        assert!(serde_json::from_str::<Hash>("17").is_err());
    }
}
