//! Capability: randomness, seeded when the task must be reproducible.
//!
//! Owns the random sources a guest sees. A cacheable task gets streams derived
//! from its cache key (blake3 in XOF mode, one stream per WASI interface), so
//! a rerun draws the same bytes and `sluice verify` can compare outputs byte
//! for byte. Other tasks keep wasmtime's defaults (OS randomness). It never
//! hands out the seed itself.

use std::convert::Infallible;

use rand_core::TryRng;
use wasmtime_wasi::WasiCtxBuilder;

use super::{Capability, Prepare};

/// An endless deterministic byte stream: blake3's extendable output keyed by a seed.
pub(crate) struct SeededRandom(blake3::OutputReader);

impl SeededRandom {
    pub(crate) fn new(seed: &[u8; 32], purpose: &str) -> SeededRandom {
        let mut h = blake3::Hasher::new_keyed(seed);
        h.update(purpose.as_bytes());
        SeededRandom(h.finalize_xof())
    }
}

impl TryRng for SeededRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

/// The randomness capability: nothing to keep per attempt, the sources live in WASI.
pub(crate) struct Random;

/// How an attempt's random sources are seeded.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// Seed of every random source, for tasks that must be reproducible; `None`: OS randomness.
    pub seed: Option<[u8; 32]>,
}

impl Capability for Random {
    type Grant = Grant;

    fn prepare(grant: Grant, cx: &mut Prepare<'_>) -> Result<Self, String> {
        if let Some(seed) = &grant.seed {
            seed_all(cx.wasi, seed);
        }
        Ok(Random)
    }
}

/// Seed every WASI random interface from `seed`.
fn seed_all(wasi: &mut WasiCtxBuilder, seed: &[u8; 32]) {
    let mut insecure_seed = [0u8; 16];
    SeededRandom::new(seed, "insecure-seed").0.fill(&mut insecure_seed);
    wasi.secure_random(SeededRandom::new(seed, "random"))
        .insecure_random(SeededRandom::new(seed, "insecure-random"))
        .insecure_random_seed(u128::from_le_bytes(insecure_seed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_purposes_differ() {
        let seed = [7u8; 32];
        let draw = |purpose: &str| {
            let mut r = SeededRandom::new(&seed, purpose);
            (r.try_next_u64().unwrap(), r.try_next_u32().unwrap())
        };
        assert_eq!(draw("random"), draw("random"));
        assert_ne!(draw("random"), draw("insecure-random"));
        let mut other = SeededRandom::new(&[8u8; 32], "random");
        assert_ne!(other.try_next_u64().unwrap(), draw("random").0);
    }
}
