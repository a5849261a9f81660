//! Training a [`crate::model::Gpt`]: data windows, optimizer, schedule, checkpoints, metrics.

pub mod adamw;
pub mod checkpoint;
pub mod finetune;
pub mod metrics;
pub mod order;
pub mod plot;
mod run;
pub mod sampler;
pub mod schedule;
pub mod tokens;

pub use run::{evaluate, named_weights, train, Observer, TrainError, TrainInput, TrainSummary};
pub use tokens::{InMemoryTokens, ShardDir, TokenSource};
