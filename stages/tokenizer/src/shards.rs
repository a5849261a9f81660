//! Token shards: the encoded corpus that pretraining reads at memory speed.
//!
//! A tokenizer stage's output directory holds, per split (`train`, `val`):
//! - `<split>.bin`: the token ids, flat, little-endian, `u16` when the vocabulary has at most
//!   65,536 ids, else `u32`. Each document's tokens are followed by one `<|eos|>` id.
//! - `<split>.docs`: little-endian `u64` offsets (in tokens) of each document's start, plus a
//!   final entry equal to the token count, so document `i` is `offsets[i]..offsets[i + 1]`.
//!
//! and one `shards.json` ([`ShardsMeta`]) describing both. Readers map the files (memmap2), so
//! opening a multi-gigabyte corpus costs nothing and random windows are page-cache reads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::error::ShardError;

/// The shard format version written in `shards.json`.
pub const FORMAT: u32 = 1;
pub const META_FILE: &str = "shards.json";

/// Width of the stored ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    U16,
    U32,
}

impl Dtype {
    /// The narrowest dtype that holds every id of a vocabulary of `vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Dtype {
        if vocab_size <= 1 << 16 {
            Dtype::U16
        } else {
            Dtype::U32
        }
    }

    pub fn width(self) -> usize {
        match self {
            Dtype::U16 => 2,
            Dtype::U32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::U16 => "u16",
            Dtype::U32 => "u32",
        }
    }
}

/// `shards.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardsMeta {
    pub format: u32,
    pub dtype: Dtype,
    pub vocab_size: usize,
    pub eos_id: u32,
    pub bos_id: Option<u32>,
    pub pad_id: Option<u32>,
    pub splits: BTreeMap<String, SplitMeta>,
}

/// One split's entry in `shards.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitMeta {
    /// Token count, `<|eos|>` separators included.
    pub tokens: u64,
    pub documents: u64,
    /// UTF-8 bytes of the encoded text (separators not counted).
    pub bytes: u64,
    /// `bytes / tokens`: the tokenizer's compression on this split.
    pub bytes_per_token: f64,
    /// Entropy of the split's own token frequencies, in nats: the loss of a model that knows
    /// only how often each token occurs. A language model must get below it.
    pub unigram_entropy_nats: f64,
}

/// Writes one split's `.bin` and `.docs` files, document by document.
pub struct SplitWriter {
    tokens_path: PathBuf,
    docs_path: PathBuf,
    tokens: BufWriter<File>,
    docs: BufWriter<File>,
    dtype: Dtype,
    vocab_size: usize,
    eos_id: u32,
    count: u64,
    documents: u64,
    bytes: u64,
    unigram: Vec<u64>,
}

impl SplitWriter {
    /// Creates `<dir>/<split>.bin` and `<dir>/<split>.docs`.
    pub fn create(
        dir: &Path,
        split: &str,
        vocab_size: usize,
        eos_id: u32,
    ) -> Result<SplitWriter, ShardError> {
        let tokens_path = dir.join(format!("{split}.bin"));
        let docs_path = dir.join(format!("{split}.docs"));
        let open = |p: &Path| {
            File::create(p)
                .map(|f| BufWriter::with_capacity(1 << 20, f))
                .map_err(|source| ShardError::Write {
                    path: p.to_path_buf(),
                    source,
                })
        };
        Ok(SplitWriter {
            tokens: open(&tokens_path)?,
            docs: open(&docs_path)?,
            tokens_path,
            docs_path,
            dtype: Dtype::for_vocab(vocab_size),
            vocab_size,
            eos_id,
            count: 0,
            documents: 0,
            bytes: 0,
            unigram: vec![0; vocab_size],
        })
    }

