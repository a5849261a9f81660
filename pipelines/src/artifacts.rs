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

/// A training stage's metrics log (in its work directory while it runs) and its curve (in the
/// artifact, without the timings).
pub const METRICS_FILE: &str = "metrics.jsonl";

/// One line of `metrics.jsonl`. Training lines carry `loss`…`tokens_per_s`; validation
/// results (`val_loss`, `val_ppl`) ride on the line of the step they were measured at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Optimizer steps completed.
    pub step: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// Model FLOPs utilisation against the configured peak, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_ppl: Option<f64>,
    // An artifact's curve keeps no timings (its lines have no `elapsed_s`), and reads back
    // with the same struct.
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub elapsed_s: f64,
    /// A kind's own measurements (DPO's reward margin, preference accuracy, …), flattened
    /// into the line; none for pretrain.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

/// The lines of a `metrics.jsonl` text that parse (a line being written is skipped).
pub fn parse_metrics_lines(text: &str) -> Vec<MetricsLine> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// An eval artifact's results file.
pub const EVAL_RESULTS_FILE: &str = "results.json";

/// `results.json` of an eval artifact: every model's score on every task. Only what the
/// inputs determine (no timings; those go to the run record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalResults {
    /// `1`.
    pub format: u32,
    /// Model stages in the order the manifest lists them.
    pub models: Vec<String>,
    pub tasks: Vec<EvalTaskResult>,
}

/// One task's scores, one entry per model (in `EvalResults::models` order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalTaskResult {
    pub name: String,
    /// `perplexity` or `choice`.
    pub task: String,
    /// Items scored (documents or questions).
    pub items: usize,
    /// Solved examples before each question (`choice`).
    #[serde(default)]
    pub shots: usize,
    pub scores: Vec<ModelScores>,
}

/// A model's metrics on one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelScores {
    pub model: String,
    /// Metric name (`acc`, `acc_norm`, `bits_per_byte`, …) → value and bootstrap standard
    /// error.
    pub metrics: BTreeMap<String, Score>,
}

/// A value with its bootstrap standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Score {
    pub value: f64,
    pub stderr: f64,
}

impl EvalResults {
    /// The results as a Markdown table: a row per task and metric, a column per model, each
    /// cell `value ± stderr`.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let r = self;
        let mut s = String::new();
        let _ = write!(s, "| task | metric |");
        for m in &r.models {
            let _ = write!(s, " {m} |");
        }
        s.push('\n');
        s.push_str("|---|---|");
        s.push_str(&"---:|".repeat(r.models.len()));
        s.push('\n');
        for t in &r.tasks {
            let metrics: Vec<&String> = t
                .scores
                .first()
                .map(|s| s.metrics.keys().collect())
                .unwrap_or_default();
            for metric in metrics {
                let shots = if t.shots > 0 {
                    format!(" ({}-shot)", t.shots)
                } else {
                    String::new()
                };
                let _ = write!(s, "| {} (n={}){shots} | {metric} |", t.name, t.items);
                for score in &t.scores {
                    match score.metrics.get(metric) {
                        Some(v) => {
                            let _ = write!(s, " {:.4} ± {:.4} |", v.value, v.stderr);
                        }
                        None => s.push_str(" – |"),
                    }
                }
                s.push('\n');
            }
        }
        s
    }

    /// The registry's flat metrics: `<model>/<task>/<metric>` (and `…_stderr`).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for t in &self.tasks {
            for s in &t.scores {
                for (name, score) in &s.metrics {
                    let key = format!("{}/{}/{name}", s.model, t.name);
                    out.insert(format!("{key}_stderr"), score.stderr);
                    out.insert(key, score.value);
                }
            }
        }
        out
    }
}

/// An sft artifact's summary file.
pub const SFT_SUMMARY_FILE: &str = "summary.json";

