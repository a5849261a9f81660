//! The fine-tuning loop: pretrain's optimizer (AdamW), schedule (warmup + cosine), clipping,
//! accumulation, metrics log and checkpoints (`crate::train`), over packed conversation rows
//! and the assistant-token loss.
//!
//! Only the trainable variables are checkpointed and restored: every weight for full
//! fine-tuning, the adapters for LoRA (the frozen base is the input artifact's, read again on
//! resume). Rows and dropout masks are keyed by `(seed, step)`, so a run resumed from its
//! checkpoint continues exactly as the uninterrupted run would have.

use std::path::Path;
use std::time::Instant;

use pipelines::TrainParams;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::loss;
use super::pack::{Packed, RowOrder};
use crate::model::Gpt;
use crate::train::adamw::{AdamW, AdamWConfig};
use crate::train::checkpoint::{self, Checkpoint, CheckpointState, RNG_SCHEME};
use crate::train::metrics::{MetricsLine, MetricsLog};
use crate::train::sampler::key;
use crate::train::schedule::Schedule;
use crate::train::{Observer, TrainError};

/// Stream of the per-step torch seed (dropout masks).
const TORCH_STREAM: u64 = 12;

pub struct Loop<'a> {
    pub model: &'a Gpt,
    /// The variables the optimizer updates (the model's, or the LoRA adapters').
    pub trainable: &'a VarStore,
    pub train: &'a Packed,
    pub val: &'a Packed,
    /// `train:` with `steps` resolved (from `epochs` when given).
    pub params: &'a TrainParams,
    pub seed: u64,
    pub work_dir: &'a Path,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub train_loss: f64,
    pub val_loss: f64,
    pub target_tokens_seen: u64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    pub resumed_from: Option<u64>,
    /// Bytes of the trainable values, their gradients and both AdamW moments.
    pub train_state_bytes: u64,
}