    /// Appends one document: its ids, then `<|eos|>`. `text_bytes` is the length of the text.
    pub fn push(&mut self, ids: &[u32], text_bytes: u64) -> Result<(), ShardError> {
        let wrote = |e| ShardError::Write {
            path: self.docs_path.clone(),
            source: e,
        };
        self.docs
            .write_all(&self.count.to_le_bytes())
            .map_err(wrote)?;
        let mut buf = Vec::with_capacity((ids.len() + 1) * self.dtype.width());
        for &id in ids.iter().chain(std::iter::once(&self.eos_id)) {
            if id as usize >= self.vocab_size {
                return Err(ShardError::IdOutOfRange {
                    id,
                    dtype: self.dtype.name(),
                    vocab_size: self.vocab_size,
                });
            }
            self.unigram[id as usize] += 1;
            match self.dtype {
                Dtype::U16 => buf.extend_from_slice(&(id as u16).to_le_bytes()),
                Dtype::U32 => buf.extend_from_slice(&id.to_le_bytes()),
            }
        }
        self.tokens
            .write_all(&buf)
            .map_err(|source| ShardError::Write {
                path: self.tokens_path.clone(),
                source,
            })?;
        self.count += ids.len() as u64 + 1;
        self.documents += 1;
        self.bytes += text_bytes;
        Ok(())
    }

    /// Writes the closing offset, flushes, and returns the split's entry for `shards.json`.
    pub fn finish(mut self) -> Result<SplitMeta, ShardError> {
        let docs_path = self.docs_path.clone();
        let tokens_path = self.tokens_path.clone();
        self.docs
            .write_all(&self.count.to_le_bytes())
            .and_then(|()| self.docs.flush())
            .and_then(|()| self.docs.get_ref().sync_all())
            .map_err(|source| ShardError::Write {
                path: docs_path,
                source,
            })?;
        self.tokens
            .flush()
            .and_then(|()| self.tokens.get_ref().sync_all())
            .map_err(|source| ShardError::Write {
                path: tokens_path,
                source,
            })?;
        Ok(SplitMeta {
            tokens: self.count,
            documents: self.documents,
            bytes: self.bytes,
            bytes_per_token: if self.count == 0 {
                0.0
            } else {
                self.bytes as f64 / self.count as f64
            },
            unigram_entropy_nats: entropy(&self.unigram),
        })
    }

    /// Token counts per id so far (for cross-split statistics).
    pub fn unigram(&self) -> &[u64] {
        &self.unigram
    }
}

/// Shannon entropy (nats) of a count vector.
pub fn entropy(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / t;
            p * p.ln()
        })
        .sum::<f64>()
}

/// Writes `shards.json`.
pub fn write_meta(dir: &Path, meta: &ShardsMeta) -> Result<(), ShardError> {
    let path = dir.join(META_FILE);
    let text = serde_json::to_string_pretty(meta).expect("shard metadata serializes");
    std::fs::write(&path, text).map_err(|source| ShardError::Write { path, source })
}

/// An opened shard directory.
#[derive(Debug)]
pub struct Shards {
    meta: ShardsMeta,
    splits: BTreeMap<String, TokenSplit>,
}

impl Shards {
    /// Opens `shards.json` and maps every split it lists, checking file sizes against it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Shards, ShardError> {
        let dir = dir.as_ref();
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read(&meta_path).map_err(|source| ShardError::Read {
            path: meta_path.clone(),
            source,
        })?;
        let meta: ShardsMeta = serde_json::from_slice(&text).map_err(|e| ShardError::Corrupt {
            path: meta_path.clone(),
            message: format!("not a valid shards.json: {e}"),
        })?;
        if meta.format != FORMAT {
            return Err(ShardError::Corrupt {
                path: meta_path,
                message: format!(
                    "shard format {} is not the supported format {FORMAT}; re-run the tokenizer stage",
                    meta.format
                ),
            });
        }
        if meta.dtype != Dtype::for_vocab(meta.vocab_size) {
            return Err(ShardError::Corrupt {
                path: meta_path,
                message: format!(
                    "dtype {} does not match vocab_size {}",
                    meta.dtype.name(),
                    meta.vocab_size
                ),
            });
        }
        let mut splits = BTreeMap::new();
        for (name, split) in &meta.splits {
            splits.insert(
                name.clone(),
                TokenSplit::open(dir, name, split, meta.dtype)?,
            );
        }
        Ok(Shards { meta, splits })
    }

    /// A split by name (`train`, `val`).
    pub fn split(&self, name: &str) -> Option<&TokenSplit> {
        self.splits.get(name)
    }

    /// The parsed `shards.json`.
    pub fn meta(&self) -> &ShardsMeta {
        &self.meta
    }
}

