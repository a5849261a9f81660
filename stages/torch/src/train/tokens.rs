//! Where training windows come from: a flat sequence of token ids.
//!
//! The training loop only needs [`TokenSource`]; [`InMemoryTokens`] serves tests and
//! benchmarks, and [`ShardDir`] reads a `tokenizer` stage's shards (see the token-shard contract
//! in docs/training.md: `train.bin`/`val.bin` little-endian u16 or u32 ids, `shards.json`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A read-only sequence of token ids.
pub trait TokenSource: Send + Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies ids `start..start + out.len()` into `out`.
    fn window(&self, start: usize, out: &mut [i64]);
}

/// Token ids held in memory.
#[derive(Debug, Clone)]
pub struct InMemoryTokens(pub Vec<u32>);

impl TokenSource for InMemoryTokens {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn window(&self, start: usize, out: &mut [i64]) {
        let n = out.len();
        for (o, &t) in out.iter_mut().zip(&self.0[start..start + n]) {
            *o = i64::from(t);
        }
    }
}

/// Why token shards could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid shards.json ({source})")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

/// The parts of `shards.json` training reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ShardMeta {
    pub format: u32,
    pub dtype: String,
    pub vocab_size: usize,
    pub eos_id: u32,
    #[serde(default)]
    pub bos_id: Option<u32>,
    #[serde(default)]
    pub splits: std::collections::BTreeMap<String, SplitMeta>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SplitMeta {
    pub tokens: u64,
    #[serde(default)]
    pub unigram_entropy_nats: Option<f64>,
    #[serde(default)]
    pub bytes_per_token: Option<f64>,
}

/// The token shards of a tokenizer stage's artifact, read into memory.
pub struct ShardDir {
    pub meta: ShardMeta,
    pub train: InMemoryTokens,
    pub val: InMemoryTokens,
}

impl ShardDir {
    pub fn open(dir: &Path) -> Result<ShardDir, ShardError> {
        let meta_path = dir.join("shards.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|source| ShardError::Io {
            path: meta_path.clone(),
            source,
        })?;
        let meta: ShardMeta = serde_json::from_str(&text).map_err(|source| ShardError::Meta {
            path: meta_path.clone(),
            source,
        })?;
        if meta.format != 1 {
            return Err(ShardError::Invalid {
                path: meta_path,
                why: format!("shard format {} is not supported (expected 1)", meta.format),
            });
        }
        let width = match meta.dtype.as_str() {
            "u16" => 2,
            "u32" => 4,
            other => {
                return Err(ShardError::Invalid {
                    path: meta_path,
                    why: format!("dtype `{other}` is not `u16` or `u32`"),
                })
            }
        };
        let read = |split: &str| -> Result<InMemoryTokens, ShardError> {
            let path = dir.join(format!("{split}.bin"));
            let bytes = std::fs::read(&path).map_err(|source| ShardError::Io {
                path: path.clone(),
                source,
            })?;
            if bytes.len() % width != 0 {
                return Err(ShardError::Invalid {
                    path,
                    why: format!(
                        "{} bytes is not a whole number of {width}-byte ids",
                        bytes.len()
                    ),
                });
            }
            let ids: Vec<u32> = if width == 2 {
                bytes
                    .chunks_exact(2)
                    .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                    .collect()
            } else {
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            if let Some(&bad) = ids.iter().find(|&&id| id as usize >= meta.vocab_size) {
                return Err(ShardError::Invalid {
                    path,
                    why: format!(
                        "token id {bad} is outside the vocabulary (size {})",
                        meta.vocab_size
                    ),
                });
            }
            Ok(InMemoryTokens(ids))
        };
        let train = read("train")?;
        let val = read("val")?;
        Ok(ShardDir { meta, train, val })
    }
}
