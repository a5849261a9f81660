//! The decoder-only transformer: embeddings → blocks → final norm → LM head.
//!
//! ```text
//! x = tok_emb[idx] (+ pos_emb[pos])                 (B, T, C)  fp32 residual stream
//! x = block_i(x) for i in 0..L                      pre-norm, RoPE inside attention if chosen
//! logits = norm_f(x) · Wᵀ                           (B, T, V)  W = tok_emb (tied) or lm_head
//! ```
//!
//! Init follows GPT-2: every weight matrix and embedding N(0, 0.02²), biases 0, norm gains 1,
//! and the two projections that write into the residual stream (`attn.proj`, `mlp.proj`)
//! N(0, (0.02/√(2L))²) so the stream's variance does not grow with depth.
//!
//! Weight names (the safetensors keys): `tok_emb.weight`, `pos_emb.weight`,
//! `blocks.{i}.norm1.{weight,bias}`, `blocks.{i}.attn.qkv.{weight,bias}`,
//! `blocks.{i}.attn.proj.*`, `blocks.{i}.norm2.*`, `blocks.{i}.mlp.{fc,proj}.*` (GELU) or
//! `blocks.{i}.mlp.{gate,up,proj}.*` (SwiGLU), `norm_f.*`, `lm_head.weight` (untied only).

use std::path::Path;

use pipelines::Positions;
use tch::nn;
use tch::{Device, Kind, Tensor};

use super::attention::AttnInput;
use super::block::Block;
use super::config::{ConfigError, ModelConfig};
use super::embedding::Embedding;
use super::kv_cache::KvCache;
use super::linear::Linear;
use super::norm::Norm;
use super::rope::Rope;

/// Standard deviation of GPT-2's weight init.
const INIT_STD: f64 = 0.02;

/// Why a model could not be built, loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{context}: {source}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid model config ({source})")]
    BadConfig {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{tokens} more token(s) do not fit in the context: the cache holds {len} of {block_size}"
    )]
    ContextFull {
        tokens: usize,
        len: usize,
        block_size: usize,
    },
    #[error("token id {id} is outside the vocabulary (size {vocab_size})")]
    BadToken { id: i64, vocab_size: usize },
    #[error("{path}: not a valid quantized model: {what}")]
    Quantized { path: String, what: String },
    #[error("{0}")]
    Shape(String),
}

pub struct Gpt {
    cfg: ModelConfig,
    vs: nn::VarStore,
    tok_emb: Embedding,
    pos_emb: Option<Embedding>,
    rope: Option<Rope>,
    pub(crate) blocks: Vec<Block>,
    norm_f: Norm,
    lm_head: Option<Linear>,
    compute: Kind,
}

