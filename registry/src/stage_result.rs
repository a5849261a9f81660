//! The record of one committed stage execution.

use std::collections::BTreeMap;

use common::Digest;

/// One committed stage execution: fingerprint → output digest, plus what produced it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageResult {
    pub fingerprint: String,
    /// Digest of the output object in the store.
    pub digest: Digest,
    pub stage: String,
    pub kind: String,
    /// Absolute path of the manifest that produced it.
    pub manifest: String,
    /// The pipeline's `name:`.
    pub pipeline: String,
    /// Input stage name → digest (lineage edges).
    pub inputs: BTreeMap<String, Digest>,
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
    /// CPU threads the stage was given (older records: unknown).
    #[serde(default)]
    pub threads: Option<usize>,
    /// The libtorch build a torch stage ran on (`2.11.0+cpu`).
    #[serde(default)]
    pub libtorch: Option<String>,
}

/// What a stage's output was computed with: bit-exactness of floating-point work holds only
/// when all of it is the same (and the device is a CPU).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RanWith {
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libtorch: Option<String>,
}

impl std::fmt::Display for RanWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.device)?;
        if let Some(t) = self.threads {
            write!(f, ", {t} thread{}", if t == 1 { "" } else { "s" })?;
        }
        if let Some(l) = &self.libtorch {
            write!(f, ", libtorch {l}")?;
        }
        Ok(())
    }
}

impl StageResult {
    /// What the output was computed with. The device is its id (`cpu`, `cuda:0`); records
    /// written before 2026-11-30 hold a description (`cpu (2 threads)`) whose details `threads`
    /// already holds, so anything after the id is dropped.
    pub fn ran_with(&self) -> RanWith {
        let device = self.device.split(" (").next().unwrap_or_default();
        RanWith {
            device: device.trim().to_string(),
            threads: self.threads,
            libtorch: self.libtorch.clone(),
        }
    }

    /// The headline metric's name and value, when the stage names one and reported it.
    pub fn headline_metric(&self) -> Option<(&str, f64)> {
        let name = self.headline.as_deref()?;
        self.metrics.get(name).map(|v| (name, *v))
    }
}
