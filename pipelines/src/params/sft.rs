//! `kind: sft` — supervised fine-tuning of a model stage on a data stage of conversations,
//! with every weight trained or with LoRA adapters.
//!
//! The optimizer, schedule, clipping and checkpoint settings are pretrain's `train:` block
//! ([`TrainParams`]), checked by the same code; what is particular to fine-tuning is the data
//! (prompt/response records rendered with the chat template, loss on the assistant's tokens),
//! `epochs`, `lora:` and the held-out exact-match evaluation.

use super::pretrain::{is_device, train_problems, TrainParams};
use super::{Invalid, KindInfo, Reproducibility, Runner, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

/// `kind: sft` — fine-tunes the model of a `model` stage on the conversations of a `data`
/// stage (`instructions` or `preferences` records: `prompt` → `response`/`chosen`), computing
/// the loss on the assistant's tokens only. Produces an ordinary model artifact (weights,
/// config, tokenizer with its chat template), so `deploy`, `generate` and `serve` take it as
/// they take a `pretrain` stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SftParams {
    /// The stage whose model is fine-tuned (`pretrain`, or another `sft`). Its artifact's
    /// `tokenizer.json` encodes the conversations. Required.
    pub model: String,
    /// The `data` stage of conversations: its `train` split is trained on, its `val` split
    /// evaluated. Required.
    pub data: String,
    /// Passes over the packed training rows. When given, the step count is derived from the
    /// data (⌈epochs · rows / (batch_size · grad_accum)⌉) and `train.steps` is not used.
    /// Default: none (`train.steps` steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub epochs: Option<u64>,
    /// Optimisation, validation and checkpointing, as in `pretrain`. Default: each key's
    /// default (the same as pretrain's).
    #[serde(default)]
    pub train: TrainParams,
    /// Train low-rank adapters instead of every weight. Default: none (full fine-tuning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraParams>,
    /// The held-out evaluation of greedy answers. Default: each key's default.
    #[serde(default)]
    pub eval: SftEval,
    /// `auto` (first GPU if there is one, else the CPU), `cpu`, `cuda` or `cuda:N`.
    /// Default `auto`.
    #[serde(default = "super::pretrain::default_device")]
    pub device: String,
}

/// `lora:` — low-rank adapters `ΔW = (alpha/r)·B·A` on the chosen linear layers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoraParams {
    /// Rank of the adapters. Default 8.
    #[serde(default = "eight")]
    #[schemars(range(min = 1))]
    pub r: usize,
    /// Scale numerator: the update is multiplied by `alpha / r`. Default 16.
    #[serde(default = "sixteen")]
    pub alpha: f64,
    /// Dropout on the adapters' input, in [0, 1). Default 0.
    #[serde(default)]
    pub dropout: f64,
    /// Layers that get adapters: `q`, `k`, `v` (the query, key and value parts of the fused
    /// attention projection), `o` (the attention output projection) and `mlp` (every linear
    /// layer of the feed-forward block). Default `[q, v]`.
    #[serde(default = "default_targets")]
    pub targets: Vec<LoraTarget>,
    /// Weights of the base model trained in full beside the adapters (PEFT's
    /// `modules_to_save` and `bias: all`): `embedding` (the token embedding, which a tied head
    /// shares; the learned position embedding and an untied head too), `bias` (every bias of
    /// the linear layers) and `norm` (the gains and shifts of the normalisations). Default none:
    /// only the adapters and the chat markers' embedding rows are trained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_train: Vec<LoraAlsoTrain>,
}

/// A family of base weights `lora.also_train` trains in full.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LoraAlsoTrain {
    /// `tok_emb.weight` (and `pos_emb.weight`, `lm_head.weight` where the model has them).
    Embedding,
    /// The biases of the linear layers (`….bias` outside the norms).
    Bias,
    /// The normalisations' weights and biases (`….norm1.*`, `….norm2.*`, `norm_f.*`).
    Norm,
}

