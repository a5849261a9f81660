//! The Hugging Face layout of a model: `config.json` for `GPT2LMHeadModel` or
//! `LlamaForCausalLM`, and the weights under those classes' names and shapes.
//!
//! GPT-2 (`transformer.*`) stores its linear layers as `Conv1D`, weight `[in, out]`: ours are
//! `[out, in]`, so each is transposed. Its attention is one `c_attn` of `[q | k | v]` columns
//! with as many key/value heads as query heads, so a grouped-query model's key and value heads
//! are repeated (head `h` reads KV head `h / (n_head / n_kv_head)`, as
//! `scaled_dot_product_attention` does with `enable_gqa`): the same function, more weights. A
//! model without biases gets zero biases, which GPT-2 always has.
//!
//! Llama (`model.*`) keeps `[out, in]` and separate `q_proj`/`k_proj`/`v_proj`, which are row
//! ranges of our fused `qkv`. Its RoPE rotates half-splits of each head (`rotate_half`), as
//! ours does, so no permutation of the rows is needed. Biases map to `attention_bias` and
//! `mlp_bias`; RMSNorm has none either way.

use pipelines::ExportArchitecture;
use serde_json::{json, Value};
use tch::{Kind, Tensor};

use crate::model::ModelConfig;

use super::{ExportError, Weights};

/// Token ids `config.json` and `generation_config.json` name.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    /// The end-of-document token.
    pub eos: Option<u32>,
}

/// `config.json` for `arch`. Every number that changes the function is set explicitly (none is
/// left to a class default that could change between `transformers` versions).
pub fn config(cfg: &ModelConfig, arch: ExportArchitecture, ids: &SpecialIds) -> Value {
    let mut c = match arch {
        ExportArchitecture::Gpt2 => json!({
            "model_type": "gpt2",
            "vocab_size": cfg.vocab_size,
            "n_positions": cfg.block_size,
            "n_embd": cfg.n_embd,
            "n_layer": cfg.n_layer,
            "n_head": cfg.n_head,
            "n_inner": cfg.mlp_hidden,
            // The exact (erf) GELU, as ours; GPT-2's own checkpoints use the tanh approximation
            // (`gelu_new`).
            "activation_function": "gelu",
            "layer_norm_epsilon": cfg.norm_eps,
            // softmax(q·kᵀ/√d): scaled by the head size, not by the layer index.
            "scale_attn_weights": true,
            "scale_attn_by_inverse_layer_idx": false,
            "reorder_and_upcast_attn": false,
            "resid_pdrop": cfg.dropout,
            "embd_pdrop": cfg.dropout,
            "attn_pdrop": cfg.dropout,
        }),
        ExportArchitecture::Llama => json!({
            "model_type": "llama",
            "vocab_size": cfg.vocab_size,
            "max_position_embeddings": cfg.block_size,
            "hidden_size": cfg.n_embd,
            "intermediate_size": cfg.mlp_hidden,
            "num_hidden_layers": cfg.n_layer,
            "num_attention_heads": cfg.n_head,
            "num_key_value_heads": cfg.n_kv_head,
            "head_dim": cfg.head_dim(),
            "hidden_act": "silu",
            "rms_norm_eps": cfg.norm_eps,
            "rope_theta": cfg.rope_theta,
            "rope_scaling": null,
            "attention_bias": cfg.bias,
            "mlp_bias": cfg.bias,
            "attention_dropout": cfg.dropout,
            "pretraining_tp": 1,
        }),
    };
    c["architectures"] = json!([arch.hf_class()]);
    c["tie_word_embeddings"] = json!(cfg.tied_head);
    c["initializer_range"] = json!(0.02);
    c["use_cache"] = json!(true);
    c["torch_dtype"] = json!("float32");
    c["bos_token_id"] = json!(ids.bos);
    c["eos_token_id"] = json!(ids.eos);
    c
}

