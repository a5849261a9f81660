//! The training loop: seeded windows, AdamW with warmup + cosine, clipping, accumulation,
//! periodic validation, metrics and checkpoints; resumes from the work directory's checkpoint.

use std::path::Path;
use std::time::Instant;

use pipelines::{TrainParams, Windows};
use tch::{Kind, Tensor};

use super::adamw::{AdamW, AdamWConfig};
use super::checkpoint::{self, Checkpoint, CheckpointError, CheckpointState, RNG_SCHEME};
use super::metrics::{self, MetricsLine, MetricsLog};
use super::sampler::{key, Sampler, Stream};
use super::schedule::Schedule;
use super::tokens::TokenSource;
use crate::model::{Gpt, ModelError};

/// What the loop reports to (a progress bar, a log) and asks whether to stop: the same
/// observer every stage kind uses. `cancelled()` is asked after each step; `true` stops the run
/// there, with its checkpoint written (as a kill would, but cleanly).
pub use common::observe::Observer;

/// The inputs of a run besides the model.
pub struct TrainInput<'a> {
    pub train: &'a dyn TokenSource,
    pub val: &'a dyn TokenSource,
    pub params: &'a TrainParams,
    /// Where training windows start.
    pub windows: Windows,
    pub seed: u64,
    /// Checkpoints and `metrics.jsonl` live here.
    pub work_dir: &'a Path,
    /// Peak FLOP/s for MFU; none leaves MFU out.
    pub peak_flops: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    pub steps: u64,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_ppl: f64,
    pub tokens_seen: u64,
    /// Mean training throughput of this process's steps.
    pub tokens_per_s: f64,
    pub mfu: Option<f64>,
    pub elapsed_s: f64,
    /// The step a checkpoint let this run start from.
    pub resumed_from: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("the {split} split has {tokens} tokens; a window of block_size {block} needs at least {needed}: use more data or a smaller model.block_size")]
    TooFewTokens {
        split: &'static str,
        tokens: usize,
        block: usize,
        needed: usize,
    },
    #[error("`windows: documents` needs the training split's document boundaries, and {why}: use `windows: random`, or shorter model.block_size")]
    NoDocumentStarts { why: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("resuming from {dir}: {why}")]
    Resume { dir: String, why: String },
    #[error("writing metrics: {0}")]
    Metrics(std::io::Error),
    #[error("the loss became {loss} at step {step}; lower train.lr or raise train.warmup_steps")]
    Diverged { step: u64, loss: f64 },
    #[error("stopped after step {step}")]
    Stopped { step: u64 },
}

/// The document starts of `tokens` that a training window of `block` tokens fits after.
fn document_window_starts(
    tokens: &dyn TokenSource,
    block: usize,
) -> Result<Vec<usize>, TrainError> {
    let docs = tokens
        .document_starts()
        .ok_or_else(|| TrainError::NoDocumentStarts {
            why: "these tokens come without them".to_string(),
        })?;
    let starts = super::sampler::window_starts(&docs, tokens.len(), block);
    if starts.is_empty() {
        return Err(TrainError::NoDocumentStarts {
            why: format!(
                "none of its {} documents is followed by block_size + 1 = {} tokens",
                docs.len(),
                block + 1
            ),
        });
    }
    Ok(starts)
}

/// Stream of the per-step torch seed (dropout masks), distinct from the window streams.
const TORCH_STREAM: u64 = 3;

