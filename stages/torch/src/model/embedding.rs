//! Token and learned position embeddings: rows of a `[rows, C]` table picked by index.

use tch::nn::{self, Init};
use tch::Tensor;

#[derive(Debug)]
pub struct Embedding {
    pub weight: Tensor,
    /// Rows trained apart from a frozen `weight` (LoRA's chat-marker rows): the table used is
    /// `weight` with these rows replaced.
    pub rows: Option<TrainedRows>,
}

/// Replacement rows of an embedding table: `values[i]` stands in for row `ids[i]`.
#[derive(Debug)]
pub struct TrainedRows {
    /// `[k]` int64.
    pub ids: Tensor,
    /// `[k, C]`, trainable.
    pub values: Tensor,
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
        Embedding { weight, rows: None }
    }

    /// The table in use: `weight`, or a copy of it with the trained rows put in (so gradients
    /// reach those rows and not the frozen table).
    pub fn table(&self) -> Tensor {
        match &self.rows {
            None => self.weight.shallow_clone(),
            Some(r) => self
                .weight
                .index_put(&[Some(r.ids.shallow_clone())], &r.values, false),
        }
    }

    /// `(…)` int64 indices → `(…, C)`.
    pub fn forward(&self, idx: &Tensor) -> Tensor {
        Tensor::embedding(&self.table(), idx, -1, false, false)
    }
}
