//! The part of binarylm that links libtorch (through `tch`). Its `binarylm-torch` executable
//! runs this work so that the `binarylm` CLI itself never loads libtorch.
//!
//! A kind's code is under the kind's name (`pretrain`, `sft`, `dpo`, `deploy`, `eval`,
//! `quantize`, `export`; `kinds` is the table
//! `run-stage` dispatches on); the commands under theirs (`generate`, `logits`, `server`: the model
//! server's torch side, whose HTTP half is the torch-free `serve` crate); the code they share
//! beneath them (`model`, `train`, `device`).

pub mod deploy;
pub mod device;
pub mod dpo;
pub mod eval;
pub mod export;
pub mod generate;
pub mod inspect;
pub mod kinds;
pub mod logits;
pub mod model;
pub mod pretrain;
pub mod quantize;
pub mod server;
pub mod sft;
pub mod train;

pub use device::{DeviceChoice, DeviceError};
pub use model::{load_artifact, Gpt, KvCache, ModelConfig, ModelError};
