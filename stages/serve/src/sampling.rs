//! Turning a row of logits into the next token: temperature, top-k, nucleus (top-p), drawn
//! with the seeded [`SplitMix64`] (stable across versions and platforms, so a request with a
//! `seed` samples the same tokens on every server build), and the log-probabilities the API
//! reports.
//!
//! Reported log-probabilities are always those of the model's own distribution (log-softmax of
//! the raw logits), not of the temperature-scaled or truncated one: a client scoring text wants
//! the model's probabilities, whatever sampling settings it generates with.

use common::rng::SplitMix64;

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax); otherwise logits are divided by it.
    pub temperature: f32,
    /// Keep the smallest set of most likely tokens whose probability sums to at least this.
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 keeps all.
    pub top_k: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
        }
    }
}

/// A non-finite logit (NaN from a broken model) must never win: it counts as impossible.
fn clean(x: f32) -> f32 {
    if x.is_nan() {
        f32::NEG_INFINITY
    } else {
        x
    }
}

/// log-softmax of `logits`, computed in f64 for stability.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits
        .iter()
        .map(|&x| clean(x))
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    if max == f64::NEG_INFINITY {
        // Every token impossible: report a uniform distribution rather than NaNs.
        let uniform = -(logits.len() as f64).ln() as f32;
        return vec![uniform; logits.len()];
    }
    let sum: f64 = logits.iter().map(|&x| (clean(x) as f64 - max).exp()).sum();
    let log_z = max + sum.ln();
    logits
        .iter()
        .map(|&x| (clean(x) as f64 - log_z) as f32)
        .collect()
}

/// The `n` most likely tokens as (id, logprob), most likely first; ties go to the lower id so
/// the answer is deterministic.
pub fn top_n(logprobs: &[f32], n: usize) -> Vec<(u32, f32)> {
    let n = n.min(logprobs.len());
    if n == 0 {
        return Vec::new();
    }
    let mut ids: Vec<u32> = (0..logprobs.len() as u32).collect();
    let order = |a: &u32, b: &u32| {
        logprobs[*b as usize]
            .total_cmp(&logprobs[*a as usize])
            .then(a.cmp(b))
    };
    if n < ids.len() {
        ids.select_nth_unstable_by(n - 1, order);
        ids.truncate(n);
    }
    ids.sort_by(order);
    ids.into_iter().map(|i| (i, logprobs[i as usize])).collect()
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &x) in logits.iter().enumerate() {
        if clean(x) > clean(logits[best]) {
            best = i;
        }
    }
    best as u32
}

/// Picks the next token from one row of logits.
pub fn sample(logits: &[f32], params: &SamplingParams, rng: &mut SplitMix64) -> u32 {
    if params.temperature <= 0.0 || params.top_k == 1 {
        return argmax(logits);
    }
    let inv_t = 1.0 / params.temperature as f64;
    let mut cand: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, clean(x) as f64 * inv_t))
        .filter(|(_, x)| x.is_finite())
        .collect();
    if cand.is_empty() {
        return argmax(logits);
    }
    let desc = |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if params.top_k > 0 && params.top_k < cand.len() {
        cand.select_nth_unstable_by(params.top_k - 1, desc);
        cand.truncate(params.top_k);
    }
    let truncate_p = params.top_p < 1.0;
    if truncate_p {
        cand.sort_by(desc);
    }
    let max = cand.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    let mut weights: Vec<f64> = cand.iter().map(|c| (c.1 - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    if truncate_p {
        // Keep the shortest prefix (in descending order) reaching top_p of the mass; the most
        // likely token always stays.
        let target = params.top_p as f64 * total;
        let mut acc = 0.0;
        let mut keep = weights.len();
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            if acc >= target {
                keep = i + 1;
                break;
            }
        }
        weights.truncate(keep);
        cand.truncate(keep);
    }
    let total: f64 = weights.iter().sum();
    let mut u = rng.next_f64() * total;
    for (c, w) in cand.iter().zip(&weights) {
        if u < *w {
            return c.0;
        }
        u -= w;
    }
    // Rounding can leave u a hair above the last weight.
    cand[cand.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_normalizes_and_ignores_nan() {
        let lp = log_softmax(&[1.0, 2.0, f32::NAN, 3.0]);
        let sum: f64 = lp.iter().map(|&x| (x as f64).exp()).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{sum}");
        assert_eq!(lp[2], f32::NEG_INFINITY);
        assert!(lp[3] > lp[1] && lp[1] > lp[0]);
    }

    #[test]
    fn top_n_orders_by_probability_then_id() {
        assert_eq!(
            top_n(&[-1.0, -0.5, -0.5, -3.0], 3),
            vec![(1, -0.5), (2, -0.5), (0, -1.0)]
        );
        assert_eq!(top_n(&[-1.0], 5), vec![(0, -1.0)]);
        assert!(top_n(&[-1.0], 0).is_empty());
    }

    #[test]
    fn greedy_is_argmax() {
        let p = SamplingParams {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(sample(&[0.1, 5.0, 4.9], &p, &mut SplitMix64::new(1)), 1);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let logits = [0.0, 1.0, 0.5, 0.9];
        for seed in 0..50 {
            let k1 = SamplingParams {
                top_k: 1,
                ..Default::default()
            };
            assert_eq!(sample(&logits, &k1, &mut SplitMix64::new(seed)), 1);
            let p0 = SamplingParams {
                top_p: 1e-6,
                ..Default::default()
            };
            assert_eq!(sample(&logits, &p0, &mut SplitMix64::new(seed)), 1);
        }
    }

    #[test]
    fn top_k_restricts_the_support() {
        let logits = [3.0, 2.9, 0.0, -1.0, 2.8];
        let p = SamplingParams {
            top_k: 2,
            ..Default::default()
        };
        let mut rng = SplitMix64::new(7);
        let mut seen = [0usize; 5];
        for _ in 0..2000 {
            seen[sample(&logits, &p, &mut rng) as usize] += 1;
        }
        assert_eq!(seen[2] + seen[3] + seen[4], 0, "{seen:?}");
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }

    #[test]
    fn sampling_follows_the_distribution() {
        // p = softmax([ln 1, ln 3]) = [0.25, 0.75]
        let logits = [0.0f32, 3f32.ln()];
        let p = SamplingParams::default();
        let mut rng = SplitMix64::new(42);
        let draws = 20_000;
        let ones = (0..draws)
            .filter(|_| sample(&logits, &p, &mut rng) == 1)
            .count();
        let freq = ones as f64 / draws as f64;
        assert!((freq - 0.75).abs() < 0.02, "{freq}");
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let p = SamplingParams::default();
        let run = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..20)
                .map(|_| sample(&logits, &p, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        // Pinned: a request's `seed` must sample the same tokens on every server build.
        assert_eq!(run(3)[..8], [4, 35, 26, 3, 6, 28, 4, 40]);
    }
}
