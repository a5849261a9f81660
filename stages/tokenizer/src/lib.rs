//! Tokenizers for binarylm: a byte-level BPE trainer and encoder, a character-level tokenizer,
//! Hugging Face `tokenizer.json` reading and writing, and the token shards that pretraining
//! reads through mmap. Pure Rust: no libtorch, no polars.
//!
//! ```text
//! text ──added tokens──▶ segments ──pre-tokenizer──▶ pieces ──BPE merges──▶ ids
//! ```

pub mod bytelevel;
mod cache;
mod display;
mod error;
pub mod hf;
mod model;
pub mod pretokenize;
pub mod shards;
mod tokenizer;
pub mod train;

pub use display::quoted;
pub use error::{ShardError, TokenizerError};
pub use model::{Alphabet, Bpe};
pub use pretokenize::{Pattern, PreTokenizer};
pub use tokenizer::{Segment, Tokenizer, TokenizerKind, BOS_NAMES, EOS_NAMES, PAD_NAMES};
pub use train::{train_bpe, train_char, BpeConfig, CharConfig, DEFAULT_SPECIAL_TOKENS};
