//! The `dpo` stage as `binarylm-torch run-stage` runs it: load the model stage's artifact (the
//! starting policy, and the frozen reference), read and tokenize the data stage's preference
//! pairs, score every pair under the reference once, train the policy on the DPO or IPO loss
//! (every weight, or LoRA adapters) with the fine-tuning loop, and write an ordinary model
//! artifact, laid out as `sft`'s (`crate::sft::artifact`).
//!
//! The reference never changes, so its log-probabilities are computed before training, with
//! the weights the policy starts from, and kept: one model in memory instead of two.

pub mod loss;
pub mod pairs;

use std::collections::BTreeMap;

use pipelines::artifacts::{DpoSummary, SftRun, DPO_SUMMARY_FILE};
use pipelines::{DpoLoss, DpoParams, TorchJob};
use serve::chat::{Message, Role};
use tch::{Device, Kind, Tensor};

use crate::device;
use crate::model::{Gpt, Lora};
use crate::sft::artifact;
use crate::sft::eval::greedy_answers;
use crate::sft::start::{start, Inputs, Start};
use crate::sft::SftError;
use crate::train::finetune::{self, Objective};
use crate::train::sampler::key;
use crate::train::Observer;
use pairs::Pairs;

#[derive(Debug, thiserror::Error)]
pub enum DpoError {
    /// What dpo shares with sft: inputs, device, model, tokenizer, training, writing.
    #[error(transparent)]
    Common(#[from] SftError),
    #[error("data stage `{stage}`: {source}")]
    Pairs {
        stage: String,
        // Boxed, as sft's data errors.
        #[source]
        source: Box<pairs::PairsError>,
    },
    #[error("data stage `{stage}`: none of the {split} pairs fits in the model's context of {block} tokens; use shorter answers or a model with a larger block_size")]
    NothingFits {
        stage: String,
        split: &'static str,
        block: usize,
    },
}

/// The reference's log-probabilities of every pair's answers, in pair order.
struct Reference {
    chosen: Vec<f32>,
    rejected: Vec<f32>,
}

impl Reference {
    fn score(model: &Gpt, pairs: &Pairs, batch: usize) -> Reference {
        let _guard = tch::no_grad_guard();
        let mut r = Reference {
            chosen: Vec::new(),
            rejected: Vec::new(),
        };
        let ids: Vec<usize> = (0..pairs.len()).collect();
        for chunk in ids.chunks(batch.max(1)) {
            let (x, y, _) = pairs.batch(chunk, model.device());
            let logps = loss::sequence_logps(model, &x, &y, false).to_device(Device::Cpu);
            let v = Vec::<f32>::try_from(&logps).unwrap_or_default();
            let b = chunk.len();
            r.chosen.extend_from_slice(&v[..b]);
            r.rejected.extend_from_slice(&v[b..]);
        }
        r
    }

    fn of(&self, ids: &[usize], device: Device) -> (Tensor, Tensor) {
        let pick = |v: &[f32]| {
            let x: Vec<f32> = ids.iter().map(|&i| v[i]).collect();
            Tensor::from_slice(&x).to_device(device)
        };
        (pick(&self.chosen), pick(&self.rejected))
    }
}

/// DPO as the fine-tuning loop sees it.
struct DpoObjective<'a> {
    model: &'a Gpt,
    train: &'a Pairs,
    val: &'a Pairs,
    ref_train: &'a Reference,
    ref_val: &'a Reference,
    settings: loss::LossSettings,
    /// Val pairs evaluated, `batch` at a time.
    eval_pairs: usize,
    batch: usize,
}

impl DpoObjective<'_> {
    fn pass(
        &self,
        pairs: &Pairs,
        reference: &Reference,
        ids: &[usize],
        train: bool,
    ) -> (loss::Preference, Tensor, Tensor, u64) {
        let device = self.model.device();
        let (x, y, scored) = pairs.batch(ids, device);
        let logps = loss::sequence_logps(self.model, &x, &y, train);
        let b = ids.len() as i64;
        let (pc, pr) = (logps.narrow(0, 0, b), logps.narrow(0, b, b));
        let (rc, rr) = reference.of(ids, device);
        let chosen_tokens = loss::scored_tokens(&y.narrow(0, 0, b));
        let pref = loss::preference_loss(&pc, &pr, &rc, &rr, &chosen_tokens, self.settings);
        (pref, pc.detach(), pr.detach(), scored)
    }
}