pub fn train(
    model: &mut Gpt,
    input: &TrainInput,
    obs: &dyn Observer,
) -> Result<TrainSummary, TrainError> {
    let p = input.params;
    let cfg = model.config().clone();
    let block = cfg.block_size;
    let device = model.device();
    for (split, src) in [("train", input.train), ("val", input.val)] {
        if src.len() < block + 2 {
            return Err(TrainError::TooFewTokens {
                split,
                tokens: src.len(),
                block,
                needed: block + 2,
            });
        }
    }
    let mut opt = AdamW::new(
        model.var_store(),
        AdamWConfig {
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            weight_decay: p.weight_decay,
        },
    );

    let mut start = 0;
    let mut tokens_seen = 0;
    let mut elapsed_before = 0.0;
    let mut resumed_from = None;
    if let Some(ck) = Checkpoint::find(input.work_dir)? {
        let s = &ck.state;
        if s.model == cfg && &s.train == p && s.seed == input.seed {
            let resume_err = |why: String| TrainError::Resume {
                dir: ck.dir.display().to_string(),
                why,
            };
            model.load(&ck.model_path())?;
            opt.load_state(ck.optimizer_tensors()?, s.step)
                .map_err(resume_err)?;
            start = s.step;
            tokens_seen = s.tokens_seen;
            elapsed_before = s.elapsed_s;
            resumed_from = Some(s.step);
            obs.log(&format!("resuming from the checkpoint at step {}", s.step));
        } else {
            obs.log("ignoring a checkpoint made with other settings; starting over");
        }
    }
    let mut log = MetricsLog::open(
        &input.work_dir.join(pipelines::artifacts::METRICS_FILE),
        start,
    )
    .map_err(TrainError::Metrics)?;

    let sched = Schedule {
        lr: p.lr,
        min_lr: p.min_lr,
        warmup: p.warmup_steps,
        steps: p.steps,
    };
    let doc_starts = match input.windows {
        Windows::Random => None,
        Windows::Documents => Some(document_window_starts(input.train, block)?),
    };
    let train_windows = Sampler {
        tokens: input.train,
        batch: p.batch_size,
        block,
        seed: input.seed,
        stream: Stream::Train,
        starts: doc_starts.as_deref(),
    };
    let tokens_per_step = (p.batch_size * block * p.grad_accum) as u64;
    let flops_per_token = cfg.flops_per_token(block);
    let started = Instant::now();
    let mut window_start = Instant::now();
    let mut window_tokens = 0u64;
    let mut last_train_loss = f64::NAN;
    let mut last_val = None;
    let mut last_mfu = None;
    let mut last_tps = 0.0;

    for step in start..p.steps {
        tch::manual_seed(key(&[input.seed, TORCH_STREAM, step]) as i64);
        let lr = sched.at(step);
        opt.zero_grad();
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        for micro in 0..p.grad_accum as u64 {
            let (x, y) = train_windows.batch(step, micro, device);
            let loss = model.loss(&x, &y, true) / p.grad_accum as f64;
            loss.backward();
            loss_sum += loss.detach();
        }
        let grad_norm = if p.grad_clip > 0.0 {
            opt.clip_grad_norm(p.grad_clip)
        } else {
            tch::no_grad(|| opt.grad_norm())
        };
        opt.step(lr);
        tokens_seen += tokens_per_step;
        window_tokens += tokens_per_step;
        let done = step + 1;
        let last = done == p.steps;

        let mut line = None;
        if done % p.log_every == 0 || last {
            // Reading the loss waits for the device: only on log steps.
            let loss = loss_sum.double_value(&[]);
            if !loss.is_finite() {
                return Err(TrainError::Diverged { step: done, loss });
            }
            let dt = window_start.elapsed().as_secs_f64().max(1e-9);
            let tps = window_tokens as f64 / dt;
            let mfu = input
                .peak_flops
                .map(|peak| metrics::mfu(flops_per_token, tps, peak));
            window_start = Instant::now();
            window_tokens = 0;
            last_train_loss = loss;
            last_mfu = mfu;
            last_tps = tps;
            line = Some(MetricsLine {
                step: done,
                loss: Some(loss),
                lr: Some(lr),
                grad_norm: Some(grad_norm.double_value(&[])),
                tokens_per_s: Some(tps),
                mfu,
                tokens: tokens_seen,
                ..MetricsLine::default()
            });
        }
        if done % p.eval_every == 0 || last {
            let eval_start = Instant::now();
            let val = evaluate(model, input.val, p.eval_batches, p.batch_size, input.seed);
            let l = line.get_or_insert_with(|| MetricsLine {
                step: done,
                tokens: tokens_seen,
                ..MetricsLine::default()
            });
            l.val_loss = Some(val);
            l.val_ppl = Some(val.exp());
            last_val = Some(val);
            obs.log(&format!(
                "step {done}: val loss {val:.4} (ppl {:.2})",
                val.exp()
            ));
            // Validation time is not training throughput.
            window_start += eval_start.elapsed();
        }
        let elapsed = elapsed_before + started.elapsed().as_secs_f64();
        if let Some(mut l) = line {
            l.elapsed_s = elapsed;
            log.write(&l).map_err(TrainError::Metrics)?;
            if let Some(loss) = l.loss {
                let mut msg = format!(
                    "loss {loss:.4} lr {lr:.2e} {:.0} tok/s",
                    l.tokens_per_s.unwrap_or(0.0)
                );
                if let Some(m) = l.mfu {
                    msg.push_str(&format!(" mfu {:.1}%", 100.0 * m));
                }
                if let Some(v) = last_val {
                    msg.push_str(&format!(" val {v:.4}"));
                }
                obs.log(&format!("step {done}/{}: {msg}", p.steps));
                obs.phase(&msg);
                obs.progress(done, Some(p.steps));
            }
        }
        if done % p.checkpoint_every == 0 || last {
            let state = CheckpointState {
                format: 1,
                step: done,
                seed: input.seed,
                rng: RNG_SCHEME.to_string(),
                tokens_seen,
                elapsed_s: elapsed,
                model: cfg.clone(),
                train: p.clone(),
            };
            let weights = named_weights(model);
            checkpoint::write(input.work_dir, &state, &weights, &opt.state())?;
        }
        if !last && obs.cancelled() {
            return Err(TrainError::Stopped { step: done });
        }
    }

    let val_loss = match last_val {
        Some(v) => v,
        // A run resumed from its final checkpoint did no step: measure again.
        None => evaluate(model, input.val, p.eval_batches, p.batch_size, input.seed),
    };
    let elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
    Ok(TrainSummary {
        steps: p.steps,
        train_loss: last_train_loss,
        val_loss,
        val_ppl: val_loss.exp(),
        tokens_seen,
        tokens_per_s: last_tps,
        mfu: last_mfu,
        elapsed_s,
        resumed_from,
    })
}

/// The model's weights by name, sorted (what a checkpoint stores).
pub fn named_weights(model: &Gpt) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> = model.var_store().variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Mean validation loss over `batches` fixed windows batches (the same windows every time, so
/// successive evaluations compare the model, not the sample).
pub fn evaluate(
    model: &Gpt,
    val: &dyn TokenSource,
    batches: usize,
    batch_size: usize,
    seed: u64,
) -> f64 {
    let _guard = tch::no_grad_guard();
    let sampler = Sampler {
        tokens: val,
        batch: batch_size,
        block: model.config().block_size,
        seed,
        stream: Stream::Val,
        starts: None,
    };
    let device = model.device();
    let mut total = Tensor::zeros([], (Kind::Float, device));
    for i in 0..batches as u64 {
        let (x, y) = sampler.batch(0, i, device);
        total += model.loss(&x, &y, false);
    }
    total.double_value(&[]) / batches as f64
}
