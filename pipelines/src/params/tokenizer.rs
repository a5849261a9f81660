//! `kind: tokenizer` — a tokenizer trained on (or loaded for) a data stage, and that stage's
//! splits encoded into token shards.

use std::path::Path;

use super::{Invalid, KindInfo, LocalFilesError, Reproducibility, Runner, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

/// The special tokens a trained tokenizer gets when `special_tokens` is not given.
pub const DEFAULT_SPECIAL_TOKENS: &[&str] = &[
    "<|bos|>",
    "<|eos|>",
    "<|pad|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
];
/// Default `vocab_size` of a BPE tokenizer.
pub const DEFAULT_VOCAB_SIZE: usize = 8192;
/// Default `pattern`.
pub const DEFAULT_PATTERN: &str = "gpt4";
/// Default `min_frequency` of BPE (pairs) and char (characters) tokenizers.
pub const DEFAULT_MIN_FREQUENCY: u64 = 2;

/// `kind: tokenizer` — trains a byte-level BPE (or char-level) tokenizer on a data stage's
/// train split, or loads an existing `tokenizer.json`, then encodes the train and val splits
/// into token shards (`train.bin`, `val.bin`, …) for pretraining.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizerParams {
    /// The data stage to train on (its train split only) and to encode. Required.
    pub data: String,
    /// `bpe` (byte-level BPE, GPT-2 style) or `char` (one token per character, with byte
    /// fallback). Default: `bpe`, or the file's model with `pretrained`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<TokenizerModel>,
    /// Total ids of a BPE tokenizer: 256 bytes + merges + special tokens (at least 256 plus the
    /// number of special tokens). Training may stop short when the corpus has no pair left
    /// that occurs `min_frequency` times. Default: 8192.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 257))]
    pub vocab_size: Option<usize>,
    /// Pre-tokenizer split pattern of a BPE tokenizer: `gpt2`, `gpt4` (cl100k) or a regex
    /// (`regex` crate syntax: no look-around). Default: `gpt4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// BPE: a pair seen fewer times is never merged; char: a rarer character is left to the
    /// byte fallback. Default: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_frequency: Option<u64>,
    /// Tokens matched whole and never produced from text; must include `<|eos|>` (the document
    /// separator in the shards). Default: `<|bos|>`, `<|eos|>`, `<|pad|>`, `<|system|>`,
    /// `<|user|>`, `<|assistant|>`, `<|end|>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_tokens: Option<Vec<String>>,
    /// Train on at most this many bytes of the train split (whole documents, in order).
    /// Encoding always covers every document. Default: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_train_bytes: Option<u64>,
    /// Use this Hugging Face `tokenizer.json` (path relative to the manifest; its content is
    /// part of the fingerprint) instead of training. Its end-of-document token is the first
    /// of `<|eos|>`, `<|endoftext|>`, `</s>`, `<eos>` it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
}

/// The tokenizer model to train.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerModel {
    Bpe,
    Char,
}

