//! The part of binarylm that links libtorch (through `tch`): device selection today, the model
//! code as it lands. Its `binarylm-torch` executable runs the work that needs torch, so that the
//! `binarylm` CLI itself never loads libtorch.

pub mod device;

pub use device::{DeviceChoice, DeviceError};
