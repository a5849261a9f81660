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
    let _ = writeln!(o, "  budget     {}", budget(s.params, s.tokens_seen));
    Ok(o)
}

/// Training tokens per parameter that Hoffmann et al. (2022, "Chinchilla") found
/// compute-optimal: for a given compute budget, loss is lowest when the model sees about this
/// many tokens per parameter (they counted every parameter, embeddings included).
const CHINCHILLA_TOKENS_PER_PARAM: f64 = 20.0;

/// The run's size against the scaling laws: tokens per parameter beside Chinchilla's ratio, and
/// the training compute `C ≈ 6·N·D` (a forward pass costs about 2 FLOPs per parameter per
/// token, the backward pass twice that). docs/training.md explains both.
fn budget(params: usize, tokens: u64) -> String {
    let n = params as f64;
    let d = tokens as f64;
    let ratio = if n > 0.0 { d / n } else { 0.0 };
    let optimal = n * CHINCHILLA_TOKENS_PER_PARAM;
    let verdict = if ratio < CHINCHILLA_TOKENS_PER_PARAM / 2.0 {
        "fewer than compute-optimal"
    } else if ratio > CHINCHILLA_TOKENS_PER_PARAM * 2.0 {
        "more than compute-optimal (fine when the model must be small)"
    } else {
        "about compute-optimal"
    };
    format!(
        "{ratio:.2} tokens per parameter, {verdict}: Chinchilla's ratio is about {} \
         ({} tokens at this size); compute 6·N·D ≈ {}",
        CHINCHILLA_TOKENS_PER_PARAM,
        si(optimal, ""),
        si(6.0 * n * d, "FLOP")
    )
}

/// `17.4M`, `2.14 TFLOP`: three significant digits and an SI prefix.
fn si(x: f64, unit: &str) -> String {
    const PREFIXES: [(f64, &str); 6] = [
        (1e18, "E"),
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
    ];
    let (scale, prefix) = PREFIXES
        .iter()
        .copied()
        .find(|(scale, _)| x >= *scale)
        .unwrap_or((1.0, ""));
    let v = x / scale;
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let space = if unit.is_empty() { "" } else { " " };
    format!("{v:.digits$}{space}{prefix}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_prefixes_keep_three_digits() {
        assert_eq!(si(17_410_560.0, ""), "17.4M");
        assert_eq!(si(2.139e12, "FLOP"), "2.14 TFLOP");
        assert_eq!(si(950.0, ""), "950");
        assert_eq!(si(124e6, ""), "124M");
    }

    #[test]
    fn budget_places_a_run_against_chinchilla() {
        // The serving benchmark's model: 0.87M parameters, 409,600 tokens.
        let b = budget(870_528, 409_600);
        assert!(
            b.starts_with("0.47 tokens per parameter, fewer than"),
            "{b}"
        );
        assert!(b.contains("17.4M tokens at this size"), "{b}");
        assert!(b.contains("2.14 TFLOP"), "{b}");
        assert!(budget(1_000, 20_000).contains("about compute-optimal"));
        assert!(budget(1_000, 100_000).contains("more than compute-optimal"));
    }
}
