//! Seeded random windows: batch `(B, T)` inputs and their next-token targets.
//!
//! Window starts come from a counter-based generator keyed by `(seed, stream, step, micro)`,
//! so the batches of step `s` do not depend on what ran before: a resumed run draws exactly the
//! batches the uninterrupted run would have, with no generator state to carry.

use common::rng::mix64;
use tch::{Device, Tensor};

use super::tokens::TokenSource;

/// A key derived from several counters, each mixed in turn (so `(1, 2)` ≠ `(2, 1)`) with
/// SplitMix64's output function [`mix64`], a strong 64-bit mix, enough for picking window
/// starts.
pub fn key(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x5EED_u64, |acc, &p| mix64(acc ^ mix64(p)))
}

/// Streams of windows that never share keys.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Train = 1,
    Val = 2,
}

/// Draws `(x, y)` batches of `batch` windows of `block` tokens.
pub struct Sampler<'a> {
    pub tokens: &'a dyn TokenSource,
    pub batch: usize,
    pub block: usize,
    pub seed: u64,
    pub stream: Stream,
    /// The positions windows may start at (each with `block + 1` tokens after it: see
    /// [`window_starts`]); `None`: any position.
    pub starts: Option<&'a [usize]>,
}

/// Those of `starts` that a window of `block` inputs and their targets fits after.
pub fn window_starts(starts: &[usize], len: usize, block: usize) -> Vec<usize> {
    starts
        .iter()
        .copied()
        .filter(|&s| s + block < len)
        .collect()
}

impl Sampler<'_> {
    /// How many distinct window starts there are (`len − block`, or the listed starts).
    pub fn starts(&self) -> usize {
        match self.starts {
            Some(list) => list.len(),
            None => self.tokens.len().saturating_sub(self.block),
        }
    }

    /// The batch for `(step, micro)`: inputs and targets, int64 `(B, T)` on `device`.
    pub fn batch(&self, step: u64, micro: u64, device: Device) -> (Tensor, Tensor) {
        let starts = self.starts() as u64;
        let t = self.block;
        let mut window = vec![0i64; t + 1];
        let mut xs = Vec::with_capacity(self.batch * t);
        let mut ys = Vec::with_capacity(self.batch * t);
        for row in 0..self.batch as u64 {
            let k = key(&[self.seed, self.stream as u64, step, micro, row]);
            let pick = (k % starts) as usize;
            let start = self.starts.map_or(pick, |list| list[pick]);
            self.tokens.window(start, &mut window);
            xs.extend_from_slice(&window[..t]);
            ys.extend_from_slice(&window[1..]);
        }
        let shape = [self.batch as i64, t as i64];
        let x = Tensor::from_slice(&xs).view(shape).to_device(device);
        let y = Tensor::from_slice(&ys).view(shape).to_device(device);
        (x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: a run's batches (and a resumed run's) are drawn from these keys.
    #[test]
    fn keys_are_pinned() {
        assert_eq!(key(&[0]), 0xAD9F_769A_E33A_BD7B);
        assert_eq!(key(&[1337, 1, 0, 0, 0]), 0x2E04_AB11_DE7C_BEE6);
        assert_ne!(key(&[1, 2]), key(&[2, 1]));
    }

    /// With document starts given, every window begins at one of them, and the starts a
    /// window would run past the end from are left out.
    #[test]
    fn windows_start_at_the_listed_starts() {
        use crate::train::InMemoryTokens;
        let tokens = InMemoryTokens((0..100u32).collect());
        let docs = [0, 30, 55, 90, 97];
        let starts = window_starts(&docs, tokens.0.len(), 8);
        assert_eq!(starts, vec![0, 30, 55, 90]);
        let sampler = Sampler {
            tokens: &tokens,
            batch: 16,
            block: 8,
            seed: 5,
            stream: Stream::Train,
            starts: Some(&starts),
        };
        let mut seen = std::collections::BTreeSet::new();
        for step in 0..20 {
            let (x, y) = sampler.batch(step, 0, Device::Cpu);
            for row in 0..16 {
                let first = x.int64_value(&[row, 0]);
                assert!(starts.contains(&(first as usize)), "window at {first}");
                assert_eq!(y.int64_value(&[row, 7]), first + 8);
                seen.insert(first);
            }
        }
        assert_eq!(seen.len(), starts.len(), "every start drawn: {seen:?}");
    }
}
