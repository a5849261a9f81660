//! pipelines crate
