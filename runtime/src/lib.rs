//! The executor: turns a validated [`pipelines::Manifest`] into stage runs over the DAG, reusing
//! what the [`registry`] already holds and running the rest — independent stages in parallel.
//!
//! The story of one stage (see [`executor`]): wait for upstream outcomes; skip if one failed;
//! resolve the fingerprint from params, seed, dependency files and input digests; reuse a cached
//! result or run the kind in a staging directory; move the output into the store; commit.

pub mod command;
pub mod context;
pub mod error;
pub mod executor;
pub mod fetch;
pub mod fingerprints;
pub mod kind;
mod lock_check;
pub mod plan;
pub mod progress;
pub mod report;
pub mod resources;

pub use context::{StageContext, StageLog, StageProgress};
pub use error::{RuntimeError, StageError};
pub use executor::{run, RunOptions};
pub use fetch::{FetchFuture, FetchRequest, Fetcher};
pub use kind::{Kinds, StageKind, StageMetrics};
pub use plan::{plan, Plan, PlanEntry, PlanStatus};
pub use progress::Reporter;
pub use report::RunReport;
