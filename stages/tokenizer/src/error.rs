//! Typed errors of the tokenizer crate.

use std::path::PathBuf;

/// Loading, saving or training a tokenizer failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The file is a tokenizer.json binarylm cannot reproduce exactly (a normalizer, a
    /// WordPiece model…); `what` names the component, `hint` how to proceed.
    #[error("{path}: unsupported tokenizer.json: {what}\nhint: {hint}")]
    Unsupported {
        path: PathBuf,
        what: String,
        hint: String,
    },
    /// The file is a tokenizer.json with inconsistent content (a merge of unknown tokens…).
    #[error("{path}: invalid tokenizer.json: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("invalid pre-tokenizer pattern `{pattern}`: {message}")]
    Pattern { pattern: String, message: String },
    #[error("invalid tokenizer configuration: {0}")]
    Config(String),
    #[error("cancelled")]
    Cancelled,
}

/// Opening or writing token shards failed.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("token id {id} does not fit the shard dtype {dtype} (vocab size {vocab_size})")]
    IdOutOfRange {
        id: u32,
        dtype: &'static str,
        vocab_size: usize,
    },
}
