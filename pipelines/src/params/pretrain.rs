//! `kind: pretrain` — a decoder-only transformer trained from scratch on a tokenizer stage's
//! token shards.
//!
//! The params are plain data: the model code (`stages-torch`) resolves `model.preset` plus the
//! overrides into a concrete architecture, and the training loop reads `train`. The same
//! resolution without the vocabulary ([`ModelParams::resolve`]) lets loading refuse shapes that
//! cannot work (heads that do not divide the width, …) before any upstream stage runs.

use super::{Invalid, KindInfo, Reproducibility, Runner, StageKind, Tolerance};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

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
    /// Where training windows start: `random` (at any token) or `documents` (at a document's
    /// first token). Default `random`. Validation windows are random either way.
    #[serde(default, skip_serializing_if = "Windows::is_random")]
    pub windows: Windows,
}

/// Where the training loop's windows of `block_size` tokens start.
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
pub enum Windows {
    /// At any token of the concatenated documents, as nanoGPT samples: a window begins in the
    /// middle of a document as often as not.
    #[default]
    Random,
    /// At the first token of a document: every window holds its documents' openings, so what a
    /// document states early is in context wherever it is used later (a model trained on
    /// random windows often sees the use without the statement). Documents longer than
    /// `block_size` are then seen only up to it.
    Documents,
}

impl Windows {
    // Skipped when `random`, so manifests written before the key existed keep their
    // fingerprints.
    fn is_random(&self) -> bool {
        *self == Windows::Random
    }
}

/// The default of every kind's `device:` key: CUDA when present, else the CPU.
pub(crate) fn default_device() -> String {
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

impl ModelPreset {
    /// The name written after `preset:` (`gpt2-small`).
    pub fn name(self) -> &'static str {
        match self {
            ModelPreset::Tiny => "tiny",
            ModelPreset::Gpt2Small => "gpt2-small",
            ModelPreset::LlamaSmall => "llama-small",
        }
    }

    /// The preset's architecture, before any override.
    ///
    /// The one preset table: `stages-torch` builds its `ModelConfig` from this (through
    /// [`ModelParams::resolve`]), so load-time checks judge exactly the model that is trained.
    /// Changing a row changes what an existing manifest trains: bump the pretrain kind's
    /// version with it.
    pub fn architecture(self) -> ModelArchitecture {
        match self {
            ModelPreset::Tiny => ModelArchitecture {
                n_layer: 4,
                n_head: 4,
                n_kv_head: 4,
                n_embd: 128,
                block_size: 64,
                mlp_hidden: 512,
                positions: Positions::Learned,
                norm: Norm::LayerNorm,
                mlp: Mlp::Gelu,
                tied_head: true,
                bias: true,
                dropout: 0.0,
                rope_theta: 10_000.0,
                norm_eps: 1e-5,
            },
            ModelPreset::Gpt2Small => ModelArchitecture {
                n_layer: 12,
                n_head: 12,
                n_kv_head: 12,
                n_embd: 768,
                block_size: 1024,
                mlp_hidden: 3072,
                positions: Positions::Learned,
                norm: Norm::LayerNorm,
                mlp: Mlp::Gelu,
                tied_head: true,
                bias: true,
                dropout: 0.0,
                rope_theta: 10_000.0,
                norm_eps: 1e-5,
            },
            ModelPreset::LlamaSmall => ModelArchitecture {
                n_layer: 8,
                n_head: 8,
                n_kv_head: 2,
                n_embd: 512,
                block_size: 512,
                mlp_hidden: swiglu_hidden(512),
                positions: Positions::Rope,
                norm: Norm::RmsNorm,
                mlp: Mlp::SwiGlu,
                tied_head: false,
                bias: false,
                dropout: 0.0,
                rope_theta: 10_000.0,
                norm_eps: 1e-5,
            },
        }
    }
}

/// A concrete architecture: a preset with a manifest's overrides applied, every choice made.
///
/// Everything of the model but its vocabulary size, which comes from the tokenizer stage's
/// artifact and so is known only when the stage runs. Loading checks the shapes of this (see
/// `PretrainParams`'s validation) so that a bad combination is refused before any upstream
/// stage runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelArchitecture {
    pub n_layer: usize,
    pub n_head: usize,
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
    /// Epsilon of the norms; no manifest key sets it.
    pub norm_eps: f64,
}

