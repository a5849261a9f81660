//! Artifact types: what a stage kind produces, and what each reference key accepts.
//!
//! They type the edges of the graph, so that a `deploy` pointed at a `data` stage is refused
//! when the manifest loads instead of failing after every upstream stage has run.

use std::fmt;

/// What a stage's artifact is, as far as the stages that read it are concerned.
///
/// Each stage kind produces one type (`pipelines::produces`), and each key that names another
/// stage accepts a set of them (`Reference::accepts`).
///
/// In a manifest (a command stage's `produces:`) the types are written in snake case:
/// `corpus`, `tokenizer`, `model`, `bundle`, `files`, `eval_report`, `quantized_model`, `export`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactType {
    /// Cleaned train/val splits (`data`).
    Corpus,
    /// A `tokenizer.json` and the token shards it encoded (`tokenizer`).
    Tokenizer,
    /// A checkpoint: `config.json` + `model.safetensors` (`pretrain`, `sft`; later `dpo`).
    Model,
    /// A servable bundle: weights, tokenizer, model and server config (`deploy`).
    Bundle,
    /// Whatever a user's own step wrote (`command`): nothing is known about its layout.
    Files,
    /// An evaluation report (the coming `eval` kind).
    EvalReport,
    /// A model with quantized weights (the coming `quantize` kind).
    QuantizedModel,
    /// A model in another tool's layout, Hugging Face or GGUF (the coming `export` kind).
    Export,
}

impl ArtifactType {
    /// Every type, in declaration order.
    pub const ALL: &'static [ArtifactType] = &[
        ArtifactType::Corpus,
        ArtifactType::Tokenizer,
        ArtifactType::Model,
        ArtifactType::Bundle,
        ArtifactType::Files,
        ArtifactType::EvalReport,
        ArtifactType::QuantizedModel,
        ArtifactType::Export,
    ];

    /// The lowercase name used in messages and docs: `corpus`, `eval report`.
    pub fn name(self) -> &'static str {
        match self {
            ArtifactType::Corpus => "corpus",
            ArtifactType::Tokenizer => "tokenizer",
            ArtifactType::Model => "model",
            ArtifactType::Bundle => "bundle",
            ArtifactType::Files => "files",
            ArtifactType::EvalReport => "eval report",
            ArtifactType::QuantizedModel => "quantized model",
            ArtifactType::Export => "export",
        }
    }

    /// The spelling in a manifest (`produces: eval_report`).
    pub fn key(self) -> &'static str {
        match self {
            ArtifactType::EvalReport => "eval_report",
            ArtifactType::QuantizedModel => "quantized_model",
            other => other.name(),
        }
    }

    /// The name as a noun phrase in a sentence: `a corpus`, `an eval report`, `files`.
    pub fn with_article(self) -> String {
        match self {
            // A plural: "it produces files", not "a files".
            ArtifactType::Files => self.name().to_string(),
            ArtifactType::EvalReport | ArtifactType::Export => format!("an {}", self.name()),
            _ => format!("a {}", self.name()),
        }
    }
}

impl fmt::Display for ArtifactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `a model or a quantized model`: the types of `accepts`, for messages.
pub(crate) fn describe(accepts: &[ArtifactType]) -> String {
    let phrases: Vec<String> = accepts.iter().map(|t| t.with_article()).collect();
    match phrases.as_slice() {
        [] => "any artifact".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_and_distinct() {
        let names: Vec<&str> = ArtifactType::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "corpus",
                "tokenizer",
                "model",
                "bundle",
                "files",
                "eval report",
                "quantized model",
                "export"
            ]
        );
        assert_eq!(ArtifactType::EvalReport.to_string(), "eval report");
    }

    #[test]
    fn manifest_spelling_is_the_serde_name() {
        for &t in ArtifactType::ALL {
            let json = serde_json::to_value(t).expect("serializes");
            assert_eq!(json, t.key());
        }
    }

    #[test]
    fn phrases_read_as_english() {
        assert_eq!(ArtifactType::Corpus.with_article(), "a corpus");
        assert_eq!(ArtifactType::Export.with_article(), "an export");
        assert_eq!(ArtifactType::Files.with_article(), "files");
        assert_eq!(
            describe(&[ArtifactType::Model, ArtifactType::QuantizedModel]),
            "a model or a quantized model"
        );
        assert_eq!(describe(&[]), "any artifact");
    }
}
