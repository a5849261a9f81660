//! The `eval` stage as `binarylm-torch run-stage` runs it: every model of `models` scored on
//! every task, each score with a bootstrap standard error, written as `results.json` (the
//! typed [`EvalResults`] that `binarylm show` reads back), `results.md` and `results.svg`.
//!
//! - `perplexity`: each document of a data stage's split is encoded with the model's own
//!   tokenizer after an end-of-document token (as pretraining saw documents) and every token is
//!   predicted once, in windows of the model's context. Reported: nats per token, perplexity,
//!   and bits per byte = total nats / ln 2 / total UTF-8 bytes, which does not depend on the
//!   tokenizer.
//! - `choice`: each choice's log-likelihood after the question (see [`score`]); `acc` counts
//!   the questions whose likeliest choice is right, `acc_norm` the same with each likelihood
//!   divided by the choice's length in characters (without the space joining it to the
//!   prompt, as lm-evaluation-harness counts). Per-question scores go to `samples.jsonl`.
//! - `generate`: each prompt's greedy answer, cut where it ends, against its references
//!   (see [`generate`]): `exact_match` and `contains`. Every answer goes to `samples.jsonl`.

pub mod generate;
pub mod items;
mod pair;
mod report;
pub mod score;
pub mod stats;

use std::path::{Path, PathBuf};

use pipelines::artifacts::{EvalResults, EvalTaskResult, ModelScores, Score, EVAL_RESULTS_FILE};
use pipelines::{EvalParams, EvalTask, TaskKind, TorchJob};
use records::Record;
use tokenizer::{Tokenizer, TokenizerError, EOS_NAMES};

use crate::device::{self, DeviceChoice, DeviceError};
use crate::model::{load_artifact, ModelError};
use crate::server::engine::TokenizerCodec;
use crate::train::Observer;
use items::{ItemsError, Question};
use score::{loglikelihood, Request};

pub const MARKDOWN_FILE: &str = "results.md";
pub const CHART_FILE: &str = "results.svg";
/// One line per model × multiple-choice question: every choice's log-likelihood, what
/// `acc_norm` divided it by, and the picks (as lm-evaluation-harness's `--log_samples`), so a
/// score can be traced to its questions and compared choice by choice with another scorer.
pub const SAMPLES_FILE: &str = "samples.jsonl";
use crate::model::TOKENIZER_FILE;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    MissingInput(#[from] pipelines::MissingInput),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("model `{model}`: {source}")]
    Model {
        model: String,
        #[source]
        source: ModelError,
    },
    #[error("model `{model}`: {source}")]
    Tokenizer {
        model: String,
        #[source]
        source: TokenizerError,
    },
    #[error("model `{model}`: its tokenizer has no end-of-document token ({EOS_NAMES:?}) to start documents with")]
    NoEos { model: String },
    #[error("task `{task}`: {source}")]
    Items {
        task: String,
        #[source]
        source: ItemsError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("drawing the chart: {0}")]
    Plot(String),
}

/// A finished eval stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub results: EvalResults,
    pub device: String,
}

/// A task's scores by metric name, in report order.
type Metrics = Vec<(String, Score)>;

/// One line of [`SAMPLES_FILE`].
#[derive(Debug, Clone, serde::Serialize)]
struct Sample<'a> {
    model: &'a str,
    task: &'a str,
    /// The question's position in the task (0-based, in file or split order).
    index: usize,
    loglikelihoods: Vec<f64>,
    lengths: &'a [usize],
    answer: usize,
    pred: usize,
    pred_norm: usize,
}

/// What one choice question scored: its choices' log-likelihoods and the two picks.
struct Picks {
    loglikelihoods: Vec<f64>,
    pred: usize,
    pred_norm: usize,
}

/// One line of [`SAMPLES_FILE`] for a `generate` task.
#[derive(Debug, Clone, serde::Serialize)]
struct AnswerSample<'a> {
    model: &'a str,
    task: &'a str,
    index: usize,
    prompt: &'a str,
    references: &'a [String],
    #[serde(flatten)]
    answered: &'a generate::Answered,
}

/// What one task scores, as text, before any model's tokenizer sees it.
enum Items {
    Documents(Vec<Record>),
    Questions(Vec<Question>),
    Prompts(Vec<generate::Prompt>),
}

