//! Files that one binary writes and another reads: the typed summaries stages put in their
//! artifacts. `binarylm-torch` writes them and `binarylm show` reads them with the same
//! structs, so the two cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A pretrain artifact's summary file.
pub const PRETRAIN_SUMMARY_FILE: &str = "summary.json";

/// `summary.json` of a pretrain artifact: the training outcome. Only what the stage's inputs
/// determine: the measurements of the run that produced it (wall time, tokens/s, MFU, the
/// device's name, where it resumed from) go to the run's record in the registry as
/// [`PretrainRun`], so that two runs of the same fingerprint write byte-identical artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainSummary {
    pub steps: u64,
    pub params: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_ppl: f64,
    pub tokens_seen: u64,
    /// `bf16` or `fp32`: the dtype of the matrix products.
    pub precision: String,
    /// Validation loss of the unigram (no-context) baseline, from the tokenizer's shards.
    #[serde(default)]
    pub unigram_entropy: Option<f64>,
}

/// What one run of a pretrain stage measured: the registry's record, never the artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainRun {
    /// Mean training throughput of this process's steps.
    pub tokens_per_s: f64,
    pub mfu: Option<f64>,
    pub elapsed_s: f64,
    /// The step a checkpoint let this run start from.
    pub resumed_from: Option<u64>,
}

impl PretrainSummary {
    /// The stage metrics `binarylm` records (headline `val_loss`): the summary's numbers and
    /// the run's measurements.
    pub fn metrics(&self, run: &PretrainRun) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::from([
            ("val_loss".to_string(), self.val_loss),
            ("val_ppl".to_string(), self.val_ppl),
            ("train_loss".to_string(), self.train_loss),
            ("tokens_seen".to_string(), self.tokens_seen as f64),
            ("tokens_per_s".to_string(), run.tokens_per_s),
            ("elapsed_s".to_string(), run.elapsed_s),
            ("params".to_string(), self.params as f64),
            ("steps".to_string(), self.steps as f64),
        ]);
        if let Some(mfu) = run.mfu {
            m.insert("mfu".to_string(), mfu);
        }
        if let Some(step) = run.resumed_from {
            m.insert("resumed_from_step".to_string(), step as f64);
        }
        if let Some(u) = self.unigram_entropy {
            m.insert("unigram_entropy".to_string(), u);
        }
        m
    }
}
