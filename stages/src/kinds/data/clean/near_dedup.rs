//! Near-duplicate removal: MinHash signatures over word shingles, grouped with LSH banding.
//!
//! Each document's set of word n-grams gets a MinHash signature of `permutations` values; the
//! chance that two signatures agree in one position is the Jaccard similarity of the two sets.
//! The signature is cut into `bands` bands of `rows` values and documents sharing any band
//! are joined (union-find), so pairs above the threshold meet with high probability and
//! pairs well below it rarely do. Only the band hashes are kept in memory (8 bytes per band
//! per document), never the text.
//!
//! Which member of a group survives must not depend on input order, so groups are resolved
//! after the whole corpus is read: the document with the smallest content hash is kept.

use common::rng::SplitMix64;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use pipelines::NearDedupParams;

/// Fixed seed of the permutations: signatures (and so the result) depend only on the text
/// and the parameters, not on the manifest's seed.
const PERMUTATION_SEED: u64 = 0x6269_6e61_7279_6c6d; // "binarylm"

/// Bands and rows per band for a threshold, and the hash functions of the signature.
pub struct MinHasher {
    pub bands: usize,
    pub rows: usize,
    shingle_words: usize,
    /// Multiply-shift hash `(a·x + b) >> 32` per permutation; `a` odd.
    a: Vec<u64>,
    b: Vec<u64>,
}

impl MinHasher {
    pub fn new(p: &NearDedupParams) -> MinHasher {
        let (bands, rows) = bands_and_rows(p.threshold, p.permutations);
        let n = bands * rows;
        let mut rng = SplitMix64::new(PERMUTATION_SEED);
        let a = (0..n).map(|_| rng.next_u64() | 1).collect();
        let b = (0..n).map(|_| rng.next_u64()).collect();
        MinHasher {
            bands,
            rows,
            shingle_words: p.shingle_words,
            a,
            b,
        }
    }

    /// The band hashes of `text`, `bands` of them; `None` when it has no words (such
    /// documents are never near-duplicates of anything; exact dedup handles them).
    pub fn band_hashes(&self, text: &str) -> Option<Vec<u64>> {
        let lower = text.to_lowercase();
        let words: Vec<u64> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| xxh3_64(w.as_bytes()))
            .collect();
        if words.is_empty() {
            return None;
        }
        let k = self.shingle_words.min(words.len());
        let mut sig = vec![u32::MAX; self.a.len()];
        for window in words.windows(k) {
            let mut x = 0xCBF2_9CE4_8422_2325u64;
            for w in window {
                x = (x ^ w).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
            }
            for ((s, a), b) in sig.iter_mut().zip(&self.a).zip(&self.b) {
                let v = (a.wrapping_mul(x).wrapping_add(*b) >> 32) as u32;
                if v < *s {
                    *s = v;
                }
            }
        }
        let mut bytes = Vec::with_capacity(self.rows * 4);
        Some(
            sig.chunks(self.rows)
                .enumerate()
                .map(|(band, rows)| {
                    bytes.clear();
                    for v in rows {
                        bytes.extend_from_slice(&v.to_le_bytes());
                    }
                    xxh3_64_with_seed(&bytes, band as u64)
                })
                .collect(),
        )
    }
}

/// The (bands, rows) with `bands·rows ≤ permutations` that minimize the probability mass of
/// false positives below `threshold` plus false negatives above it, for the LSH S-curve
/// `P(s) = 1 − (1 − s^rows)^bands` (the choice made by common MinHash LSH libraries).
pub fn bands_and_rows(threshold: f64, permutations: usize) -> (usize, usize) {
    let integrate = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64| -> f64 {
        let steps = 200;
        let h = (hi - lo) / steps as f64;
        (0..steps)
            .map(|i| f(lo + (i as f64 + 0.5) * h) * h)
            .sum::<f64>()
    };
    let mut best = (1, 1, f64::INFINITY);
    for bands in 1..=permutations {
        for rows in 1..=permutations / bands {
            let p = |s: f64| 1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32);
            let fp = integrate(&p, 0.0, threshold);
            let fneg = integrate(&|s: f64| 1.0 - p(s), threshold, 1.0);
            if fp + fneg < best.2 {
                best = (bands, rows, fp + fneg);
            }
        }
    }
    (best.0, best.1)
}

