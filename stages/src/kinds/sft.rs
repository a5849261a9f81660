//! `binarylm show <sft stage>`: what fine-tuning did, from the artifact's `summary.json`
//! (written by `binarylm-torch`, read with the same struct): held-out loss and greedy
//! exact-match before and after, what was trained, on how much data.

use std::fmt::Write;
use std::path::Path;

use pipelines::artifacts::{SftSummary, SFT_SUMMARY_FILE};

/// The report for the sft artifact in `dir`.
pub fn render(dir: &Path) -> Result<String, String> {
    let path = dir.join(SFT_SUMMARY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s: SftSummary =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  val loss      {:.4} per assistant token (before fine-tuning {:.4})",
        s.val_loss, s.val_loss_before
    );
    if let (Some(after), Some(before)) = (s.exact_match, s.exact_match_before) {
        let _ = writeln!(
            o,
            "  exact match   {:.1}% of {} held-out prompts answered greedily (before {:.1}%)",
            100.0 * after,
            s.eval_examples,
            100.0 * before
        );
    }
    let method = if s.method == "lora" {
        "LoRA adapters and the chat markers' embedding rows (merged into model.safetensors; adapters.safetensors alone)"
    } else {
        "every weight"
    };
    let _ = writeln!(
        o,
        "  trained       {}: {} of {} parameters ({:.2}%), {} matrix products",
        method,
        s.trainable_params,
        s.params,
        100.0 * s.trainable_params as f64 / s.params.max(1) as f64,
        s.precision
    );
    let _ = writeln!(
        o,
        "  data          {} conversations in {} packed rows ({} too long, left out); {} steps, {} assistant tokens",
        s.examples, s.rows, s.examples_too_long, s.steps, s.target_tokens_seen
    );
    Ok(o)
}
