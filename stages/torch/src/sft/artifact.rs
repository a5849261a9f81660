//! The files an sft artifact adds to a model directory: the chat template for Hugging Face
//! tooling, and the LoRA adapters' description.

use std::path::Path;

use pipelines::LoraParams;
use serve::chat::{ChatTemplate, END_MARKER};

use crate::server::engine::TokenizerCodec;

pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
pub const ADAPTERS_FILE: &str = "adapters.safetensors";
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";

/// `tokenizer_config.json`: the chat template in Jinja (`chat_template`, what
/// `transformers`' `apply_chat_template` renders), the context length, and `<|end|>` as the
/// end-of-sequence token, since a chat turn ends there. The template is the server's
/// ([`ChatTemplate::jinja`]), so the model is prompted the same way wherever it runs.
pub fn write_tokenizer_config(
    dir: &Path,
    template: &ChatTemplate,
    codec: &TokenizerCodec,
    block_size: usize,
) -> std::io::Result<()> {
    let mut config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": template.jinja(),
        "model_max_length": block_size,
        "clean_up_tokenization_spaces": false,
    });
    if codec.0.token_to_id(END_MARKER).is_some() {
        config["eos_token"] = END_MARKER.into();
    }
    let text = serde_json::to_string_pretty(&config).expect("config serializes");
    std::fs::write(dir.join(TOKENIZER_CONFIG_FILE), text)
}

/// `adapter_config.json`: what `adapters.safetensors` holds and how it was merged.
pub fn write_adapter_config(
    dir: &Path,
    lora: &LoraParams,
    base_stage: &str,
) -> std::io::Result<()> {
    let targets: Vec<&str> = lora.targets.iter().map(|t| t.name()).collect();
    let config = serde_json::json!({
        "format": 1,
        "method": "lora",
        "base_model_stage": base_stage,
        "r": lora.r,
        "alpha": lora.alpha,
        "scale": lora.alpha / lora.r as f64,
        "dropout": lora.dropout,
        "targets": targets,
        "merged_into": "model.safetensors",
        "layout": "W' = W + scale * B @ A; A is [r, in], B is [rows, r]; q/k/v adapters cover their rows of attn.qkv",
    });
    let text = serde_json::to_string_pretty(&config).expect("config serializes");
    std::fs::write(dir.join(ADAPTER_CONFIG_FILE), text)
}