/// One split's tokens and document offsets, memory-mapped.
#[derive(Debug)]
pub struct TokenSplit {
    tokens: Option<Mmap>,
    offsets: Option<Mmap>,
    dtype: Dtype,
    len: usize,
    documents: usize,
}

fn map(path: &Path, expected: u64) -> Result<Option<Mmap>, ShardError> {
    let file = File::open(path).map_err(|source| ShardError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let size = file
        .metadata()
        .map_err(|source| ShardError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size != expected {
        return Err(ShardError::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "{size} bytes where shards.json implies {expected}; the shards are truncated or \
                 do not belong to this shards.json (re-run the tokenizer stage)"
            ),
        });
    }
    if size == 0 {
        // Mapping an empty file fails on some platforms; an empty split needs no mapping.
        return Ok(None);
    }
    // SAFETY: shard files live in the read-only store and are never modified after the stage
    // wrote them; a concurrent truncation by another process is outside the contract.
    let mmap = unsafe { Mmap::map(&file) }.map_err(|source| ShardError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some(mmap))
}

impl TokenSplit {
    fn open(
        dir: &Path,
        name: &str,
        meta: &SplitMeta,
        dtype: Dtype,
    ) -> Result<TokenSplit, ShardError> {
        let tokens_path = dir.join(format!("{name}.bin"));
        let docs_path = dir.join(format!("{name}.docs"));
        let tokens = map(&tokens_path, meta.tokens * dtype.width() as u64)?;
        let offsets = map(&docs_path, (meta.documents + 1) * 8)?;
        let split = TokenSplit {
            tokens,
            offsets,
            dtype,
            len: meta.tokens as usize,
            documents: meta.documents as usize,
        };
        if split.offset(0) != 0 || split.offset(split.documents) != split.len {
            return Err(ShardError::Corrupt {
                path: docs_path,
                message: "document offsets do not span the token file".to_string(),
            });
        }
        Ok(split)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Number of documents.
    pub fn documents(&self) -> usize {
        self.documents
    }

    fn offset(&self, i: usize) -> usize {
        let b = self.offsets.as_deref().unwrap_or(&[0u8; 8]);
        let raw: [u8; 8] = b[i * 8..i * 8 + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(raw) as usize
    }

    /// The token range of document `i` (its `<|eos|>` included). Panics if `i >= documents()`.
    pub fn document(&self, i: usize) -> std::ops::Range<usize> {
        assert!(i < self.documents, "document {i} of {}", self.documents);
        self.offset(i)..self.offset(i + 1)
    }

    /// Token `i`. Panics if `i >= len()`.
    pub fn get(&self, i: usize) -> u32 {
        assert!(i < self.len, "token {i} of {}", self.len);
        let b = self.tokens.as_deref().expect("a non-empty split is mapped");
        match self.dtype {
            Dtype::U16 => u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as u32,
            Dtype::U32 => u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes")),
        }
    }

    /// Copies tokens `start..start + len` into `out[..len]` as `i64` (what embedding lookups
    /// take). Panics if the range is outside the split or `out` is shorter than `len`.
    pub fn window(&self, start: usize, len: usize, out: &mut [i64]) {
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "window {start}..{} outside a split of {} tokens",
            start.saturating_add(len),
            self.len
        );
        assert!(
            out.len() >= len,
            "output of {} for a window of {len}",
            out.len()
        );
        if len == 0 {
            return;
        }
        let b = self.tokens.as_deref().expect("a non-empty split is mapped");
        match self.dtype {
            Dtype::U16 => {
                for (o, c) in out[..len]
                    .iter_mut()
                    .zip(b[2 * start..2 * (start + len)].chunks_exact(2))
                {
                    *o = u16::from_le_bytes([c[0], c[1]]) as i64;
                }
            }
            Dtype::U32 => {
                for (o, c) in out[..len]
                    .iter_mut()
                    .zip(b[4 * start..4 * (start + len)].chunks_exact(4))
                {
                    *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, vocab_size: usize, docs: &[&[u32]]) -> ShardsMeta {
        let eos = (vocab_size - 1) as u32;
        let mut w = SplitWriter::create(dir, "train", vocab_size, eos).unwrap();
        for d in docs {
            w.push(d, d.len() as u64 * 3).unwrap();
        }
        let train = w.finish().unwrap();
        let val = SplitWriter::create(dir, "val", vocab_size, eos)
            .unwrap()
            .finish()
            .unwrap();
        let meta = ShardsMeta {
            format: FORMAT,
            dtype: Dtype::for_vocab(vocab_size),
            vocab_size,
            eos_id: eos,
            bos_id: None,
            pad_id: None,
            splits: [("train".to_string(), train), ("val".to_string(), val)].into(),
        };
        write_meta(dir, &meta).unwrap();
        meta
    }

    #[test]
    fn read_back_equals_what_was_written_u16_and_u32() {
        for vocab in [300usize, 70_000] {
            let dir = tempfile::tempdir().unwrap();
            let docs: [&[u32]; 3] = [&[1, 2, 3], &[], &[250, 299, 0]];
            let meta = write(dir.path(), vocab, &docs);
            let s = Shards::open(dir.path()).unwrap();
            // JSON floats read back to within an ulp, so compare the rest exactly.
            let read = s.meta();
            assert_eq!(
                (read.dtype, read.vocab_size, read.eos_id),
                (meta.dtype, meta.vocab_size, meta.eos_id)
            );
            let (a, b) = (&read.splits["train"], &meta.splits["train"]);
            assert_eq!(
                (a.tokens, a.documents, a.bytes),
                (b.tokens, b.documents, b.bytes)
            );
            assert!((a.unigram_entropy_nats - b.unigram_entropy_nats).abs() < 1e-12);
            let t = s.split("train").unwrap();
            let eos = (vocab - 1) as u32;
            let all = [1, 2, 3, eos, eos, 250, 299, 0, eos];
            assert_eq!(t.len(), all.len());
            assert_eq!((0..t.len()).map(|i| t.get(i)).collect::<Vec<_>>(), all);
            assert_eq!(t.documents(), 3);
            assert_eq!(t.document(1), 4..5);
            let mut out = [0i64; 4];
            t.window(4, 4, &mut out);
            assert_eq!(out, [eos as i64, 250, 299, 0]);
            assert!(s.split("val").unwrap().is_empty());
            let expected_dtype = if vocab > 65_536 {
                Dtype::U32
            } else {
                Dtype::U16
            };
            assert_eq!(t.dtype(), expected_dtype);
            assert_eq!(meta.splits["train"].bytes, 18);
        }
    }

    #[test]
    fn truncated_shards_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 300, &[&[1, 2, 3]]);
        let bin = dir.path().join("train.bin");
        let len = std::fs::metadata(&bin).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&bin)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let e = Shards::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("train.bin") && e.contains("truncated"), "{e}");
    }

    #[test]
    fn ids_outside_the_vocab_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SplitWriter::create(dir.path(), "train", 10, 9).unwrap();
        assert!(matches!(
            w.push(&[10], 1),
            Err(ShardError::IdOutOfRange { id: 10, .. })
        ));
    }

    #[test]
    fn entropy_of_uniform_counts_is_log_n() {
        assert!((entropy(&[5, 5, 5, 5]) - 4f64.ln()).abs() < 1e-12);
        assert_eq!(entropy(&[7, 0]), 0.0);
    }
}
