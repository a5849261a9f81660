//! The model inspector behind `binarylm ui`: for a prompt, each layer's attention
//! probabilities per head, the top-k next tokens at every position, and the logit lens (the
//! final norm and head applied to the residual stream after each layer); for the vocabulary,
//! a PCA of the token embeddings and a token's nearest neighbours.
//!
//! `binarylm-torch inspect <model dir>` loads the model once and answers JSON requests, one
//! per line on stdin, with one JSON line each on stdout ([`serve_lines`]).

mod embeddings;

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};
use tokenizer::{Tokenizer, EOS_NAMES};

use crate::model::{load_artifact, Gpt, ModelError, TOKENIZER_FILE};

pub use embeddings::{EmbeddingView, Neighbour};

/// Next-token candidates shown per position when a request names none.
const DEFAULT_TOP_K: usize = 5;
/// Most candidates a request may ask for.
const MAX_TOP_K: usize = 50;
/// Candidates per layer and position in the logit lens.
const LENS_TOP: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {message}")]
    Tokenizer { path: String, message: String },
    #[error(
        "the prompt is {tokens} tokens; this model reads at most {block_size} at once (shorten it)"
    )]
    TooLong { tokens: usize, block_size: usize },
    #[error("the prompt encodes to no tokens and the tokenizer has no end-of-document token to start from; type some text")]
    Empty,
    #[error("`{0}` is not a single token of this vocabulary")]
    NotAToken(String),
    #[error("bad request: {0}")]
    Request(String),
}

/// One request line.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Attention, top-k and logit lens for a prompt.
    Prompt {
        text: String,
        #[serde(default = "default_top_k")]
        top_k: usize,
    },
    /// The embedding space, and the neighbours of `token` when given.
    Embeddings {
        #[serde(default)]
        token: Option<String>,
        #[serde(default = "default_top_k")]
        neighbours: usize,
    },
}

