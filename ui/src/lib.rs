//! `binarylm ui`: a web UI over one workspace, served by the binary itself.
//!
//! Everything it shows comes from the same typed structures and functions as the command
//! line (`runtime::plan`, the registry's runs, results, lineage and object listings, the
//! stages' own artifact files), read through a [`registry::Registry::open_snapshot`]: the
//! workspace is never written, never locked, and a `binarylm run` can hold it meanwhile.
//! Every asset (HTML, CSS, JS) is compiled into the binary, so it works offline.

mod access;
mod api;
mod assets;
mod error;
mod files;
mod inspector;
mod live;
mod server;
mod snapshot;
mod views;

pub use access::{generate_token, Access};
pub use error::UiError;
pub use server::{bind, Bound, UiOptions};
