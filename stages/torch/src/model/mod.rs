//! The GPT model, one layer per module.

mod attention;
mod block;
pub mod config;
mod embedding;
mod gpt;
mod kv_cache;
mod linear;
pub mod lora;
mod mlp;
mod norm;
pub mod quantized;
mod rope;

pub use config::{swiglu_hidden, ConfigError, ModelConfig};
pub use gpt::{load_artifact, Gpt, ModelError, Trace, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
pub use kv_cache::KvCache;
pub use lora::Lora;
