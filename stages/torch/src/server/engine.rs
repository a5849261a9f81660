//! The libtorch side of the model server: a [`serve::Engine`] over [`Gpt`] (one [`KvCache`]
//! per sequence, prefill through `forward_cached`, batched decode steps through
//! `decode_batch`) and a [`serve::Codec`] over the project's tokenizer.
//!
//! The HTTP server, the scheduler and the sampling live in the torch-free `serve` crate; this
//! module only turns tensors into the host-side logits the scheduler samples from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serve::{Codec, Engine, EngineError, Logits, ModelInfo, PrefillOutput, SpecialToken};
use tch::{Device, Kind, Tensor};
use tokenizer::{Tokenizer, BOS_NAMES, EOS_NAMES, PAD_NAMES};

use crate::model::{Gpt, KvCache, ModelConfig, ModelError, CONFIG_FILE};

/// Why a model could not be prepared for serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("{path}: not a valid model config ({source})")]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the tokenizer {tokenizer} has {tokenizer_vocab} ids but the model only {model_vocab}: \
         they were not trained together (pass the tokenizer the model was trained with)"
    )]
    VocabMismatch {
        tokenizer: PathBuf,
        tokenizer_vocab: usize,
        model_vocab: usize,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The project's tokenizer as the server sees it.
pub struct TokenizerCodec(pub Tokenizer);

impl TokenizerCodec {
    pub fn load(path: &Path) -> Result<TokenizerCodec, LoadError> {
        Tokenizer::from_file(path)
            .map(TokenizerCodec)
            .map_err(|e| LoadError::Tokenizer {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }
}

impl Codec for TokenizerCodec {
    fn encode(&self, text: &str) -> Vec<u32> {
        // Ordinary text: the server decides where special-token spellings count (chat markers
        // are inserted as ids, never parsed out of user text).
        self.0.encode_ordinary(text)
    }

    fn decode(&self, ids: &[u32]) -> Vec<u8> {
        self.0.decode(ids)
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.0.token_to_id(token)
    }

    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
}

/// The dtype of the matrix products while serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServePrecision {
    /// bf16 on a GPU, fp32 on the CPU (where bf16 matmuls are slow).
    #[default]
    Auto,
    Fp32,
    Bf16,
}

impl std::str::FromStr for ServePrecision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ServePrecision::Auto),
            "fp32" => Ok(ServePrecision::Fp32),
            "bf16" => Ok(ServePrecision::Bf16),
            other => Err(format!(
                "unknown precision `{other}`: use auto, fp32 or bf16"
            )),
        }
    }
}

impl ServePrecision {
    fn kind(self, device: Device) -> Kind {
        match self {
            ServePrecision::Auto if device != Device::Cpu => Kind::BFloat16,
            ServePrecision::Bf16 => Kind::BFloat16,
            _ => Kind::Float,
        }
    }
}

/// Reads a model directory's `config.json`.
pub fn read_config(dir: &Path) -> Result<ModelConfig, LoadError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LoadError::Config { path, source })
}

/// The first of `names` the codec knows (the spellings differ between tokenizers).
fn special(codec: &dyn Codec, names: &[&str]) -> Option<SpecialToken> {
    names.iter().find_map(|n| SpecialToken::lookup(codec, n))
}

/// What the API reports about a model with config `cfg` and tokenizer `codec`.
pub fn model_info(name: &str, cfg: &ModelConfig, codec: &dyn Codec, created: u64) -> ModelInfo {
    ModelInfo {
        id: name.to_string(),
        context_length: cfg.block_size,
        eos_token: special(codec, EOS_NAMES),
        bos_token: special(codec, BOS_NAMES),
        pad_token: special(codec, PAD_NAMES),
        created,
    }
}

/// Checks that `codec` can only produce ids the model has rows for.
pub fn check_vocab(
    cfg: &ModelConfig,
    codec: &dyn Codec,
    tokenizer: &Path,
) -> Result<(), LoadError> {
    if codec.vocab_size() > cfg.vocab_size {
        return Err(LoadError::VocabMismatch {
            tokenizer: tokenizer.to_path_buf(),
            tokenizer_vocab: codec.vocab_size(),
            model_vocab: cfg.vocab_size,
        });
    }
    Ok(())
}

