//! The `export` stage as `binarylm-torch run-stage` runs it: a model artifact rewritten in the
//! layout another tool loads on its own (docs/export.md).
//!
//! `format: hf` writes a Hugging Face directory: `config.json` (`GPT2LMHeadModel` or
//! `LlamaForCausalLM`, [`hf::config`]), `model.safetensors` (fp32, `{"format": "pt"}`
//! metadata, [`hf::tensors`]), `tokenizer.json` (the model's tokenizer in the `tokenizers`
//! JSON the tokenizer crate writes), `tokenizer_config.json` (the server's chat template, as
//! `sft` writes it) and `generation_config.json`. `format: gguf` writes `model.gguf`
//! ([`gguf`]). A quantized model is exported dequantized: its integer weights times their
//! scales, in f32 (and from there rounded again for a quantized GGUF).

pub mod gguf;
pub mod hf;

use std::collections::BTreeMap;
use std::path::Path;

use pipelines::{ExportArchitecture, ExportFormat, ExportParams, TorchJob};
use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;
use serve::chat::ChatTemplate;
use tch::{Device, Tensor};
use tokenizer::{Tokenizer, BOS_NAMES, EOS_NAMES};

use crate::device;
use crate::model::quantized::is_quantized;
use crate::model::{load_artifact, ModelConfig, ModelError, TOKENIZER_FILE, WEIGHTS_FILE};
use crate::server::engine::TokenizerCodec;
use crate::sft::artifact::{chat_eos, write_tokenizer_config, TOKENIZER_CONFIG_FILE};
use crate::train::{named_weights, Observer};

