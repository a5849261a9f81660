//! Where training windows come from: a flat sequence of token ids.
//!
//! The training loop only needs [`TokenSource`]; [`InMemoryTokens`] serves tests and
//! benchmarks, and [`ShardDir`] opens a `tokenizer` stage's shards through the tokenizer crate's
//! own reader (`tokenizer::shards`, the one definition of the format: `train.bin`/`val.bin`
//! little-endian u16 or u32 ids, `.docs` offsets, `shards.json`). The shards are memory-mapped,
//! so a corpus larger than RAM trains without being loaded: windows are copied out as sampled.

use std::path::Path;

pub use tokenizer::shards::{Shards, ShardsMeta, TokenSplit};
pub use tokenizer::ShardError;

/// A read-only sequence of token ids.
pub trait TokenSource: Send + Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies ids `start..start + out.len()` into `out`.
    fn window(&self, start: usize, out: &mut [i64]);

    /// Where each document begins, in order; none when the source does not know its
    /// documents.
    fn document_starts(&self) -> Option<Vec<usize>> {
        None
    }
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

impl TokenSource for TokenSplit {
    fn len(&self) -> usize {
        TokenSplit::len(self)
    }

    fn window(&self, start: usize, out: &mut [i64]) {
        TokenSplit::window(self, start, out.len(), out);
    }

    fn document_starts(&self) -> Option<Vec<usize>> {
        Some(
            (0..self.documents())
                .map(|i| self.document(i).start)
                .collect(),
        )
    }
}

/// The token shards of a tokenizer stage's artifact, checked for training: both splits
/// present and every id inside the vocabulary (an id outside it would index past the
/// embedding table in the middle of training).
pub struct ShardDir {
    shards: Shards,
}

impl ShardDir {
    pub fn open(dir: &Path) -> Result<ShardDir, ShardError> {
        let shards = Shards::open(dir)?;
        let vocab = shards.meta().vocab_size;
        for name in ["train", "val"] {
            let split = shards.split(name).ok_or_else(|| ShardError::Corrupt {
                path: dir.join("shards.json"),
                message: format!("has no `{name}` split; re-run the tokenizer stage"),
            })?;
            if let Some(bad) = (0..split.len())
                .map(|i| split.get(i))
                .find(|&id| id as usize >= vocab)
            {
                return Err(ShardError::Corrupt {
                    path: dir.join(format!("{name}.bin")),
                    message: format!("token id {bad} is outside the vocabulary (size {vocab})"),
                });
            }
        }
        Ok(ShardDir { shards })
    }

    pub fn meta(&self) -> &ShardsMeta {
        self.shards.meta()
    }

    pub fn train(&self) -> &TokenSplit {
        self.shards.split("train").expect("checked in open")
    }

    pub fn val(&self) -> &TokenSplit {
        self.shards.split("val").expect("checked in open")
    }
}
