//! An OpenAI-compatible HTTP server for binarylm models, independent of libtorch: the wire
//! types, request validation, continuous batching on an engine thread, sampling, metrics and
//! API keys. A model plugs in through [`Engine`] and [`Codec`] (see `engine.rs`).

pub mod auth;
pub mod chat;
pub mod config;
pub mod engine;
pub mod error;
pub mod flags;
pub mod metrics;
pub mod openai;
mod routes;
pub mod sampling;
pub mod scheduler;
pub mod server;
pub mod smoke;
pub mod testing;
pub mod text;
pub mod tokens;
pub mod validate;

pub use auth::{ApiKeys, API_KEYS_ENV};
pub use config::ServerConfig;
pub use engine::{Codec, Engine, EngineError, Logits, ModelInfo, PrefillOutput, SpecialToken};
pub use error::{ApiError, ServeError};
pub use flags::{ChatFlags, DecodeFlags, GenerateFlags, ServeFlags};
pub use server::{start, ModelSpec, RunningServer};
