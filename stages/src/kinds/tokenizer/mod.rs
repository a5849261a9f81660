//! `kind: tokenizer` — trains (or loads) a tokenizer and encodes the data stage's splits into
//! token shards. Output files: `tokenizer.json`, `train.bin`/`train.docs`,
//! `val.bin`/`val.docs`, `shards.json` (format in [`tokenizer::shards`]).

mod error;
pub mod records;
pub mod render;

use std::path::Path;
use std::time::Instant;

use common::observe::Observer;
use pipelines::{TokenizerModel, TokenizerParams};
use rayon::prelude::*;
use runtime::{StageContext, StageError, StageKind, StageMetrics};
use tokenizer::shards::{self, Dtype, ShardsMeta, SplitWriter};
use tokenizer::{BpeConfig, CharConfig, Pattern, Tokenizer, BOS_NAMES, EOS_NAMES, PAD_NAMES};

pub use error::TokenizeError;
use records::Record;

pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Splits encoded, in order.
pub const SPLITS: [&str; 2] = ["train", "val"];
/// Records encoded per parallel batch.
const BATCH: usize = 1024;

pub struct TokenizerStage;

impl StageKind for TokenizerStage {
    fn name(&self) -> &'static str {
        "tokenizer"
    }

    fn run(&self, ctx: &StageContext) -> Result<StageMetrics, StageError> {
        let params = ctx.params::<pipelines::TokenizerParams>()?;
        let data_dir = ctx.inputs.get(&params.data).ok_or_else(|| {
            StageError::Failed(format!("input `{}` was not provided", params.data))
        })?;
        let summary = build(
            &ctx.manifest.dir,
            params,
            data_dir,
            &ctx.out_dir,
            ctx.threads,
            ctx,
        )
        .map_err(|e| match e {
            TokenizeError::Cancelled
            | TokenizeError::Tokenizer(tokenizer::TokenizerError::Cancelled) => {
                StageError::Cancelled
            }
            other => StageError::from_error(other),
        })?;
        Ok(summary.metrics())
    }
}

/// What a run of the stage produced.
#[derive(Debug, Clone)]
pub struct Summary {
    pub vocab_size: usize,
    pub merges: usize,
    pub meta: ShardsMeta,
    /// Cross-entropy of the val tokens under the train split's unigram distribution (add-one
    /// smoothed): the loss a model that ignores context would get on val.
    pub val_unigram_cross_entropy_nats: f64,
}

impl Summary {
    /// The stage's metrics (`bytes_per_token_val`, compression on held-out text, is the kind's
    /// declared headline).
    pub fn metrics(&self) -> StageMetrics {
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("vocab_size".to_string(), self.vocab_size as f64);
        metrics.insert("merges".to_string(), self.merges as f64);
        for (name, s) in &self.meta.splits {
            metrics.insert(format!("tokens_{name}"), s.tokens as f64);
            metrics.insert(format!("documents_{name}"), s.documents as f64);
            metrics.insert(format!("bytes_per_token_{name}"), s.bytes_per_token);
            metrics.insert(
                format!("unigram_entropy_nats_{name}"),
                s.unigram_entropy_nats,
            );
        }
        metrics.insert(
            "val_unigram_cross_entropy_nats".to_string(),
            self.val_unigram_cross_entropy_nats,
        );
        StageMetrics {
            metrics,
            headline: None,
            device: Some("cpu".to_string()),
            libtorch: None,
        }
    }
}

