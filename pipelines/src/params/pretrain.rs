//! `kind: pretrain` — a decoder-only transformer trained from scratch on a tokenizer stage's
//! token shards.
//!
//! The params are plain data: the model code (`stages-torch`) resolves `model.preset` plus the
//! overrides into a concrete architecture, and the training loop reads `train`.

use super::{Invalid, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::{Reference, StageParams};

/// `kind: pretrain` — trains a GPT on the token shards of a `tokenizer` stage and stores the
/// weights (safetensors), the model config, the tokenizer, metrics and a loss curve.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PretrainParams {
    /// The `tokenizer` stage whose `train.bin`/`val.bin` shards and `tokenizer.json` are used.
    /// Required.
    pub tokenizer: String,
    /// Architecture: a preset plus any overrides. Default: the `tiny` preset.
    #[serde(default)]
    pub model: ModelParams,
    /// Optimisation, evaluation and checkpointing. Default: each key's default.
    #[serde(default)]
    pub train: TrainParams,
    /// `auto` (first GPU if there is one, else the CPU), `cpu`, `cuda` or `cuda:N`.
    /// Default `auto`.
    #[serde(default = "default_device")]
    pub device: String,
}

fn default_device() -> String {
    "auto".to_string()
}

/// A named starting architecture; every field can then be overridden.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum ModelPreset {
    /// 4 layers, 4 heads, 128 wide, block 64: GPT-2 style, trains in minutes on a CPU.
    #[default]
    #[serde(rename = "tiny")]
    Tiny,
    /// GPT-2 small (124M parameters with its 50257-token vocabulary): 12 layers, 12 heads,
    /// 768 wide, block 1024, learned positions, LayerNorm, GELU, tied head, biases.
    #[serde(rename = "gpt2-small")]
    Gpt2Small,
    /// A Llama-style small model: 8 layers, 8 heads with 2 KV heads (GQA), 512 wide, block 512,
    /// RoPE, RMSNorm, SwiGLU, untied head, no biases.
    #[serde(rename = "llama-small")]
    LlamaSmall,
}

/// How positions enter the model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// A learned absolute position embedding added to the token embedding (GPT-2).
    Learned,
    /// Rotary embeddings applied to queries and keys in every layer (Llama).
    Rope,
}

/// Normalisation layer of the blocks and the final norm.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    LayerNorm,
    RmsNorm,
}

/// The feed-forward layer of the blocks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mlp {
    /// `proj(gelu(fc(x)))` with a 4× wide hidden layer (GPT-2).
    Gelu,
    /// `proj(silu(gate(x)) * up(x))` (Llama).
    SwiGlu,
}

/// `model:` — a preset and optional overrides. Unset keys keep the preset's value.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    /// `tiny`, `gpt2-small` or `llama-small`. Default `tiny`.
    #[serde(default)]
    pub preset: ModelPreset,
    /// Transformer blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub n_layer: Option<usize>,
    /// Attention (query) heads; must divide `n_embd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub n_head: Option<usize>,
    /// Key/value heads (grouped-query attention); must divide `n_head`. Equal to `n_head` is
    /// plain multi-head attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub n_kv_head: Option<usize>,
    /// Width of the residual stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub n_embd: Option<usize>,
    /// Context length in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub block_size: Option<usize>,
    /// Hidden width of the MLP. Preset default: 4·n_embd for GELU, the Llama rule
    /// (⌈(8/3)·n_embd⌉ rounded up to 64) for SwiGLU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub mlp_hidden: Option<usize>,
    /// `learned` or `rope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<Positions>,
    /// `layernorm` or `rmsnorm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<Norm>,
    /// `gelu` or `swiglu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp: Option<Mlp>,
    /// Share the token embedding with the output head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tied_head: Option<bool>,
    /// Biases in the linear layers and LayerNorms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<bool>,
    /// Dropout probability on embeddings, attention and residual branches, in [0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// RoPE base frequency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
}

/// Numeric precision of the forward and backward passes.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 matrix products (fp32 weights, norms and loss) on CUDA; fp32 on the CPU.
    #[default]
    Auto,
    /// fp32 everywhere.
    Fp32,
    /// bf16 matrix products wherever the model runs.
    Bf16,
}

