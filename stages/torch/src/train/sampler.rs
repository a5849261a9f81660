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
}

impl Sampler<'_> {
    /// How many distinct window starts there are (`len − block`).
    pub fn starts(&self) -> usize {
        self.tokens.len().saturating_sub(self.block)
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
            let start = (k % starts) as usize;
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
}
