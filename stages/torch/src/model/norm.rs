//! Normalisation over the channel dimension, always computed in fp32.
//!
//! - LayerNorm: `(x − mean) / sqrt(var + ε) · γ + β` (β only with biases).
//! - RMSNorm: `x / sqrt(mean(x²) + ε) · γ`.

use pipelines::Norm as NormKind;
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

#[derive(Debug)]
pub struct Norm {
    kind: NormKind,
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
    dim: i64,
}

impl Norm {
    pub fn new(vs: nn::Path, kind: NormKind, dim: usize, bias: bool, eps: f64) -> Norm {
        let weight = vs.var("weight", &[dim as i64], Init::Const(1.0));
        // RMSNorm has no shift, whatever `bias` says.
        let bias = (bias && kind == NormKind::LayerNorm)
            .then(|| vs.var("bias", &[dim as i64], Init::Const(0.0)));
        Norm {
            kind,
            weight,
            bias,
            eps,
            dim: dim as i64,
        }
    }

    /// Normalises `x` (any dtype) in fp32 and returns fp32.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = x.to_kind(Kind::Float);
        match self.kind {
            NormKind::LayerNorm => x.layer_norm(
                [self.dim],
                Some(&self.weight),
                self.bias.as_ref(),
                self.eps,
                true,
            ),
            NormKind::RmsNorm => {
                let ms = x.square().mean_dim(-1, true, Kind::Float);
                x * (ms + self.eps).rsqrt() * &self.weight
            }
        }
    }
}