impl Objective for DpoObjective<'_> {
    fn items(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, ids: &[usize], train: bool) -> (Tensor, u64, Vec<(&'static str, Tensor)>) {
        let (pref, pc, pr, scored) = self.pass(self.train, self.ref_train, ids, train);
        let margin = (&pref.chosen_rewards - &pref.rejected_rewards).mean(Kind::Float);
        let accuracy = pref
            .chosen_rewards
            .gt_tensor(&pref.rejected_rewards)
            .to_kind(Kind::Float)
            .mean(Kind::Float);
        let extra = vec![
            ("reward_margin", margin),
            ("preference_accuracy", accuracy),
            ("logps_chosen", pc.mean(Kind::Float)),
            ("logps_rejected", pr.mean(Kind::Float)),
        ];
        (pref.loss, scored, extra)
    }

    fn evaluate(&self) -> (f64, BTreeMap<String, f64>) {
        let _guard = tch::no_grad_guard();
        let n = self.val.len().min(self.eval_pairs).max(1);
        let ids: Vec<usize> = (0..n).collect();
        let (mut loss, mut acc, mut margin, mut lik, mut lc, mut lr) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for chunk in ids.chunks(self.batch.max(1)) {
            let (pref, pc, pr, _) = self.pass(self.val, self.ref_val, chunk, false);
            let b = chunk.len() as f64;
            let sum = |t: Tensor| t.to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
            loss += pref.loss.double_value(&[]) * b;
            acc += sum(pref.chosen_rewards.gt_tensor(&pref.rejected_rewards));
            margin += sum(&pref.chosen_rewards - &pref.rejected_rewards);
            lik += sum(pc.gt_tensor(&pr));
            lc += sum(pc);
            lr += sum(pr);
        }
        let n = n as f64;
        let metrics = BTreeMap::from([
            ("val_preference_accuracy".to_string(), acc / n),
            ("val_reward_margin".to_string(), margin / n),
            ("val_likelihood_accuracy".to_string(), lik / n),
            ("val_logps_chosen".to_string(), lc / n),
            ("val_logps_rejected".to_string(), lr / n),
        ]);
        (loss / n, metrics)
    }
}

/// A finished dpo stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Aligned {
    pub summary: DpoSummary,
    pub run: SftRun,
    pub device: String,
}

/// Greedy answers compared with the chosen and the rejected answers, before training; kept in
/// the work directory so a resumed run reports them without generating again.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Matches {
    chosen: Option<f64>,
    rejected: Option<f64>,
}

const BEFORE_FILE: &str = "before.json";

