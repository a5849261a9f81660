//! stages crate
