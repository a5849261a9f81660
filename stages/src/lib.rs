//! The stage kinds of binarylm and the model code behind them. This is the only crate that links
//! libtorch (through `tch`); its `binarylm-torch` executable runs the work that needs it.

pub mod device;

pub use device::{DeviceChoice, DeviceError};
