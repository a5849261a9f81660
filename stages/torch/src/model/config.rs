//! The resolved architecture of a GPT: every choice concrete, saved as `config.json` beside
//! the weights so an artifact always describes itself.
//!
//! Manifests give a preset plus overrides ([`pipelines::ModelParams`]); [`ModelConfig::resolve`]
//! turns that and the tokenizer's vocabulary size into this struct and checks that the shapes fit
//! together (heads divide the width, KV heads divide the heads, RoPE needs an even head size).

use pipelines::{Mlp, ModelArchitecture, ModelParams, ModelPreset, Norm, Positions};
use serde::{Deserialize, Serialize};

/// A concrete GPT architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Key/value heads; `n_head / n_kv_head` query heads share each (grouped-query attention).
    pub n_kv_head: usize,
    pub n_embd: usize,
    pub block_size: usize,
    pub mlp_hidden: usize,
    pub positions: Positions,
    pub norm: Norm,
    pub mlp: Mlp,
    pub tied_head: bool,
    pub bias: bool,
    pub dropout: f64,
    pub rope_theta: f64,
    pub norm_eps: f64,
}

/// Why a set of model params does not make a valid architecture.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("model.n_embd ({n_embd}) is not a multiple of model.n_head ({n_head}); pick a head count that divides the width")]
    HeadsDontDivideWidth { n_embd: usize, n_head: usize },
    #[error("model.n_head ({n_head}) is not a multiple of model.n_kv_head ({n_kv_head}); each key/value head must serve the same number of query heads")]
    KvHeadsDontDivideHeads { n_head: usize, n_kv_head: usize },
    #[error("RoPE needs an even head size, but n_embd / n_head = {head_dim}")]
    OddRopeHeadSize { head_dim: usize },
    #[error("model.{key} must be at least 1")]
    Zero { key: &'static str },
    #[error("model.dropout is {0}, outside [0, 1)")]
    Dropout(f64),
}

/// The Llama rule for the SwiGLU hidden width (one definition, in `pipelines`).
pub use pipelines::swiglu_hidden;

impl ModelConfig {
    /// A resolved architecture (presets and override rules live in `pipelines`, which also
    /// checks them when the manifest loads) with the tokenizer's vocabulary.
    pub fn from_architecture(a: ModelArchitecture, vocab_size: usize) -> ModelConfig {
        ModelConfig {
            vocab_size,
            n_layer: a.n_layer,
            n_head: a.n_head,
            n_kv_head: a.n_kv_head,
            n_embd: a.n_embd,
            block_size: a.block_size,
            mlp_hidden: a.mlp_hidden,
            positions: a.positions,
            norm: a.norm,
            mlp: a.mlp,
            tied_head: a.tied_head,
            bias: a.bias,
            dropout: a.dropout,
            rope_theta: a.rope_theta,
            norm_eps: a.norm_eps,
        }
    }

    /// The preset's architecture with the given vocabulary.
    pub fn preset(preset: ModelPreset, vocab_size: usize) -> ModelConfig {
        ModelConfig::from_architecture(preset.architecture(), vocab_size)
    }

    /// The preset named in `params` with its overrides applied, checked again here (a second
    /// line behind the manifest's load-time checks: a job file can be written by hand).
    pub fn resolve(params: &ModelParams, vocab_size: usize) -> Result<ModelConfig, ConfigError> {
        let c = ModelConfig::from_architecture(params.resolve(), vocab_size);
        c.check()?;
        Ok(c)
    }