impl Gpt {
    /// A freshly initialised model on `device`, drawn from libtorch's generator (seed it first
    /// with `tch::manual_seed` for a reproducible init).
    pub fn new(cfg: &ModelConfig, device: Device) -> Result<Gpt, ModelError> {
        cfg.check()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let proj_std = INIT_STD / (2.0 * cfg.n_layer as f64).sqrt();
        let tok_emb = Embedding::new(&root / "tok_emb", cfg.vocab_size, cfg.n_embd, INIT_STD);
        let pos_emb = (cfg.positions == Positions::Learned)
            .then(|| Embedding::new(&root / "pos_emb", cfg.block_size, cfg.n_embd, INIT_STD));
        let rope = (cfg.positions == Positions::Rope)
            .then(|| Rope::new(cfg.head_dim(), cfg.block_size, cfg.rope_theta, device));
        let blocks = (0..cfg.n_layer)
            .map(|i| Block::new(&root / "blocks" / i, cfg, INIT_STD, proj_std))
            .collect();
        let norm_f = Norm::new(
            &root / "norm_f",
            cfg.norm,
            cfg.n_embd,
            cfg.bias,
            cfg.norm_eps,
        );
        let lm_head = (!cfg.tied_head).then(|| {
            Linear::new(
                &root / "lm_head",
                cfg.n_embd,
                cfg.vocab_size,
                false,
                INIT_STD,
            )
        });
        Ok(Gpt {
            cfg: cfg.clone(),
            vs,
            tok_emb,
            pos_emb,
            rope,
            blocks,
            norm_f,
            lm_head,
            compute: Kind::Float,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    /// The dtype of the matrix products: `Kind::Float` (default) or `Kind::BFloat16`. Weights,
    /// norms, softmax statistics of the loss and the residual stream stay fp32 either way.
    pub fn set_compute_kind(&mut self, kind: Kind) {
        self.compute = kind;
    }

    /// Number of parameters actually allocated (equal to [`ModelConfig::param_count`]).
    pub fn num_params(&self) -> usize {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel())
            .sum()
    }

    /// Writes the weights as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.vs.save(path).map_err(|source| ModelError::Torch {
            context: format!("writing {}", path.display()),
            source,
        })
    }

    /// Replaces the weights with those of a safetensors file written by [`Gpt::save`].
    pub fn load(&mut self, path: &Path) -> Result<(), ModelError> {
        self.vs.load(path).map_err(|source| ModelError::Torch {
            context: format!("loading weights from {}", path.display()),
            source,
        })
    }

    /// Replaces the weights with those of the model artifact in `dir`: its `model.safetensors`,
    /// or its quantized weights, dequantized.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), ModelError> {
        if super::quantized::is_quantized(dir) {
            super::quantized::load_quantized(self, dir)
        } else {
            self.load(&dir.join(WEIGHTS_FILE))
        }
    }

    /// The fp32 residual stream after the embeddings for tokens `idx` at `positions`. `table`
    /// is `tok_emb.table()`, taken once per pass: with LoRA's trained rows it is a fresh copy
    /// of the whole table, which a tied head reads too.
    fn embed(&self, table: &Tensor, idx: &Tensor, positions: &Tensor, train: bool) -> Tensor {
        let mut x = Tensor::embedding(table, idx, -1, false, false);
        if let Some(pos) = &self.pos_emb {
            x += pos.forward(positions);
        }
        x.dropout(self.cfg.dropout, train)
    }

    /// Final norm and head: `(…, C)` → fp32 logits `(…, V)`; `table` as for [`Gpt::embed`].
    fn head(&self, table: &Tensor, x: &Tensor) -> Tensor {
        let h = self.norm_f.forward(x).to_kind(self.compute);
        let logits = match &self.lm_head {
            Some(head) => head.forward(&h),
            None => {
                if h.kind() == table.kind() {
                    h.linear(table, None::<Tensor>)
                } else {
                    h.linear(&table.to_kind(h.kind()), None::<Tensor>)
                }
            }
        };
        logits.to_kind(Kind::Float)
    }

    /// Logits `(B, T, V)` for token ids `idx (B, T)` (int64), T ≤ block_size.
    pub fn forward(&self, idx: &Tensor, train: bool) -> Tensor {
        let t = idx.size()[1];
        let positions = Tensor::arange(t, (Kind::Int64, idx.device()));
        self.forward_with(idx, &positions, None, train)
    }

    /// Logits `(B, T, V)` for rows that each hold several examples one after another:
    /// `segments (B, T)` numbers the example of each token, `positions (B, T)` its position
    /// inside that example (from 0). A token attends to the earlier tokens of its own example
    /// only, and is embedded at its own position, so each example is computed as if it were
    /// alone at the start of a row.
    pub fn forward_packed(
        &self,
        idx: &Tensor,
        positions: &Tensor,
        segments: &Tensor,
        train: bool,
    ) -> Tensor {
        let t = idx.size()[1];
        let device = idx.device();
        let same = segments.unsqueeze(2).eq_tensor(&segments.unsqueeze(1)); // (B, T, T)
        let causal = Tensor::ones([t, t], (Kind::Bool, device)).tril(0);
        let mask = same.logical_and(&causal).unsqueeze(1); // (B, 1, T, T)
        self.forward_with(idx, positions, Some(&mask), train)
    }

    fn forward_with(
        &self,
        idx: &Tensor,
        positions: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let table = self.tok_emb.table();
        let mut x = self.embed(&table, idx, positions, train);
        let input = AttnInput {
            rope: self.rope.as_ref(),
            positions,
            mask,
            train,
        };
        for block in &self.blocks {
            x = block.forward(&x, &input, self.compute);
        }
        self.head(&table, &x)
    }

    /// Mean next-token cross-entropy of `idx (B, T)` against `targets (B, T)`.
    pub fn loss(&self, idx: &Tensor, targets: &Tensor, train: bool) -> Tensor {
        let logits = self.forward(idx, train);
        let v = logits.size()[2];
        logits
            .view([-1, v])
            .cross_entropy_for_logits(&targets.view([-1]))
    }

    /// An empty cache for one sequence (room for `block_size` tokens).
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(
            self.cfg.n_layer,
            self.cfg.n_kv_head,
            self.cfg.block_size,
            self.cfg.head_dim(),
            self.compute,
            self.device(),
        )
    }

    fn check_tokens(&self, tokens: &[i64]) -> Result<(), ModelError> {
        match tokens
            .iter()
            .find(|&&id| id < 0 || id as usize >= self.cfg.vocab_size)
        {
            Some(&id) => Err(ModelError::BadToken {
                id,
                vocab_size: self.cfg.vocab_size,
            }),
            None => Ok(()),
        }
    }

    /// Appends `tokens` after what `cache` holds and returns their logits `[tokens.len(), V]`
    /// (fp32). Fails, leaving the cache as it was, when they do not fit in the context.
    pub fn forward_cached(
        &self,
        cache: &mut KvCache,
        tokens: &[i64],
    ) -> Result<Tensor, ModelError> {
        self.check_tokens(tokens)?;
        if tokens.is_empty() {
            return Err(ModelError::Shape(
                "forward_cached needs at least one token".into(),
            ));
        }
        if tokens.len() > cache.remaining() {
            return Err(ModelError::ContextFull {
                tokens: tokens.len(),
                len: cache.len,
                block_size: self.cfg.block_size,
            });
        }
        let _guard = tch::no_grad_guard();
        let device = self.device();
        let past = cache.len as i64;
        let t = tokens.len() as i64;
        let idx = Tensor::from_slice(tokens).to_device(device).view([1, t]);
        let positions = Tensor::arange_start(past, past + t, (Kind::Int64, device));
        let table = self.tok_emb.table();
        let mut x = self.embed(&table, &idx, &positions, false);
        let input = AttnInput {
            rope: self.rope.as_ref(),
            positions: &positions,
            mask: None,
            train: false,
        };
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward_cached(
                &x,
                &input,
                self.compute,
                &mut cache.keys[i],
                &mut cache.values[i],
                past,
            );
        }
        cache.len += tokens.len();
        Ok(self.head(&table, &x).squeeze_dim(0))
    }

    /// One decode step for several sequences at once: token `i` continues `caches[i]`.
    /// Returns logits `[B, V]`, equal (to float rounding) to calling [`Gpt::forward_cached`]
    /// on each sequence in turn.
    pub fn decode_batch(
        &self,
        caches: &mut [&mut KvCache],
        tokens: &[i64],
    ) -> Result<Tensor, ModelError> {
        self.check_tokens(tokens)?;
        if caches.len() != tokens.len() || tokens.is_empty() {
            return Err(ModelError::Shape(format!(
                "decode_batch got {} cache(s) and {} token(s); give one token per cache",
                caches.len(),
                tokens.len()
            )));
        }
        if let Some(full) = caches.iter().find(|c| c.remaining() == 0) {
            return Err(ModelError::ContextFull {
                tokens: 1,
                len: full.len,
                block_size: self.cfg.block_size,
            });
        }
        let _guard = tch::no_grad_guard();
        let device = self.device();
        let b = tokens.len() as i64;
        let lens: Vec<i64> = caches.iter().map(|c| c.len as i64).collect();
        let idx = Tensor::from_slice(tokens).to_device(device).view([b, 1]);
        let positions = Tensor::from_slice(&lens).to_device(device).view([b, 1]);
        let table = self.tok_emb.table();
        let mut x = self.embed(&table, &idx, &positions, false);
        let input = AttnInput {
            rope: self.rope.as_ref(),
            positions: &positions,
            mask: None,
            train: false,
        };
        for (layer, block) in self.blocks.iter().enumerate() {
            let mut keys: Vec<&mut Tensor> = Vec::with_capacity(caches.len());
            let mut values: Vec<&mut Tensor> = Vec::with_capacity(caches.len());
            for cache in caches.iter_mut() {
                let KvCache {
                    keys: k, values: v, ..
                } = &mut **cache;
                keys.push(&mut k[layer]);
                values.push(&mut v[layer]);
            }
            x = block.decode_batch(&x, &input, self.compute, &mut keys, &mut values, &lens);
        }
        for cache in caches.iter_mut() {
            cache.len += 1;
        }
        Ok(self.head(&table, &x).squeeze_dim(1))
    }
}

