//! `binarylm show` for eval artifacts: the results table, read with the struct the stage wrote.

use std::path::Path;

use pipelines::artifacts::{EvalResults, EVAL_RESULTS_FILE};

/// The Markdown table of `results.json`.
pub fn render(dir: &Path) -> Result<String, String> {
    let path = dir.join(EVAL_RESULTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let results: EvalResults =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!(
        "{}\nchart: {}",
        results.markdown().trim_end(),
        dir.join("results.svg").display()
    ))
}