/// `summary.json` of an sft artifact: what the fine-tuning produced, determined by the
/// stage's inputs alone (the run's timings go to [`SftRun`], as for pretrain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftSummary {
    pub steps: u64,
    /// Parameters of the model.
    pub params: usize,
    /// Parameters the optimizer updated: all of them, or the LoRA adapters'.
    pub trainable_params: usize,
    /// `full` or `lora`.
    pub method: String,
    /// Training conversations used, and those left out for not fitting in the context.
    pub examples: usize,
    pub examples_too_long: usize,
    /// Packed rows of `block_size` tokens the examples filled.
    pub rows: usize,
    /// Assistant tokens (the ones the loss counts) seen by the optimizer.
    pub target_tokens_seen: u64,
    pub train_loss: f64,
    /// Mean loss per assistant token of the `val` split.
    pub val_loss: f64,
    /// The same for the model before fine-tuning.
    pub val_loss_before: f64,
    /// Greedy answers equal to the reference, over `eval_examples` val prompts (None when
    /// `eval.examples` is 0), before and after fine-tuning.
    pub exact_match: Option<f64>,
    pub exact_match_before: Option<f64>,
    pub eval_examples: usize,
    /// `bf16` or `fp32`: the dtype of the matrix products.
    pub precision: String,
}

/// What one run of an sft stage measured: the registry's record, never the artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct SftRun {
    /// Tokens the loss scored (the assistant's) per second of training.
    pub scored_tokens_per_s: f64,
    pub elapsed_s: f64,
    pub resumed_from: Option<u64>,
    /// Bytes of the trainable parameters, their gradients and the AdamW moments.
    pub train_state_bytes: u64,
}

impl SftSummary {
    /// The stage metrics `binarylm` records (headline `val_loss`).
    pub fn metrics(&self, run: &SftRun) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::from([
            ("val_loss".to_string(), self.val_loss),
            ("val_loss_before".to_string(), self.val_loss_before),
            ("train_loss".to_string(), self.train_loss),
            ("steps".to_string(), self.steps as f64),
            ("params".to_string(), self.params as f64),
            ("trainable_params".to_string(), self.trainable_params as f64),
            ("examples".to_string(), self.examples as f64),
            (
                "examples_too_long".to_string(),
                self.examples_too_long as f64,
            ),
            ("rows".to_string(), self.rows as f64),
            (
                "target_tokens_seen".to_string(),
                self.target_tokens_seen as f64,
            ),
            ("scored_tokens_per_s".to_string(), run.scored_tokens_per_s),
            ("elapsed_s".to_string(), run.elapsed_s),
            (
                "train_state_bytes".to_string(),
                run.train_state_bytes as f64,
            ),
        ]);
        if let Some(a) = self.exact_match {
            m.insert("exact_match".to_string(), a);
        }
        if let Some(a) = self.exact_match_before {
            m.insert("exact_match_before".to_string(), a);
        }
        if let Some(step) = run.resumed_from {
            m.insert("resumed_from_step".to_string(), step as f64);
        }
        m
    }
}

/// A dpo artifact's summary file.
pub const DPO_SUMMARY_FILE: &str = "summary.json";

/// `summary.json` of a dpo artifact: held-out preference measures before (the reference, which
/// is the starting policy) and after, determined by the stage's inputs alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoSummary {
    pub steps: u64,
    pub params: usize,
    pub trainable_params: usize,
    /// `full` or `lora`.
    pub method: String,
    /// `sigmoid` or `ipo`.
    pub loss: String,
    pub beta: f64,
    /// Training pairs used, and those left out for not fitting in the context.
    pub pairs: usize,
    pub pairs_too_long: usize,
    pub train_loss: f64,
    /// The preference loss on the `val` pairs (at the start it is log 2 for `sigmoid`).
    pub val_loss: f64,
    /// Share of `val` pairs whose implicit reward β·(log π − log π_ref) is higher for the
    /// chosen answer, and the mean reward margin (chosen − rejected).
    pub val_preference_accuracy: f64,
    pub val_reward_margin: f64,
    /// The same accuracy by log-likelihood alone, before and after: log π(chosen) > log
    /// π(rejected).
    pub val_likelihood_accuracy_before: f64,
    pub val_likelihood_accuracy: f64,
    /// Shares of greedy answers to `eval_examples` val prompts equal to the chosen answer and
    /// to the rejected one, before and after.
    pub chosen_match_before: Option<f64>,
    pub chosen_match: Option<f64>,
    pub rejected_match_before: Option<f64>,
    pub rejected_match: Option<f64>,
    pub eval_examples: usize,
    pub precision: String,
}