    /// Checks that the shapes fit together.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_kv_head", self.n_kv_head),
            ("n_embd", self.n_embd),
            ("block_size", self.block_size),
            ("mlp_hidden", self.mlp_hidden),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero { key });
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(ConfigError::HeadsDontDivideWidth {
                n_embd: self.n_embd,
                n_head: self.n_head,
            });
        }
        if !self.n_head.is_multiple_of(self.n_kv_head) {
            return Err(ConfigError::KvHeadsDontDivideHeads {
                n_head: self.n_head,
                n_kv_head: self.n_kv_head,
            });
        }
        if self.positions == Positions::Rope && !self.head_dim().is_multiple_of(2) {
            return Err(ConfigError::OddRopeHeadSize {
                head_dim: self.head_dim(),
            });
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ConfigError::Dropout(self.dropout));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Number of trainable parameters, from the formula (checked against the built model in
    /// tests). A tied head adds nothing; a learned position table adds `block_size·C`.
    pub fn param_count(&self) -> usize {
        let c = self.n_embd;
        let hd = self.head_dim();
        let h = self.mlp_hidden;
        let b = usize::from(self.bias);
        let norm = match self.norm {
            Norm::LayerNorm => c + b * c,
            Norm::RmsNorm => c,
        };
        let qkv_out = (self.n_head + 2 * self.n_kv_head) * hd;
        let attn = c * qkv_out + b * qkv_out + c * c + b * c;
        let mlp = match self.mlp {
            Mlp::Gelu => 2 * c * h + b * (h + c),
            Mlp::SwiGlu => 3 * c * h + b * (2 * h + c),
        };
        let per_layer = 2 * norm + attn + mlp;
        let embeddings = self.vocab_size * c;
        let positions = match self.positions {
            Positions::Learned => self.block_size * c,
            Positions::Rope => 0,
        };
        let head = if self.tied_head {
            0
        } else {
            self.vocab_size * c
        };
        embeddings + positions + self.n_layer * per_layer + norm + head
    }

    /// Parameters that take part in the matrix products of every token: all but the position
    /// table (and, untied, the input embedding, which is a lookup). nanoGPT's `N` in 6N.
    pub fn flops_params(&self) -> usize {
        let mut n = self.param_count();
        if self.positions == Positions::Learned {
            n -= self.block_size * self.n_embd;
        }
        if !self.tied_head {
            n -= self.vocab_size * self.n_embd;
        }
        n
    }

    /// Training FLOPs per token at context `t` (forward + backward), nanoGPT's estimate
    /// `6N + 12·L·H·Q·T` (the second term is attention over the context).
    pub fn flops_per_token(&self, t: usize) -> f64 {
        let n = self.flops_params() as f64;
        let (l, h, q) = (
            self.n_layer as f64,
            self.n_head as f64,
            self.head_dim() as f64,
        );
        6.0 * n + 12.0 * l * h * q * t as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_small_has_124m_parameters() {
        let c = ModelConfig::preset(ModelPreset::Gpt2Small, 50257);
        // 124,439,808: GPT-2 small as published (tied head, learned positions, biases).
        assert_eq!(c.param_count(), 124_439_808);
    }

    #[test]
    fn overrides_apply_and_hidden_width_follows() {
        let params = ModelParams {
            n_embd: Some(256),
            n_head: Some(8),
            ..ModelParams::default()
        };
        let c = ModelConfig::resolve(&params, 100).unwrap();
        assert_eq!(
            (c.n_embd, c.n_head, c.n_kv_head, c.mlp_hidden),
            (256, 8, 8, 1024)
        );
        let swiglu = ModelParams {
            mlp: Some(Mlp::SwiGlu),
            ..ModelParams::default()
        };
        assert_eq!(ModelConfig::resolve(&swiglu, 100).unwrap().mlp_hidden, 384);
        assert_eq!(swiglu_hidden(512), 1408);
    }

    #[test]
    fn bad_shapes_are_named() {
        let p = ModelParams {
            n_head: Some(3),
            ..ModelParams::default()
        };
        let e = ModelConfig::resolve(&p, 100).unwrap_err();
        assert!(
            e.to_string().contains("not a multiple of model.n_head (3)"),
            "{e}"
        );
        let p = ModelParams {
            preset: ModelPreset::LlamaSmall,
            n_kv_head: Some(3),
            ..ModelParams::default()
        };
        assert!(matches!(
            ModelConfig::resolve(&p, 100),
            Err(ConfigError::KvHeadsDontDivideHeads { .. })
        ));
    }
}
