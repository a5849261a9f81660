//! AdamW (decoupled weight decay), written out so its state can be checkpointed.
//!
//! For each parameter `p` with gradient `g`, at step `t` (from 1):
//! ```text
//! p ← p·(1 − lr·wd)                   only for matrices and embeddings (dim ≥ 2)
//! m ← β1·m + (1 − β1)·g
//! v ← β2·v + (1 − β2)·g²
//! p ← p − lr/(1 − β1ᵗ) · m / (√v/√(1 − β2ᵗ) + ε)
//! ```
//! the same update as `torch.optim.AdamW`. Biases and norm gains are never decayed: shrinking
//! them toward zero has no regularising meaning.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

struct Param {
    name: String,
    value: Tensor,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

pub struct AdamW {
    params: Vec<Param>,
    cfg: AdamWConfig,
    /// Updates applied so far.
    pub step: u64,
}

impl AdamW {
    /// An optimizer over every trainable variable of `vs`, in name order.
    pub fn new(vs: &VarStore, cfg: AdamWConfig) -> AdamW {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, value)| Param {
                decay: value.dim() >= 2,
                m: value.zeros_like(),
                v: value.zeros_like(),
                name,
                value,
            })
            .collect();
        AdamW {
            params,
            cfg,
            step: 0,
        }
    }

    /// Names of the parameters that get weight decay.
    pub fn decayed(&self) -> Vec<&str> {
        self.params
            .iter()
            .filter(|p| p.decay)
            .map(|p| p.name.as_str())
            .collect()
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            let mut g = p.value.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// The global L2 norm of the gradients, as a 0-d tensor on the device (no sync).
    pub fn grad_norm(&self) -> Tensor {
        let norms: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| p.value.grad())
            .filter(|g| g.defined())
            .map(|g| g.norm().to_kind(Kind::Float))
            .collect();
        Tensor::stack(&norms, 0).norm()
    }

    /// Scales the gradients so their global norm is at most `max_norm` (as
    /// `torch.nn.utils.clip_grad_norm_`), returning the norm before clipping. Stays on the
    /// device: reading the returned tensor is what synchronises.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Tensor {
        let _guard = tch::no_grad_guard();
        let total = self.grad_norm();
        let coef = ((&total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
        for p in &mut self.params {
            let mut g = p.value.grad();
            if g.defined() {
                let _ = g.g_mul_(&coef);
            }
        }
        total
    }

    /// One update at learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let t = self.step as f64;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.cfg;
        let step_size = lr / (1.0 - beta1.powf(t));
        let bc2_sqrt = (1.0 - beta2.powf(t)).sqrt();
        for p in &mut self.params {
            let g = p.value.grad();
            if !g.defined() {
                continue;
            }
            if p.decay && weight_decay != 0.0 {
                let _ = p.value.g_mul_scalar_(1.0 - lr * weight_decay);
            }
            let _ = p.m.lerp_(&g, 1.0 - beta1);
            let _ = p.v.g_mul_scalar_(beta2);
            let _ = p.v.addcmul_(&g, &(&g * (1.0 - beta2)));
            let denom = (p.v.sqrt() / bc2_sqrt) + eps;
            let _ = p.value.addcdiv_(&(&p.m * -step_size), &denom);
        }
    }

    /// The moment estimates as named tensors (`m.<param>`, `v.<param>`), for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for p in &self.params {
            out.push((format!("m.{}", p.name), p.m.shallow_clone()));
            out.push((format!("v.{}", p.name), p.v.shallow_clone()));
        }
        out
    }

    /// Restores the moments written by [`AdamW::state`] and the step count.
    pub fn load_state(&mut self, tensors: Vec<(String, Tensor)>, step: u64) -> Result<(), String> {
        let map: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
        let _guard = tch::no_grad_guard();
        for p in &mut self.params {
            for (prefix, dst) in [("m", &mut p.m), ("v", &mut p.v)] {
                let key = format!("{prefix}.{}", p.name);
                let src = map
                    .get(&key)
                    .ok_or_else(|| format!("optimizer state has no `{key}`"))?;
                if src.size() != dst.size() {
                    return Err(format!(
                        "optimizer state `{key}` has shape {:?}, the model needs {:?}",
                        src.size(),
                        dst.size()
                    ));
                }
                dst.copy_(src);
            }
        }
        self.step = step;
        Ok(())
    }
}