/// Union-find over document positions; the root of a group is its smallest position.
pub struct Groups {
    parent: Vec<u32>,
}

impl Groups {
    pub fn new(n: usize) -> Groups {
        Groups {
            parent: (0..n as u32).collect(),
        }
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let up = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = up;
            x = up;
        }
        x
    }

    pub fn union(&mut self, x: u32, y: u32) {
        let (a, b) = (self.find(x), self.find(y));
        if a != b {
            let (lo, hi) = (a.min(b), a.max(b));
            self.parent[hi as usize] = lo;
        }
    }
}

/// Given each document's band hashes (`None`: no words), in the order in which documents
/// should be preferred, returns for each whether it is a near-duplicate of an earlier one.
pub fn resolve(bands: usize, signatures: &[Option<&[u64]>]) -> Vec<bool> {
    let mut groups = Groups::new(signatures.len());
    let mut column: Vec<(u64, u32)> = Vec::with_capacity(signatures.len());
    for band in 0..bands {
        column.clear();
        column.extend(
            signatures
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (s[band], i as u32))),
        );
        column.sort_unstable();
        for pair in column.windows(2) {
            if pair[0].0 == pair[1].0 {
                groups.union(pair[0].1, pair[1].1);
            }
        }
    }
    (0..signatures.len() as u32)
        .map(|i| groups.find(i) != i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: the permutations (and so which documents count as near-duplicates) must not
    /// change, or cached cleaned corpora would no longer match their fingerprints.
    #[test]
    fn the_permutations_are_pinned() {
        let h = hasher(0.8);
        assert_eq!(h.a.len(), 117);
        assert_eq!(h.a[..2], [0xD24C_3F14_66BA_3BF7, 0xFAD6_CFFC_EB7F_D6BD]);
        assert_eq!(h.b[0], 0xF9EF_DDBD_CF82_CCBB);
        assert_eq!(h.b[116], 0x4DAA_1C4E_5934_0B79);
    }

    fn hasher(threshold: f64) -> MinHasher {
        MinHasher::new(&NearDedupParams {
            threshold,
            ..NearDedupParams::default()
        })
    }

    #[test]
    fn bands_put_the_s_curve_near_the_threshold() {
        for t in [0.5, 0.7, 0.8, 0.9] {
            let (b, r) = bands_and_rows(t, 128);
            assert!(b * r <= 128);
            // The curve's midpoint (1/b)^(1/r) lies close to the threshold.
            let mid = (1.0 / b as f64).powf(1.0 / r as f64);
            assert!((mid - t).abs() < 0.12, "t {t}: b {b} r {r} mid {mid}");
        }
    }

    #[test]
    fn near_copies_collide_and_different_texts_do_not() {
        let h = hasher(0.8);
        let base: String = (0..200).map(|i| format!("word{} ", i * 7 % 113)).collect();
        let edited = base.replacen("word0", "changed", 1);
        let other: String = (0..200).map(|i| format!("term{} ", i * 5 % 97)).collect();
        let sigs: Vec<Vec<u64>> = [&base, &edited, &other]
            .iter()
            .map(|t| h.band_hashes(t).expect("words"))
            .collect();
        let refs: Vec<Option<&[u64]>> = sigs.iter().map(|s| Some(s.as_slice())).collect();
        assert_eq!(resolve(h.bands, &refs), [false, true, false]);
        // Case and punctuation do not matter.
        assert_eq!(h.band_hashes("Hello, World!"), h.band_hashes("hello world"));
        assert_eq!(h.band_hashes(" .. "), None);
    }

    #[test]
    fn groups_keep_their_first_member_transitively() {
        let a = [1u64, 2];
        let b = [1u64, 3];
        let c = [4u64, 3];
        let d = [5u64, 6];
        let sigs = [Some(&a[..]), Some(&b[..]), None, Some(&c[..]), Some(&d[..])];
        assert_eq!(resolve(2, &sigs), [false, true, false, true, false]);
    }
}
