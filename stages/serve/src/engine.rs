//! The seam between the HTTP server and a model: what the scheduler asks of a language model.
//!
//! The server never sees tensors. A model is two halves:
//! - a [`Codec`] (the tokenizer), shared by every HTTP handler, so prompts are tokenized on the
//!   request threads and never wait behind the model;
//! - an [`Engine`] (the network and its KV caches), owned by the one scheduler thread, which
//!   prefills new sequences and runs batched decode steps over all active ones.
//!
//! The torch implementation lives in `stages-torch` (`serve_engine.rs`); tests use a bigram model.

use std::fmt;

/// Tokenizer operations the server needs. Implementations must be cheap to call concurrently.
pub trait Codec: Send + Sync + 'static {
    /// Token ids of `text` as ordinary text: no special tokens added, and special-token
    /// spellings inside it encoded like any other characters (the server maps spellings to
    /// special ids itself where that is wanted; see `tokens.rs`).
    fn encode(&self, text: &str) -> Vec<u32>;
    /// Raw bytes of `ids` (a byte-level BPE token may hold part of a UTF-8 character).
    fn decode(&self, ids: &[u32]) -> Vec<u8>;
    /// The id of a token spelled exactly `token` (special tokens included), if any.
    fn token_to_id(&self, token: &str) -> Option<u32>;
    /// Number of token ids (every id below it is valid).
    fn vocab_size(&self) -> usize;
}

/// Logits for a set of rows (positions or sequences), row-major, `vocab` columns each.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    vocab: usize,
    data: Vec<f32>,
}

impl Logits {
    /// Wraps `data` as rows of `vocab` logits; `None` when the length is not a multiple.
    pub fn new(vocab: usize, data: Vec<f32>) -> Option<Logits> {
        (vocab > 0 && data.len().is_multiple_of(vocab)).then_some(Logits { vocab, data })
    }

    pub fn rows(&self) -> usize {
        self.data.len() / self.vocab
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Row `i` (panics when out of range, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.vocab..(i + 1) * self.vocab]
    }
}

/// What a prefill must return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefillOutput {
    /// Only the logits after the last prompt token (the distribution of the first new token).
    Last,
    /// Logits after every prompt token: row `i` predicts token `i + 1`. Needed for prompt
    /// log-probabilities (`echo` + `logprobs`), which is how evaluation harnesses score text.
    All,
}

/// A failure inside the model (out of memory, a device error). The request that hit it fails
/// with a 500; the server keeps running.
#[derive(Debug, Clone)]
pub struct EngineError(pub String);

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

/// A language model with per-sequence KV caches, driven by the scheduler thread only.
pub trait Engine: 'static {
    /// One sequence's state (its KV cache). Dropping it releases the memory.
    type Sequence;

    /// A fresh, empty sequence.
    fn new_sequence(&mut self) -> Result<Self::Sequence, EngineError>;

    /// Appends `tokens` (non-empty) to `seq` and returns logits: one row for
    /// [`PrefillOutput::Last`], `tokens.len()` rows for [`PrefillOutput::All`].
    fn prefill(
        &mut self,
        seq: &mut Self::Sequence,
        tokens: &[u32],
        output: PrefillOutput,
    ) -> Result<Logits, EngineError>;

    /// Appends `tokens[i]` to `seqs[i]` for every i, in one batched step, and returns one row of
    /// logits per sequence, in order.
    fn decode(
        &mut self,
        seqs: &mut [&mut Self::Sequence],
        tokens: &[u32],
    ) -> Result<Logits, EngineError>;
}

/// Facts about the served model that the API reports and validates against.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The name clients pass as `model`.
    pub id: String,
    /// Maximum tokens a sequence may hold (prompt + completion).
    pub context_length: usize,
    /// End-of-sequence token: generation stops there, and it is never part of the text.
    pub eos_token: Option<SpecialToken>,
    pub bos_token: Option<SpecialToken>,
    pub pad_token: Option<SpecialToken>,
    /// Unix seconds when the model was created (reported by `/v1/models`).
    pub created: u64,
}

/// A special token: its spelling and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialToken {
    pub text: String,
    pub id: u32,
}

impl SpecialToken {
    /// Looks `text` up in the codec.
    pub fn lookup(codec: &dyn Codec, text: &str) -> Option<SpecialToken> {
        codec.token_to_id(text).map(|id| SpecialToken {
            text: text.to_string(),
            id,
        })
    }
}
