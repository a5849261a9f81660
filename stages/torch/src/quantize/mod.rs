//! The `quantize` stage as `binarylm-torch run-stage` runs it: round a model's linear weights
//! to int8 or int4 (`crate::model::quantized` has the arithmetic and the file format), write a
//! quantized artifact beside the model's config and tokenizer, and measure what it cost —
//! bits per byte of the source and the quantized model on a data stage's held-out documents.
//! Only the rounding is in the artifact; the measurements are the run's metrics.

use std::path::Path;

use pipelines::{QuantScheme, QuantizeParams, TorchJob};
use tch::{Device, Tensor};
use tokenizer::{Tokenizer, EOS_NAMES};

use crate::device::{self, DeviceChoice, DeviceError};
use crate::eval;
use crate::model::quantized::{self, QuantInfo, QUANT_INFO_FILE, QUANT_WEIGHTS_FILE};
use crate::model::{load_artifact, Gpt, ModelError, CONFIG_FILE, WEIGHTS_FILE};
use crate::train::{named_weights, Observer};

use crate::model::TOKENIZER_FILE;
use crate::sft::artifact::TOKENIZER_CONFIG_FILE;
/// Sequences per forward pass of the quality check.
const BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error(transparent)]
    MissingInput(#[from] pipelines::MissingInput),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("`{name}` has {width} inputs, not a multiple of group_size {group}\nhint: use a group_size that divides every layer's input width (32 divides the most)")]
    Group {
        name: String,
        width: i64,
        group: usize,
    },
    #[error("{context}: {source}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("measuring bits per byte on `{stage}`: {message}")]
    Quality { stage: String, message: String },
}

/// A finished quantize stage: the run's metrics and the device the check ran on.
pub struct Quantized {
    pub metrics: std::collections::BTreeMap<String, f64>,
    pub device: String,
}

/// Whether the weight `name` (2-D) is rounded: every linear layer, and the embeddings and
/// output head only when asked.
fn selected(name: &str, embeddings: bool) -> bool {
    let embedding =
        name.starts_with("tok_emb") || name.starts_with("pos_emb") || name.starts_with("lm_head");
    name.ends_with(".weight") && (embeddings || !embedding)
}

