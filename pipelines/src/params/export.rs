//! `kind: export` — a model in another tool's own layout (docs/export.md).

use super::{KindInfo, Mlp, ModelArchitecture, Norm, Positions, Reproducibility, Runner, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

/// `kind: export` — a model written in the layout another tool loads with no binarylm code:
/// a Hugging Face `transformers` directory (`format: hf`). A quantized model is exported with
/// its weights dequantized to f32 (what `transformers`' classes hold), not as integers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// The model stage to export (`pretrain`, `sft`, `dpo` or `quantize`). Required.
    pub model: String,
    /// The target layout. `hf`: a directory `AutoModelForCausalLM.from_pretrained` and
    /// `AutoTokenizer.from_pretrained` load (GPT-2-style models as `GPT2LMHeadModel`,
    /// Llama-style as `LlamaForCausalLM`). Required.
    pub format: ExportFormat,
}

/// Which tool's layout an export writes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A Hugging Face `transformers` model directory (`huggingface` is accepted too).
    #[serde(alias = "huggingface")]
    Hf,
}

/// The `transformers` class a binarylm architecture is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfArchitecture {
    /// Learned positions, LayerNorm, GELU: `GPT2LMHeadModel` (`model_type: gpt2`).
    Gpt2,
    /// RoPE, RMSNorm, SwiGLU: `LlamaForCausalLM` (`model_type: llama`).
    Llama,
}

impl HfArchitecture {
    /// The class name `config.json`'s `architectures` lists.
    pub fn class(self) -> &'static str {
        match self {
            HfArchitecture::Gpt2 => "GPT2LMHeadModel",
            HfArchitecture::Llama => "LlamaForCausalLM",
        }
    }

    /// Which class expresses a model with these choices, or why none does. Biases, a tied or
    /// untied head and grouped-query attention fit both (GPT-2 takes zero biases for a model
    /// without them and repeated key/value heads for grouped-query attention, which compute
    /// the same function); the three choices below pick the class, and a mix of them has no
    /// class in `transformers`.
    pub fn of(positions: Positions, norm: Norm, mlp: Mlp) -> Result<HfArchitecture, String> {
        match (positions, norm, mlp) {
            (Positions::Learned, Norm::LayerNorm, Mlp::Gelu) => Ok(HfArchitecture::Gpt2),
            (Positions::Rope, Norm::RmsNorm, Mlp::SwiGlu) => Ok(HfArchitecture::Llama),
            _ => {
                let name = |p: Positions, n: Norm, m: Mlp| {
                    format!(
                        "{} positions, {}, {}",
                        match p {
                            Positions::Learned => "learned",
                            Positions::Rope => "RoPE",
                        },
                        match n {
                            Norm::LayerNorm => "LayerNorm",
                            Norm::RmsNorm => "RMSNorm",
                        },
                        match m {
                            Mlp::Gelu => "GELU",
                            Mlp::SwiGlu => "SwiGLU",
                        }
                    )
                };
                Err(format!(
                    "no `transformers` class computes a model with {}: GPT2LMHeadModel needs {} and LlamaForCausalLM needs {}",
                    name(positions, norm, mlp),
                    name(Positions::Learned, Norm::LayerNorm, Mlp::Gelu),
                    name(Positions::Rope, Norm::RmsNorm, Mlp::SwiGlu),
                ))
            }
        }
    }

    /// [`HfArchitecture::of`] for a resolved architecture.
    pub fn of_architecture(a: &ModelArchitecture) -> Result<HfArchitecture, String> {
        HfArchitecture::of(a.positions, a.norm, a.mlp)
    }
}

impl ExportParams {
    /// Whether the model built from `a` can be written in this format; the reason if not.
    /// Loading calls it when the model's architecture is known from the manifest (the `model`
    /// chain reaches a `pretrain` stage); the stage calls it again on the model's own config.
    pub fn refusal(&self, a: &ModelArchitecture) -> Option<String> {
        match self.format {
            ExportFormat::Hf => HfArchitecture::of_architecture(a).err(),
        }
    }
}

impl StageKind for ExportParams {
    const INFO: KindInfo = KindInfo {
        name: "export",
        // 1: first version.
        version: 1,
        produces: ArtifactType::Export,
        runner: Runner::Torch,
        headline: None,
        // Weights are copied (transposed, split, dequantized elementwise) and the JSON files
        // are written from the inputs: the same source gives the same bytes anywhere.
        reproducible: Reproducibility::Exact,
    };

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            stage: self.model.clone(),
            key: "model".to_string(),
            accepts: &[ArtifactType::Model, ArtifactType::QuantizedModel],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_and_llama_choices_pick_their_class_and_mixes_are_refused() {
        use {Mlp::*, Norm::*, Positions::*};
        assert_eq!(
            HfArchitecture::of(Learned, LayerNorm, Gelu),
            Ok(HfArchitecture::Gpt2)
        );
        assert_eq!(
            HfArchitecture::of(Rope, RmsNorm, SwiGlu),
            Ok(HfArchitecture::Llama)
        );
        let why = HfArchitecture::of(Rope, LayerNorm, SwiGlu).unwrap_err();
        assert!(
            why.contains("RoPE positions, LayerNorm, SwiGLU")
                && why.contains("GPT2LMHeadModel needs learned positions, LayerNorm, GELU"),
            "{why}"
        );
    }
}