/// `config.json`: the same name in both layouts.
pub use crate::model::CONFIG_FILE;
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    MissingInput(#[from] pipelines::MissingInput),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot export `{stage}`: {reason}\nhint: export a GPT-2-style or Llama-style model (docs/export.md)")]
    Refused { stage: String, reason: String },
    #[error("the model has no weight `{0}`; is its artifact complete?")]
    MissingWeight(String),
    #[error("reading the model's {TOKENIZER_FILE}: {0}")]
    Tokenizer(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {WEIGHTS_FILE}: {0}")]
    Safetensors(String),
    #[error("cannot export as GGUF: {what}")]
    Gguf { what: String },
}

/// A finished export: the run's metrics.
pub struct Exported {
    pub metrics: BTreeMap<String, f64>,
    pub device: String,
}

/// Runs an export job, reporting through `obs`.
pub fn run(
    job: &TorchJob,
    params: &ExportParams,
    obs: &dyn Observer,
) -> Result<Exported, ExportError> {
    device::set_threads(job.threads);
    let dir = job.input(&params.model)?.to_path_buf();
    let source = Source::load(&dir, params, obs)?;
    std::fs::create_dir_all(&job.out_dir).map_err(|e| ExportError::Io {
        context: format!("creating {}", job.out_dir.display()),
        source: e,
    })?;
    let mut metrics = match params.format {
        ExportFormat::Hf => write_hf(&source, &job.out_dir, obs)?,
        ExportFormat::Gguf => write_gguf(&source, params, &job.out_dir, obs)?,
    };
    metrics.insert("parameters".into(), source.model.num_params() as f64);
    metrics.insert(
        "dequantized".into(),
        f64::from(u8::from(source.dequantized)),
    );
    Ok(Exported {
        metrics,
        device: "cpu".to_string(),
    })
}

/// The model being exported, with what every format needs from its artifact.
pub struct Source {
    pub stage: String,
    pub model: crate::model::Gpt,
    pub cfg: ModelConfig,
    pub arch: ExportArchitecture,
    pub tok: Tokenizer,
    /// A fine-tuned model: its artifact carries a chat template (`tokenizer_config.json`).
    pub chat: bool,
    /// The source was a quantized model, dequantized on load.
    pub dequantized: bool,
}

impl Source {
    /// Loads the model artifact in `dir` and checks that `params.format` can express it.
    pub fn load(
        dir: &Path,
        params: &ExportParams,
        obs: &dyn Observer,
    ) -> Result<Source, ExportError> {
        let (model, cfg) = load_artifact(dir, Device::Cpu)?;
        // The manifest's load-time check covers models whose `pretrain` stage it can see; this
        // one covers every model (a `command` stage's, a hand-written job).
        let arch = ExportArchitecture::of(cfg.positions, cfg.norm, cfg.mlp, params.format)
            .map_err(|reason| ExportError::Refused {
                stage: params.model.clone(),
                reason,
            })?;
        let dequantized = is_quantized(dir);
        if dequantized {
            obs.log(&format!(
                "`{}` is quantized: its weights are exported dequantized (integer × scale, as f32)",
                params.model
            ));
        }
        let tok = Tokenizer::from_file(dir.join(TOKENIZER_FILE))
            .map_err(|e| ExportError::Tokenizer(e.to_string()))?;
        Ok(Source {
            stage: params.model.clone(),
            model,
            cfg,
            arch,
            tok,
            chat: dir.join(TOKENIZER_CONFIG_FILE).is_file(),
            dequantized,
        })
    }

    fn weights(&self) -> Weights {
        Weights(named_weights(&self.model).into_iter().collect())
    }
}

/// Writes the Hugging Face directory of `s` into `out`.
pub fn write_hf(
    s: &Source,
    out: &Path,
    obs: &dyn Observer,
) -> Result<BTreeMap<String, f64>, ExportError> {
    let io = |context: String| move |source: std::io::Error| ExportError::Io { context, source };
    obs.phase("tokenizer");
    s.tok
        .save(out.join(TOKENIZER_FILE))
        .map_err(|e| ExportError::Tokenizer(e.to_string()))?;
    let ids = hf::SpecialIds {
        bos: s.tok.find_special(BOS_NAMES).map(|(_, id)| id),
        eos: s.tok.find_special(EOS_NAMES).map(|(_, id)| id),
    };
    let eos_name = s.tok.find_special(EOS_NAMES).map(|(name, _)| name);
    let codec = TokenizerCodec(s.tok.clone());
    let template = ChatTemplate::for_codec(&codec);
    // A fine-tuned model ends a turn at `<|end|>`; a base model ends a document at its
    // end-of-document token.
    let eos_token = if s.chat {
        chat_eos(&codec).or(eos_name)
    } else {
        eos_name
    };
    write_tokenizer_config(out, &template, eos_token, s.cfg.block_size)
        .map_err(io(format!("writing {TOKENIZER_CONFIG_FILE}")))?;

    obs.phase("config");
    write_json(out, CONFIG_FILE, &hf::config(&s.cfg, s.arch, &ids))?;
    write_json(
        out,
        GENERATION_CONFIG_FILE,
        &generation_config(&s.cfg, &codec, &ids, s.chat),
    )?;

    obs.phase("weights");
    let tensors = hf::tensors(&s.cfg, s.arch, &s.weights())?;
    let weights = out.join(WEIGHTS_FILE);
    write_safetensors(&tensors, &weights)?;
    let size = std::fs::metadata(&weights)
        .map_err(io(format!("reading {WEIGHTS_FILE}")))?
        .len();
    Ok(BTreeMap::from([("weights_bytes".to_string(), size as f64)]))
}

/// Writes `model.gguf` of `s` into `out`.
pub fn write_gguf(
    s: &Source,
    params: &ExportParams,
    out: &Path,
    obs: &dyn Observer,
) -> Result<BTreeMap<String, f64>, ExportError> {
    obs.phase("gguf");
    let codec = TokenizerCodec(s.tok.clone());
    let template = ChatTemplate::for_codec(&codec);
    let chat = s.chat.then(|| gguf::Chat {
        template: template.jinja(),
        end_token: template.end_token(),
    });
    let dtype = params.gguf_dtype();
    let file = gguf::build(
        &s.cfg,
        s.arch,
        dtype,
        &s.weights(),
        &s.tok,
        &s.stage,
        chat.as_ref(),
    )?;
    let bytes = file.to_bytes();
    let path = out.join(gguf::GGUF_FILE);
    std::fs::write(&path, &bytes).map_err(|source| ExportError::Io {
        context: format!("writing {}", path.display()),
        source,
    })?;
    let quantized = file.tensors.iter().filter(|t| t.ty.is_quantized()).count();
    Ok(BTreeMap::from([
        ("gguf_bytes".to_string(), bytes.len() as f64),
        ("tensors".to_string(), file.tensors.len() as f64),
        ("quantized_tensors".to_string(), quantized as f64),
    ]))
}

/// Our weights by name (`named_weights` of the model), as the formats' writers look them up.
pub struct Weights(pub BTreeMap<String, Tensor>);

impl Weights {
    /// The weight `name`, detached, in fp32.
    pub fn get(&self, name: &str) -> Option<Tensor> {
        self.0
            .get(name)
            .map(|t| t.detach().to_kind(tch::Kind::Float))
    }

    /// The weight `name`, which the model must have.
    pub fn need(&self, name: &str) -> Result<Tensor, ExportError> {
        self.get(name)
            .ok_or_else(|| ExportError::MissingWeight(name.to_string()))
    }
}

/// `generation_config.json`: which tokens end generation and pad a batch. A chat model stops
/// at `<|end|>` (as `binarylm generate --chat` and the server do) or end-of-document; a base
/// model at end-of-document (as `binarylm generate` does). Sampling settings are left to the
/// caller: `transformers`' default is greedy.
fn generation_config(
    cfg: &ModelConfig,
    codec: &TokenizerCodec,
    ids: &hf::SpecialIds,
    chat: bool,
) -> serde_json::Value {
    let mut eos: Vec<u32> = Vec::new();
    if chat {
        eos.extend(ChatTemplate::for_codec(codec).end_token());
    }
    eos.extend(ids.eos);
    json!({
        "bos_token_id": ids.bos,
        "eos_token_id": match eos.as_slice() {
            [] => serde_json::Value::Null,
            [one] => json!(one),
            many => json!(many),
        },
        "pad_token_id": ids.eos,
        "max_length": cfg.block_size,
    })
}

fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> Result<(), ExportError> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(dir.join(name), text).map_err(|source| ExportError::Io {
        context: format!("writing {name}"),
        source,
    })
}