impl LoraAlsoTrain {
    pub fn name(self) -> &'static str {
        match self {
            LoraAlsoTrain::Embedding => "embedding",
            LoraAlsoTrain::Bias => "bias",
            LoraAlsoTrain::Norm => "norm",
        }
    }

    /// Whether the base model's variable `name` belongs to this family.
    pub fn covers(self, name: &str) -> bool {
        let norm =
            name.starts_with("norm_f.") || name.contains(".norm1.") || name.contains(".norm2.");
        match self {
            LoraAlsoTrain::Embedding => {
                name == "tok_emb.weight" || name == "pos_emb.weight" || name == "lm_head.weight"
            }
            LoraAlsoTrain::Bias => name.ends_with(".bias") && !norm,
            LoraAlsoTrain::Norm => norm,
        }
    }
}

impl Default for LoraParams {
    fn default() -> Self {
        LoraParams {
            r: eight(),
            alpha: sixteen(),
            dropout: 0.0,
            targets: default_targets(),
            also_train: Vec::new(),
        }
    }
}

/// A family of linear layers LoRA can adapt.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LoraTarget {
    /// Query rows of `attn.qkv`.
    Q,
    /// Key rows of `attn.qkv`.
    K,
    /// Value rows of `attn.qkv`.
    V,
    /// `attn.proj`.
    O,
    /// `mlp.fc` and `mlp.proj` (GELU) or `mlp.gate`, `mlp.up` and `mlp.proj` (SwiGLU).
    Mlp,
}

impl LoraTarget {
    pub fn name(self) -> &'static str {
        match self {
            LoraTarget::Q => "q",
            LoraTarget::K => "k",
            LoraTarget::V => "v",
            LoraTarget::O => "o",
            LoraTarget::Mlp => "mlp",
        }
    }
}

/// `eval:` — greedy answers to held-out prompts, compared with the reference responses.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SftEval {
    /// Validation examples answered greedily, before and after training (the first ones of
    /// the `val` split); 0 skips the exact-match evaluation. Default 64.
    #[serde(default = "sixty_four")]
    pub examples: usize,
    /// Most tokens of one answer; an answer stops earlier at `<|end|>`. Default 32.
    #[serde(default = "thirty_two")]
    #[schemars(range(min = 1))]
    pub max_new_tokens: usize,
}

impl Default for SftEval {
    fn default() -> Self {
        SftEval {
            examples: sixty_four(),
            max_new_tokens: thirty_two(),
        }
    }
}

fn eight() -> usize {
    8
}
fn sixteen() -> f64 {
    16.0
}
fn thirty_two() -> usize {
    32
}
fn sixty_four() -> usize {
    64
}
fn default_targets() -> Vec<LoraTarget> {
    vec![LoraTarget::Q, LoraTarget::V]
}

impl StageKind for SftParams {
    const INFO: KindInfo = KindInfo {
        name: "sft",
        // 1: first version. 2: the artifact holds `answers.jsonl`, the held-out greedy answers.
        // 3: on the CPU, AdamW updates each element in one pass (the last bit of some weights
        // moves). 4: LoRA also trains the chat markers' embedding rows.
        version: 4,
        produces: ArtifactType::Model,
        runner: Runner::Torch,
        headline: Some("val_loss"),
        reproducible: Reproducibility::SameMachine(super::pretrain::TRAINING_TOLERANCE),
    };

    fn references(&self) -> Vec<Reference> {
        model_and_data(&self.model, &self.data)
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut problems = input_problems(
            [&self.model, &self.data],
            [
                "name the stage whose model to fine-tune, e.g. `model: base`",
                "name a data stage of conversations, e.g. one with the `instructions` generator",
            ],
        );
        problems.extend(training_problems(&Training {
            device: &self.device,
            epochs: self.epochs,
            train: &self.train,
            lora: self.lora.as_ref(),
            eval: &self.eval,
        }));
        problems
    }
}

fn invalid(path: &str, message: String, hint: &str) -> Invalid {
    Invalid {
        path: path.to_string(),
        on_key: false,
        message,
        hint: Some(hint.to_string()),
    }
}

