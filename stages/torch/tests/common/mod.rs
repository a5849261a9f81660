//! Shared helpers for the model tests: small configs covering every architecture option.

#![allow(dead_code)]

use pipelines::{Mlp, ModelPreset, Norm, Positions};
use stages_torch::model::ModelConfig;

/// Small models, one per combination the parity test must cover: GPT-2 style, Llama style
/// (RoPE, RMSNorm, SwiGLU, GQA, untied, no bias) and two mixes.
pub fn configs() -> Vec<(&'static str, ModelConfig)> {
    let base = ModelConfig {
        n_layer: 2,
        n_head: 4,
        n_kv_head: 4,
        n_embd: 32,
        block_size: 16,
        mlp_hidden: 128,
        ..ModelConfig::preset(ModelPreset::Tiny, 50)
    };
    vec![
        ("gpt2", base.clone()),
        (
            "llama",
            ModelConfig {
                n_kv_head: 2,
                mlp_hidden: 96,
                positions: Positions::Rope,
                norm: Norm::RmsNorm,
                mlp: Mlp::SwiGlu,
                tied_head: false,
                bias: false,
                ..base.clone()
            },
        ),
        (
            "learned-rmsnorm-gelu-gqa-untied",
            ModelConfig {
                n_kv_head: 1,
                norm: Norm::RmsNorm,
                tied_head: false,
                bias: true,
                ..base.clone()
            },
        ),
        (
            "rope-layernorm-swiglu-tied-nobias",
            ModelConfig {
                n_kv_head: 2,
                positions: Positions::Rope,
                mlp: Mlp::SwiGlu,
                bias: false,
                ..base
            },
        ),
    ]
}
