//! What both fine-tuning stages (`sft`, `dpo`) start from: the device, the input stages'
//! directories, and the model stage's weights, tokenizer and chat template, checked to belong
//! together, in the precision the `train:` block asks for.

use std::path::Path;

use pipelines::{Precision, TorchJob};
use serve::chat::ChatTemplate;
use serve::engine::Codec;
use tch::{Device, Kind};

use super::{SftError, TOKENIZER_FILE};
use crate::device::{self, DeviceChoice};
use crate::model::{load_artifact, Gpt, ModelConfig};
use crate::server::engine::TokenizerCodec;

/// The stages a fine-tuning job reads and how it runs.
pub struct Inputs<'a> {
    /// The model stage (pretrain or sft).
    pub model: &'a str,
    /// The data stage of conversations or preference pairs.
    pub data: &'a str,
    pub device: &'a str,
    pub precision: Precision,
}

/// A fine-tuning job ready to read its data.
pub struct Start<'a> {
    pub dev: Device,
    pub model_dir: &'a Path,
    pub data_dir: &'a Path,
    pub codec: TokenizerCodec,
    pub template: ChatTemplate,
    pub model: Gpt,
    pub config: ModelConfig,
    /// Matrix products in bf16 (`precision: auto` on a GPU, or `bf16`).
    pub bf16: bool,
}

/// Resolves the device, finds the inputs, loads the model and its tokenizer, and refuses a
/// tokenizer without chat markers or with more ids than the model has.
pub fn start<'a>(job: &'a TorchJob, i: &Inputs) -> Result<Start<'a>, SftError> {
    device::set_threads(job.threads);
    let choice: DeviceChoice = i.device.parse()?;
    let dev = device::resolve(choice)?;
    let model_dir = job.input(i.model)?;
    let data_dir = job.input(i.data)?;
    let codec = TokenizerCodec::load(&model_dir.join(TOKENIZER_FILE)).map_err(|source| {
        SftError::Tokenizer {
            stage: i.model.to_string(),
            source,
        }
    })?;
    let template = ChatTemplate::for_codec(&codec);
    if !template.uses_markers() {
        return Err(SftError::NoMarkers {
            stage: i.model.to_string(),
        });
    }
    let (mut model, config) = load_artifact(model_dir, dev).map_err(|source| SftError::Model {
        stage: i.model.to_string(),
        source,
    })?;
    if codec.vocab_size() > config.vocab_size {
        return Err(SftError::VocabMismatch {
            stage: i.model.to_string(),
            tokenizer: codec.vocab_size(),
            model: config.vocab_size,
        });
    }
    let bf16 = match i.precision {
        Precision::Auto => dev != Device::Cpu,
        Precision::Fp32 => false,
        Precision::Bf16 => true,
    };
    if bf16 {
        model.set_compute_kind(Kind::BFloat16);
    }
    Ok(Start {
        dev,
        model_dir,
        data_dir,
        codec,
        template,
        model,
        config,
        bf16,
    })
}