/// Runs a quantize job, reporting through `obs`.
pub fn run(
    job: &TorchJob,
    params: &QuantizeParams,
    obs: &dyn Observer,
) -> Result<Quantized, QuantizeError> {
    device::set_threads(job.threads);
    let source_dir = job.input(&params.model)?.to_path_buf();
    let (source, _) = load_artifact(&source_dir, Device::Cpu)?;
    let (scheme, group) = match params.scheme {
        QuantScheme::Int8 => ("int8", None),
        QuantScheme::Int4 => ("int4", Some(params.group())),
    };

    obs.phase("rounding");
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    let mut names = Vec::new();
    let (mut n_weights, mut n_rounded) = (0usize, 0usize);
    for (name, w) in named_weights(&source) {
        n_weights += w.numel();
        if w.dim() != 2 || !selected(&name, params.embeddings) {
            tensors.push((name, w.detach().copy()));
            continue;
        }
        let q = match group {
            None => quantized::quantize_int8(&w),
            Some(g) => {
                let width = w.size()[1];
                if width % g as i64 != 0 {
                    return Err(QuantizeError::Group {
                        name,
                        width,
                        group: g,
                    });
                }
                quantized::quantize_int4(&w, g)
            }
        };
        n_rounded += w.numel();
        tensors.push((format!("{name}.q"), q.q));
        tensors.push((format!("{name}.scale"), q.scale));
        names.push(name);
    }
    names.sort();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));

    let out = &job.out_dir;
    let io = |context: String| move |source: std::io::Error| QuantizeError::Io { context, source };
    std::fs::create_dir_all(out).map_err(io(format!("creating {}", out.display())))?;
    let weights = out.join(QUANT_WEIGHTS_FILE);
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&refs, &weights).map_err(|source| QuantizeError::Torch {
        context: format!("writing {}", weights.display()),
        source,
    })?;
    let info = QuantInfo {
        format: 1,
        scheme: scheme.to_string(),
        group_size: group,
        quantized: names,
    };
    let text = serde_json::to_string_pretty(&info).expect("quantization info serializes");
    std::fs::write(out.join(QUANT_INFO_FILE), text)
        .map_err(io(format!("writing {QUANT_INFO_FILE}")))?;
    // A fine-tuned source's chat template (tokenizer_config.json) comes along, so serving,
    // eval and export of the quantized model format conversations as the source did.
    for file in [CONFIG_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE] {
        if file == TOKENIZER_CONFIG_FILE && !source_dir.join(file).is_file() {
            continue;
        }
        std::fs::copy(source_dir.join(file), out.join(file)).map_err(io(format!(
            "copying {} from {}",
            file,
            source_dir.display()
        )))?;
    }

    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len() as f64).unwrap_or(0.0);
    let mut metrics = std::collections::BTreeMap::from([
        ("size_bytes".to_string(), size(&weights)),
        (
            "source_size_bytes".to_string(),
            size(&source_dir.join(WEIGHTS_FILE)),
        ),
        (
            "quantized_fraction".to_string(),
            n_rounded as f64 / n_weights.max(1) as f64,
        ),
    ]);
    metrics.insert(
        "size_ratio".to_string(),
        metrics["size_bytes"] / metrics["source_size_bytes"].max(1.0),
    );
    obs.log(&format!(
        "{scheme}{}: {} of {} weights rounded ({:.1} %); {:.0} → {:.0} bytes ({:.2}×)",
        group
            .map(|g| format!(", groups of {g}"))
            .unwrap_or_default(),
        n_rounded,
        n_weights,
        100.0 * metrics["quantized_fraction"],
        metrics["source_size_bytes"],
        metrics["size_bytes"],
        metrics["size_ratio"],
    ));

    let mut device_name = device::id(Device::Cpu);
    if let Some(stage) = &params.data {
        let wanted: DeviceChoice = params.device.parse()?;
        let dev = device::resolve(wanted)?;
        device_name = device::id(dev);
        let quality = |message: String| QuantizeError::Quality {
            stage: stage.clone(),
            message,
        };
        let data_dir = job.input(stage)?.to_path_buf();
        let mut docs = records::read_split(&records::split_path(&data_dir, "val"))
            .map_err(|e| quality(e.to_string()))?;
        docs.truncate(params.limit);
        let tok =
            Tokenizer::from_file(out.join(TOKENIZER_FILE)).map_err(|e| quality(e.to_string()))?;
        let eos = tok
            .find_special(EOS_NAMES)
            .map(|(_, id)| id)
            .ok_or_else(|| quality("the tokenizer has no end-of-document token".into()))?;
        let all: Vec<usize> = (0..docs.len()).collect();
        let bpb = |model: &Gpt, what: &str| -> Result<(f64, f64), QuantizeError> {
            obs.phase(&format!("bits per byte: {what}"));
            let scores = eval::score_documents(model, &tok, eos, &docs, BATCH, obs)
                .map_err(|e| quality(e.to_string()))?;
            Ok(eval::rates(&scores, &all))
        };
        // The source is already loaded on the CPU (for rounding); elsewhere it is loaded again.
        let elsewhere;
        let source_here = if dev == Device::Cpu {
            &source
        } else {
            elsewhere = load_artifact(&source_dir, dev)?.0;
            &elsewhere
        };
        let (source_nll, source_bpb) = bpb(source_here, "source")?;
        let (nll, bits) = bpb(&load_artifact(out, dev)?.0, "quantized")?;
        obs.log(&format!(
            "bits per byte on {} documents of `{stage}`: {source_bpb:.4} → {bits:.4} ({:+.4})",
            docs.len(),
            bits - source_bpb
        ));
        metrics.insert("bits_per_byte_source".into(), source_bpb);
        metrics.insert("bits_per_byte".into(), bits);
        metrics.insert("bits_per_byte_delta".into(), bits - source_bpb);
        metrics.insert("nll_delta".into(), nll - source_nll);
    }
    Ok(Quantized {
        metrics,
        device: device_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_layers_are_rounded_and_embeddings_only_when_asked() {
        assert!(selected("blocks.0.attn.qkv.weight", false));
        assert!(!selected("blocks.0.attn.qkv.bias", false));
        assert!(!selected("tok_emb.weight", false));
        assert!(!selected("lm_head.weight", false));
        assert!(selected("tok_emb.weight", true));
        assert!(selected("pos_emb.weight", true));
    }
}
