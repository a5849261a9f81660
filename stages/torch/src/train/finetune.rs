//! The fine-tuning loop shared by `sft` and `dpo`: pretrain's optimizer (AdamW), schedule
//! (warmup + cosine), clipping, accumulation, metrics log and checkpoints, over the items of an
//! [`Objective`] (packed conversation rows, preference pairs) visited in a seeded order.
//!
//! Only the trainable variables are checkpointed and restored: every weight for full
//! fine-tuning, the adapters for LoRA (the frozen base is the input artifact's, read again on
//! resume). Items are chosen by `(seed, step)` ([`RowOrder`]) and dropout masks seeded by
//! `(seed, step)`, so a run resumed from its checkpoint continues exactly as the uninterrupted
//! run would have.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use pipelines::TrainParams;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::adamw::{AdamW, AdamWConfig};
use super::checkpoint::{self, Checkpoint, CheckpointState, RNG_SCHEME};
use super::metrics::{MetricsLine, MetricsLog};
use super::order::RowOrder;
use super::sampler::key;
use super::schedule::Schedule;
use super::{Observer, TrainError};
use crate::model::ModelConfig;

/// Stream of the per-step torch seed (dropout masks).
const TORCH_STREAM: u64 = 12;

/// What a fine-tuning kind trains: items, their loss, and a held-out measure.
pub trait Objective {
    /// Items to draw batches from.
    fn items(&self) -> usize;
    /// The mean loss of the batch of `items` (with its graph when `train`), the number of
    /// tokens the loss scored, and metrics of the batch to log with it (as 0-d tensors, read
    /// only on log steps).
    fn loss(&self, items: &[usize], train: bool) -> (Tensor, u64, Vec<(&'static str, Tensor)>);
    /// Held-out loss, plus metrics to log beside it.
    fn evaluate(&self) -> (f64, BTreeMap<String, f64>);
}

pub struct Loop<'a> {
    pub objective: &'a dyn Objective,
    /// The model's architecture (part of the checkpoint's identity).
    pub config: &'a ModelConfig,
    /// The variables the optimizer updates (the model's, or the LoRA adapters').
    pub trainable: &'a VarStore,
    /// `train:` with `steps` resolved (from `epochs` when given).
    pub params: &'a TrainParams,
    pub seed: u64,
    pub work_dir: &'a Path,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub val_loss: f64,
    /// The metrics of the last evaluation.
    pub val_metrics: BTreeMap<String, f64>,
    /// Tokens scored by the loss over the whole run.
    pub scored_tokens: u64,
    /// Scored tokens per second over the last log window.
    pub scored_tokens_per_s: f64,
    pub elapsed_s: f64,
    pub resumed_from: Option<u64>,
    /// Bytes of the trainable values, their gradients and both AdamW moments.
    pub train_state_bytes: u64,
}

/// Name of the work directory's metrics log (the artifact's curve is written from it).
pub use pipelines::artifacts::METRICS_FILE;

pub fn run(l: Loop, obs: &dyn Observer) -> Result<Outcome, TrainError> {
    let p = l.params;
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
    let device = l.trainable.device();

    let mut start = 0;
    let mut seen = 0u64;
    let mut elapsed_before = 0.0;
    let mut resumed_from = None;
    if let Some(ck) = Checkpoint::find(l.work_dir)? {
        let s = &ck.state;
        if &s.model == l.config && &s.train == p && s.seed == l.seed {
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
    let mut log =
        MetricsLog::open(&l.work_dir.join(METRICS_FILE), start).map_err(TrainError::Metrics)?;
    let sched = Schedule {
        lr: p.lr,
        min_lr: p.min_lr,
        warmup: p.warmup_steps,
        steps: p.steps,
    };
    let mut order = RowOrder::new(l.seed, l.objective.items());
    let started = Instant::now();
    let mut window_start = Instant::now();
    let mut window_tokens = 0u64;
    let mut last_val: Option<(f64, BTreeMap<String, f64>)> = None;
    let mut last_tps = 0.0;

    for step in start..p.steps {
        tch::manual_seed(key(&[l.seed, TORCH_STREAM, step]) as i64);
        let lr = sched.at(step);
        opt.zero_grad();
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        let mut extra_sums: Vec<(&'static str, Tensor)> = Vec::new();
        for micro in 0..p.grad_accum as u64 {
            let first = (step * p.grad_accum as u64 + micro) * p.batch_size as u64;
            let items: Vec<usize> = (0..p.batch_size as u64)
                .map(|j| order.row(first + j))
                .collect();
            let (loss, scored, extra) = l.objective.loss(&items, true);
            seen += scored;
            window_tokens += scored;
            let loss = loss / p.grad_accum as f64;
            loss.backward();
            loss_sum += loss.detach();
            for (i, (name, value)) in extra.into_iter().enumerate() {
                let value = value.detach() / p.grad_accum as f64;
                match extra_sums.get_mut(i) {
                    Some((_, sum)) => *sum += value,
                    None => extra_sums.push((name, value)),
                }
            }
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
            line = Some(MetricsLine {
                step: done,
                loss: Some(loss),
                lr: Some(lr),
                grad_norm: Some(grad_norm.double_value(&[])),
                // Scored tokens: what a fine-tuning step learns from (padding and prompts are
                // computed too, but are not its measure of progress).
                tokens_per_s: Some(last_tps),
                tokens: seen,
                extra: extra_sums
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.double_value(&[])))
                    .collect(),
                ..MetricsLine::default()
            });
        }
        if done % p.eval_every == 0 || last {
            let eval_start = Instant::now();
            let (val, metrics) = l.objective.evaluate();
            let entry = line.get_or_insert_with(|| MetricsLine {
                step: done,
                tokens: seen,
                ..MetricsLine::default()
            });
            entry.val_loss = Some(val);
            for (k, v) in &metrics {
                entry.extra.insert(k.clone(), *v);
            }
            obs.log(&format!("step {done}: val loss {val:.4}"));
            last_val = Some((val, metrics));
            window_start += eval_start.elapsed();
        }
        let elapsed = elapsed_before + started.elapsed().as_secs_f64();
        if let Some(mut entry) = line {
            entry.elapsed_s = elapsed;
            log.write(&entry).map_err(TrainError::Metrics)?;
            if let Some(loss) = entry.loss {
                let mut msg = format!("loss {loss:.4} lr {lr:.2e} {last_tps:.0} scored tok/s");
                if let Some((v, _)) = &last_val {
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
                seed: l.seed,
                rng: RNG_SCHEME.to_string(),
                tokens_seen: seen,
                elapsed_s: elapsed,
                model: l.config.clone(),
                train: p.clone(),
            };
            let mut weights: Vec<(String, Tensor)> = l.trainable.variables().into_iter().collect();
            weights.sort_by(|a, b| a.0.cmp(&b.0));
            checkpoint::write(l.work_dir, &state, &weights, &opt.state())?;
        }
        if !last && obs.cancelled() {
            return Err(TrainError::Stopped { step: done });
        }
    }

    // Resumed from the final checkpoint: no step ran, measure again.
    let (val_loss, val_metrics) = match last_val {
        Some(v) => v,
        None => l.objective.evaluate(),
    };
    Ok(Outcome {
        val_loss,
        val_metrics,
        scored_tokens: seen,
        scored_tokens_per_s: last_tps,
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
