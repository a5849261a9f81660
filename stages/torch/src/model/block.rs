//! A pre-norm transformer block: `x += attn(norm₁(x)); x += mlp(norm₂(x))`.

use tch::nn;
use tch::{Kind, Tensor};

use super::attention::{Attention, AttnInput};
use super::config::ModelConfig;
use super::mlp::Mlp;
use super::norm::Norm;

#[derive(Debug)]
pub struct Block {
    norm1: Norm,
    pub(crate) attn: Attention,
    norm2: Norm,
    pub(crate) mlp: Mlp,
    dropout: f64,
}

impl Block {
    pub fn new(vs: nn::Path, cfg: &ModelConfig, std: f64, proj_std: f64) -> Block {
        Block {
            norm1: Norm::new(&vs / "norm1", cfg.norm, cfg.n_embd, cfg.bias, cfg.norm_eps),
            attn: Attention::new(
                &vs / "attn",
                cfg.n_embd,
                cfg.n_head,
                cfg.n_kv_head,
                cfg.bias,
                cfg.dropout,
                std,
                proj_std,
            ),
            norm2: Norm::new(&vs / "norm2", cfg.norm, cfg.n_embd, cfg.bias, cfg.norm_eps),
            mlp: Mlp::new(
                &vs / "mlp",
                cfg.mlp,
                cfg.n_embd,
                cfg.mlp_hidden,
                cfg.bias,
                std,
                proj_std,
            ),
            dropout: cfg.dropout,
        }
    }

    /// The MLP half, shared by every attention variant. `compute` is the matmul dtype; the
    /// residual stream `x` stays fp32.
    fn mlp_half(&self, x: Tensor, compute: Kind, train: bool) -> Tensor {
        let h = self.norm2.forward(&x).to_kind(compute);
        let m = self.mlp.forward(&h, train).dropout(self.dropout, train);
        x + m.to_kind(Kind::Float)
    }

    pub fn forward(&self, x: &Tensor, input: &AttnInput, compute: Kind) -> Tensor {
        let h = self.norm1.forward(x).to_kind(compute);
        let a = self.attn.forward(&h, input);
        self.mlp_half(x + a.to_kind(Kind::Float), compute, input.train)
    }

    /// This block's attention probabilities `(B, nh, T, T)` for the residual stream `x`
    /// entering it (see [`Attention::weights`]).
    pub fn attention_weights(&self, x: &Tensor, input: &AttnInput, compute: Kind) -> Tensor {
        let h = self.norm1.forward(x).to_kind(compute);
        self.attn.weights(&h, input)
    }

    pub fn forward_cached(
        &self,
        x: &Tensor,
        input: &AttnInput,
        compute: Kind,
        keys: &mut Tensor,
        values: &mut Tensor,
        past: i64,
    ) -> Tensor {
        let h = self.norm1.forward(x).to_kind(compute);
        let a = self.attn.forward_cached(&h, input, keys, values, past);
        self.mlp_half(x + a.to_kind(Kind::Float), compute, false)
    }

    pub fn decode_batch(
        &self,
        x: &Tensor,
        input: &AttnInput,
        compute: Kind,
        keys: &mut [&mut Tensor],
        values: &mut [&mut Tensor],
        lens: &[i64],
    ) -> Tensor {
        let h = self.norm1.forward(x).to_kind(compute);
        let a = self.attn.decode_batch(&h, input, keys, values, lens);
        self.mlp_half(x + a.to_kind(Kind::Float), compute, false)
    }
}
