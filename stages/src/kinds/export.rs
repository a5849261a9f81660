//! `binarylm show <export stage>`: what the exported files are and how to load them (the
//! params and the run's metrics are shown above this by `show` itself).

use std::fmt::Write;
use std::path::Path;

/// The GGUF export's one file (`stages_torch::export::gguf::GGUF_FILE`).
const GGUF_FILE: &str = "model.gguf";

/// The report for the export artifact in `dir`.
pub fn render(dir: &Path) -> Result<String, String> {
    let gguf = dir.join(GGUF_FILE);
    if gguf.is_file() {
        return Ok(format!(
            "  format      GGUF v3 for llama.cpp: weights and tokenizer in {GGUF_FILE}\n  load        llama-cli -m {}\n",
            gguf.display()
        ));
    }
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let c: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let class = c["architectures"][0].as_str().unwrap_or("?");
    // The two layouts name the same numbers differently.
    let num = |gpt2: &str, llama: &str| c[gpt2].as_u64().or_else(|| c[llama].as_u64()).unwrap_or(0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  format      Hugging Face transformers, {class}: {} layers, {} wide, {} heads, context {}, vocabulary {}",
        num("n_layer", "num_hidden_layers"),
        num("n_embd", "hidden_size"),
        num("n_head", "num_attention_heads"),
        num("n_positions", "max_position_embeddings"),
        num("vocab_size", "vocab_size"),
    );
    let _ = writeln!(
        o,
        "  load        AutoModelForCausalLM.from_pretrained(dir), AutoTokenizer.from_pretrained(dir)"
    );
    Ok(o)
}