impl TokenizerParams {
    /// `vocab_size` with its default.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size.unwrap_or(DEFAULT_VOCAB_SIZE)
    }

    /// `pattern` with its default.
    pub fn pattern(&self) -> &str {
        self.pattern.as_deref().unwrap_or(DEFAULT_PATTERN)
    }

    /// `min_frequency` with its default.
    pub fn min_frequency(&self) -> u64 {
        self.min_frequency.unwrap_or(DEFAULT_MIN_FREQUENCY)
    }

    /// `special_tokens` with its default.
    pub fn special_tokens(&self) -> Vec<String> {
        match &self.special_tokens {
            Some(s) => s.clone(),
            None => DEFAULT_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl StageKind for TokenizerParams {
    const INFO: KindInfo = KindInfo {
        name: "tokenizer",
        // 1: first version. 2: instruction/preference records close the user turn with
        // `<|end|>` (`<|user|>P<|end|><|assistant|>R<|end|>`), the chat template's layout.
        version: 2,
        produces: ArtifactType::Tokenizer,
        runner: Runner::InProcess,
        headline: Some("bytes_per_token_val"),
        // Merge ties break by bytes, and shards are written in document order.
        reproducible: Reproducibility::Exact,
    };

    fn references(&self) -> Vec<Reference> {
        vec![Reference {
            stage: self.data.clone(),
            key: "data".to_string(),
            // It trains on the train split and encodes both splits: only a corpus has them.
            accepts: &[ArtifactType::Corpus],
        }]
    }

    /// A `pretrained:` tokenizer file is read from the manifest's directory.
    fn local_files(&self, _manifest_dir: &Path) -> Result<Vec<String>, LocalFilesError> {
        Ok(self.pretrained.iter().cloned().collect())
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let mut problem = |path: &str, message: String, hint: &str| {
            problems.push(Invalid {
                path: path.to_string(),
                on_key: false,
                message,
                hint: Some(hint.to_string()),
            })
        };
        if let Some(path) = &self.pretrained {
            if path.trim().is_empty() {
                problem(
                    "pretrained",
                    "`pretrained` is empty".into(),
                    "give the path of a tokenizer.json, relative to the manifest",
                );
            }
            let set = [
                ("model", self.model.is_some()),
                ("vocab_size", self.vocab_size.is_some()),
                ("pattern", self.pattern.is_some()),
                ("min_frequency", self.min_frequency.is_some()),
                ("special_tokens", self.special_tokens.is_some()),
                ("max_train_bytes", self.max_train_bytes.is_some()),
            ];
            for (key, is_set) in set {
                if is_set {
                    problem(
                        key,
                        format!(
                            "`{key}` has no effect with `pretrained`: the file is used as it is"
                        ),
                        &format!("remove `{key}`, or remove `pretrained` to train a tokenizer"),
                    );
                }
            }
            return problems;
        }
        let specials = self.special_tokens();
        if !specials.iter().any(|s| s == "<|eos|>") {
            problem(
                "special_tokens",
                "`special_tokens` lacks `<|eos|>`, which separates documents in the token shards"
                    .into(),
                "add \"<|eos|>\" to the list",
            );
        }
        for (i, s) in specials.iter().enumerate() {
            if s.is_empty() {
                problem(
                    &format!("special_tokens[{i}]"),
                    "a special token is empty".into(),
                    "remove it",
                );
            } else if specials[..i].contains(s) {
                problem(
                    &format!("special_tokens[{i}]"),
                    format!("{s:?} is listed twice"),
                    "remove the repeat",
                );
            }
        }
        if self.model == Some(TokenizerModel::Char) {
            for (key, is_set) in [
                ("vocab_size", self.vocab_size.is_some()),
                ("pattern", self.pattern.is_some()),
            ] {
                if is_set {
                    problem(
                        key,
                        format!("`{key}` has no effect with `model: char`: the vocabulary is the corpus's characters"),
                        &format!("remove `{key}`, or use `model: bpe`"),
                    );
                }
            }
            return problems;
        }
        let floor = 256 + specials.len();
        if self.vocab_size() < floor {
            problem(
                "vocab_size",
                format!(
                    "vocab_size {} is below {floor}: byte-level BPE needs the 256 bytes plus {} special tokens before any merge",
                    self.vocab_size(),
                    specials.len()
                ),
                "use a vocab_size of at least 512 (a few thousand for real text)",
            );
        }
        let pattern = self.pattern();
        if pattern != "gpt2" && pattern != "gpt4" {
            if let Err(e) = regex::Regex::new(pattern) {
                problem(
                    "pattern",
                    format!("`pattern` is not a valid regex: {e}"),
                    "use `gpt2`, `gpt4`, or a regex in the `regex` crate's syntax (no look-around)",
                );
            }
        }
        problems
    }
}