/// Runs the whole stage: reads the splits from `data_dir`, trains or loads the tokenizer (a
/// `pretrained` path is relative to `manifest_dir`), and writes everything into `out`, reporting
/// to `obs` and stopping when it asks.
pub fn build(
    manifest_dir: &Path,
    params: &TokenizerParams,
    data_dir: &Path,
    out: &Path,
    threads: usize,
    obs: &(dyn Observer + Sync),
) -> Result<Summary, TokenizeError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| TokenizeError::Threads(e.to_string()))?;
    let mut splits = Vec::new();
    for name in SPLITS {
        let path = data_dir.join(format!("{name}.parquet"));
        splits.push(records::read_split(&path)?);
    }
    if obs.cancelled() {
        return Err(TokenizeError::Cancelled);
    }

    let started = Instant::now();
    let tok = pool.install(|| obtain(manifest_dir, params, &splits[0], obs))?;
    obs.log(&format!(
        "tokenizer: {:?}, {} ids, {} merges, in {:.2}s",
        tok.kind(),
        tok.vocab_size(),
        tok.model().merges().len(),
        started.elapsed().as_secs_f64()
    ));
    tok.save(out.join(TOKENIZER_FILE))?;

    let eos_id = find(&tok, EOS_NAMES).ok_or_else(|| TokenizeError::Missing {
        what: "the tokenizer has no end-of-document token".into(),
        hint: format!(
            "the shards separate documents with one of {EOS_NAMES:?}; add one to the tokenizer"
        ),
    })?;
    if splits.iter().flatten().any(Record::is_chat) {
        for marker in [records::USER, records::ASSISTANT, records::END] {
            if tok.token_to_id(marker).is_none() {
                return Err(TokenizeError::Missing {
                    what: format!("the data has instruction/preference records but the tokenizer has no {marker} token"),
                    hint: "keep the default special_tokens (or add <|user|>, <|assistant|>, <|end|>)".into(),
                });
            }
        }
    }

    let started = Instant::now();
    let mut metas = Vec::new();
    let mut train_unigram = Vec::new();
    let mut val_unigram = Vec::new();
    for (name, records) in SPLITS.iter().zip(&splits) {
        let mut writer = SplitWriter::create(out, name, tok.vocab_size(), eos_id)?;
        obs.phase(&format!("encoding {name}"));
        for (i, batch) in records.chunks(BATCH).enumerate() {
            if obs.cancelled() {
                return Err(TokenizeError::Cancelled);
            }
            obs.progress((i * BATCH) as u64, Some(records.len() as u64));
            let encoded: Vec<Vec<u32>> = pool.install(|| {
                batch
                    .par_iter()
                    .map(|r| tok.encode_segments(&r.segments()))
                    .collect::<Result<_, _>>()
            })?;
            for (ids, r) in encoded.iter().zip(batch) {
                writer.push(ids, r.text_bytes())?;
            }
        }
        obs.progress(records.len() as u64, Some(records.len() as u64));
        if *name == "train" {
            train_unigram = writer.unigram().to_vec();
        } else {
            val_unigram = writer.unigram().to_vec();
        }
        let meta = writer.finish()?;
        obs.log(&format!(
            "{name}: {} documents, {} tokens, {:.3} bytes/token, unigram entropy {:.4} nats",
            meta.documents, meta.tokens, meta.bytes_per_token, meta.unigram_entropy_nats
        ));
        metas.push((name.to_string(), meta));
    }
    obs.log(&format!(
        "encoded in {:.2}s",
        started.elapsed().as_secs_f64()
    ));
    let meta = ShardsMeta {
        format: shards::FORMAT,
        dtype: Dtype::for_vocab(tok.vocab_size()),
        vocab_size: tok.vocab_size(),
        eos_id,
        bos_id: find(&tok, BOS_NAMES),
        pad_id: find(&tok, PAD_NAMES),
        splits: metas.into_iter().collect(),
    };
    shards::write_meta(out, &meta)?;
    Ok(Summary {
        vocab_size: tok.vocab_size(),
        merges: tok.model().merges().len(),
        val_unigram_cross_entropy_nats: cross_entropy(&val_unigram, &train_unigram),
        meta,
    })
}

/// Trains the tokenizer the params ask for, or loads the pretrained one.
fn obtain(
    manifest_dir: &Path,
    params: &TokenizerParams,
    train: &[Record],
    obs: &(dyn Observer + Sync),
) -> Result<Tokenizer, TokenizeError> {
    if let Some(path) = &params.pretrained {
        return Ok(Tokenizer::from_file(manifest_dir.join(path))?);
    }
    let mut texts: Vec<&str> = Vec::new();
    let mut bytes = 0u64;
    'records: for r in train {
        for t in r.training_texts() {
            if params.max_train_bytes.is_some_and(|cap| bytes >= cap) {
                break 'records;
            }
            bytes += t.len() as u64;
            texts.push(t);
        }
    }
    if bytes == 0 {
        return Err(TokenizeError::EmptyCorpus);
    }
    let special_tokens = params.special_tokens();
    obs.phase("training");
    let tok = match params.model.unwrap_or(TokenizerModel::Bpe) {
        TokenizerModel::Char => tokenizer::train_char(
            &texts,
            &CharConfig {
                min_frequency: params.min_frequency(),
                special_tokens,
            },
        )?,
        TokenizerModel::Bpe => tokenizer::train_bpe(
            &texts,
            &BpeConfig {
                vocab_size: params.vocab_size(),
                pattern: Pattern::parse(params.pattern()),
                min_frequency: params.min_frequency(),
                special_tokens,
            },
            &|| obs.cancelled(),
            &|done, total| obs.progress(done as u64, Some(total as u64)),
        )?,
    };
    Ok(tok)
}

fn find(tok: &Tokenizer, names: &[&str]) -> Option<u32> {
    tok.find_special(names).map(|(_, id)| id)
}

/// Cross-entropy (nats/token) of `counts` under the add-one-smoothed distribution of `model`.
fn cross_entropy(counts: &[u64], model: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 || model.is_empty() {
        return 0.0;
    }
    let total = model.iter().sum::<u64>() as f64 + model.len() as f64;
    let sum: f64 = counts
        .iter()
        .zip(model)
        .filter(|(&c, _)| c > 0)
        .map(|(&c, &m)| c as f64 * ((m as f64 + 1.0) / total).ln())
        .sum();
    -sum / n as f64
}

#[cfg(test)]
mod tests {
    /// The manifest's default special tokens (pipelines, which must not depend on the
    /// tokenizer crate) and the tokenizer crate's own default are written twice; keep them one
    /// list.
    #[test]
    fn default_special_tokens_agree() {
        assert_eq!(
            pipelines::DEFAULT_SPECIAL_TOKENS,
            tokenizer::DEFAULT_SPECIAL_TOKENS
        );
    }
}