/// `train:` — optimisation, evaluation and checkpointing.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// Optimizer steps. Default 1000.
    #[serde(default = "d_steps")]
    #[schemars(range(min = 1))]
    pub steps: u64,
    /// Sequences per micro-batch. Default 12.
    #[serde(default = "d_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Micro-batches accumulated per optimizer step. Default 1.
    #[serde(default = "d_one")]
    #[schemars(range(min = 1))]
    pub grad_accum: usize,
    /// Peak learning rate. Default 1e-3.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Learning rate at the end of the cosine decay. Default 1e-4.
    #[serde(default = "d_min_lr")]
    pub min_lr: f64,
    /// Steps of linear warmup from 0 to `lr`. Default 100.
    #[serde(default = "d_warmup")]
    pub warmup_steps: u64,
    /// AdamW weight decay, applied to weight matrices and embeddings only (never to biases or
    /// norm gains). Default 0.1.
    #[serde(default = "d_weight_decay")]
    pub weight_decay: f64,
    /// AdamW β1. Default 0.9.
    #[serde(default = "d_beta1")]
    pub beta1: f64,
    /// AdamW β2. Default 0.95.
    #[serde(default = "d_beta2")]
    pub beta2: f64,
    /// AdamW ε. Default 1e-8.
    #[serde(default = "d_eps")]
    pub eps: f64,
    /// Clip the global gradient norm to this value; 0 disables clipping. Default 1.0.
    #[serde(default = "d_grad_clip")]
    pub grad_clip: f64,
    /// Validation every this many steps (and at the end). Default 100.
    #[serde(default = "d_eval_every")]
    #[schemars(range(min = 1))]
    pub eval_every: u64,
    /// Batches averaged per validation. Default 20.
    #[serde(default = "d_eval_batches")]
    #[schemars(range(min = 1))]
    pub eval_batches: usize,
    /// A checkpoint every this many steps (and at the end). Default 200.
    #[serde(default = "d_checkpoint_every")]
    #[schemars(range(min = 1))]
    pub checkpoint_every: u64,
    /// A metrics line every this many steps. Default 10.
    #[serde(default = "d_log_every")]
    #[schemars(range(min = 1))]
    pub log_every: u64,
    /// `auto`, `fp32` or `bf16`. Default `auto`.
    #[serde(default)]
    pub precision: Precision,
    /// Peak dense throughput of the device in TFLOP/s, for MFU. Default: 989 on CUDA (H100 and
    /// H200 bf16 dense), none on the CPU (MFU is then not reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_tflops: Option<f64>,
}

fn d_steps() -> u64 {
    1000
}
fn d_batch_size() -> usize {
    12
}
fn d_one() -> usize {
    1
}
fn d_lr() -> f64 {
    1e-3
}
fn d_min_lr() -> f64 {
    1e-4
}
fn d_warmup() -> u64 {
    100
}
fn d_weight_decay() -> f64 {
    0.1
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.95
}
fn d_eps() -> f64 {
    1e-8
}
fn d_grad_clip() -> f64 {
    1.0
}
fn d_eval_every() -> u64 {
    100
}
fn d_eval_batches() -> usize {
    20
}
fn d_checkpoint_every() -> u64 {
    200
}
fn d_log_every() -> u64 {
    10
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            steps: d_steps(),
            batch_size: d_batch_size(),
            grad_accum: d_one(),
            lr: d_lr(),
            min_lr: d_min_lr(),
            warmup_steps: d_warmup(),
            weight_decay: d_weight_decay(),
            beta1: d_beta1(),
            beta2: d_beta2(),
            eps: d_eps(),
            grad_clip: d_grad_clip(),
            eval_every: d_eval_every(),
            eval_batches: d_eval_batches(),
            checkpoint_every: d_checkpoint_every(),
            log_every: d_log_every(),
            precision: Precision::default(),
            peak_tflops: None,
        }
    }
}

