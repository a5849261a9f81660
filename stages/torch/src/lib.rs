//! The part of binarylm that links libtorch (through `tch`): devices, the GPT model, its
//! training loop and sampling, the `pretrain` and `deploy` stages, and the model server's
//! engine (the HTTP side is the torch-free `serve` crate). Its `binarylm-torch` executable runs
//! this work so that the `binarylm` CLI itself never loads libtorch.

pub mod deploy;
pub mod device;
pub mod generate;
pub mod generate_cli;
pub mod kinds;
pub mod model;
pub mod pretrain;
pub mod serve_cli;
pub mod serve_engine;
pub mod serving;
pub mod train;

pub use device::{DeviceChoice, DeviceError};
pub use model::{load_artifact, Gpt, KvCache, ModelConfig, ModelError};
