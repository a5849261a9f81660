//! The part of binarylm that links libtorch (through `tch`): devices, the GPT model, its
//! training loop and sampling, and the `pretrain` stage. Its `binarylm-torch` executable runs
//! this work so that the `binarylm` CLI itself never loads libtorch.

pub mod device;
pub mod generate;
pub mod generate_cli;
pub mod model;
pub mod pretrain;
pub mod train;

pub use device::{DeviceChoice, DeviceError};
pub use model::{load_artifact, Gpt, KvCache, ModelConfig, ModelError};
