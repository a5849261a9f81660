//! Token and learned position embeddings: rows of a `[rows, C]` table picked by index.

use tch::nn::{self, Init};
use tch::Tensor;

#[derive(Debug)]
pub struct Embedding {
    pub weight: Tensor,
}

impl Embedding {
    pub fn new(vs: nn::Path, rows: usize, dim: usize, std: f64) -> Embedding {
        let weight = vs.var(
            "weight",
            &[rows as i64, dim as i64],
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        );
        Embedding { weight }
    }

    /// `(…)` int64 indices → `(…, C)`.
    pub fn forward(&self, idx: &Tensor) -> Tensor {
        Tensor::embedding(&self.weight, idx, -1, false, false)
    }
}