/// Runs an eval job, reporting through `obs`.
pub fn run(
    job: &TorchJob,
    params: &EvalParams,
    obs: &dyn Observer,
) -> Result<Evaluated, EvalError> {
    device::set_threads(job.threads);
    let wanted: DeviceChoice = params.device.parse()?;
    let dev = device::resolve(wanted)?;
    let tasks: Vec<(String, Items)> = params
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = t.display_name();
            load_items(job, t, key(job.seed, i))
                .map(|items| (name.clone(), items))
                .map_err(|source| match source {
                    LoadError::Items(source) => EvalError::Items { task: name, source },
                    LoadError::Missing(missing) => EvalError::MissingInput(missing),
                })
        })
        .collect::<Result<_, _>>()?;

    let mut results = EvalResults {
        format: 1,
        models: params.models.clone(),
        tasks: tasks
            .iter()
            .zip(&params.tasks)
            .map(|((name, items), t)| EvalTaskResult {
                name: name.clone(),
                task: match t.task {
                    TaskKind::Perplexity => "perplexity",
                    TaskKind::Choice => "choice",
                    TaskKind::Generate => "generate",
                }
                .to_string(),
                items: match items {
                    Items::Documents(d) => d.len(),
                    Items::Questions(q) => q.len(),
                    Items::Prompts(p) => p.len(),
                },
                shots: t.shots,
                scores: Vec::new(),
            })
            .collect(),
    };
    let mut samples = String::new();
    for model_name in &params.models {
        let dir = job.input(model_name)?.to_path_buf();
        let (model, _) = load_artifact(&dir, dev).map_err(|source| EvalError::Model {
            model: model_name.clone(),
            source,
        })?;
        let codec = TokenizerCodec(Tokenizer::from_file(dir.join(TOKENIZER_FILE)).map_err(
            |source| EvalError::Tokenizer {
                model: model_name.clone(),
                source,
            },
        )?);
        let tok = &codec.0;
        obs.log(&format!(
            "{model_name}: {} parameters, context {}",
            model.num_params(),
            model.config().block_size
        ));
        for (t, (name, items)) in tasks.iter().enumerate() {
            obs.phase(&format!("{model_name}: {name}"));
            let seed = key(job.seed, 1_000 + t);
            let metrics = match items {
                Items::Documents(docs) => {
                    let eos = tok
                        .find_special(EOS_NAMES)
                        .map(|(_, id)| id)
                        .ok_or_else(|| EvalError::NoEos {
                            model: model_name.clone(),
                        })?;
                    perplexity(&model, tok, eos, docs, params, seed, obs).map_err(|source| {
                        EvalError::Tokenizer {
                            model: model_name.clone(),
                            source,
                        }
                    })?
                }
                Items::Questions(questions) => {
                    let (metrics, picks) = choice(&model, tok, questions, params, seed, obs)
                        .map_err(|source| EvalError::Tokenizer {
                            model: model_name.clone(),
                            source,
                        })?;
                    for (index, (q, p)) in questions.iter().zip(picks).enumerate() {
                        let line = Sample {
                            model: model_name,
                            task: name,
                            index,
                            loglikelihoods: p.loglikelihoods,
                            lengths: &q.lengths,
                            answer: q.answer,
                            pred: p.pred,
                            pred_norm: p.pred_norm,
                        };
                        samples.push_str(&serde_json::to_string(&line).expect("sample serializes"));
                        samples.push('\n');
                    }
                    metrics
                }
                Items::Prompts(prompts) => {
                    let asking = generate::Asking::new(&codec, &params.tasks[t]);
                    let (metrics, answered) =
                        generate::score(&model, &asking, prompts, params.bootstrap, seed, obs)
                            .map_err(|source| EvalError::Model {
                                model: model_name.clone(),
                                source,
                            })?;
                    for (index, (p, a)) in prompts.iter().zip(&answered).enumerate() {
                        let line = AnswerSample {
                            model: model_name,
                            task: name,
                            index,
                            prompt: &p.prompt,
                            references: &p.answers,
                            answered: a,
                        };
                        samples.push_str(&serde_json::to_string(&line).expect("sample serializes"));
                        samples.push('\n');
                    }
                    metrics
                }
            };
            for (metric, score) in &metrics {
                obs.log(&format!(
                    "{model_name} {name}: {metric} {:.4} ± {:.4}",
                    score.value, score.stderr
                ));
            }
            results.tasks[t].scores.push(ModelScores {
                model: model_name.clone(),
                metrics: metrics.into_iter().collect(),
            });
        }
    }

    let out = &job.out_dir;
    let io = |context: String| move |source: std::io::Error| EvalError::Io { context, source };
    std::fs::create_dir_all(out).map_err(io(format!("creating {}", out.display())))?;
    let text = serde_json::to_string_pretty(&results).expect("results serialize");
    std::fs::write(out.join(EVAL_RESULTS_FILE), text)
        .map_err(io(format!("writing {EVAL_RESULTS_FILE}")))?;
    std::fs::write(out.join(MARKDOWN_FILE), results.markdown())
        .map_err(io(format!("writing {MARKDOWN_FILE}")))?;
    if !samples.is_empty() {
        std::fs::write(out.join(SAMPLES_FILE), samples)
            .map_err(io(format!("writing {SAMPLES_FILE}")))?;
    }
    report::chart(&results, &out.join(CHART_FILE)).map_err(EvalError::Plot)?;
    Ok(Evaluated {
        results,
        device: device::id(dev),
    })
}

