//! The model directory a fine-tuning stage (`sft`, `dpo`) writes: weights (merged, with LoRA),
//! config, tokenizer with the chat template for Hugging Face tooling, the adapters and their
//! description, and the training curve without timings.

use std::path::Path;

use pipelines::LoraParams;
use serve::chat::{ChatTemplate, END_MARKER};

use crate::model::{Gpt, Lora, ModelConfig, ModelError, CONFIG_FILE, WEIGHTS_FILE};
use crate::server::engine::TokenizerCodec;
use crate::train::finetune::METRICS_FILE;
use crate::train::metrics::{self, MetricsLine};
use crate::train::plot;

pub use crate::model::TOKENIZER_FILE;
pub const PLOT_FILE: &str = "loss.svg";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
pub const ADAPTERS_FILE: &str = "adapters.safetensors";
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";

/// `tokenizer_config.json`: the chat template in Jinja (`chat_template`, what
/// `transformers`' `apply_chat_template` renders), the context length, and the
/// end-of-sequence token: `<|end|>` for a chat model ([`chat_eos`]), since a chat turn ends
/// there. The template is the server's ([`ChatTemplate::jinja`]), so the model is prompted the
/// same way wherever it runs. The `export` stage writes the same file.
pub fn write_tokenizer_config(
    dir: &Path,
    template: &ChatTemplate,
    eos_token: Option<&str>,
    block_size: usize,
) -> std::io::Result<()> {
    let mut config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": template.jinja(),
        "model_max_length": block_size,
        "clean_up_tokenization_spaces": false,
    });
    if let Some(eos) = eos_token {
        config["eos_token"] = eos.into();
    }
    let text = serde_json::to_string_pretty(&config).expect("config serializes");
    std::fs::write(dir.join(TOKENIZER_CONFIG_FILE), text)
}

/// The end-of-sequence token of a chat model: `<|end|>`, when the tokenizer has it.
pub fn chat_eos(codec: &TokenizerCodec) -> Option<&'static str> {
    codec.0.token_to_id(END_MARKER).map(|_| END_MARKER)
}

/// `adapter_config.json`: what `adapters.safetensors` holds and how it was merged.
pub fn write_adapter_config(
    dir: &Path,
    lora: &LoraParams,
    token_ids: &[i64],
    base_stage: &str,
) -> std::io::Result<()> {
    let targets: Vec<&str> = lora.targets.iter().map(|t| t.name()).collect();
    let mut config = serde_json::json!({
        "format": 1,
        "method": "lora",
        "base_model_stage": base_stage,
        "r": lora.r,
        "alpha": lora.alpha,
        "scale": lora.alpha / lora.r as f64,
        "dropout": lora.dropout,
        "targets": targets,
        "trainable_token_ids": token_ids,
        "merged_into": "model.safetensors",
        "layout": "W' = W + scale * B @ A; A is [r, in], B is [rows, r]; q/k/v adapters cover their rows of attn.qkv; tok_emb.weight[trainable_token_ids[i]] = tok_emb.rows[i]",
    });
    // Only when set, so that the artifacts of adapters alone stay as they were.
    if !lora.also_train.is_empty() {
        let also: Vec<&str> = lora.also_train.iter().map(|t| t.name()).collect();
        config["also_train"] = serde_json::json!(also);
        config["layout"] = serde_json::json!(format!(
            "{}; full.<name> is the base weight <name> trained in full (its value in model.safetensors)",
            config["layout"].as_str().expect("a string")
        ));
    }
    let text = serde_json::to_string_pretty(&config).expect("config serializes");
    std::fs::write(dir.join(ADAPTER_CONFIG_FILE), text)
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("drawing the loss curve: {0}")]
    Plot(String),
}

/// Where the files come from and go.
pub struct ModelFiles<'a> {
    pub out: &'a Path,
    pub work_dir: &'a Path,
    /// The input model's artifact (its `tokenizer.json` is copied).
    pub model_dir: &'a Path,
    pub base_stage: &'a str,
    pub config: &'a ModelConfig,
    pub template: &'a ChatTemplate,
    pub codec: &'a TokenizerCodec,
}

/// What [`write_model`] wrote.
pub struct Written {
    /// `full` or `lora`.
    pub method: &'static str,
    /// The work directory's metrics log.
    pub curve: Vec<MetricsLine>,
}

/// Writes the artifact. With `lora`, saves the adapters, then merges them into `model`, so the
/// model afterwards is the one `model.safetensors` holds.
pub fn write_model(
    f: &ModelFiles,
    model: &mut Gpt,
    lora: Option<Lora>,
) -> Result<Written, WriteError> {
    let io = |context: String| move |source: std::io::Error| WriteError::Io { context, source };
    let out = f.out;
    std::fs::create_dir_all(out).map_err(io(format!("creating {}", out.display())))?;
    let method = match lora {
        Some(lora) => {
            lora.save(&out.join(ADAPTERS_FILE))?;
            write_adapter_config(out, lora.params(), lora.token_ids(), f.base_stage)
                .map_err(io(format!("writing {ADAPTER_CONFIG_FILE}")))?;
            lora.merge(model);
            "lora"
        }
        None => "full",
    };
    model.save(&out.join(WEIGHTS_FILE))?;
    let cfg_text = serde_json::to_string_pretty(f.config).expect("config serializes");
    std::fs::write(out.join(CONFIG_FILE), cfg_text)
        .map_err(io(format!("writing {CONFIG_FILE}")))?;
    std::fs::copy(f.model_dir.join(TOKENIZER_FILE), out.join(TOKENIZER_FILE))
        .map_err(io(format!("copying {TOKENIZER_FILE}")))?;
    write_tokenizer_config(out, f.template, chat_eos(f.codec), f.config.block_size)
        .map_err(io(format!("writing {TOKENIZER_CONFIG_FILE}")))?;
    // The work directory's log also holds throughput and wall time; the artifact's curve keeps
    // only what the inputs determine.
    let curve = metrics::read(&f.work_dir.join(METRICS_FILE))
        .map_err(io(format!("reading {METRICS_FILE}")))?;
    metrics::write_curve(&curve, &out.join(METRICS_FILE))
        .map_err(io(format!("writing {METRICS_FILE}")))?;
    plot::loss_curve(&curve, &out.join(PLOT_FILE)).map_err(WriteError::Plot)?;
    Ok(Written { method, curve })
}
