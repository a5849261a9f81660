//! The `pretrain` stage as `binarylm-torch run-stage` runs it: read the tokenizer stage's
//! shards, build the model, train (resuming from the work directory), and write the artifact.
//!
//! Artifact files: `model.safetensors` (weights), `config.json` (the resolved
//! [`ModelConfig`]), `tokenizer.json` (copied from the tokenizer stage, so the model directory is
//! self-contained), `metrics.jsonl`, `loss.svg`, and `summary.json` (final numbers, also sent to
//! `binarylm` as the stage's metrics).

use std::path::Path;

use pipelines::{Precision, PretrainParams, TorchJob};
use tch::{Device, Kind};

use crate::device::{self, DeviceChoice, DeviceError};
use crate::model::{ConfigError, Gpt, ModelConfig, ModelError, CONFIG_FILE, WEIGHTS_FILE};
use crate::train::metrics::{self, H100_H200_BF16_PEAK};
use crate::train::sampler::key;
use crate::train::{self, Observer, ShardDir, TrainError, TrainInput};

pub const SUMMARY_FILE: &str = "summary.json";
pub use pipelines::artifacts::METRICS_FILE;
pub const PLOT_FILE: &str = "loss.svg";
pub use crate::model::TOKENIZER_FILE;

#[derive(Debug, thiserror::Error)]
pub enum PretrainError {
    #[error(transparent)]
    MissingInput(#[from] pipelines::MissingInput),
    #[error("tokenizer stage `{stage}`: {source}")]
    Shards {
        stage: String,
        #[source]
        source: train::tokens::ShardError,
    },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("drawing the loss curve: {0}")]
    Plot(String),
}

use pipelines::artifacts::PretrainRun;
/// `summary.json`, the typed struct `binarylm show` reads back (defined with the artifact
/// formats in `pipelines::artifacts`).
pub use pipelines::artifacts::PretrainSummary as Summary;

/// Runs a pretrain job, reporting through `obs`.
pub fn run(
    job: &TorchJob,
    params: &PretrainParams,
    obs: &dyn Observer,
) -> Result<Trained, PretrainError> {
    device::set_threads(job.threads);
    let choice: DeviceChoice = params.device.parse()?;
    let dev = device::resolve(choice)?;
    let tok_dir = job.input(&params.tokenizer)?;
    let shards = ShardDir::open(tok_dir).map_err(|source| PretrainError::Shards {
        stage: params.tokenizer.clone(),
        source,
    })?;
    let cfg = ModelConfig::resolve(&params.model, shards.meta().vocab_size)?;

    let bf16 = match params.train.precision {
        Precision::Auto => dev != Device::Cpu,
        Precision::Fp32 => false,
        Precision::Bf16 => true,
    };
    let peak = params
        .train
        .peak_tflops
        .map(|t| t * 1e12)
        .or((dev != Device::Cpu).then_some(H100_H200_BF16_PEAK));
    tch::manual_seed(key(&[job.seed, 0]) as i64);
    let mut model = Gpt::new(&cfg, dev)?;
    if bf16 {
        model.set_compute_kind(Kind::BFloat16);
    }
    obs.log(&format!(
        "model: {} parameters ({} layers, {} heads / {} kv, width {}, block {}), vocab {}, on {}{}",
        model.num_params(),
        cfg.n_layer,
        cfg.n_head,
        cfg.n_kv_head,
        cfg.n_embd,
        cfg.block_size,
        cfg.vocab_size,
        device::describe(dev),
        if bf16 { ", bf16 matmuls" } else { "" },
    ));
    std::fs::create_dir_all(&job.work_dir).map_err(|source| PretrainError::Io {
        context: format!("creating {}", job.work_dir.display()),
        source,
    })?;
    let input = TrainInput {
        train: shards.train(),
        val: shards.val(),
        params: &params.train,
        windows: params.windows,
        seed: job.seed,
        work_dir: &job.work_dir,
        peak_flops: peak,
    };
    let result = train::train(&mut model, &input, obs)?;

    let out = &job.out_dir;
    let io = |context: String| move |source: std::io::Error| PretrainError::Io { context, source };
    std::fs::create_dir_all(out).map_err(io(format!("creating {}", out.display())))?;
    model.save(&out.join(WEIGHTS_FILE))?;
    let cfg_text = serde_json::to_string_pretty(&cfg).expect("config serializes");
    std::fs::write(out.join(CONFIG_FILE), cfg_text).map_err(io("writing config.json".into()))?;
    copy(&tok_dir.join(TOKENIZER_FILE), &out.join(TOKENIZER_FILE))?;
    // The work directory's log also holds each window's throughput and wall time; the
    // artifact's curve keeps only what the inputs determine.
    let lines =
        metrics::read(&job.work_dir.join(METRICS_FILE)).map_err(io("reading metrics".into()))?;
    metrics::write_curve(&lines, &out.join(METRICS_FILE))
        .map_err(io(format!("writing {METRICS_FILE}")))?;
    train::plot::loss_curve(&lines, &out.join(PLOT_FILE)).map_err(PretrainError::Plot)?;
    let summary = Summary {
        steps: result.steps,
        params: model.num_params(),
        train_loss: result.train_loss,
        val_loss: result.val_loss,
        val_ppl: result.val_ppl,
        tokens_seen: result.tokens_seen,
        precision: if bf16 { "bf16" } else { "fp32" }.to_string(),
        unigram_entropy: shards
            .meta()
            .splits
            .get("val")
            .map(|s| s.unigram_entropy_nats),
    };
    let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
    std::fs::write(out.join(SUMMARY_FILE), text).map_err(io("writing summary.json".into()))?;
    Ok(Trained {
        summary,
        run: PretrainRun {
            tokens_per_s: result.tokens_per_s,
            mfu: result.mfu,
            elapsed_s: result.elapsed_s,
            resumed_from: result.resumed_from,
        },
        device: device::id(dev),
    })
}

/// A finished pretrain stage: the artifact's summary and what the run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    pub summary: Summary,
    pub run: PretrainRun,
    /// The device it ran on (`cpu`, `cuda:0`).
    pub device: String,
}

fn copy(from: &Path, to: &Path) -> Result<(), PretrainError> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|source| PretrainError::Io {
            context: format!("copying {} to {}", from.display(), to.display()),
            source,
        })
}