/// A stream seed per task, from the manifest's seed.
fn key(seed: u64, i: usize) -> u64 {
    common::rng::mix64(seed ^ common::rng::mix64(i as u64 + 1))
}

enum LoadError {
    Items(ItemsError),
    Missing(pipelines::MissingInput),
}

impl From<pipelines::MissingInput> for LoadError {
    fn from(e: pipelines::MissingInput) -> Self {
        LoadError::Missing(e)
    }
}

impl From<ItemsError> for LoadError {
    fn from(e: ItemsError) -> Self {
        LoadError::Items(e)
    }
}

impl From<records::RecordsError> for LoadError {
    fn from(e: records::RecordsError) -> Self {
        LoadError::Items(e.into())
    }
}

fn load_items(job: &TorchJob, t: &EvalTask, seed: u64) -> Result<Items, LoadError> {
    let data = |stage: &str| -> Result<Vec<Record>, LoadError> {
        let dir = job.input(stage)?;
        Ok(records::read_split(&records::split_path(
            dir,
            t.split_name(),
        ))?)
    };
    match t.task {
        TaskKind::Perplexity => {
            let stage = t.data.as_deref().unwrap_or_default();
            let mut docs = data(stage)?;
            docs.truncate(t.limit.unwrap_or(usize::MAX));
            if docs.is_empty() {
                return Err(ItemsError::Empty {
                    what: format!("the {} split of `{stage}`", t.split_name()),
                }
                .into());
            }
            Ok(Items::Documents(docs))
        }
        TaskKind::Generate => {
            let mut prompts = match (&t.data, &t.path) {
                (Some(stage), _) => generate::from_exchanges(stage, &data(stage)?)?,
                (None, Some(path)) => generate::read_jsonl(&resolve(&job.manifest_dir, path))?,
                (None, None) => unreachable!("validated at load: a generate task has data or path"),
            };
            prompts.truncate(t.limit.unwrap_or(usize::MAX));
            Ok(Items::Prompts(prompts))
        }
        TaskKind::Choice => {
            let (pool, what) = match (&t.data, &t.path) {
                (Some(stage), _) => (
                    items::from_preferences(stage, &data(stage)?)?,
                    stage.clone(),
                ),
                (None, Some(path)) => {
                    let file = resolve(&job.manifest_dir, path);
                    let format = t.format.unwrap_or(pipelines::ChoiceFormat::Generic);
                    (items::read_jsonl(&file, format)?, path.clone())
                }
                (None, None) => unreachable!("validated at load: a choice task has data or path"),
            };
            let scored = t.limit.unwrap_or(usize::MAX).min(pool.len());
            Ok(Items::Questions(items::with_shots(
                &pool, scored, t.shots, seed, &what,
            )?))
        }
    }
}

