//! Errors of the tokenizer stage.

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("{0}")]
    Records(#[from] records::RecordsError),
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