/// Runs a dpo job, reporting through `obs`.
pub fn run(job: &TorchJob, params: &DpoParams, obs: &dyn Observer) -> Result<Aligned, DpoError> {
    let Start {
        dev,
        model_dir,
        data_dir,
        codec,
        template,
        mut model,
        config: cfg,
        bf16,
    } = start(
        job,
        &Inputs {
            model: &params.model,
            data: &params.data,
            device: &params.device,
            precision: params.train.precision,
        },
    )?;
    let pairs_err = |source| DpoError::Pairs {
        stage: params.data.clone(),
        source: Box::new(source),
    };
    let train_prefs = pairs::read_split(data_dir, "train").map_err(pairs_err)?;
    let val_prefs = pairs::read_split(data_dir, "val").map_err(pairs_err)?;
    let train = Pairs::encode(&train_prefs, &template, &codec, cfg.block_size);
    let val = Pairs::encode(&val_prefs, &template, &codec, cfg.block_size);
    for (split, p) in [("train", &train), ("val", &val)] {
        if p.is_empty() {
            return Err(DpoError::NothingFits {
                stage: params.data.clone(),
                split,
                block: cfg.block_size,
            });
        }
    }
    let tp = crate::sft::steps_for_epochs(&params.train, params.epochs, train.len())?;
    obs.log(&format!(
        "data: {} train pairs ({} left out as too long), {} val; {} steps",
        train.len(),
        train.too_long,
        val.len(),
        tp.steps
    ));
    std::fs::create_dir_all(&job.work_dir).map_err(|source| SftError::Io {
        context: format!("creating {}", job.work_dir.display()),
        source,
    })?;

    let ref_train = Reference::score(&model, &train, tp.batch_size);
    let ref_val = Reference::score(&model, &val, tp.batch_size);
    let eval_pairs = tp.eval_batches * tp.batch_size;
    let eval_set = &val.records[..params.eval.examples.min(val.len())];
    let matches = |model: &Gpt, obs: &dyn Observer| -> Result<Matches, DpoError> {
        if eval_set.is_empty() {
            return Ok(Matches {
                chosen: None,
                rejected: None,
            });
        }
        let turns: Vec<[Message; 1]> = eval_set
            .iter()
            .map(|p| {
                [Message {
                    role: Role::User,
                    content: p.prompt.clone(),
                }]
            })
            .collect();
        let prompts: Vec<&[Message]> = turns.iter().map(|t| t.as_slice()).collect();
        let answers = greedy_answers(
            model,
            &prompts,
            &template,
            &codec,
            params.eval.max_new_tokens,
        )
        .map_err(|source| SftError::Model {
            stage: params.model.clone(),
            source,
        })?;
        for (a, p) in answers.iter().zip(eval_set).take(3) {
            obs.log(&format!(
                "  answered {a:?}; chosen {:?}, rejected {:?}",
                p.chosen.trim(),
                p.rejected.trim()
            ));
        }
        let share = |pick: fn(&pairs::Preference) -> &str| {
            let hits = answers
                .iter()
                .zip(eval_set)
                .filter(|(a, p)| a.as_str() == pick(p).trim())
                .count();
            Some(hits as f64 / eval_set.len() as f64)
        };
        Ok(Matches {
            chosen: share(|p| &p.chosen),
            rejected: share(|p| &p.rejected),
        })
    };
    let before_path = job.work_dir.join(BEFORE_FILE);
    let before = match std::fs::read_to_string(&before_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Matches>(&t).ok())
    {
        Some(m) => m,
        None => {
            let m = matches(&model, obs)?;
            std::fs::write(&before_path, serde_json::to_string(&m).expect("serializes")).map_err(
                |source| SftError::Io {
                    context: format!("writing {}", before_path.display()),
                    source,
                },
            )?;
            m
        }
    };
    let n_eval = val.len().min(eval_pairs).max(1);
    let likelihood_before = (0..n_eval)
        .filter(|&i| ref_val.chosen[i] > ref_val.rejected[i])
        .count() as f64
        / n_eval as f64;

    tch::manual_seed(key(&[job.seed, 0]) as i64);
    // LoRA trains the chat markers' embedding rows too (model/lora.rs says why).
    let lora = params
        .lora
        .as_ref()
        .map(|lp| Lora::attach(&mut model, lp, &template.marker_ids()));
    let params_total = model.num_params();
    let trainable_params = lora.as_ref().map_or(params_total, |l| l.num_params());
    obs.log(&format!(
        "{} with the {} loss, beta {}{}: {trainable_params} of {params_total} parameters trained, on {}",
        if lora.is_some() { "LoRA" } else { "full" },
        match params.loss {
            DpoLoss::Sigmoid => "sigmoid",
            DpoLoss::Ipo => "IPO",
        },
        params.beta,
        if params.rpo_alpha == 0.0 {
            String::new()
        } else {
            format!(", plus the chosen answers' loss × {} (RPO)", params.rpo_alpha)
        },
        device::describe(dev),
    ));
    let outcome = {
        let trainable = match &lora {
            Some(l) => l.var_store(),
            None => model.var_store(),
        };
        let objective = DpoObjective {
            model: &model,
            train: &train,
            val: &val,
            ref_train: &ref_train,
            ref_val: &ref_val,
            settings: loss::LossSettings {
                beta: params.beta,
                kind: params.loss,
                rpo_alpha: params.rpo_alpha,
            },
            eval_pairs,
            batch: tp.batch_size,
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
        )
        .map_err(SftError::from)?
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
    )
    .map_err(SftError::from)?;
    let after = matches(&model, obs)?;
    let metric = |k: &str| outcome.val_metrics.get(k).copied().unwrap_or(f64::NAN);
    let summary = DpoSummary {
        steps: tp.steps,
        params: params_total,
        trainable_params,
        method: written.method.to_string(),
        loss: match params.loss {
            DpoLoss::Sigmoid => "sigmoid",
            DpoLoss::Ipo => "ipo",
        }
        .to_string(),
        beta: params.beta,
        pairs: train.len(),
        pairs_too_long: train.too_long,
        train_loss: written
            .curve
            .iter()
            .rev()
            .find_map(|l| l.loss)
            .unwrap_or(f64::NAN),
        val_loss: outcome.val_loss,
        val_preference_accuracy: metric("val_preference_accuracy"),
        val_reward_margin: metric("val_reward_margin"),
        val_likelihood_accuracy_before: likelihood_before,
        val_likelihood_accuracy: metric("val_likelihood_accuracy"),
        chosen_match_before: before.chosen,
        chosen_match: after.chosen,
        rejected_match_before: before.rejected,
        rejected_match: after.rejected,
        eval_examples: eval_set.len(),
        precision: if bf16 { "bf16" } else { "fp32" }.to_string(),
    };
    let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
    std::fs::write(job.out_dir.join(DPO_SUMMARY_FILE), text).map_err(|source| SftError::Io {
        context: format!("writing {DPO_SUMMARY_FILE}"),
        source,
    })?;
    obs.log(&format!(
        "after: val preference accuracy {:.1}%, reward margin {:.3}",
        100.0 * summary.val_preference_accuracy,
        summary.val_reward_margin
    ));
    Ok(Aligned {
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
