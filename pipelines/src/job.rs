//! The protocol between `binarylm` and `binarylm-torch` for stage kinds that need libtorch.
//!
//! `binarylm` never links libtorch. For a torch stage it writes a [`TorchJob`] as JSON and runs
//! `binarylm-torch run-stage <job.json>`; the child writes [`TorchEvent`]s to stdout, one JSON
//! object per line, and its human-readable log to stderr. Both sides use these types, so the
//! protocol has one definition.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the job format; the torch side refuses others.
// 2: `params` carries `kind` and is read back typed. 3: `manifest_dir`.
pub const TORCH_JOB_FORMAT: u32 = 3;

/// Everything a torch stage needs to run, as `binarylm` resolved it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorchJob {
    pub format: u32,
    /// The stage kind (`pretrain`).
    pub kind: String,
    /// The stage's name in the manifest.
    pub stage: String,
    /// The manifest's directory: relative paths in the params (an eval task's JSONL file)
    /// start here.
    pub manifest_dir: PathBuf,
    /// The stage's params, typed (serialized as the canonical params plus `kind`).
    pub params: crate::StageParams,
    /// Upstream stage name → its artifact directory (read-only).
    pub inputs: BTreeMap<String, PathBuf>,
    /// Where the artifact's files go.
    pub out_dir: PathBuf,
    /// Scratch that survives an interrupted attempt of the same fingerprint (checkpoints).
    pub work_dir: PathBuf,
    /// True when `work_dir` was left by an interrupted attempt.
    pub resumed: bool,
    pub seed: u64,
    /// CPU threads the stage may use.
    pub threads: usize,
    pub fingerprint: String,
}

/// A job that lacks the artifact of a stage its params name (a job written by hand, or for
/// another manifest: `binarylm` always passes every referenced stage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the job has no input for stage `{0}`")]
pub struct MissingInput(pub String);

impl TorchJob {
    /// The artifact directory of upstream stage `stage`.
    pub fn input(&self, stage: &str) -> Result<&Path, MissingInput> {
        self.inputs
            .get(stage)
            .map(PathBuf::as_path)
            .ok_or_else(|| MissingInput(stage.to_string()))
    }
}

/// One line of a torch stage's stdout.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum TorchEvent {
    /// Work done so far (`step` of `total`, when the total is known), with a short status such
    /// as `loss 2.31`: what the stage's `Observer` was told.
    Progress {
        step: u64,
        #[serde(default)]
        total: Option<u64>,
        #[serde(default)]
        message: String,
    },
    /// The stage's final metrics; the last one written wins.
    Metrics {
        metrics: BTreeMap<String, f64>,
        #[serde(default)]
        headline: Option<String>,
        #[serde(default)]
        device: Option<String>,
        /// The libtorch build the stage ran on (`2.11.0+cpu`), when known.
        #[serde(default)]
        libtorch: Option<String>,
    },
}
