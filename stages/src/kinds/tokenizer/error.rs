//! Errors of the tokenizer stage.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot read {path}: {message}\nhint: the `data` input must be a data stage's output (train.parquet, val.parquet)")]
    Table { path: PathBuf, message: String },
    #[error("{path} has columns [{found}], none of the record shapes binarylm encodes\nhint: expected `text`, or `prompt` + `response`, or `prompt` + `chosen` + `rejected`")]
    Shape { path: PathBuf, found: String },
    #[error("{path}: column `{column}` is {found}, not text")]
    NotText {
        path: PathBuf,
        column: String,
        found: String,
    },
    #[error("the train split has no text to train a tokenizer on\nhint: check the data stage's filters (`binarylm show <data stage>`)")]
    EmptyCorpus,
    #[error("{0}")]
    Tokenizer(#[from] tokenizer::TokenizerError),
    #[error("{0}")]
    Shards(#[from] tokenizer::ShardError),
    #[error("{what}\nhint: {hint}")]
    Missing { what: String, hint: String },
    #[error("cannot start a thread pool: {0}")]
    Threads(String),
    #[error("cancelled")]
    Cancelled,
}
