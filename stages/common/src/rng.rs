//! SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014),
//! the one seeded generator of binarylm.
//!
//! Everything seeded in binarylm draws from it: the synthetic corpora, the MinHash
//! permutations of near-duplicate removal, the training window picks, and the tokens sampled
//! by `generate` and the server. It is fully specified by the few lines below, so its outputs
//! are stable across versions, platforms and builds: a seed gives the same corpus, the same
//! batches and the same text everywhere, and content fingerprints of seeded outputs stay
//! valid. A generator from a crate could change its stream in any release; this one never
//! changes. **Any change to this file's arithmetic changes cached outputs**; the tests below
//! pin it.
//!
//! The generator, with `γ = 0x9E37_79B9_7F4A_7C15` (2⁶⁴/φ, odd) and all arithmetic mod 2⁶⁴:
//!
//! ```text
//! state ← state + γ
//! z ← state
//! z ← (z ⊕ (z ≫ 30)) · 0xBF58_476D_1CE4_E5B9
//! z ← (z ⊕ (z ≫ 27)) · 0x94D0_49BB_1331_11EB
//! output z ⊕ (z ≫ 31)
//! ```
//!
//! It is not cryptographic; it is a fast, well-mixed 64-bit stream, enough for sampling,
//! shuffling and hashing counters.

/// The golden gamma `γ`: the increment of the state per output.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output for the state `z`: `z + γ` through the two xor-shift-multiply rounds
/// and a final xor-shift. `mix64(seed)` is the first output of `SplitMix64::new(seed)`.
///
/// Used on its own as a keyed hash of a counter: a strong 64-bit mix where a value must be a
/// pure function of its key (a counter-based generator) rather than of a stream's history.
pub const fn mix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 stream: the state advances by `γ` per output and each output is
/// [`mix64`] of the previous state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The stream whose initial state is `seed`.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let z = self.state;
        self.state = z.wrapping_add(GOLDEN_GAMMA);
        mix64(z)
    }

    /// Uniform in [0, 1): the top 53 bits of [`next_u64`](Self::next_u64) (the precision of
    /// an `f64`) scaled by 2⁻⁵³, so every value is exact and equally likely.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(seed: u64) -> [u64; 4] {
        let mut r = SplitMix64::new(seed);
        [r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()]
    }

    /// Pinned: these values are in every seeded artifact users have cached.
    #[test]
    fn the_streams_of_seeds_0_and_1337_are_fixed() {
        assert_eq!(
            first(0),
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F,
                0xF88B_B8A8_724C_81EC,
            ]
        );
        assert_eq!(
            first(1337),
            [
                0xB6A8_A9B3_13CA_A00B,
                0xCB7F_284B_67D6_05C9,
                0x3440_FCCF_5408_2B5A,
                0x7702_6DC1_FEEF_C262,
            ]
        );
    }

    #[test]
    fn uniforms_are_the_top_53_bits() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_f64(), 0.8833108082136426);
        assert_eq!(r.next_f64(), 0.43152799704850997);
        assert_eq!(r.next_f64(), 0.026433771592597743);
        let mut r = SplitMix64::new(1337);
        assert_eq!(r.next_f64(), 0.7135110914421525);
        assert_eq!(r.next_f64(), 0.794909017953465);
        assert_eq!(r.next_f64(), 0.20411663114285317);
        let mut r = SplitMix64::new(u64::MAX);
        assert!((0..10_000)
            .map(|_| r.next_f64())
            .all(|u| (0.0..1.0).contains(&u)));
    }

    #[test]
    fn mix64_is_the_output_function() {
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix64(1337), 0xB6A8_A9B3_13CA_A00B);
        assert_eq!(mix64(u64::MAX), 0xE4D9_7177_1B65_2C20);
        let mut r = SplitMix64::new(42);
        for k in 0..100u64 {
            assert_eq!(
                r.next_u64(),
                mix64(42u64.wrapping_add(k.wrapping_mul(GOLDEN_GAMMA)))
            );
        }
    }
}
