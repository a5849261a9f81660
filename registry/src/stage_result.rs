//! The record of one committed stage execution.

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

impl StageResult {
    /// The headline metric's name and value, when the stage names one and reported it.
    pub fn headline_metric(&self) -> Option<(&str, f64)> {
        let name = self.headline.as_deref()?;
        self.metrics.get(name).map(|v| (name, *v))
    }
}