fn default_top_k() -> usize {
    DEFAULT_TOP_K
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenInfo {
    pub id: u32,
    /// The token's bytes as text (invalid UTF-8 replaced).
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Candidate {
    pub id: u32,
    pub text: String,
    pub prob: f64,
}

#[derive(Debug, Serialize)]
pub struct PromptView {
    pub tokens: Vec<TokenInfo>,
    pub n_layer: usize,
    pub n_head: usize,
    /// `[layer][head][query][key]`, each row summing to 1 over keys `0..=query`.
    pub attention: Vec<Vec<Vec<Vec<f32>>>>,
    /// `[position]`: the most likely next tokens after the prompt's first `position + 1`.
    pub top_k: Vec<Vec<Candidate>>,
    /// `[layer][position]`: what the head predicts from the residual stream after the
    /// embeddings (layer 0) and after each block; the last layer is the model's prediction.
    pub logit_lens: Vec<Vec<Vec<Candidate>>>,
}

pub struct Inspector {
    model: Gpt,
    tok: Tokenizer,
}

impl Inspector {
    /// The model artifact in `dir` (its config, weights and tokenizer), on the CPU.
    pub fn load(dir: &Path) -> Result<Inspector, InspectError> {
        let (model, _) = load_artifact(dir, Device::Cpu)?;
        let path = dir.join(TOKENIZER_FILE);
        let tok = Tokenizer::from_file(&path).map_err(|e| InspectError::Tokenizer {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Inspector { model, tok })
    }

    pub fn model(&self) -> &Gpt {
        &self.model
    }

    fn token(&self, id: u32) -> TokenInfo {
        TokenInfo {
            id,
            text: String::from_utf8_lossy(self.tok.token_bytes(id).unwrap_or_default())
                .into_owned(),
        }
    }

    /// The prompt's ids as `binarylm generate` encodes them (an empty prompt is the
    /// end-of-document token every document followed in training).
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, InspectError> {
        let ids: Vec<i64> = if text.is_empty() {
            let eos = self
                .tok
                .find_special(EOS_NAMES)
                .ok_or(InspectError::Empty)?;
            vec![i64::from(eos.1)]
        } else {
            self.tok.encode(text).into_iter().map(i64::from).collect()
        };
        let block_size = self.model.config().block_size;
        if ids.is_empty() {
            return Err(InspectError::Empty);
        }
        if ids.len() > block_size {
            return Err(InspectError::TooLong {
                tokens: ids.len(),
                block_size,
            });
        }
        Ok(ids)
    }

    pub fn prompt(&self, text: &str, top_k: usize) -> Result<PromptView, InspectError> {
        if top_k == 0 || top_k > MAX_TOP_K {
            return Err(InspectError::Request(format!(
                "top_k must be 1 to {MAX_TOP_K}, not {top_k}"
            )));
        }
        let ids = self.encode(text)?;
        let trace = self.model.trace(&ids)?;
        let attention = trace
            .attention
            .iter()
            .map(nested3) // (nh, T, T)
            .collect();
        let top_k = self.candidates(&trace.logits, top_k);
        let logit_lens = trace
            .residuals
            .iter()
            .map(|r| self.candidates(&self.model.lens(r), LENS_TOP))
            .collect();
        let cfg = self.model.config();
        Ok(PromptView {
            tokens: ids.iter().map(|&id| self.token(id as u32)).collect(),
            n_layer: cfg.n_layer,
            n_head: cfg.n_head,
            attention,
            top_k,
            logit_lens,
        })
    }

    /// The `k` most likely next tokens at each position of logits `(T, V)`.
    fn candidates(&self, logits: &Tensor, k: usize) -> Vec<Vec<Candidate>> {
        let probs = logits.to_kind(Kind::Float).softmax(-1, Kind::Float);
        let k = k.min(probs.size()[1] as usize) as i64;
        let (values, indices) = probs.topk(k, -1, true, true);
        let values = nested2(&values);
        let indices: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(&indices).unwrap_or_default();
        values
            .into_iter()
            .zip(indices)
            .map(|(ps, ids)| {
                ps.into_iter()
                    .zip(ids)
                    .map(|(p, id)| {
                        let t = self.token(id as u32);
                        Candidate {
                            id: t.id,
                            text: t.text,
                            prob: f64::from(p),
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Answers one request line with one response line: `{"ok":…}` or `{"error":"…"}`. The
    /// answer is serialized straight from its struct, so the probabilities keep the f32
    /// shortest form (a detour through `serde_json::Value` would print each as an f64, twice
    /// as long).
    pub fn answer(&self, line: &str) -> String {
        let result = serde_json::from_str::<Request>(line)
            .map_err(|e| InspectError::Request(e.to_string()))
            .and_then(|req| match req {
                Request::Prompt { text, top_k } => {
                    self.prompt(&text, top_k).map(|v| serde_json::to_string(&v))
                }
                Request::Embeddings { token, neighbours } => {
                    embeddings::view(self, token.as_deref(), neighbours)
                        .map(|v| serde_json::to_string(&v))
                }
            });
        match result {
            Ok(Ok(json)) => format!(r#"{{"ok":{json}}}"#),
            Ok(Err(e)) => {
                serde_json::json!({ "error": format!("encoding the answer: {e}") }).to_string()
            }
            Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
        }
    }
}

/// Answers request lines from `input` on `output` until `input` ends. The first line written
/// says the model is loaded: `{"ready": {"n_layer": …, "n_head": …, "vocab_size": …,
/// "block_size": …}}`.
pub fn serve_lines(
    inspector: &Inspector,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    let cfg = inspector.model.config();
    let ready = serde_json::json!({ "ready": {
        "n_layer": cfg.n_layer, "n_head": cfg.n_head,
        "vocab_size": cfg.vocab_size, "block_size": cfg.block_size,
    }});
    writeln!(output, "{ready}")?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        writeln!(output, "{}", inspector.answer(&line))?;
        output.flush()?;
    }
    Ok(())
}

fn nested2(t: &Tensor) -> Vec<Vec<f32>> {
    Vec::<Vec<f32>>::try_from(&t.to_kind(Kind::Float).to_device(Device::Cpu)).unwrap_or_default()
}

fn nested3(t: &Tensor) -> Vec<Vec<Vec<f32>>> {
    (0..t.size()[0]).map(|i| nested2(&t.get(i))).collect()
}