impl StageKind for PretrainParams {
    const KIND: &'static str = "pretrain";
    const PRODUCES: ArtifactType = ArtifactType::Model;

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            stage: self.tokenizer.clone(),
            key: "tokenizer".to_string(),
            // The token shards and `tokenizer.json` only a tokenizer stage writes.
            accepts: &[ArtifactType::Tokenizer],
        }]
    }

    fn into_params(self) -> StageParams {
        StageParams::Pretrain(Box::new(self))
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let mut bad = |path: &str, message: String, hint: &str| {
            problems.push(Invalid {
                path: path.to_string(),
                on_key: false,
                message,
                hint: Some(hint.to_string()),
            })
        };
        if self.tokenizer.trim().is_empty() {
            bad(
                "tokenizer",
                "`tokenizer` is empty".to_string(),
                "name the tokenizer stage whose shards to train on, e.g. `tokenizer: tok`",
            );
        }
        if !is_device(&self.device) {
            bad(
                "device",
                format!("unknown device `{}`", self.device),
                "use `auto`, `cpu`, `cuda` or `cuda:N`",
            );
        }
        let m = &self.model;
        for (key, value) in [
            ("n_layer", m.n_layer),
            ("n_head", m.n_head),
            ("n_kv_head", m.n_kv_head),
            ("n_embd", m.n_embd),
            ("block_size", m.block_size),
            ("mlp_hidden", m.mlp_hidden),
        ] {
            if value == Some(0) {
                bad(
                    &format!("model.{key}"),
                    format!("`model.{key}` is 0"),
                    "give a positive number or leave it out to keep the preset's value",
                );
            }
        }
        if let Some(p) = m.dropout {
            if !(0.0..1.0).contains(&p) {
                bad(
                    "model.dropout",
                    format!("`model.dropout` is {p}, outside [0, 1)"),
                    "use a probability such as 0.0 or 0.1",
                );
            }
        }
        if let Some(theta) = m.rope_theta {
            if !(theta.is_finite() && theta > 1.0) {
                bad(
                    "model.rope_theta",
                    format!("`model.rope_theta` is {theta}"),
                    "use a base frequency above 1, e.g. 10000",
                );
            }
        }
        let t = &self.train;
        for (key, value) in [("lr", t.lr), ("min_lr", t.min_lr)] {
            if !(value.is_finite() && value >= 0.0) {
                bad(
                    &format!("train.{key}"),
                    format!("`train.{key}` is {value}"),
                    "use a non-negative learning rate such as 1e-3",
                );
            }
        }
        if t.min_lr > t.lr {
            bad(
                "train.min_lr",
                format!(
                    "`train.min_lr` ({}) is above `train.lr` ({})",
                    t.min_lr, t.lr
                ),
                "the cosine schedule decays from `lr` down to `min_lr`",
            );
        }
        if t.warmup_steps > t.steps {
            bad(
                "train.warmup_steps",
                format!(
                    "`train.warmup_steps` ({}) is more than `train.steps` ({})",
                    t.warmup_steps, t.steps
                ),
                "warm up for a fraction of the run, e.g. 5%",
            );
        }
        for (key, value) in [("beta1", t.beta1), ("beta2", t.beta2)] {
            if !(0.0..1.0).contains(&value) {
                bad(
                    &format!("train.{key}"),
                    format!("`train.{key}` is {value}, outside [0, 1)"),
                    "typical values are 0.9 for beta1 and 0.95 for beta2",
                );
            }
        }
        for (key, value) in [
            ("weight_decay", t.weight_decay),
            ("eps", t.eps),
            ("grad_clip", t.grad_clip),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                bad(
                    &format!("train.{key}"),
                    format!("`train.{key}` is {value}"),
                    "use a non-negative number",
                );
            }
        }
        if let Some(peak) = t.peak_tflops {
            if !(peak.is_finite() && peak > 0.0) {
                bad(
                    "train.peak_tflops",
                    format!("`train.peak_tflops` is {peak}"),
                    "give the device's peak dense TFLOP/s, e.g. 989 for an H100",
                );
            }
        }
        problems
    }
}

/// The device spellings `stages-torch` accepts (kept in step with its `DeviceChoice`).
pub(crate) fn is_device(s: &str) -> bool {
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "auto" | "cpu" | "cuda" => true,
        other => other
            .strip_prefix("cuda:")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> PretrainParams {
        PretrainParams {
            tokenizer: "tok".to_string(),
            model: ModelParams::default(),
            train: TrainParams::default(),
            device: default_device(),
        }
    }

    #[test]
    fn references_the_tokenizer_stage() {
        let refs = StageKind::references(&params());
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].stage, "tok");
        assert_eq!(refs[0].key, "tokenizer");
        assert!(params().validate().is_empty());
    }

    #[test]
    fn validation_names_every_bad_key() {
        let mut p = params();
        p.device = "gpu".to_string();
        p.model.n_head = Some(0);
        p.model.dropout = Some(1.0);
        p.train.min_lr = 1.0;
        p.train.warmup_steps = 5000;
        p.train.beta2 = 1.0;
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            vec![
                "device",
                "model.n_head",
                "model.dropout",
                "train.min_lr",
                "train.warmup_steps",
                "train.beta2"
            ]
        );
    }

    #[test]
    fn devices_match_the_torch_side() {
        for ok in ["auto", "cpu", "CUDA", "cuda:1"] {
            assert!(is_device(ok), "{ok}");
        }
        for bad in ["", "gpu", "cuda:", "cuda:+1", "mps"] {
            assert!(!is_device(bad), "{bad}");
        }
    }
}
