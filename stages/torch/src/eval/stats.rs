//! Bootstrap standard errors: resample the scored items with replacement, recompute the metric,
//! and take the standard deviation of those recomputations. It needs no formula per metric, so
//! ratios such as bits per byte (total nats over total bytes) get one as easily as means.

use common::rng::{mix64, SplitMix64};

/// The standard error of `metric` over `n` items, from `resamples` bootstrap resamples drawn
/// with `seed`. `metric` gets the resampled item indices (with repeats).
pub fn bootstrap_stderr(
    n: usize,
    resamples: usize,
    seed: u64,
    metric: impl Fn(&[usize]) -> f64,
) -> f64 {
    if n < 2 || resamples < 2 {
        return 0.0;
    }
    let mut rng = SplitMix64::new(mix64(seed));
    let mut picks = vec![0usize; n];
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for p in picks.iter_mut() {
            *p = (rng.next_u64() % n as u64) as usize;
        }
        values.push(metric(&picks));
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64;
    var.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For a mean of 0/1 outcomes the bootstrap error approaches √(p(1−p)/n).
    #[test]
    fn matches_the_binomial_standard_error() {
        let n = 400;
        let hits: Vec<f64> = (0..n).map(|i| if i % 4 == 0 { 1.0 } else { 0.0 }).collect();
        let mean = |idx: &[usize]| idx.iter().map(|&i| hits[i]).sum::<f64>() / idx.len() as f64;
        let se = bootstrap_stderr(n, 2000, 3, mean);
        let exact = (0.25f64 * 0.75 / n as f64).sqrt();
        assert!((se - exact).abs() / exact < 0.1, "{se} vs {exact}");
        assert_eq!(se, bootstrap_stderr(n, 2000, 3, mean), "seeded");
        assert_eq!(bootstrap_stderr(1, 100, 3, mean), 0.0);
    }
}
