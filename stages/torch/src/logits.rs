//! `binarylm-torch logits <model dir>`: the token ids and next-token logits the model gives
//! each of a list of texts — what a peer (a `transformers` or llama.cpp load of an export) is
//! compared against.
//!
//! stdin: a JSON array of strings. stdout: a JSON array with, per text, `{"text", "tokens",
//! "logits"}`, `logits` holding one row of `vocab_size` fp32 numbers per token (the prediction
//! of the token after it). Texts are encoded as `binarylm generate` encodes a prompt (special
//! tokens' spellings become their ids) and run one at a time through the full forward pass on
//! the CPU.

use std::io::Read;
use std::path::Path;

use tch::{Device, Kind, Tensor};
use tokenizer::Tokenizer;

use crate::model::{load_artifact, ModelError, TOKENIZER_FILE};

#[derive(Debug, thiserror::Error)]
pub enum LogitsError {
    #[error("stdin: {0}\nhint: give a JSON array of strings, e.g. [\"Once upon\", \"a time\"]")]
    Input(String),
    #[error("{dir}: cannot read {TOKENIZER_FILE}: {message}")]
    Tokenizer { dir: String, message: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "text {index} encodes to {tokens} tokens; give 1 to {block_size} (the model's context)"
    )]
    Length {
        index: usize,
        tokens: usize,
        block_size: usize,
    },
}

/// One text's ids and logits.
#[derive(Debug, serde::Serialize)]
pub struct Scored {
    pub text: String,
    pub tokens: Vec<u32>,
    pub logits: Vec<Vec<f32>>,
}

/// Scores `texts` with the model artifact in `dir`.
pub fn score(dir: &Path, texts: &[String]) -> Result<Vec<Scored>, LogitsError> {
    let tok =
        Tokenizer::from_file(dir.join(TOKENIZER_FILE)).map_err(|e| LogitsError::Tokenizer {
            dir: dir.display().to_string(),
            message: e.to_string(),
        })?;
    let (model, cfg) = load_artifact(dir, Device::Cpu)?;
    let _guard = tch::no_grad_guard();
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let tokens = tok.encode(text);
            if tokens.is_empty() || tokens.len() > cfg.block_size {
                return Err(LogitsError::Length {
                    index,
                    tokens: tokens.len(),
                    block_size: cfg.block_size,
                });
            }
            let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
            let idx = Tensor::from_slice(&ids).view([1, -1]);
            let logits = model
                .forward(&idx, false)
                .squeeze_dim(0)
                .to_kind(Kind::Float); // (T, V)
            let rows = Vec::<Vec<f32>>::try_from(&logits)
                .map_err(|e| LogitsError::Model(ModelError::Shape(e.to_string())))?;
            Ok(Scored {
                text: text.clone(),
                tokens,
                logits: rows,
            })
        })
        .collect()
}

/// The subcommand: texts from stdin, JSON to stdout.
pub fn main(dir: &Path) -> Result<String, LogitsError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| LogitsError::Input(e.to_string()))?;
    let texts: Vec<String> =
        serde_json::from_str(&input).map_err(|e| LogitsError::Input(e.to_string()))?;
    let scored = score(dir, &texts)?;
    Ok(serde_json::to_string(&scored).expect("scores serialize"))
}
