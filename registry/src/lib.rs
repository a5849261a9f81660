//! registry crate
