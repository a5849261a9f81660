//! Metadata stored beside each object (`objects/<aa>/<digest>.json`). It carries the Merkle
//! listing, so an object can be verified, and its producer, so the index can be rebuilt.

use serde::{Deserialize, Serialize};

use common::Digest;

use crate::merkle::FileEntry;

/// Format of the `.json` beside an object.
/// 1: initial format.
pub const OBJECT_META_VERSION: u32 = 1;

/// The stage execution that first produced an object. Identical output from another stage
/// later is deduplicated and keeps the first producer here; the records index knows them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducedBy {
    pub stage: String,
    pub fingerprint: String,
    pub pipeline: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub version: u32,
    pub digest: Digest,
    /// Sorted by path.
    pub files: Vec<FileEntry>,
    pub total_size: u64,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub produced_by: ProducedBy,
}
