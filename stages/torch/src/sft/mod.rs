//! The `sft` stage as `binarylm-torch run-stage` runs it: load the model stage's artifact, read
//! and tokenize the data stage's conversations with its tokenizer and chat template, pack them,
//! fine-tune (every weight, or LoRA adapters on a frozen model), and write an ordinary model
//! artifact.
//!
//! Artifact files: `model.safetensors` (with LoRA: the merged weights `W + (α/r)·B·A`),
//! `config.json`, `tokenizer.json` (the model's), `tokenizer_config.json` (the chat template in
//! Jinja, as Hugging Face reads it), `metrics.jsonl` (no timings), `loss.svg`, `summary.json`,
//! and with LoRA `adapters.safetensors` + `adapter_config.json`. docs/finetuning.md explains
//! the method.

pub mod artifact;
pub mod data;
pub mod eval;
pub mod loss;
pub mod pack;
pub mod start;

use pipelines::artifacts::{SftRun, SftSummary, SFT_SUMMARY_FILE};
use pipelines::{SftParams, TorchJob};

use crate::device::{self, DeviceError};
use crate::model::{Lora, ModelError};
use crate::server::engine::LoadError;
use crate::train::sampler::key;
use crate::train::{finetune, Observer, TrainError};

pub use crate::train::finetune::METRICS_FILE;
pub use artifact::{
    ADAPTERS_FILE, ADAPTER_CONFIG_FILE, PLOT_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE,
};

#[derive(Debug, thiserror::Error)]
pub enum SftError {
    #[error(transparent)]
    MissingInput(#[from] pipelines::MissingInput),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("model stage `{stage}`: {source}")]
    Model {
        stage: String,
        #[source]
        source: ModelError,
    },
    #[error("model stage `{stage}`: {source}")]
    Tokenizer {
        stage: String,
        #[source]
        source: LoadError,
    },
    #[error("model stage `{stage}`: its tokenizer has no chat markers (<|system|>, <|user|>, <|assistant|>, <|end|>); train the tokenizer with the default `special_tokens`, which reserve them")]
    NoMarkers { stage: String },
    #[error("model stage `{stage}`: the tokenizer has {tokenizer} ids but the model only {model}; they were not trained together")]
    VocabMismatch {
        stage: String,
        tokenizer: usize,
        model: usize,
    },
    #[error("data stage `{stage}`: {source}")]
    Data {
        stage: String,
        // Boxed: the Parquet reader's errors are large, and every `Result` carries the size of
        // its largest error.
        #[source]
        source: Box<data::DataError>,
    },
    #[error("data stage `{stage}`: none of the {split} conversations fits in the model's context of {block} tokens ({too_long} are longer); use shorter conversations or a model with a larger block_size")]
    NothingFits {
        stage: String,
        split: &'static str,
        block: usize,
        too_long: usize,
    },
    #[error("`train.warmup_steps` ({warmup}) is more than the {steps} steps that `epochs` gives on this data; lower the warmup or train more epochs")]
    WarmupTooLong { warmup: u64, steps: u64 },
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Write(#[from] ModelError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Artifact(#[from] artifact::WriteError),
}

/// A finished sft stage: the artifact's summary and what the run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuned {
    pub summary: SftSummary,
    pub run: SftRun,
    pub device: String,
}

/// The held-out measures of the model before fine-tuning, kept in the work directory so a
/// resumed run reports them without measuring again.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Before {
    val_loss: f64,
    exact_match: Option<f64>,
}

const BEFORE_FILE: &str = "before.json";

/// The fine-tuned model's greedy answer to each evaluated val prompt, beside its reference
/// (one JSON object a line: `prompt`, `reference`, `answer`, `exact`), so a score can be read
/// behind: which questions fail, and how.
pub const ANSWERS_FILE: &str = "answers.jsonl";

