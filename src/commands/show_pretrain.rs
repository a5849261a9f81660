//! What `binarylm show` adds for a `pretrain` artifact: the training outcome from its
//! `summary.json` (written by `binarylm-torch`), in words rather than raw metric names.

use std::path::Path;

/// Prints the training summary of the pretrain artifact at `dir`; prints nothing when the
/// summary is missing or unreadable (the generic metrics above still show).
pub fn print_summary(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("summary.json")) else {
        return;
    };
    let Ok(s) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let num = |k: &str| s[k].as_f64();
    if let (Some(loss), Some(ppl)) = (num("val_loss"), num("val_ppl")) {
        let baseline = num("unigram_entropy")
            .map(|u| format!(" (unigram baseline {u:.4})"))
            .unwrap_or_default();
        println!("  val loss   {loss:.4}, perplexity {ppl:.2}{baseline}");
    }
    if let (Some(tokens), Some(steps)) = (num("tokens_seen"), num("steps")) {
        let params = num("params")
            .map(|p| format!(", {:.2}M parameters", p / 1e6))
            .unwrap_or_default();
        println!("  trained    {steps:.0} steps, {tokens:.0} tokens{params}");
    }
    if let Some(tps) = num("tokens_per_s") {
        let mfu = num("mfu")
            .map(|m| format!(", MFU {:.1}%", 100.0 * m))
            .unwrap_or_default();
        let device = s["device"].as_str().unwrap_or("?");
        let precision = s["precision"].as_str().unwrap_or("?");
        println!("  speed      {tps:.0} tokens/s on {device} ({precision}){mfu}");
    }
}
