//! `binarylm show <dpo stage>`: what preference optimisation did, from the artifact's
//! `summary.json` (written by `binarylm-torch`, read with the same struct).

use std::fmt::Write;
use std::path::Path;

use pipelines::artifacts::{DpoSummary, DPO_SUMMARY_FILE};

/// The report for the dpo artifact in `dir`.
pub fn render(dir: &Path) -> Result<String, String> {
    let path = dir.join(DPO_SUMMARY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s: DpoSummary =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let pct = |x: f64| 100.0 * x;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  preference  {:.1}% of held-out pairs ranked right by the implicit reward, margin {:.3} ({} loss, beta {})",
        pct(s.val_preference_accuracy),
        s.val_reward_margin,
        s.loss,
        s.beta
    );
    let _ = writeln!(
        o,
        "  likelihood  chosen more likely than rejected for {:.1}% of held-out pairs (before {:.1}%)",
        pct(s.val_likelihood_accuracy),
        pct(s.val_likelihood_accuracy_before)
    );
    if let (Some(c), Some(cb), Some(r), Some(rb)) = (
        s.chosen_match,
        s.chosen_match_before,
        s.rejected_match,
        s.rejected_match_before,
    ) {
        let _ = writeln!(
            o,
            "  greedy      {:.1}% answer the chosen (before {:.1}%), {:.1}% the rejected (before {:.1}%), of {} prompts",
            pct(c),
            pct(cb),
            pct(r),
            pct(rb),
            s.eval_examples
        );
    }
    let method = if s.method == "lora" {
        "LoRA adapters and the chat markers' embedding rows (merged into model.safetensors)"
    } else {
        "every weight"
    };
    let _ = writeln!(
        o,
        "  trained     {method}: {} of {} parameters, {} pairs ({} too long), {} steps, {} matrix products",
        s.trainable_params, s.params, s.pairs, s.pairs_too_long, s.steps, s.precision
    );
    Ok(o)
}
