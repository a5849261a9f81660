//! The content-addressed artifact store and its registry: objects, stage results, runs,
//! lineage, garbage collection, verification, the lockfile and the workspace lock.
//!
//! Files under the workspace are the source of truth; the sled database only indexes them and
//! can be rebuilt from them (`Registry::rebuild`).
//!
//! One stage execution, as the runtime drives it (under a held `WorkspaceLock`, with one
//! `Registry` per process, cloned between tasks):
//!
//! 1. `lookup(fingerprint)`: a hit means reuse (`mark_reused` so `latest_for_stage` follows);
//! 2. `staging(fingerprint)`: write into `out_dir()`; `existed` says checkpoints may be there;
//! 3. `store(staging, produced_by)` → digest: the output is now an immutable object;
//! 4. `commit(&StageResult)`: the result becomes visible to later lookups.
//!
//! A run is bracketed by `begin_run` / `finish_run`; `mark_stale_runs_interrupted` turns runs
//! whose process died into `cancelled`.

mod clock;
mod error;
mod files;
mod fsutil;
mod gc;
mod import;
mod index;
mod layout;
mod lineage;
mod lock;
mod lockfile;
mod merkle;
mod meta;
mod owner;
mod rebuild;
mod records;
mod registry;
mod resolve;
mod run_record;
mod runs;
mod snapshot;
mod stage_result;
mod staging;
mod store;
mod verify;

#[cfg(test)]
mod tests;

pub use clock::{new_run_id, now_rfc3339};
pub use common::Digest;
pub use error::{RegistryError, Result};
pub use gc::{GcPolicy, GcReport};
pub use layout::{DIGEST_HEX_LEN, MIN_PREFIX_LEN};
pub use lineage::{Consumer, LineageInput, LineageTree, Producer};
pub use lock::WorkspaceLock;
pub use lockfile::{LockDiff, LockField, LockedStage, Lockfile, LOCKFILE_VERSION};
pub use merkle::{digest_of, hash_dir, FileEntry, Tree};
pub use meta::{ObjectMeta, ProducedBy, OBJECT_META_VERSION};
pub use rebuild::RebuildReport;
pub use registry::Registry;
pub use resolve::{Resolved, ResolvedBy};
pub use run_record::{OutcomeStatus, RunRecord, RunStatus, StageOutcome};
pub use stage_result::{RanWith, StageResult};
pub use staging::Staging;
pub use verify::{VerifyIssue, VerifyReport};
