//! Small pieces shared by every binarylm crate, kept in one place so there is exactly one
//! definition of each (the seeded generator, error cause chains, the progress/cancellation
//! observer every stage kind reports to, the directory hasher and the digest it names an
//! artifact by). It depends on no crate of the
//! workspace, so any of them may depend on it.

pub mod digest;
pub mod error;
pub mod observe;
pub mod rng;
pub mod tree;

pub use digest::Digest;
