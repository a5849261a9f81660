//! Small pieces shared by every binarylm crate, kept in one place so there is exactly one
//! definition of each. A leaf crate: it depends on nothing, so anything may depend on it.

pub mod error;
pub mod rng;
