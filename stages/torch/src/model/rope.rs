//! Rotary position embeddings (RoPE).
//!
//! Channel pair `(x_i, x_{i+d/2})` of a head at position `p` is rotated by the angle
//! `p · θ^(−2i/d)`:
//! `x'_i = x_i·cos − x_{i+d/2}·sin`, `x'_{i+d/2} = x_{i+d/2}·cos + x_i·sin`
//! (the "rotate half" layout of GPT-NeoX and Hugging Face Llama). Attention scores then depend
//! only on the distance between positions.

use tch::{Device, Kind, Tensor};

#[derive(Debug)]
pub struct Rope {
    /// `[block_size, head_dim/2]`, fp32.
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    pub fn new(head_dim: usize, block_size: usize, theta: f64, device: Device) -> Rope {
        let half = (head_dim / 2) as i64;
        let inv_freq = Tensor::arange(half, (Kind::Float, device))
            .multiply_scalar(-2.0 / head_dim as f64 * theta.ln())
            .exp(); // θ^(−2i/d)
        let pos = Tensor::arange(block_size as i64, (Kind::Float, device));
        let angles = pos.outer(&inv_freq); // (T, d/2)
        Rope {
            cos: angles.cos(),
            sin: angles.sin(),
        }
    }

    /// Rotates `x` of shape `(B, H, T, D)` whose tokens sit at `positions`: `(T,)` shared by the
    /// batch or `(B, T)` per sequence (continuous batching).
    pub fn apply(&self, x: &Tensor, positions: &Tensor) -> Tensor {
        let (cos, sin) = if positions.dim() == 1 {
            // (T, D/2) → broadcast over (B, H)
            (
                self.cos.index_select(0, positions),
                self.sin.index_select(0, positions),
            )
        } else {
            // (B, T, D/2) → (B, 1, T, D/2)
            let flat = positions.reshape([-1]);
            let shape = [positions.size()[0], 1, positions.size()[1], -1];
            (
                self.cos.index_select(0, &flat).reshape(shape),
                self.sin.index_select(0, &flat).reshape(shape),
            )
        };
        let kind = x.kind();
        let (cos, sin) = (cos.to_kind(kind), sin.to_kind(kind));
        let half = x.size()[3] / 2;
        let x1 = x.narrow(3, 0, half);
        let x2 = x.narrow(3, half, half);
        Tensor::cat(&[&x1 * &cos - &x2 * &sin, &x2 * &cos + &x1 * &sin], 3)
    }
}