impl DpoSummary {
    /// The stage metrics `binarylm` records (headline `val_preference_accuracy`).
    pub fn metrics(&self, run: &SftRun) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::from([
            ("val_loss".to_string(), self.val_loss),
            (
                "val_preference_accuracy".to_string(),
                self.val_preference_accuracy,
            ),
            ("val_reward_margin".to_string(), self.val_reward_margin),
            (
                "val_likelihood_accuracy".to_string(),
                self.val_likelihood_accuracy,
            ),
            (
                "val_likelihood_accuracy_before".to_string(),
                self.val_likelihood_accuracy_before,
            ),
            ("train_loss".to_string(), self.train_loss),
            ("steps".to_string(), self.steps as f64),
            ("params".to_string(), self.params as f64),
            ("trainable_params".to_string(), self.trainable_params as f64),
            ("pairs".to_string(), self.pairs as f64),
            ("pairs_too_long".to_string(), self.pairs_too_long as f64),
            ("beta".to_string(), self.beta),
            ("scored_tokens_per_s".to_string(), run.scored_tokens_per_s),
            ("elapsed_s".to_string(), run.elapsed_s),
            (
                "train_state_bytes".to_string(),
                run.train_state_bytes as f64,
            ),
        ]);
        for (k, v) in [
            ("chosen_match", self.chosen_match),
            ("chosen_match_before", self.chosen_match_before),
            ("rejected_match", self.rejected_match),
            ("rejected_match_before", self.rejected_match_before),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        }
        if let Some(step) = run.resumed_from {
            m.insert("resumed_from_step".to_string(), step as f64);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_markdown_has_a_column_per_model_and_a_row_per_metric() {
        let scores = |model: &str, acc: f64| ModelScores {
            model: model.into(),
            metrics: BTreeMap::from([
                (
                    "acc".to_string(),
                    Score {
                        value: acc,
                        stderr: 0.05,
                    },
                ),
                (
                    "acc_norm".to_string(),
                    Score {
                        value: acc,
                        stderr: 0.05,
                    },
                ),
            ]),
        };
        let r = EvalResults {
            format: 1,
            models: vec!["base".into(), "sft".into()],
            tasks: vec![EvalTaskResult {
                name: "stories".into(),
                task: "choice".into(),
                items: 40,
                shots: 2,
                scores: vec![scores("base", 0.5), scores("sft", 0.825)],
            }],
        };
        let md = r.markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "| task | metric | base | sft |");
        assert_eq!(
            lines[2],
            "| stories (n=40) (2-shot) | acc | 0.5000 ± 0.0500 | 0.8250 ± 0.0500 |"
        );
        assert_eq!(lines.len(), 4);
        assert_eq!(r.metrics()["sft/stories/acc"], 0.825);
        assert_eq!(r.metrics()["sft/stories/acc_stderr"], 0.05);
    }
}

/// One line of the training curve a pretrain, sft or dpo artifact holds ([`METRICS_FILE`]): the
/// losses and optimizer state at a step, without the run's
/// timings (tokens/s, MFU, wall time), which would make two runs of the same stage differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Optimizer steps completed.
    pub step: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_ppl: Option<f64>,
    /// Tokens trained on so far.
    pub tokens: u64,
    /// A kind's own measurements (DPO's reward margin, preference accuracy, …).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

/// An artifact's curve from the text of its [`METRICS_FILE`]. A line that is not a curve point
/// is an error naming its line (an artifact's file is complete, unlike a running stage's log).
pub fn parse_curve(text: &str) -> Result<Vec<CurvePoint>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Reads an artifact's curve ([`parse_curve`]).
pub fn read_curve(path: &std::path::Path) -> std::io::Result<Vec<CurvePoint>> {
    let text = std::fs::read_to_string(path)?;
    parse_curve(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}
