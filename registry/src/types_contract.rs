// CONTRACT (written by the lead; the registry helper may move these into proper modules but must
// keep names, fields and signatures — runtime and the binary are written against them).

use std::collections::BTreeMap;

/// One committed stage execution: fingerprint → output digest, plus what produced it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageResult {
    pub fingerprint: String,
    /// Digest of the output object in the store.
    pub digest: String,
    pub stage: String,
    pub kind: String,
    /// Absolute path of the manifest that produced it.
    pub manifest: String,
    /// The pipeline's `name:`.
    pub pipeline: String,
    /// Input stage name → digest (lineage edges).
    pub inputs: BTreeMap<String, String>,
    /// The full fingerprint input (serde_json of pipelines::FingerprintInput), for `plan` explanations.
    pub fingerprint_input: serde_json::Value,
    pub metrics: BTreeMap<String, f64>,
    /// Name of the headline metric in `metrics`, shown in summaries and the lockfile.
    pub headline: Option<String>,
    pub run_id: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub duration_ms: u64,
    /// e.g. "cpu", "cuda:0".
    pub device: String,
    pub binarylm_version: String,
}

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
    pub digest: Option<String>,
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
