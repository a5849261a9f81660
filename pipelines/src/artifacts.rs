//! Files that one binary writes and another reads: the typed summaries stages put in their
//! artifacts. `binarylm-torch` writes them and `binarylm show` reads them with the same
//! structs, so the two cannot drift apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A pretrain artifact's summary file.
pub const PRETRAIN_SUMMARY_FILE: &str = "summary.json";

/// `summary.json` of a pretrain artifact: the training outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainSummary {
    pub steps: u64,
    pub params: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_ppl: f64,
    pub tokens_seen: u64,
    pub tokens_per_s: f64,
    #[serde(default)]
    pub mfu: Option<f64>,
    pub elapsed_s: f64,
    pub device: String,
    pub precision: String,
    /// Validation loss of the unigram (no-context) baseline, from the tokenizer's shards.
    #[serde(default)]
    pub unigram_entropy: Option<f64>,
    #[serde(default)]
    pub resumed_from: Option<u64>,
}

impl PretrainSummary {
    /// The stage metrics `binarylm` records (headline `val_loss`).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::from([
            ("val_loss".to_string(), self.val_loss),
            ("val_ppl".to_string(), self.val_ppl),
            ("train_loss".to_string(), self.train_loss),
            ("tokens_seen".to_string(), self.tokens_seen as f64),
            ("tokens_per_s".to_string(), self.tokens_per_s),
            ("params".to_string(), self.params as f64),
            ("steps".to_string(), self.steps as f64),
        ]);
        if let Some(mfu) = self.mfu {
            m.insert("mfu".to_string(), mfu);
        }
        if let Some(u) = self.unigram_entropy {
            m.insert("unigram_entropy".to_string(), u);
        }
        m
    }
}
