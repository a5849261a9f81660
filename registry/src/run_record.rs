//! Records of `binarylm run` invocations and the outcome of each stage in them.

use common::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Ran,
    Cached,
    Failed,
    Skipped,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageOutcome {
    pub stage: String,
    pub status: OutcomeStatus,
    pub fingerprint: Option<String>,
    pub digest: Option<Digest>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// Sortable: "20261128T232000Z-<8 hex>".
    pub id: String,
    pub manifest: String,
    pub pipeline: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub outcomes: Vec<StageOutcome>,
    /// Lockfile written by this run, if any (gc keeps what lockfiles reference).
    pub lockfile: Option<String>,
}

impl RunRecord {
    /// Digests this run produced or reused, in outcome order.
    pub fn digests(&self) -> impl Iterator<Item = &Digest> {
        self.outcomes.iter().filter_map(|o| o.digest.as_ref())
    }
}