fn resolve(dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// Per document: negative log-likelihood (nats), tokens predicted, UTF-8 bytes. Each document
/// is encoded after `eos` and every token predicted once, in windows of the model's context.
pub fn score_documents(
    model: &crate::model::Gpt,
    tok: &Tokenizer,
    eos: u32,
    docs: &[Record],
    batch: usize,
    obs: &dyn Observer,
) -> Result<Vec<(f64, f64, f64)>, TokenizerError> {
    let block = model.config().block_size;
    let mut requests = Vec::new();
    // Per document: its requests' range, tokens predicted, bytes.
    let mut spans = Vec::with_capacity(docs.len());
    for d in docs {
        let mut ids = vec![eos];
        ids.extend(tok.encode_segments(&d.segments())?);
        let first = requests.len();
        let mut start = 0;
        while start + 1 < ids.len() {
            let end = (start + block).min(ids.len() - 1);
            requests.push(Request {
                context: vec![ids[start]],
                continuation: ids[start + 1..=end].to_vec(),
            });
            start = end;
        }
        spans.push((first..requests.len(), ids.len() - 1, d.text_bytes()));
    }
    let scored = loglikelihood(model, &requests, batch, obs);
    Ok(spans
        .into_iter()
        .map(|(range, tokens, bytes)| {
            let nll = -scored[range].iter().map(|s| s.logprob).sum::<f64>();
            (nll, tokens as f64, bytes as f64)
        })
        .collect())
}

/// Total nats over total tokens, and over total bytes in bits: (nll per token, bits per byte)
/// of the documents `idx` picks from `scores` (as [`score_documents`] returns them).
pub fn rates(scores: &[(f64, f64, f64)], idx: &[usize]) -> (f64, f64) {
    let (mut nll, mut tokens, mut bytes) = (0.0, 0.0, 0.0);
    for &i in idx {
        nll += scores[i].0;
        tokens += scores[i].1;
        bytes += scores[i].2;
    }
    let per = |d: f64| if d > 0.0 { nll / d } else { 0.0 };
    (per(tokens), per(bytes) / std::f64::consts::LN_2)
}

/// Bits per byte, perplexity and nats per token of `docs`.
fn perplexity(
    model: &crate::model::Gpt,
    tok: &Tokenizer,
    eos: u32,
    docs: &[Record],
    params: &EvalParams,
    seed: u64,
    obs: &dyn Observer,
) -> Result<Vec<(String, Score)>, TokenizerError> {
    let scores = score_documents(model, tok, eos, docs, params.batch_size, obs)?;
    let all: Vec<usize> = (0..docs.len()).collect();
    let per_token = |idx: &[usize]| rates(&scores, idx).0;
    let bpb = |idx: &[usize]| rates(&scores, idx).1;
    let ppl = |idx: &[usize]| per_token(idx).exp();
    let n = docs.len();
    let b = params.bootstrap;
    let score = |f: &dyn Fn(&[usize]) -> f64| Score {
        value: f(&all),
        stderr: stats::bootstrap_stderr(n, b, seed, f),
    };
    Ok(vec![
        ("bits_per_byte".to_string(), score(&bpb)),
        ("nll".to_string(), score(&per_token)),
        ("ppl".to_string(), score(&ppl)),
    ])
}

/// `acc` and `acc_norm` of `questions`, and what each question scored.
fn choice(
    model: &crate::model::Gpt,
    tok: &Tokenizer,
    questions: &[Question],
    params: &EvalParams,
    seed: u64,
    obs: &dyn Observer,
) -> Result<(Metrics, Vec<Picks>), TokenizerError> {
    let mut requests = Vec::new();
    for q in questions {
        for c in &q.choices {
            let (context, continuation) = pair::encode_pair(tok, &q.context, c)?;
            requests.push(Request {
                context,
                continuation,
            });
        }
    }
    let scored = loglikelihood(model, &requests, params.batch_size, obs);
    let mut hit = Vec::with_capacity(questions.len());
    let mut hit_norm = Vec::with_capacity(questions.len());
    let mut picks = Vec::with_capacity(questions.len());
    let mut next = 0;
    for q in questions {
        let scores = &scored[next..next + q.choices.len()];
        next += q.choices.len();
        let raw: Vec<f64> = scores.iter().map(|s| s.logprob).collect();
        let norm: Vec<f64> = scores
            .iter()
            .zip(&q.lengths)
            .map(|(s, &chars)| s.logprob / chars.max(1) as f64)
            .collect();
        let (pred, pred_norm) = (argmax(&raw), argmax(&norm));
        hit.push(f64::from(u8::from(pred == q.answer)));
        hit_norm.push(f64::from(u8::from(pred_norm == q.answer)));
        picks.push(Picks {
            loglikelihoods: raw,
            pred,
            pred_norm,
        });
    }
    let mean = |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
    let all: Vec<usize> = (0..questions.len()).collect();
    let n = questions.len();
    let b = params.bootstrap;
    let metrics = vec![
        (
            "acc".to_string(),
            Score {
                value: mean(&hit, &all),
                stderr: stats::bootstrap_stderr(n, b, seed, |i| mean(&hit, i)),
            },
        ),
        (
            "acc_norm".to_string(),
            Score {
                value: mean(&hit_norm, &all),
                stderr: stats::bootstrap_stderr(n, b, seed, |i| mean(&hit_norm, i)),
            },
        ),
    ];
    Ok((metrics, picks))
}

/// The first index of the largest value (as numpy's argmax: ties go to the earlier choice).
fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}