/// A GPT behind the server. Built on the engine thread (libtorch state stays on it).
pub struct TorchEngine {
    model: Gpt,
    /// Logit columns the scheduler samples from: the tokenizer's ids (a model may have padded
    /// rows beyond them, which must never be sampled).
    vocab: usize,
}

impl TorchEngine {
    /// Loads the weights of the model directory `dir` onto `device`.
    pub fn load(
        dir: &Path,
        cfg: &ModelConfig,
        device: Device,
        precision: ServePrecision,
        vocab: usize,
    ) -> Result<TorchEngine, LoadError> {
        let mut model = Gpt::new(cfg, device)?;
        model.load_dir(dir)?;
        model.set_compute_kind(precision.kind(device));
        Ok(TorchEngine::new(model, vocab))
    }

    /// Serves `model`, sampling among the first `vocab` ids.
    pub fn new(model: Gpt, vocab: usize) -> TorchEngine {
        let vocab = vocab.min(model.config().vocab_size);
        TorchEngine { model, vocab }
    }

    /// `[rows, V]` logits on any device → host f32 over the first `self.vocab` columns.
    fn host_logits(&self, t: Tensor) -> Result<Logits, EngineError> {
        let size = t.size();
        let [rows, _] = size.as_slice() else {
            return Err(EngineError(format!(
                "logits of shape {size:?}, expected [rows, vocab]"
            )));
        };
        let flat = t
            .narrow(1, 0, self.vocab as i64)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .contiguous()
            .view([-1]);
        let data = Vec::<f32>::try_from(&flat)
            .map_err(|e| EngineError(format!("copying logits to the host: {e}")))?;
        if data.len() != *rows as usize * self.vocab {
            return Err(EngineError(format!(
                "copied {} logits, expected {rows} × {}",
                data.len(),
                self.vocab
            )));
        }
        Logits::new(self.vocab, data).ok_or_else(|| EngineError("empty vocabulary".into()))
    }
}

fn ids(tokens: &[u32]) -> Vec<i64> {
    tokens.iter().map(|&t| i64::from(t)).collect()
}

fn engine_error(e: ModelError) -> EngineError {
    EngineError(e.to_string())
}

impl Engine for TorchEngine {
    type Sequence = KvCache;

    fn new_sequence(&mut self) -> Result<KvCache, EngineError> {
        Ok(self.model.new_cache())
    }

    fn prefill(
        &mut self,
        seq: &mut KvCache,
        tokens: &[u32],
        output: PrefillOutput,
    ) -> Result<Logits, EngineError> {
        // `forward_cached` and `decode_batch` run without autograd themselves.
        let logits = self
            .model
            .forward_cached(seq, &ids(tokens))
            .map_err(engine_error)?; // [T, V]
        let logits = match output {
            PrefillOutput::All => logits,
            // Copy one row to the host, not the whole prompt's.
            PrefillOutput::Last => logits.narrow(0, tokens.len() as i64 - 1, 1),
        };
        self.host_logits(logits)
    }

    fn decode(&mut self, seqs: &mut [&mut KvCache], tokens: &[u32]) -> Result<Logits, EngineError> {
        let logits = self
            .model
            .decode_batch(seqs, &ids(tokens))
            .map_err(engine_error)?; // [B, V]
        self.host_logits(logits)
    }
}

/// A model directory ready to serve: its tokenizer and facts, and how to build its engine.
pub struct Prepared {
    pub codec: Arc<TokenizerCodec>,
    pub info: ModelInfo,
    pub config: ModelConfig,
}

/// Reads the config and tokenizer of `model_dir` (weights are loaded later, on the engine
/// thread) and checks they belong together.
pub fn prepare(model_dir: &Path, tokenizer: &Path, name: &str) -> Result<Prepared, LoadError> {
    let config = read_config(model_dir)?;
    let codec = Arc::new(TokenizerCodec::load(tokenizer)?);
    check_vocab(&config, codec.as_ref(), tokenizer)?;
    let weights = model_dir.join(crate::model::quantized::weight_files(model_dir)[0]);
    let meta = std::fs::metadata(&weights).map_err(|source| LoadError::Io {
        path: weights.clone(),
        source,
    })?;
    let created = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(serve::server::unix_now, |d| d.as_secs());
    let info = model_info(name, &config, codec.as_ref(), created);
    Ok(Prepared {
        codec,
        info,
        config,
    })
}