/// A fine-tuning stage's references (shared with `dpo`): `model`, a model (weights,
/// `config.json`, `tokenizer.json`: what pretrain and sft write), and `data`, a data stage's
/// `train`/`val` splits of instruction or preference records.
pub(crate) fn model_and_data(model: &str, data: &str) -> Vec<Reference> {
    vec![
        Reference {
            stage: model.to_string(),
            key: "model".to_string(),
            accepts: &[ArtifactType::Model],
        },
        Reference {
            stage: data.to_string(),
            key: "data".to_string(),
            accepts: &[ArtifactType::Corpus],
        },
    ]
}

/// The checks of a fine-tuning stage's `model` and `data` references (shared with `dpo`): each
/// must name a stage; `hints` say which kind of stage, for each.
pub(crate) fn input_problems(values: [&String; 2], hints: [&str; 2]) -> Vec<Invalid> {
    ["model", "data"]
        .into_iter()
        .zip(values)
        .zip(hints)
        .filter(|((_, value), _)| value.trim().is_empty())
        .map(|((key, _), hint)| invalid(key, format!("`{key}` is empty"), hint))
        .collect()
}

/// What `sft` and `dpo` train with, for [`training_problems`].
pub(crate) struct Training<'a> {
    pub device: &'a str,
    pub epochs: Option<u64>,
    pub train: &'a TrainParams,
    pub lora: Option<&'a LoraParams>,
    pub eval: &'a SftEval,
}

/// The checks of a fine-tuning stage's device, epochs, `train:`, `lora:` and `eval:` (shared
/// with `dpo`).
pub(crate) fn training_problems(t: &Training) -> Vec<Invalid> {
    let mut problems = Vec::new();
    if !is_device(t.device) {
        problems.push(invalid(
            "device",
            format!("unknown device `{}`", t.device),
            "use `auto`, `cpu`, `cuda` or `cuda:N`",
        ));
    }
    if t.epochs == Some(0) {
        problems.push(invalid(
            "epochs",
            "`epochs` is 0".to_string(),
            "train for at least one pass, or leave `epochs` out to train `train.steps` steps",
        ));
    }
    problems.extend(train_problems(t.train, t.epochs.is_none()));
    if let Some(lora) = t.lora {
        problems.extend(lora_problems(lora));
    }
    if t.eval.max_new_tokens == 0 {
        problems.push(invalid(
            "eval.max_new_tokens",
            "`eval.max_new_tokens` is 0".to_string(),
            "allow at least one answer token, e.g. 32",
        ));
    }
    problems
}

/// The checks of a `lora:` block (shared with `dpo`).
pub(crate) fn lora_problems(lora: &LoraParams) -> Vec<Invalid> {
    let mut problems = Vec::new();
    let mut bad = |path: &str, message: String, hint: &str| {
        problems.push(Invalid {
            path: path.to_string(),
            on_key: false,
            message,
            hint: Some(hint.to_string()),
        })
    };
    if lora.r == 0 {
        bad(
            "lora.r",
            "`lora.r` is 0".to_string(),
            "use a rank of at least 1; 4 to 16 is usual",
        );
    }
    if !(lora.alpha.is_finite() && lora.alpha > 0.0) {
        bad(
            "lora.alpha",
            format!("`lora.alpha` is {}", lora.alpha),
            "use a positive scale; alpha = 2·r is a common choice",
        );
    }
    if !(0.0..1.0).contains(&lora.dropout) {
        bad(
            "lora.dropout",
            format!("`lora.dropout` is {}, outside [0, 1)", lora.dropout),
            "use a probability such as 0.0 or 0.05",
        );
    }
    if lora.targets.is_empty() {
        bad(
            "lora.targets",
            "`lora.targets` is empty: nothing would be trained".to_string(),
            "list layers to adapt from q, k, v, o and mlp, e.g. `[q, v]`",
        );
    }
    for (i, t) in repeats(&lora.targets) {
        bad(
            &format!("lora.targets[{i}]"),
            format!("`{}` is listed twice in `lora.targets`", t.name()),
            "name each layer once",
        );
    }
    for (i, t) in repeats(&lora.also_train) {
        bad(
            &format!("lora.also_train[{i}]"),
            format!("`{}` is listed twice in `lora.also_train`", t.name()),
            "name each family once",
        );
    }
    problems
}