/// fp32 tensors as safetensors with the `{"format": "pt"}` metadata `transformers` checks for.
fn write_safetensors(tensors: &[(String, Tensor)], path: &Path) -> Result<(), ExportError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let shape = t.size().iter().map(|&d| d as usize).collect();
            let mut data = vec![0u8; t.numel() * 4];
            t.copy_data_u8(&mut data, t.numel());
            (name.clone(), shape, data)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (name.as_str(), v))
                .map_err(|e| ExportError::Safetensors(format!("{name}: {e:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    safetensors::tensor::serialize_to_file(views, &metadata, path)
        .map_err(|e| ExportError::Safetensors(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use tokenizer::{train_bpe, BpeConfig, Pattern, DEFAULT_SPECIAL_TOKENS};

    use super::*;
    use crate::model::ModelConfig;

    fn tokenizer() -> Tokenizer {
        let config = BpeConfig {
            vocab_size: 300,
            pattern: Pattern::Gpt4,
            min_frequency: 1,
            special_tokens: DEFAULT_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        train_bpe(&["the cat sat on the mat"], &config, &|| false, &|_, _| {}).unwrap()
    }

    /// A base model stops at end-of-document, as `binarylm generate` does; a chat model also
    /// at `<|end|>`, as `generate --chat` and the server do.
    #[test]
    fn generation_stops_where_binarylm_stops() {
        let tok = tokenizer();
        let id = |t: &str| tok.token_to_id(t).unwrap();
        let (eos, end) = (id("<|eos|>"), id("<|end|>"));
        let ids = hf::SpecialIds {
            bos: Some(id("<|bos|>")),
            eos: Some(eos),
        };
        let cfg = ModelConfig::preset(pipelines::ModelPreset::Tiny, tok.vocab_size());
        let codec = TokenizerCodec(tok.clone());
        let base = generation_config(&cfg, &codec, &ids, false);
        assert_eq!(base["eos_token_id"], eos);
        assert_eq!(base["pad_token_id"], eos);
        assert_eq!(base["max_length"], cfg.block_size);
        let chat = generation_config(&cfg, &codec, &ids, true);
        assert_eq!(chat["eos_token_id"], serde_json::json!([end, eos]));
    }
}
