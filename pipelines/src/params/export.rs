//! `kind: export` — a model in another tool's own layout (docs/export.md).

use super::{
    Invalid, KindInfo, Mlp, ModelArchitecture, Norm, Positions, Reproducibility, Runner, StageKind,
    TokenizerModel, TokenizerParams,
};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

/// `kind: export` — a model written in the layout another tool loads with no binarylm code:
/// a Hugging Face `transformers` directory (`format: hf`) or one GGUF file for llama.cpp
/// (`format: gguf`). A quantized model is exported with its weights dequantized to f32 first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// The model stage to export (`pretrain`, `sft`, `dpo` or `quantize`). Required.
    pub model: String,
    /// The target layout. `hf`: a directory `AutoModelForCausalLM.from_pretrained` and
    /// `AutoTokenizer.from_pretrained` load (GPT-2-style models as `GPT2LMHeadModel`,
    /// Llama-style as `LlamaForCausalLM`). `gguf`: `model.gguf`, weights and tokenizer in one
    /// file, for llama.cpp (architecture `gpt2` or `llama`). Required.
    pub format: ExportFormat,
    /// `gguf` only: how the matrices are stored — `f32`, `f16`, `q8_0` or `q4_0` (ggml's
    /// 32-weight blocks with one f16 scale each). Norms and biases stay f32. Default `f16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<GgufDtype>,
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
    /// A GGUF v3 file for llama.cpp.
    Gguf,
}

/// How a GGUF export stores its matrices.
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
#[serde(rename_all = "snake_case")]
pub enum GgufDtype {
    F32,
    #[default]
    F16,
    /// Blocks of 32 weights: an f16 scale `max|w| / 127` and 32 signed bytes.
    Q8_0,
    /// Blocks of 32 weights: an f16 scale `w_max / −8` (the signed weight of largest
    /// magnitude) and 32 four-bit values offset by 8.
    Q4_0,
}

impl GgufDtype {
    /// The spelling in a manifest (`q8_0`).
    pub fn name(self) -> &'static str {
        match self {
            GgufDtype::F32 => "f32",
            GgufDtype::F16 => "f16",
            GgufDtype::Q8_0 => "q8_0",
            GgufDtype::Q4_0 => "q4_0",
        }
    }
}

/// The family a binarylm architecture is exported as: the same two in both formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportArchitecture {
    /// Learned positions, LayerNorm, GELU: `GPT2LMHeadModel`; llama.cpp's `gpt2`.
    Gpt2,
    /// RoPE, RMSNorm, SwiGLU: `LlamaForCausalLM`; llama.cpp's `llama`.
    Llama,
}

impl ExportArchitecture {
    /// The `transformers` class name `config.json`'s `architectures` lists.
    pub fn hf_class(self) -> &'static str {
        match self {
            ExportArchitecture::Gpt2 => "GPT2LMHeadModel",
            ExportArchitecture::Llama => "LlamaForCausalLM",
        }
    }

    /// The `general.architecture` of a GGUF file (and the prefix of its model keys).
    pub fn gguf_arch(self) -> &'static str {
        match self {
            ExportArchitecture::Gpt2 => "gpt2",
            ExportArchitecture::Llama => "llama",
        }
    }

    /// Which family a model with these choices belongs to, or, for a mix, why `format` has
    /// none. Biases, a tied or untied head and grouped-query attention fit both families;
    /// these three choices pick the family.
    pub fn of(
        positions: Positions,
        norm: Norm,
        mlp: Mlp,
        format: ExportFormat,
    ) -> Result<ExportArchitecture, String> {
        match (positions, norm, mlp) {
            (Positions::Learned, Norm::LayerNorm, Mlp::Gelu) => Ok(ExportArchitecture::Gpt2),
            (Positions::Rope, Norm::RmsNorm, Mlp::SwiGlu) => Ok(ExportArchitecture::Llama),
            _ => {
                let (what, gpt2, llama) = match format {
                    ExportFormat::Hf => (
                        "`transformers` class",
                        "GPT2LMHeadModel",
                        "LlamaForCausalLM",
                    ),
                    ExportFormat::Gguf => ("llama.cpp architecture", "`gpt2`", "`llama`"),
                };
                Err(format!(
                    "no {what} computes a model with {}: {gpt2} needs {} and {llama} needs {}",
                    describe(positions, norm, mlp),
                    describe(Positions::Learned, Norm::LayerNorm, Mlp::Gelu),
                    describe(Positions::Rope, Norm::RmsNorm, Mlp::SwiGlu),
                ))
            }
        }
    }
}