/// Our weights (`named_weights` of the model) under `arch`'s names, fp32 and contiguous.
pub fn tensors(
    cfg: &ModelConfig,
    arch: ExportArchitecture,
    ours: &Weights,
) -> Result<Vec<(String, Tensor)>, ExportError> {
    let w = |name: &str| ours.need(name);
    let opt = |name: &str| ours.get(name);
    let hd = cfg.head_dim() as i64;
    let q_rows = cfg.n_head as i64 * hd;
    let kv_rows = cfg.n_kv_head as i64 * hd;
    let mut out: Vec<(String, Tensor)> = Vec::new();
    match arch {
        ExportArchitecture::Gpt2 => {
            let c = cfg.n_embd as i64;
            let zeros = |len: i64| Tensor::zeros([len], (Kind::Float, tch::Device::Cpu));
            // A bias, or zeros of `len` where the model has none.
            let bias_or_zero = |name: &str, len: i64| opt(name).unwrap_or_else(|| zeros(len));
            out.push(("transformer.wte.weight".into(), w("tok_emb.weight")?));
            out.push(("transformer.wpe.weight".into(), w("pos_emb.weight")?));
            for i in 0..cfg.n_layer {
                let ours = |s: &str| format!("blocks.{i}.{s}");
                let theirs = |s: &str| format!("transformer.h.{i}.{s}");
                let qkv = full_heads(cfg, &w(&ours("attn.qkv.weight"))?);
                let qkv_bias = match opt(&ours("attn.qkv.bias")) {
                    Some(b) => full_heads(cfg, &b),
                    None => zeros(3 * c),
                };
                let hidden = cfg.mlp_hidden as i64;
                out.extend([
                    (theirs("ln_1.weight"), w(&ours("norm1.weight"))?),
                    (theirs("ln_1.bias"), bias_or_zero(&ours("norm1.bias"), c)),
                    (theirs("attn.c_attn.weight"), qkv.tr()),
                    (theirs("attn.c_attn.bias"), qkv_bias),
                    (
                        theirs("attn.c_proj.weight"),
                        w(&ours("attn.proj.weight"))?.tr(),
                    ),
                    (
                        theirs("attn.c_proj.bias"),
                        bias_or_zero(&ours("attn.proj.bias"), c),
                    ),
                    (theirs("ln_2.weight"), w(&ours("norm2.weight"))?),
                    (theirs("ln_2.bias"), bias_or_zero(&ours("norm2.bias"), c)),
                    (theirs("mlp.c_fc.weight"), w(&ours("mlp.fc.weight"))?.tr()),
                    (
                        theirs("mlp.c_fc.bias"),
                        bias_or_zero(&ours("mlp.fc.bias"), hidden),
                    ),
                    (
                        theirs("mlp.c_proj.weight"),
                        w(&ours("mlp.proj.weight"))?.tr(),
                    ),
                    (
                        theirs("mlp.c_proj.bias"),
                        bias_or_zero(&ours("mlp.proj.bias"), c),
                    ),
                ]);
            }
            out.push(("transformer.ln_f.weight".into(), w("norm_f.weight")?));
            out.push((
                "transformer.ln_f.bias".into(),
                bias_or_zero("norm_f.bias", c),
            ));
        }
        ExportArchitecture::Llama => {
            out.push(("model.embed_tokens.weight".into(), w("tok_emb.weight")?));
            for i in 0..cfg.n_layer {
                let ours = |s: &str| format!("blocks.{i}.{s}");
                let theirs = |s: &str| format!("model.layers.{i}.{s}");
                let qkv = w(&ours("attn.qkv.weight"))?;
                let parts = qkv.split_with_sizes([q_rows, kv_rows, kv_rows], 0);
                out.extend([
                    (theirs("input_layernorm.weight"), w(&ours("norm1.weight"))?),
                    (theirs("self_attn.q_proj.weight"), parts[0].shallow_clone()),
                    (theirs("self_attn.k_proj.weight"), parts[1].shallow_clone()),
                    (theirs("self_attn.v_proj.weight"), parts[2].shallow_clone()),
                    (
                        theirs("self_attn.o_proj.weight"),
                        w(&ours("attn.proj.weight"))?,
                    ),
                    (
                        theirs("post_attention_layernorm.weight"),
                        w(&ours("norm2.weight"))?,
                    ),
                    (theirs("mlp.gate_proj.weight"), w(&ours("mlp.gate.weight"))?),
                    (theirs("mlp.up_proj.weight"), w(&ours("mlp.up.weight"))?),
                    (theirs("mlp.down_proj.weight"), w(&ours("mlp.proj.weight"))?),
                ]);
                if cfg.bias {
                    let b = w(&ours("attn.qkv.bias"))?;
                    let parts = b.split_with_sizes([q_rows, kv_rows, kv_rows], 0);
                    out.extend([
                        (theirs("self_attn.q_proj.bias"), parts[0].shallow_clone()),
                        (theirs("self_attn.k_proj.bias"), parts[1].shallow_clone()),
                        (theirs("self_attn.v_proj.bias"), parts[2].shallow_clone()),
                        (theirs("self_attn.o_proj.bias"), w(&ours("attn.proj.bias"))?),
                        (theirs("mlp.gate_proj.bias"), w(&ours("mlp.gate.bias"))?),
                        (theirs("mlp.up_proj.bias"), w(&ours("mlp.up.bias"))?),
                        (theirs("mlp.down_proj.bias"), w(&ours("mlp.proj.bias"))?),
                    ]);
                }
            }
            out.push(("model.norm.weight".into(), w("norm_f.weight")?));
        }
    }
    // A tied head is the embedding itself: `transformers` ties it on load and refuses a file
    // that holds the same tensor twice.
    if !cfg.tied_head {
        out.push(("lm_head.weight".into(), w("lm_head.weight")?));
    }
    Ok(out
        .into_iter()
        .map(|(name, t)| (name, t.contiguous()))
        .collect())
}

/// The fused `qkv` weight `[(nh + 2·nkv)·hd, …]` (or its bias) with every key and value head
/// repeated for the query heads that share it: `[3·nh·hd, …]`.
fn full_heads(cfg: &ModelConfig, qkv: &Tensor) -> Tensor {
    let hd = cfg.head_dim() as i64;
    let (nh, nkv) = (cfg.n_head as i64, cfg.n_kv_head as i64);
    if nh == nkv {
        return qkv.shallow_clone();
    }
    let parts = qkv.split_with_sizes([nh * hd, nkv * hd, nkv * hd], 0);
    let mut shape = qkv.size();
    shape[0] = nh * hd;
    let repeat = |t: &Tensor| {
        // Rows of one head stay together: (nkv, hd·rest) → each head `group` times in a row.
        t.reshape([nkv, -1])
            .repeat_interleave_self_int(nh / nkv, Some(0), None)
            .reshape(shape.as_slice())
    };
    Tensor::cat(
        &[
            parts[0].shallow_clone(),
            repeat(&parts[1]),
            repeat(&parts[2]),
        ],
        0,
    )
}