/// Runs an sft job, reporting through `obs`.
pub fn run(job: &TorchJob, params: &SftParams, obs: &dyn Observer) -> Result<Tuned, SftError> {
    let start::Start {
        dev,
        model_dir,
        data_dir,
        codec,
        template,
        mut model,
        config: cfg,
        bf16,
    } = start::start(
        job,
        &start::Inputs {
            model: &params.model,
            data: &params.data,
            device: &params.device,
            precision: params.train.precision,
        },
    )?;
    let model_err = |source| SftError::Model {
        stage: params.model.clone(),
        source,
    };
    let data_err = |source| SftError::Data {
        stage: params.data.clone(),
        source: Box::new(source),
    };

    let train_ex = data::read_split(data_dir, "train").map_err(data_err)?;
    let val_ex = data::read_split(data_dir, "val").map_err(data_err)?;
    let train_rows = pack::pack(&data::encode(&train_ex, &template, &codec), cfg.block_size);
    let val_rows = pack::pack(&data::encode(&val_ex, &template, &codec), cfg.block_size);
    for (split, packed) in [("train", &train_rows), ("val", &val_rows)] {
        if packed.rows() == 0 {
            return Err(SftError::NothingFits {
                stage: params.data.clone(),
                split,
                block: cfg.block_size,
                too_long: packed.too_long,
            });
        }
    }
    let tp = steps_for_epochs(&params.train, params.epochs, train_rows.rows())?;
    obs.log(&format!(
        "data: {} train conversations in {} rows of {} tokens ({} left out as too long), {} val; {} steps",
        train_rows.examples,
        train_rows.rows(),
        cfg.block_size,
        train_rows.too_long,
        val_rows.examples,
        tp.steps,
    ));

    std::fs::create_dir_all(&job.work_dir)
        .map_err(io(format!("creating {}", job.work_dir.display())))?;
    let eval_set = &val_ex[..params.eval.examples.min(val_ex.len())];
    let eval_rows = tp.eval_batches * tp.batch_size;
    // The held-out measures, and the greedy answers behind the exact match.
    let measure = |model: &crate::model::Gpt,
                   obs: &dyn Observer|
     -> Result<(Before, Option<eval::Answers>), SftError> {
        let val_loss = eval::val_loss(model, &val_rows, eval_rows, tp.batch_size);
        let answers = if eval_set.is_empty() {
            None
        } else {
            let answers = eval::exact_match(
                model,
                eval_set,
                &template,
                &codec,
                params.eval.max_new_tokens,
            )
            .map_err(model_err)?;
            for (answer, reference) in answers.samples(eval_set, 3) {
                obs.log(&format!("  answered {answer:?}, reference {reference:?}"));
            }
            Some(answers)
        };
        let before = Before {
            val_loss,
            exact_match: answers.as_ref().map(|a| a.accuracy),
        };
        Ok((before, answers))
    };
    let before_path = job.work_dir.join(BEFORE_FILE);
    let before = match std::fs::read_to_string(&before_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Before>(&t).ok())
    {
        Some(b) => b,
        None => {
            let (b, _) = measure(&model, obs)?;
            let text = serde_json::to_string(&b).expect("serializes");
            std::fs::write(&before_path, text)
                .map_err(io(format!("writing {}", before_path.display())))?;
            b
        }
    };
    obs.log(&format!(
        "before fine-tuning: val loss {:.4}{}",
        before.val_loss,
        before
            .exact_match
            .map(|a| format!(", exact match {:.1}%", 100.0 * a))
            .unwrap_or_default()
    ));

    tch::manual_seed(key(&[job.seed, 0]) as i64);
    // LoRA trains the chat markers' embedding rows too (model/lora.rs says why).
    let lora = params
        .lora
        .as_ref()
        .map(|lp| Lora::attach(&mut model, lp, &template.marker_ids()));
    let params_total = model.num_params();
    let trainable_params = match &lora {
        Some(l) => l.num_params(),
        None => params_total,
    };
    obs.log(&format!(
        "{}: {trainable_params} of {params_total} parameters trained, on {}{}",
        if lora.is_some() {
            "LoRA"
        } else {
            "full fine-tuning"
        },
        device::describe(dev),
        if bf16 { ", bf16 matmuls" } else { "" },
    ));
    let outcome = {
        let trainable = match &lora {
            Some(l) => l.var_store(),
            None => model.var_store(),
        };
        let objective = loss::SftObjective {
            model: &model,
            train: &train_rows,
            val: &val_rows,
            eval_rows,
            batch_size: tp.batch_size,
        };
        finetune::run(
            finetune::Loop {
                objective: &objective,
                config: &cfg,
                trainable,
                params: &tp,
                seed: job.seed,
                work_dir: &job.work_dir,
            },
            obs,
        )?
    };

    let written = artifact::write_model(
        &artifact::ModelFiles {
            out: &job.out_dir,
            work_dir: &job.work_dir,
            model_dir,
            base_stage: &params.model,
            config: &cfg,
            template: &template,
            codec: &codec,
        },
        &mut model,
        lora,
    )?;
    let (method, lines) = (written.method, written.curve);
    // The merged model is what the artifact holds: measure that one.
    let (after, answers) = measure(&model, obs)?;
    if let Some(answers) = &answers {
        eval::write_answers(&job.out_dir.join(ANSWERS_FILE), eval_set, answers)
            .map_err(io(format!("writing {ANSWERS_FILE}")))?;
    }
    let train_loss = lines.iter().rev().find_map(|l| l.loss).unwrap_or(f64::NAN);
    let summary = SftSummary {
        steps: tp.steps,
        params: params_total,
        trainable_params,
        method: method.to_string(),
        examples: train_rows.examples,
        examples_too_long: train_rows.too_long,
        rows: train_rows.rows(),
        target_tokens_seen: outcome.scored_tokens,
        train_loss,
        val_loss: after.val_loss,
        val_loss_before: before.val_loss,
        exact_match: after.exact_match,
        exact_match_before: before.exact_match,
        eval_examples: eval_set.len(),
        precision: if bf16 { "bf16" } else { "fp32" }.to_string(),
    };
    let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
    std::fs::write(job.out_dir.join(SFT_SUMMARY_FILE), text)
        .map_err(io(format!("writing {SFT_SUMMARY_FILE}")))?;
    obs.log(&format!(
        "after fine-tuning: val loss {:.4}{}",
        summary.val_loss,
        summary
            .exact_match
            .map(|a| format!(", exact match {:.1}%", 100.0 * a))
            .unwrap_or_default()
    ));
    Ok(Tuned {
        summary,
        run: SftRun {
            scored_tokens_per_s: outcome.scored_tokens_per_s,
            elapsed_s: outcome.elapsed_s,
            resumed_from: outcome.resumed_from,
            train_state_bytes: outcome.train_state_bytes,
        },
        device: device::id(dev),
    })
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> SftError {
    move |source| SftError::Io { context, source }
}

/// The training settings with `steps` set from `epochs` passes over `examples` training items
/// (rows for sft, pairs for dpo), when epochs are given; warmup must still fit in them.
pub(crate) fn steps_for_epochs(
    train: &pipelines::TrainParams,
    epochs: Option<u64>,
    examples: usize,
) -> Result<pipelines::TrainParams, SftError> {
    let mut tp = train.clone();
    if let Some(epochs) = epochs {
        let per_step = (tp.batch_size * tp.grad_accum) as u64;
        tp.steps = (epochs * examples as u64).div_ceil(per_step);
        if tp.warmup_steps > tp.steps {
            return Err(SftError::WarmupTooLong {
                warmup: tp.warmup_steps,
                steps: tp.steps,
            });
        }
    }
    Ok(tp)
}
