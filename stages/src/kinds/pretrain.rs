//! `binarylm show <pretrain stage>`: the training outcome from the artifact's `summary.json`
//! (written by `binarylm-torch`, read with the same struct), in words rather than metric names.
//! How fast that run was (tokens/s, MFU, device) is the run record's, shown among the metrics.

use std::fmt::Write;
use std::path::Path;

use pipelines::artifacts::{PretrainSummary, PRETRAIN_SUMMARY_FILE};

/// The report for the pretrain artifact in `dir`.
pub fn render(dir: &Path) -> Result<String, String> {
    let path = dir.join(PRETRAIN_SUMMARY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s: PretrainSummary =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut o = String::new();
    let baseline = s
        .unigram_entropy
        .map(|u| format!(" (unigram baseline {u:.4})"))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "  val loss   {:.4}, perplexity {:.2}{baseline}",
        s.val_loss, s.val_ppl
    );
    let _ = writeln!(
        o,
        "  trained    {} steps, {} tokens, {:.2}M parameters, {} matrix products",
        s.steps,
        s.tokens_seen,
        s.params as f64 / 1e6,
        s.precision
    );
    Ok(o)
}
