//! `y = x·Wᵀ + b` — a dense layer whose weight is `[out, in]` (the PyTorch layout, so
//! checkpoints load in either framework unchanged).
//!
//! Weights stay fp32; the product runs in the activation's dtype. Feeding a bf16 activation
//! casts the weight on the fly, which is what autocast does, and keeps the gradient flowing to
//! the fp32 weight.

use tch::nn::{self, Init};
use tch::Tensor;

#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer at `vs` with weights drawn from N(0, std²) and zero biases (GPT-2 init).
    pub fn new(vs: nn::Path, in_dim: usize, out_dim: usize, bias: bool, std: f64) -> Linear {
        let weight = vs.var(
            "weight",
            &[out_dim as i64, in_dim as i64],
            Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        );
        let bias = bias.then(|| vs.var("bias", &[out_dim as i64], Init::Const(0.0)));
        Linear { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        if kind == self.weight.kind() {
            x.linear(&self.weight, self.bias.as_ref())
        } else {
            let bias = self.bias.as_ref().map(|b| b.to_kind(kind));
            x.linear(&self.weight.to_kind(kind), bias.as_ref())
        }
    }
}
