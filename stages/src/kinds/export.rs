//! `binarylm show <export stage>`: what the exported directory is and how to load it, from the
//! files the stage wrote (the Hugging Face `config.json`).

use std::fmt::Write;
use std::path::Path;

/// The report for the export artifact in `dir`.
pub fn render(dir: &Path) -> Result<String, String> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let c: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let class = c["architectures"][0].as_str().unwrap_or("?");
    // The two layouts name the same numbers differently.
    let num = |gpt2: &str, llama: &str| c[gpt2].as_u64().or_else(|| c[llama].as_u64());
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  format      Hugging Face transformers, {class}: {} layers, {} wide, {} heads, context {}, vocabulary {}",
        num("n_layer", "num_hidden_layers").unwrap_or(0),
        num("n_embd", "hidden_size").unwrap_or(0),
        num("n_head", "num_attention_heads").unwrap_or(0),
        num("n_positions", "max_position_embeddings").unwrap_or(0),
        c["vocab_size"].as_u64().unwrap_or(0),
    );
    let _ = writeln!(
        o,
        "  load        AutoModelForCausalLM.from_pretrained(dir), AutoTokenizer.from_pretrained(dir)"
    );
    Ok(o)
}