/// The Llama rule for the SwiGLU hidden width: ⅔ of 4·C (same parameters as a 4·C GELU MLP),
/// rounded up to a multiple of 64 for efficient kernels.
pub fn swiglu_hidden(n_embd: usize) -> usize {
    let h = (8 * n_embd).div_ceil(3);
    h.div_ceil(64) * 64
}

impl ModelParams {
    /// The preset with these overrides applied (what `stages-torch` trains): giving `n_head` alone keeps plain multi-head attention on a
    /// multi-head preset, and the MLP width follows `n_embd` and `mlp` unless it is given.
    /// Not checked: zeros and shapes that do not fit come through as they are.
    pub fn resolve(&self) -> ModelArchitecture {
        let preset = self.preset.architecture();
        let mut a = preset.clone();
        let width_changed = self.n_embd.is_some_and(|w| w != preset.n_embd);
        let mlp_changed = self.mlp.is_some_and(|m| m != preset.mlp);
        if let Some(v) = self.n_layer {
            a.n_layer = v;
        }
        if let Some(v) = self.n_head {
            a.n_head = v;
            if self.n_kv_head.is_none() && preset.n_kv_head == preset.n_head {
                a.n_kv_head = v;
            }
        }
        if let Some(v) = self.n_kv_head {
            a.n_kv_head = v;
        }
        if let Some(v) = self.n_embd {
            a.n_embd = v;
        }
        if let Some(v) = self.block_size {
            a.block_size = v;
        }
        if let Some(v) = self.positions {
            a.positions = v;
        }
        if let Some(v) = self.norm {
            a.norm = v;
        }
        if let Some(v) = self.mlp {
            a.mlp = v;
        }
        a.mlp_hidden = match self.mlp_hidden {
            Some(h) => h,
            None if width_changed || mlp_changed => match a.mlp {
                Mlp::Gelu => 4 * a.n_embd,
                Mlp::SwiGlu => swiglu_hidden(a.n_embd),
            },
            None => preset.mlp_hidden,
        };
        if let Some(v) = self.tied_head {
            a.tied_head = v;
        }
        if let Some(v) = self.bias {
            a.bias = v;
        }
        if let Some(v) = self.dropout {
            a.dropout = v;
        }
        if let Some(v) = self.rope_theta {
            a.rope_theta = v;
        }
        a
    }
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

/// What a training stage (pretrain, sft, dpo) reproduces on another CPU setup: floating-point
/// training is bit-exact only on the same one; elsewhere the held-out loss within 1 %.
pub(crate) const TRAINING_TOLERANCE: &[Tolerance] = &[Tolerance {
    metric: "val_loss",
    relative: 0.01,
}];

impl StageKind for PretrainParams {
    const INFO: KindInfo = KindInfo {
        name: "pretrain",
        // 1: first version. 2: AdamW updates flat per-group buffers (same operations per
        // element, but CPU kernels may round the last bit differently at buffer tails).
        // 3: summary.json and metrics.jsonl hold no timings (they moved to the run record).
        // 4: on the CPU, AdamW updates each element in one pass (f32 scalars; the last bit of
        // some weights moves).
        version: 4,
        produces: ArtifactType::Model,
        runner: Runner::Torch,
        headline: Some("val_loss"),
        reproducible: Reproducibility::SameMachine(TRAINING_TOLERANCE),
    };

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            stage: self.tokenizer.clone(),
            key: "tokenizer".to_string(),
            // The token shards and `tokenizer.json` only a tokenizer stage writes.
            accepts: &[ArtifactType::Tokenizer],
        }]
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
        problems.extend(train_problems(&self.train, true));
        problems.extend(shape_problems(m));
        problems
    }
}