/// The entries of `list` that repeat an earlier one, with their positions.
fn repeats<T: PartialEq>(list: &[T]) -> impl Iterator<Item = (usize, &T)> {
    list.iter()
        .enumerate()
        .filter(|&(i, t)| list[..i].contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SftParams {
        SftParams {
            model: "base".to_string(),
            data: "chats".to_string(),
            epochs: None,
            train: TrainParams::default(),
            lora: None,
            eval: SftEval::default(),
            device: super::super::pretrain::default_device(),
        }
    }

    #[test]
    fn references_the_model_and_the_data() {
        let refs = StageKind::references(&params());
        let keys: Vec<(&str, &str, &[ArtifactType])> = refs
            .iter()
            .map(|r| (r.stage.as_str(), r.key.as_str(), r.accepts))
            .collect();
        assert_eq!(
            keys,
            [
                ("base", "model", &[ArtifactType::Model][..]),
                ("chats", "data", &[ArtifactType::Corpus][..]),
            ]
        );
        assert!(params().validate().is_empty());
    }

    #[test]
    fn validation_names_every_bad_key() {
        let mut p = params();
        p.model = " ".to_string();
        p.device = "tpu".to_string();
        p.epochs = Some(0);
        p.train.lr = -1.0;
        p.lora = Some(LoraParams {
            r: 0,
            alpha: 0.0,
            dropout: 1.5,
            targets: vec![LoraTarget::Q, LoraTarget::Mlp, LoraTarget::Q],
            also_train: vec![LoraAlsoTrain::Bias, LoraAlsoTrain::Bias],
        });
        p.eval.max_new_tokens = 0;
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "model",
                "device",
                "epochs",
                "train.lr",
                "lora.r",
                "lora.alpha",
                "lora.dropout",
                "lora.targets[2]",
                "lora.also_train[1]",
                "eval.max_new_tokens"
            ]
        );
        p.lora = Some(LoraParams {
            targets: vec![],
            ..LoraParams::default()
        });
        assert!(p.validate().iter().any(|i| i.path == "lora.targets"));
    }

    #[test]
    fn also_train_families_cover_their_weights_only() {
        let names = [
            "tok_emb.weight",
            "pos_emb.weight",
            "lm_head.weight",
            "blocks.0.attn.qkv.weight",
            "blocks.0.attn.qkv.bias",
            "blocks.1.mlp.proj.bias",
            "blocks.0.norm1.weight",
            "blocks.2.norm2.bias",
            "norm_f.bias",
        ];
        let picked = |f: LoraAlsoTrain| -> Vec<&str> {
            names.iter().copied().filter(|n| f.covers(n)).collect()
        };
        assert_eq!(
            picked(LoraAlsoTrain::Embedding),
            ["tok_emb.weight", "pos_emb.weight", "lm_head.weight"]
        );
        assert_eq!(
            picked(LoraAlsoTrain::Bias),
            ["blocks.0.attn.qkv.bias", "blocks.1.mlp.proj.bias"]
        );
        assert_eq!(
            picked(LoraAlsoTrain::Norm),
            [
                "blocks.0.norm1.weight",
                "blocks.2.norm2.bias",
                "norm_f.bias"
            ]
        );
        // Left out, the key keeps the stage's params (and so its fingerprint) as they were.
        let json = serde_json::to_string(&LoraParams::default()).unwrap();
        assert!(!json.contains("also_train"), "{json}");
    }

    /// With `epochs` the step count comes from the data, so a long warmup is not an error yet.
    #[test]
    fn warmup_is_checked_against_fixed_steps_only() {
        let mut p = params();
        p.train.steps = 10;
        p.train.warmup_steps = 20;
        assert_eq!(p.validate()[0].path, "train.warmup_steps");
        p.epochs = Some(2);
        assert!(p.validate().is_empty());
    }
}