/// What happens inside the model on one sequence: what the inspector shows.
pub struct Trace {
    /// The residual stream after the embeddings, then after each block: `L + 1` tensors
    /// `(T, C)`.
    pub residuals: Vec<Tensor>,
    /// Each block's attention probabilities `(nh, T, T)`.
    pub attention: Vec<Tensor>,
    /// The logits `(T, V)` (fp32): the head applied to the last residual.
    pub logits: Tensor,
}

impl Gpt {
    /// Runs `tokens` (one sequence, at most `block_size`) and keeps every layer's residual
    /// stream and attention probabilities.
    pub fn trace(&self, tokens: &[i64]) -> Result<Trace, ModelError> {
        self.check_tokens(tokens)?;
        if tokens.is_empty() || tokens.len() > self.cfg.block_size {
            return Err(ModelError::Shape(format!(
                "{} tokens: the model reads 1 to {} at once",
                tokens.len(),
                self.cfg.block_size
            )));
        }
        let _guard = tch::no_grad_guard();
        let device = self.device();
        let t = tokens.len() as i64;
        let idx = Tensor::from_slice(tokens).to_device(device).view([1, t]);
        let positions = Tensor::arange(t, (Kind::Int64, device));
        let input = AttnInput {
            rope: self.rope.as_ref(),
            positions: &positions,
            mask: None,
            train: false,
        };
        let table = self.tok_emb.table();
        let mut x = self.embed(&table, &idx, &positions, false);
        let mut residuals = vec![x.squeeze_dim(0)];
        let mut attention = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            attention.push(
                block
                    .attention_weights(&x, &input, self.compute)
                    .squeeze_dim(0),
            );
            x = block.forward(&x, &input, self.compute);
            residuals.push(x.squeeze_dim(0));
        }
        let logits = self.head(&table, &x).squeeze_dim(0);
        Ok(Trace {
            residuals,
            attention,
            logits,
        })
    }

    /// The logit lens: the final norm and head applied to a residual stream `(…, C)`, i.e.
    /// what the model would predict if the layers above it were skipped.
    pub fn lens(&self, residual: &Tensor) -> Tensor {
        let _guard = tch::no_grad_guard();
        self.head(&self.tok_emb.table(), residual)
    }

    /// The token embedding matrix `(V, C)`.
    pub fn token_embeddings(&self) -> Tensor {
        self.tok_emb.table().detach()
    }

    /// The token embedding table, for LoRA's trained rows.
    pub(crate) fn tok_emb_mut(&mut self) -> &mut Embedding {
        &mut self.tok_emb
    }
}

/// File names of a model artifact.
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
/// The tokenizer a model artifact carries, so the directory is self-contained.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Loads the model of a model artifact directory: `config.json` + `model.safetensors`, or a
/// quantized model's `quantized.safetensors`, dequantized (`super::quantized`).
pub fn load_artifact(dir: &Path, device: Device) -> Result<(Gpt, ModelConfig), ModelError> {
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path).map_err(|source| ModelError::Io {
        context: format!("reading {}", config_path.display()),
        source,
    })?;
    let cfg: ModelConfig = serde_json::from_str(&text).map_err(|source| ModelError::BadConfig {
        path: config_path.display().to_string(),
        source,
    })?;
    let mut model = Gpt::new(&cfg, device)?;
    model.load_dir(dir)?;
    Ok((model, cfg))
}
