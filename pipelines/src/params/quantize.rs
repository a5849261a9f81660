//! `kind: quantize` — a model's linear weights rounded to 8 or 4 bits (weight-only,
//! round-to-nearest), with the quality cost measured (docs/quantization.md).

use super::{Invalid, KindInfo, Reproducibility, Runner, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

/// `kind: quantize` — a smaller copy of a model: every linear layer's weight stored as 8-bit
/// (one absmax scale per output channel) or 4-bit integers (one scale per group of inputs).
/// `generate`, `serve`, `deploy` and `eval` take it like any model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantizeParams {
    /// The model stage to quantize (`pretrain`, `sft`, `dpo`). Required.
    pub model: String,
    /// `int8` (per output channel) or `int4` (per group of `group_size` inputs). Default `int8`.
    #[serde(default)]
    pub scheme: QuantScheme,
    /// Inputs sharing one scale in `int4` (32, 64 or 128; it must divide every layer's input
    /// width). Smaller groups follow the weights more closely and cost more scales. Default 64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_size: Option<usize>,
    /// Quantize the token embeddings (and so a tied output head) too. They are a large share of
    /// a small model and the most sensitive to rounding. Default false.
    #[serde(default)]
    pub embeddings: bool,
    /// A data stage whose val split measures what quantizing cost: bits per byte of the source
    /// and the quantized model on its first `limit` documents. Default: not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Documents of `data` scored. Default 200.
    #[serde(default = "two_hundred")]
    #[schemars(range(min = 1))]
    pub limit: usize,
    /// `auto` (CUDA when present), `cpu`, `cuda`, `cuda:N`: where the quality check runs. The
    /// rounding itself is the same anywhere. Default `auto`.
    #[serde(default = "super::pretrain::default_device")]
    pub device: String,
}

/// How weights are rounded.
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
pub enum QuantScheme {
    /// 8-bit integers in [−127, 127], one scale (max |w| / 127) per output channel.
    #[default]
    Int8,
    /// 4-bit integers in [−7, 7], one scale (max |w| / 7) per group of inputs of each output
    /// channel; two per byte.
    Int4,
}

impl QuantizeParams {
    /// The int4 group size in effect.
    pub fn group(&self) -> usize {
        self.group_size.unwrap_or(64)
    }
}

fn two_hundred() -> usize {
    200
}
impl StageKind for QuantizeParams {
    const INFO: KindInfo = KindInfo {
        name: "quantize",
        // 1: first version.
        // 2: a source's tokenizer_config.json (the chat template of sft and dpo models) is
        //    copied into the artifact.
        version: 2,
        produces: ArtifactType::QuantizedModel,
        runner: Runner::Torch,
        headline: Some("bits_per_byte_delta"),
        // Rounding is elementwise: the same source bytes give the same quantized bytes on any
        // machine. (The quality check's numbers are run measurements, not artifact content.)
        reproducible: Reproducibility::Exact,
    };

    fn references(&self) -> Vec<Reference> {
        let mut refs = vec![Reference {
            stage: self.model.clone(),
            key: "model".to_string(),
            accepts: &[ArtifactType::Model],
        }];
        if let Some(d) = &self.data {
            refs.push(Reference {
                stage: d.clone(),
                key: "data".to_string(),
                accepts: &[ArtifactType::Corpus],
            });
        }
        refs
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let mut invalid = |path: &str, message: String, hint: &str| {
            problems.push(Invalid {
                path: path.to_string(),
                on_key: false,
                message,
                hint: Some(hint.to_string()),
            });
        };
        match (self.scheme, self.group_size) {
            (QuantScheme::Int8, Some(_)) => invalid(
                "group_size",
                "`group_size` applies to `int4`; `int8` has one scale per output channel".into(),
                "remove `group_size`, or use `scheme: int4`",
            ),
            (QuantScheme::Int4, Some(g)) if ![32, 64, 128].contains(&g) => invalid(
                "group_size",
                format!("`group_size` is {g}; it must be 32, 64 or 128"),
                "64 is the usual trade-off",
            ),
            _ => {}
        }
        if self.limit == 0 {
            invalid(
                "limit",
                "`limit` must be at least 1".into(),
                "the default is 200",
            );
        }
        if !super::pretrain::is_device(&self.device) {
            invalid(
                "device",
                format!("unknown device `{}`", self.device),
                "use auto, cpu, cuda or cuda:N",
            );
        }
        problems
    }
}
