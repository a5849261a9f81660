//! The order in which fine-tuning visits its items (packed rows, preference pairs): a fresh
//! seeded shuffle every epoch, indexed by a global counter, so the items of step `s` follow
//! from `(seed, s)` alone and a resumed run draws what the uninterrupted one would have.

use common::rng::SplitMix64;

use super::sampler::key;

/// Items `0..rows` in a seeded order that changes every epoch.
pub struct RowOrder {
    seed: u64,
    rows: usize,
    epoch: Option<(u64, Vec<usize>)>,
}

impl RowOrder {
    pub fn new(seed: u64, rows: usize) -> RowOrder {
        RowOrder {
            seed,
            rows,
            epoch: None,
        }
    }

    /// The row visited `n`-th (from 0) since the start of training.
    pub fn row(&mut self, n: u64) -> usize {
        let rows = self.rows as u64;
        let epoch = n / rows;
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order: Vec<usize> = (0..self.rows).collect();
            let mut rng = SplitMix64::new(key(&[self.seed, SHUFFLE_STREAM, epoch]));
            // Fisher–Yates.
            for i in (1..order.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            self.epoch = Some((epoch, order));
        }
        let (_, order) = self.epoch.as_ref().expect("set above");
        order[(n % rows) as usize]
    }
}

/// Key stream of the epoch shuffles (pretrain's window streams are 1–3).
const SHUFFLE_STREAM: u64 = 11;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_visits_every_row_once_in_a_seeded_order() {
        let mut order = RowOrder::new(5, 7);
        let first: Vec<usize> = (0..7).map(|n| order.row(n)).collect();
        let second: Vec<usize> = (7..14).map(|n| order.row(n)).collect();
        for epoch in [&first, &second] {
            let mut sorted = epoch.clone();
            sorted.sort();
            assert_eq!(sorted, (0..7).collect::<Vec<_>>());
        }
        assert_ne!(first, second);
        // Drawn again out of order (a resumed run), the same rows come back.
        let mut again = RowOrder::new(5, 7);
        assert_eq!(again.row(9), second[2]);
        assert_eq!(again.row(3), first[3]);
    }
}