/// The checks of a `train:` block, shared by every kind that trains with it (`pretrain`,
/// `sft`). `fixed_steps` is false when the step count is derived at run time (`sft`'s
/// `epochs`), so `warmup_steps` cannot be compared with `train.steps` yet.
pub(crate) fn train_problems(t: &TrainParams, fixed_steps: bool) -> Vec<Invalid> {
    let mut problems = Vec::new();
    let mut bad = |path: &str, message: String, hint: &str| {
        problems.push(Invalid {
            path: path.to_string(),
            on_key: false,
            message,
            hint: Some(hint.to_string()),
        })
    };
    // Counts the training loop divides by or loops over: 0 would never train, or divide by
    // zero at the first step (`step % log_every`).
    for (key, value, hint) in [
        ("steps", t.steps, "train for at least 1 step"),
        (
            "batch_size",
            t.batch_size as u64,
            "use at least 1 sequence per micro-batch, e.g. 12",
        ),
        (
            "grad_accum",
            t.grad_accum as u64,
            "use 1 for no accumulation, or more micro-batches per step",
        ),
        (
            "eval_every",
            t.eval_every,
            "validate every N ≥ 1 steps; the last step is always validated",
        ),
        (
            "eval_batches",
            t.eval_batches as u64,
            "average at least 1 batch per validation, e.g. 20",
        ),
        (
            "checkpoint_every",
            t.checkpoint_every,
            "checkpoint every N ≥ 1 steps; the last step is always checkpointed",
        ),
        ("log_every", t.log_every, "log every N ≥ 1 steps, e.g. 10"),
    ] {
        if value == 0 {
            bad(&format!("train.{key}"), format!("`train.{key}` is 0"), hint);
        }
    }
    if !(t.lr.is_finite() && t.lr > 0.0) {
        bad(
            "train.lr",
            format!("`train.lr` is {}", t.lr),
            "with no learning rate the weights never move: use a positive one such as 1e-3",
        );
    }
    if !(t.min_lr.is_finite() && t.min_lr >= 0.0) {
        bad(
            "train.min_lr",
            format!("`train.min_lr` is {}", t.min_lr),
            "use a non-negative learning rate such as 1e-4, or 0 to decay to nothing",
        );
    }
    // Against a learning rate that is itself refused above, the comparison would only repeat
    // that error.
    if t.lr > 0.0 && t.min_lr > t.lr {
        bad(
            "train.min_lr",
            format!(
                "`train.min_lr` ({}) is above `train.lr` ({})",
                t.min_lr, t.lr
            ),
            "the cosine schedule decays from `lr` down to `min_lr`",
        );
    }
    if fixed_steps && t.warmup_steps > t.steps {
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

/// Shapes that do not fit together once the preset's values fill in what the manifest leaves
/// out: the checks of `stages-torch`'s `ModelConfig::check` that need no vocabulary. Each points
/// at the override that broke the fit (the preset's own values always fit).
fn shape_problems(m: &ModelParams) -> Vec<Invalid> {
    let a = m.resolve();
    let mut problems = Vec::new();
    // Zeros are reported on their own; they would only add divisions by zero here.
    if a.n_head == 0 || a.n_embd == 0 || a.n_kv_head == 0 {
        return problems;
    }
    let preset = m.preset.name();
    // `64`, or `128, the `tiny` preset's` when the manifest leaves the key out.
    let shown = |set: bool, value: usize| {
        if set {
            value.to_string()
        } else {
            format!("{value}, from the `{preset}` preset")
        }
    };
    let mut bad = |candidates: &[(&str, bool)], message: String, hint: String| {
        let path = candidates
            .iter()
            .find(|(_, set)| *set)
            .map(|(key, _)| format!("model.{key}"))
            .unwrap_or_else(|| "model".to_string());
        problems.push(Invalid {
            path,
            on_key: false,
            message,
            hint: Some(hint),
        });
    };

    if !a.n_embd.is_multiple_of(a.n_head) {
        let heads = nearest_fits(a.n_head, a.n_embd, |h| a.n_embd.is_multiple_of(h));
        bad(
            &[("n_head", m.n_head.is_some()), ("n_embd", m.n_embd.is_some())],
            format!(
                "`model.n_embd` ({}) is not a multiple of `model.n_head` ({})",
                shown(m.n_embd.is_some(), a.n_embd),
                shown(m.n_head.is_some(), a.n_head),
            ),
            format!(
                "the heads split the width evenly: use an `n_head` that divides {}, e.g. {}, or an `n_embd` that is a multiple of {}, e.g. {}",
                a.n_embd,
                or_list(&heads),
                a.n_head,
                a.n_embd.div_ceil(a.n_head) * a.n_head,
            ),
        );
    } else if a.positions == Positions::Rope && !(a.n_embd / a.n_head).is_multiple_of(2) {
        let heads = nearest_fits(a.n_head, a.n_embd, |h| {
            a.n_embd.is_multiple_of(h) && (a.n_embd / h).is_multiple_of(2)
        });
        let fix = if heads.is_empty() {
            format!("make `n_embd` even (it is {})", a.n_embd)
        } else {
            format!("use an `n_head` such as {}", or_list(&heads))
        };
        bad(
            &[
                ("n_head", m.n_head.is_some()),
                ("n_embd", m.n_embd.is_some()),
                ("positions", m.positions.is_some()),
            ],
            format!(
                "RoPE needs an even head size, but `model.n_embd` / `model.n_head` = {} / {} = {}",
                a.n_embd,
                a.n_head,
                a.n_embd / a.n_head
            ),
            format!(
                "rotary embeddings rotate pairs of dimensions: {fix}, or use `positions: learned`"
            ),
        );
    }
    if !a.n_head.is_multiple_of(a.n_kv_head) {
        let kv = nearest_fits(a.n_kv_head, a.n_head, |k| a.n_head.is_multiple_of(k));
        bad(
            &[("n_kv_head", m.n_kv_head.is_some()), ("n_head", m.n_head.is_some())],
            format!(
                "`model.n_head` ({}) is not a multiple of `model.n_kv_head` ({})",
                shown(m.n_head.is_some(), a.n_head),
                shown(m.n_kv_head.is_some(), a.n_kv_head),
            ),
            format!(
                "each key/value head serves the same number of query heads: use an `n_kv_head` that divides {}, e.g. {} (`n_kv_head: {}` is plain multi-head attention)",
                a.n_head,
                or_list(&kv),
                a.n_head
            ),
        );
    }
    problems
}

/// The values nearest to `target` for which `fits` holds: the closest at or below it and the
/// closest above it (up to `max`, and not far past `target`: hints need no exhaustive search).
fn nearest_fits(target: usize, max: usize, fits: impl Fn(usize) -> bool) -> Vec<usize> {
    let ceiling = max.min(target.saturating_mul(2).saturating_add(64));
    let below = (1..=target.min(max)).rev().find(|&v| fits(v));
    let above = (target + 1..=ceiling).find(|&v| fits(v));
    below.into_iter().chain(above).collect()
}

/// `2 or 4`.
fn or_list(values: &[usize]) -> String {
    values
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
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
            windows: Windows::Random,
        }
    }

    /// `windows: documents` reads; the default is left out of the serialized params, so the
    /// fingerprints of manifests written before the key existed do not move.
    #[test]
    fn windows_default_to_random_and_are_not_serialized_then() {
        let p: PretrainParams =
            serde_json::from_value(serde_json::json!({"tokenizer": "tok"})).expect("parses");
        assert_eq!(p.windows, Windows::Random);
        assert!(serde_json::to_value(&p).unwrap().get("windows").is_none());
        let d: PretrainParams =
            serde_json::from_value(serde_json::json!({"tokenizer": "tok", "windows": "documents"}))
                .expect("parses");
        assert_eq!(d.windows, Windows::Documents);
        assert_eq!(serde_json::to_value(&d).unwrap()["windows"], "documents");
        let bad = serde_json::from_value::<PretrainParams>(
            serde_json::json!({"tokenizer": "tok", "windows": "docs"}),
        );
        assert!(bad.is_err());
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

    /// The preset numbers as published in docs/model.md: a change here changes what existing
    /// manifests train, so it must be deliberate.
    #[test]
    fn presets_are_pinned() {
        let row = |p: ModelPreset| {
            let a = p.architecture();
            (
                (
                    a.n_layer,
                    a.n_head,
                    a.n_kv_head,
                    a.n_embd,
                    a.block_size,
                    a.mlp_hidden,
                ),
                (a.positions, a.norm, a.mlp, a.tied_head, a.bias),
                (a.dropout, a.rope_theta, a.norm_eps),
            )
        };
        use {Mlp::*, Norm::*, Positions::*};
        assert_eq!(
            row(ModelPreset::Tiny),
            (
                (4, 4, 4, 128, 64, 512),
                (Learned, LayerNorm, Gelu, true, true),
                (0.0, 10_000.0, 1e-5)
            )
        );
        assert_eq!(
            row(ModelPreset::Gpt2Small),
            (
                (12, 12, 12, 768, 1024, 3072),
                (Learned, LayerNorm, Gelu, true, true),
                (0.0, 10_000.0, 1e-5)
            )
        );
        assert_eq!(
            row(ModelPreset::LlamaSmall),
            (
                (8, 8, 2, 512, 512, 1408),
                (Rope, RmsNorm, SwiGlu, false, false),
                (0.0, 10_000.0, 1e-5)
            )
        );
        assert_eq!(swiglu_hidden(512), 1408);
        // Every preset is a valid model on its own.
        for preset in [
            ModelPreset::Tiny,
            ModelPreset::Gpt2Small,
            ModelPreset::LlamaSmall,
        ] {
            let model = ModelParams {
                preset,
                ..ModelParams::default()
            };
            assert!(shape_problems(&model).is_empty(), "{preset:?}");
        }
    }

    /// The override rules: the hidden width follows the width and MLP kind, plus the GQA case.
    #[test]
    fn overrides_resolve_as_documented() {
        let a = ModelParams {
            n_embd: Some(256),
            n_head: Some(8),
            ..ModelParams::default()
        }
        .resolve();
        assert_eq!(
            (a.n_embd, a.n_head, a.n_kv_head, a.mlp_hidden),
            (256, 8, 8, 1024)
        );
        let swiglu = ModelParams {
            mlp: Some(Mlp::SwiGlu),
            ..ModelParams::default()
        };
        assert_eq!(swiglu.resolve().mlp_hidden, 384);
        // A grouped-query preset keeps its KV heads when only `n_head` changes.
        let llama = ModelParams {
            preset: ModelPreset::LlamaSmall,
            n_head: Some(16),
            ..ModelParams::default()
        };
        assert_eq!((llama.resolve().n_head, llama.resolve().n_kv_head), (16, 2));
        let hidden = ModelParams {
            n_embd: Some(256),
            mlp_hidden: Some(100),
            ..ModelParams::default()
        };
        assert_eq!(hidden.resolve().mlp_hidden, 100);
    }

    fn problems_of(model: ModelParams) -> Vec<(String, String, String)> {
        let mut p = params();
        p.model = model;
        p.validate()
            .into_iter()
            .map(|i| (i.path, i.message, i.hint.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn shapes_that_do_not_fit_point_at_the_override() {
        let found = problems_of(ModelParams {
            n_head: Some(3),
            n_embd: Some(64),
            ..ModelParams::default()
        });
        assert_eq!(found.len(), 1, "{found:?}");
        let (path, message, hint) = &found[0];
        assert_eq!(path, "model.n_head");
        assert!(
            message.starts_with("`model.n_embd` (64) is not a multiple of `model.n_head` (3)"),
            "{message}"
        );
        assert!(
            hint.contains("e.g. 2 or 4") && hint.contains("e.g. 66"),
            "{hint}"
        );

        // The width comes from the preset: the message says so.
        let found = problems_of(ModelParams {
            n_head: Some(3),
            ..ModelParams::default()
        });
        assert!(
            found[0].1.contains("(128, from the `tiny` preset)"),
            "{found:?}"
        );

        // Only the width is overridden: it is the key to blame.
        let found = problems_of(ModelParams {
            n_embd: Some(130),
            ..ModelParams::default()
        });
        assert_eq!(found[0].0, "model.n_embd");

        let found = problems_of(ModelParams {
            preset: ModelPreset::LlamaSmall,
            n_kv_head: Some(3),
            ..ModelParams::default()
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "model.n_kv_head");
        assert!(found[0]
            .1
            .contains("`model.n_head` (8, from the `llama-small` preset)"));
        assert!(found[0].2.contains("e.g. 2 or 4"), "{:?}", found[0]);

        // RoPE on an odd head size (96 / 32 = 3).
        let found = problems_of(ModelParams {
            positions: Some(Positions::Rope),
            n_embd: Some(96),
            n_head: Some(32),
            ..ModelParams::default()
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "model.n_head");
        assert!(found[0].1.contains("96 / 32 = 3"), "{:?}", found[0]);
        assert!(
            found[0].2.contains("`n_head` such as 24 or 48"),
            "{:?}",
            found[0]
        );

        // A zero is reported once, as a zero, not as a shape that does not divide.
        let found = problems_of(ModelParams {
            n_head: Some(0),
            ..ModelParams::default()
        });
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn zero_counts_and_a_zero_learning_rate_are_refused() {
        let mut p = params();
        p.train.steps = 0;
        p.train.warmup_steps = 0;
        p.train.log_every = 0;
        p.train.grad_accum = 0;
        p.train.lr = 0.0;
        p.train.min_lr = 0.0;
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "train.steps",
                "train.grad_accum",
                "train.log_every",
                "train.lr"
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