pub fn run(l: Loop, obs: &mut dyn Observer) -> Result<Outcome, TrainError> {
    let p = l.params;
    let device = l.model.device();
    let cfg = l.model.config().clone();
    let mut opt = AdamW::new(
        l.trainable,
        AdamWConfig {
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            weight_decay: p.weight_decay,
        },
    );
    let trainable_numel: usize = l
        .trainable
        .trainable_variables()
        .iter()
        .map(|t| t.numel())
        .sum();

    let mut start = 0;
    let mut seen = 0u64;
    let mut elapsed_before = 0.0;
    let mut resumed_from = None;
    if let Some(ck) = Checkpoint::find(l.work_dir)? {
        let s = &ck.state;
        if s.model == cfg && &s.train == p && s.seed == l.seed {
            let resume_err = |why: String| TrainError::Resume {
                dir: ck.dir.display().to_string(),
                why,
            };
            load_into(l.trainable, &ck.model_path()).map_err(resume_err)?;
            opt.load_state(ck.optimizer_tensors()?, s.step)
                .map_err(resume_err)?;
            start = s.step;
            seen = s.tokens_seen;
            elapsed_before = s.elapsed_s;
            resumed_from = Some(s.step);
            obs.log(&format!("resuming from the checkpoint at step {}", s.step));
        } else {
            obs.log("ignoring a checkpoint made with other settings; starting over");
        }
    }
    let mut log = MetricsLog::open(&l.work_dir.join(super::METRICS_FILE), start)
        .map_err(TrainError::Metrics)?;
    let sched = Schedule {
        lr: p.lr,
        min_lr: p.min_lr,
        warmup: p.warmup_steps,
        steps: p.steps,
    };
    let mut order = RowOrder::new(l.seed, l.train.rows());
    let eval_rows = p.eval_batches * p.batch_size;
    let started = Instant::now();
    let mut window_start = Instant::now();
    let mut window_tokens = 0u64;
    let mut last_train_loss = f64::NAN;
    let mut last_val = None;
    let mut last_tps = 0.0;

    for step in start..p.steps {
        tch::manual_seed(key(&[l.seed, TORCH_STREAM, step]) as i64);
        let lr = sched.at(step);
        opt.zero_grad();
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        for micro in 0..p.grad_accum as u64 {
            let first = (step * p.grad_accum as u64 + micro) * p.batch_size as u64;
            let rows: Vec<usize> = (0..p.batch_size as u64)
                .map(|j| order.row(first + j))
                .collect();
            let counted: usize = rows.iter().map(|&r| l.train.row_targets(r)).sum();
            seen += counted as u64;
            window_tokens += (rows.len() * l.train.block) as u64;
            let batch = l.train.batch(&rows, device);
            let loss = loss::loss(l.model, &batch, true) / p.grad_accum as f64;
            loss.backward();
            loss_sum += loss.detach();
        }
        let grad_norm = if p.grad_clip > 0.0 {
            opt.clip_grad_norm(p.grad_clip)
        } else {
            tch::no_grad(|| opt.grad_norm())
        };
        opt.step(lr);
        let done = step + 1;
        let last = done == p.steps;

        let mut line = None;
        if done % p.log_every == 0 || last {
            let loss = loss_sum.double_value(&[]);
            if !loss.is_finite() {
                return Err(TrainError::Diverged { step: done, loss });
            }
            let dt = window_start.elapsed().as_secs_f64().max(1e-9);
            last_tps = window_tokens as f64 / dt;
            window_start = Instant::now();
            window_tokens = 0;
            last_train_loss = loss;
            line = Some(MetricsLine {
                step: done,
                loss: Some(loss),
                lr: Some(lr),
                grad_norm: Some(grad_norm.double_value(&[])),
                tokens_per_s: Some(last_tps),
                tokens: seen,
                ..MetricsLine::default()
            });
        }
        if done % p.eval_every == 0 || last {
            let eval_start = Instant::now();
            let val = super::eval::val_loss(l.model, l.val, eval_rows, p.batch_size);
            let entry = line.get_or_insert_with(|| MetricsLine {
                step: done,
                tokens: seen,
                ..MetricsLine::default()
            });
            entry.val_loss = Some(val);
            entry.val_ppl = Some(val.exp());
            last_val = Some(val);
            obs.log(&format!(
                "step {done}: val loss {val:.4} (assistant tokens)"
            ));
            window_start += eval_start.elapsed();
        }
        let elapsed = elapsed_before + started.elapsed().as_secs_f64();
        if let Some(mut entry) = line {
            entry.elapsed_s = elapsed;
            log.write(&entry).map_err(TrainError::Metrics)?;
            if let Some(loss) = entry.loss {
                let mut msg = format!("loss {loss:.4} lr {lr:.2e} {last_tps:.0} tok/s");
                if let Some(v) = last_val {
                    msg.push_str(&format!(" val {v:.4}"));
                }
                obs.log(&format!("step {done}/{}: {msg}", p.steps));
                obs.progress(done, p.steps, &msg);
            }
        }
        if done % p.checkpoint_every == 0 || last {
            let state = CheckpointState {
                format: 1,
                step: done,
                seed: l.seed,
                rng: RNG_SCHEME.to_string(),
                tokens_seen: seen,
                elapsed_s: elapsed,
                model: cfg.clone(),
                train: p.clone(),
            };
            let mut weights: Vec<(String, Tensor)> = l.trainable.variables().into_iter().collect();
            weights.sort_by(|a, b| a.0.cmp(&b.0));
            checkpoint::write(l.work_dir, &state, &weights, &opt.state())?;
        }
        if !last && obs.should_stop(done) {
            return Err(TrainError::Stopped { step: done });
        }
    }

    let val_loss = match last_val {
        Some(v) => v,
        // Resumed from the final checkpoint: no step ran, measure again.
        None => super::eval::val_loss(l.model, l.val, eval_rows, p.batch_size),
    };
    Ok(Outcome {
        train_loss: last_train_loss,
        val_loss,
        target_tokens_seen: seen,
        tokens_per_s: last_tps,
        elapsed_s: elapsed_before + started.elapsed().as_secs_f64(),
        resumed_from,
        // Values, gradients, m and v: four fp32 copies of the trainable parameters.
        train_state_bytes: 4 * 4 * trainable_numel as u64,
    })
}

/// Copies the tensors of a safetensors file into the variables of `vs` with the same names, in
/// place (the optimizer's flat buffers hold their storage, so it must not be replaced).
fn load_into(vs: &VarStore, path: &Path) -> Result<(), String> {
    let saved: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?
        .into_iter()
        .collect();
    let _guard = tch::no_grad_guard();
    for (name, mut var) in vs.variables() {
        let src = saved
            .get(&name)
            .ok_or_else(|| format!("{} has no `{name}`", path.display()))?;
        if src.size() != var.size() {
            return Err(format!(
                "`{name}` has shape {:?} in {}, the model needs {:?}",
                src.size(),
                path.display(),
                var.size()
            ));
        }
        var.copy_(src);
    }
    Ok(())
}
