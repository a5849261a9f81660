//! runtime crate
