//! `kind: dpo` — direct preference optimisation of a fine-tuned model on preference pairs.
//!
//! The policy starts from the `model` stage's weights, and the same weights, frozen, are the
//! reference. Training settings are pretrain's `train:` block; `lora:` and `eval:` are sft's.

use super::pretrain::TrainParams;
use super::sft::{
    input_problems, model_and_data, training_problems, LoraParams, SftEval, Training,
};
use super::{Invalid, KindInfo, Reproducibility, Runner, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

/// `kind: dpo` — trains the model of a `model` stage (normally an `sft` stage) to prefer the
/// `chosen` answer of each preference record of a `data` stage over its `rejected` one,
/// relative to the model it started from. Produces an ordinary model artifact.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DpoParams {
    /// The stage whose model is the starting policy and, frozen, the reference (an `sft`
    /// stage). Required.
    pub model: String,
    /// The `data` stage of preference records (`prompt`, `chosen`, `rejected`: the
    /// `preferences` generator, or a `command` stage with `produces: corpus` writing Parquet
    /// splits with those columns). Required.
    pub data: String,
    /// Strength of the pull towards the reference (the KL penalty's weight): larger keeps
    /// the policy closer. Default 0.1.
    #[serde(default = "d_beta")]
    pub beta: f64,
    /// `sigmoid` (the DPO paper's loss) or `ipo` (identity preference optimisation's squared
    /// loss). Default `sigmoid`.
    #[serde(default)]
    pub loss: DpoLoss,
    /// Weight of the chosen answers' own language-model loss (per token) added to the
    /// preference loss — RPO, TRL's `rpo_alpha`. The preference loss alone can make the chosen
    /// answer less likely too, as long as the rejected one falls faster; this term keeps it
    /// likely. 0 (the default) is plain DPO/IPO; 1 is usual.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0))]
    pub rpo_alpha: f64,
    /// Passes over the training pairs; replaces `train.steps` when given. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub epochs: Option<u64>,
    /// Optimisation, validation and checkpointing, as in `pretrain` (`batch_size` counts
    /// pairs). Default: each key's default.
    #[serde(default)]
    pub train: TrainParams,
    /// Train LoRA adapters instead of every weight, as in `sft`. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraParams>,
    /// Greedy answers to held-out prompts, compared with the chosen and the rejected answer.
    /// Default: each key's default.
    #[serde(default)]
    pub eval: SftEval,
    /// `auto`, `cpu`, `cuda` or `cuda:N`. Default `auto`.
    #[serde(default = "super::pretrain::default_device")]
    pub device: String,
}

/// The preference loss, of `h = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))`.
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
pub enum DpoLoss {
    /// `−log σ(β·h)` (Rafailov et al., 2023).
    #[default]
    Sigmoid,
    /// `(h − 1/(2β))²` (Azar et al., 2023): a bounded target for the margin.
    Ipo,
}

fn d_beta() -> f64 {
    0.1
}

// Skipped when 0, so the fingerprints of manifests written before the key existed stay the same.
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}
impl StageKind for DpoParams {
    const INFO: KindInfo = KindInfo {
        name: "dpo",
        // 1: first version. 2: on the CPU, AdamW updates each element in one pass (the last
        // bit of some weights moves). 3: LoRA also trains the chat markers' embedding rows.
        version: 3,
        produces: ArtifactType::Model,
        runner: Runner::Torch,
        headline: Some("val_preference_accuracy"),
        reproducible: Reproducibility::SameMachine(super::pretrain::TRAINING_TOLERANCE),
    };

    fn references(&self) -> Vec<Reference> {
        model_and_data(&self.model, &self.data)
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut problems = input_problems(
            [&self.model, &self.data],
            [
                "name the stage whose model to align, e.g. `model: assistant` (an sft stage)",
                "name a data stage of preference pairs, e.g. one with the `preferences` generator",
            ],
        );
        if !(self.beta.is_finite() && self.beta > 0.0) {
            problems.push(Invalid {
                path: "beta".to_string(),
                on_key: false,
                message: format!("`beta` is {}", self.beta),
                hint: Some("use a positive strength; 0.1 is usual (0.01–0.5)".to_string()),
            });
        }
        if !(self.rpo_alpha.is_finite() && self.rpo_alpha >= 0.0) {
            problems.push(Invalid {
                path: "rpo_alpha".to_string(),
                on_key: false,
                message: format!("`rpo_alpha` is {}", self.rpo_alpha),
                hint: Some("use 0 (plain DPO) or a positive weight; 1 is usual".to_string()),
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DpoParams {
        DpoParams {
            model: "assistant".to_string(),
            data: "prefs".to_string(),
            beta: d_beta(),
            loss: DpoLoss::default(),
            rpo_alpha: 0.0,
            epochs: None,
            train: TrainParams::default(),
            lora: None,
            eval: SftEval::default(),
            device: super::super::pretrain::default_device(),
        }
    }

    #[test]
    fn references_and_validation() {
        let refs = StageKind::references(&params());
        assert_eq!(refs.len(), 2);
        assert_eq!(
            (refs[0].key.as_str(), refs[1].key.as_str()),
            ("model", "data")
        );
        assert!(params().validate().is_empty());
        let mut p = params();
        p.beta = 0.0;
        p.rpo_alpha = -1.0;
        p.data = String::new();
        p.lora = Some(LoraParams {
            r: 0,
            ..LoraParams::default()
        });
        let paths: Vec<String> = p.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(paths, ["data", "beta", "rpo_alpha", "lora.r"]);
    }
}
