//! `y = x·Wᵀ + b` — a dense layer whose weight is `[out, in]` (the PyTorch layout, so
//! checkpoints load in either framework unchanged) — plus any LoRA adapters attached to it.
//!
//! Weights stay fp32; the product runs in the activation's dtype. Feeding a bf16 activation
//! casts the weight on the fly, which is what autocast does, and keeps the gradient flowing to
//! the fp32 weight.

use tch::nn::{self, Init};
use tch::Tensor;

use super::lora::Adapter;

#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    /// Low-rank updates added to the output (see `model::lora`); empty for a plain layer.
    pub(crate) adapters: Vec<Adapter>,
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
        Linear {
            weight,
            bias,
            adapters: Vec::new(),
        }
    }

    /// The layer in inference mode (adapter dropout off).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_t(x, false)
    }

    /// The layer; `train` turns on the adapters' dropout.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let kind = x.kind();
        let y = if kind == self.weight.kind() {
            x.linear(&self.weight, self.bias.as_ref())
        } else {
            let bias = self.bias.as_ref().map(|b| b.to_kind(kind));
            x.linear(&self.weight.to_kind(kind), bias.as_ref())
        };
        let out = self.weight.size()[0];
        self.adapters
            .iter()
            .fold(y, |y, a| y + a.forward(x, out, train))
    }
}