/// `RoPE positions, LayerNorm, SwiGLU`.
fn describe(positions: Positions, norm: Norm, mlp: Mlp) -> String {
    let p = match positions {
        Positions::Learned => "learned",
        Positions::Rope => "RoPE",
    };
    let n = match norm {
        Norm::LayerNorm => "LayerNorm",
        Norm::RmsNorm => "RMSNorm",
    };
    let m = match mlp {
        Mlp::Gelu => "GELU",
        Mlp::SwiGlu => "SwiGLU",
    };
    format!("{p} positions, {n}, {m}")
}

impl ExportParams {
    /// The GGUF storage type in effect (`f16` unless given).
    pub fn gguf_dtype(&self) -> GgufDtype {
        self.dtype.unwrap_or_default()
    }

    /// The family the model built from `a` is written as, or why this format cannot express
    /// it. Loading calls it when the model's architecture is known from the manifest (the
    /// `model` chain reaches a `pretrain` stage); the stage calls it again on the model's own
    /// config.
    pub fn architecture(&self, a: &ModelArchitecture) -> Result<ExportArchitecture, String> {
        ExportArchitecture::of(a.positions, a.norm, a.mlp, self.format)
    }

    /// Why this format cannot carry the tokenizer a tokenizer stage trains, when its params
    /// already say: GGUF's BPE tokenizer is byte-level, so a character-level one is refused.
    /// (A `pretrained` file's model, and whether a custom `pattern` has a llama.cpp splitter,
    /// are known only when the stage runs, which checks them again.)
    pub fn tokenizer_refusal(&self, t: &TokenizerParams) -> Option<String> {
        let char_level = t.pretrained.is_none() && t.model == Some(TokenizerModel::Char);
        (self.format == ExportFormat::Gguf && char_level).then(|| {
            "GGUF's `gpt2` tokenizer is byte-level BPE, and its tokenizer stage trains a character-level one (`model: char`)".to_string()
        })
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
        // Weights are copied (transposed, split, dequantized, rounded to f16 or ggml blocks:
        // all elementwise) and the other files are written from the inputs: the same source
        // gives the same bytes anywhere.
        reproducible: Reproducibility::Exact,
    };

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            stage: self.model.clone(),
            key: "model".to_string(),
            accepts: &[ArtifactType::Model, ArtifactType::QuantizedModel],
        }]
    }

    fn validate(&self) -> Vec<Invalid> {
        match (self.format, self.dtype) {
            (ExportFormat::Hf, Some(_)) => vec![Invalid {
                path: "dtype".to_string(),
                on_key: true,
                message: "a Hugging Face export is f32: `dtype` applies only to `format: gguf`"
                    .into(),
                hint: Some("remove `dtype`, or use `format: gguf`".into()),
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_and_llama_choices_pick_their_family_and_mixes_are_refused() {
        use {Mlp::*, Norm::*, Positions::*};
        let hf = ExportFormat::Hf;
        assert_eq!(
            ExportArchitecture::of(Learned, LayerNorm, Gelu, hf),
            Ok(ExportArchitecture::Gpt2)
        );
        assert_eq!(
            ExportArchitecture::of(Rope, RmsNorm, SwiGlu, ExportFormat::Gguf),
            Ok(ExportArchitecture::Llama)
        );
        let why = ExportArchitecture::of(Rope, LayerNorm, SwiGlu, hf).unwrap_err();
        assert!(
            why.contains("RoPE positions, LayerNorm, SwiGLU")
                && why.contains("GPT2LMHeadModel needs learned positions, LayerNorm, GELU"),
            "{why}"
        );
        let why = ExportArchitecture::of(Learned, RmsNorm, Gelu, ExportFormat::Gguf).unwrap_err();
        assert!(why.contains("no llama.cpp architecture"), "{why}");
    }
}
