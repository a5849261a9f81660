//! The feed-forward half of a block.
//!
//! - GELU: `proj(gelu(fc(x)))` (exact erf GELU, as nanoGPT's `nn.GELU()`).
//! - SwiGLU: `proj(silu(gate(x)) ⊙ up(x))`.

use pipelines::Mlp as MlpKind;
use tch::nn;
use tch::Tensor;

use super::linear::Linear;

#[derive(Debug)]
pub enum Mlp {
    Gelu {
        fc: Linear,
        proj: Linear,
    },
    SwiGlu {
        gate: Linear,
        up: Linear,
        proj: Linear,
    },
}

impl Mlp {
    /// `proj_std` is the scaled init of the projection back into the residual stream.
    pub fn new(
        vs: nn::Path,
        kind: MlpKind,
        n_embd: usize,
        hidden: usize,
        bias: bool,
        std: f64,
        proj_std: f64,
    ) -> Mlp {
        match kind {
            MlpKind::Gelu => Mlp::Gelu {
                fc: Linear::new(&vs / "fc", n_embd, hidden, bias, std),
                proj: Linear::new(&vs / "proj", hidden, n_embd, bias, proj_std),
            },
            MlpKind::SwiGlu => Mlp::SwiGlu {
                gate: Linear::new(&vs / "gate", n_embd, hidden, bias, std),
                up: Linear::new(&vs / "up", n_embd, hidden, bias, std),
                proj: Linear::new(&vs / "proj", hidden, n_embd, bias, proj_std),
            },
        }
    }

    /// `train` turns on the dropout of any LoRA adapters.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Mlp::Gelu { fc, proj } => proj.forward_t(&fc.forward_t(x, train).gelu("none"), train),
            Mlp::SwiGlu { gate, up, proj } => proj.forward_t(
                &(gate.forward_t(x, train).silu() * up.forward_t(x, train)),
                train,
            ),
        }
    }
}
