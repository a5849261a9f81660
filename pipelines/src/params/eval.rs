//! `kind: eval` — score one or more models on the same tasks, with standard errors, so that a
//! manifest says whether a stage made the model better (docs/evaluation.md).

use std::path::Path;

use super::data::SplitName;
use super::{Invalid, KindInfo, LocalFilesError, Reproducibility, Runner, StageKind};
use crate::artifact::ArtifactType;
use crate::manifest::Reference;

/// `kind: eval` — every model in `models` scored on every task in `tasks`; the artifact holds
/// `results.json`, a Markdown table (`results.md`), a chart (`results.svg`) and, for
/// multiple-choice tasks, each question's scores (`samples.jsonl`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalParams {
    /// Model stages to score (`pretrain`, and later `sft`, `dpo`, `quantize` stages), in the
    /// order the report lists them. Required, at least one.
    pub models: Vec<String>,
    /// What to measure. Required, at least one.
    pub tasks: Vec<EvalTask>,
    /// Sequences scored per forward pass: memory grows with batch × context × vocabulary.
    /// Default 16.
    #[serde(default = "sixteen")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Resamples behind each bootstrap standard error. Default 1000.
    #[serde(default = "thousand")]
    #[schemars(range(min = 10))]
    pub bootstrap: usize,
    /// `auto` (CUDA when present), `cpu`, `cuda`, `cuda:N`. Default `auto`.
    #[serde(default = "super::pretrain::default_device")]
    pub device: String,
}

/// The kinds of task.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Loss on a data stage's split: nats per token, perplexity, and bits per byte (which
    /// compares models with different tokenizers).
    Perplexity,
    /// Multiple choice by log-likelihood: `acc` (the likeliest choice is right) and `acc_norm`
    /// (likelihood per byte of the choice, so long answers are not penalised).
    Choice,
    /// Greedy answers to prompts, cut at the first stop sequence: `exact_match` (the answer,
    /// trimmed, equals a reference) and `contains` (a reference appears in the answer).
    Generate,
}

/// The layout of a multiple-choice JSONL file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChoiceFormat {
    /// `{"question": …, "choices": […], "answer": <index>}`.
    Generic,
    /// HellaSwag's published fields: `ctx` (or `ctx_a`/`ctx_b`), `endings`, `label`,
    /// `activity_label`.
    Hellaswag,
    /// ARC's: `question`, `choices: {text: […], label: […]}`, `answerKey`.
    Arc,
    /// MMLU's: `question`, `choices` (four), `answer` (index); answered with the letter.
    Mmlu,
    /// PIQA's: `goal`, `sol1`, `sol2`, `label`.
    Piqa,
}

/// One task. `task` says which; the other keys depend on it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalTask {
    /// `perplexity`, `choice` or `generate`. Required.
    pub task: TaskKind,
    /// Name of the task in the report. Default: from the source (`val`, the file's stem, the
    /// data stage's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A data stage to read: its documents (`perplexity`), its preference records (`choice`:
    /// prompt, chosen, rejected — the chosen answer is right), or its exchanges (`generate`:
    /// prompt and response, or the chosen answer of a preference record, is the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The data stage's split. Default `val`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitName>,
    /// A JSONL file of questions (`choice`, in `format`) or of prompts (`generate`: one
    /// `{"prompt": …, "answer": …}` or `{"prompt": …, "answers": […]}` per line), relative to
    /// the manifest; its content is part of the fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The layout of `path`. Default `generic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ChoiceFormat>,
    /// Solved examples put before each question (`choice`), drawn from the same source
    /// (never the question itself) with the manifest's seed. Default 0.
    #[serde(default)]
    pub shots: usize,
    /// Score at most this many items (documents or questions), the first ones. Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub limit: Option<usize>,
    /// `generate`: the answer ends before the first of these texts (besides the end of the
    /// model's turn, or its end-of-document token). Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// `generate`: the most tokens an answer may have. Default 32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_new_tokens: Option<usize>,
    /// `generate`: wrap each prompt in the model's chat template (a user turn, then the
    /// assistant's), as a fine-tuned assistant is asked; `false` continues the raw prompt text,
    /// as a pretrained model is. Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<bool>,
}

/// Answer length of a `generate` task when `max_new_tokens` is not given.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 32;

impl EvalTask {
    /// The name the report uses.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        if let Some(p) = &self.path {
            return Path::new(p)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.clone());
        }
        let split = match self.split.unwrap_or(SplitName::Val) {
            SplitName::Train => "train",
            SplitName::Val => "val",
        };
        match &self.data {
            Some(d) => format!("{d}.{split}"),
            None => split.to_string(),
        }
    }

    /// The split read from a data stage.
    pub fn split_name(&self) -> &'static str {
        match self.split.unwrap_or(SplitName::Val) {
            SplitName::Train => "train",
            SplitName::Val => "val",
        }
    }
}

fn sixteen() -> usize {
    16
}
fn thousand() -> usize {
    1000
}
/// What `models:` can score.
const MODEL_ACCEPTS: &[ArtifactType] = &[ArtifactType::Model, ArtifactType::QuantizedModel];

impl StageKind for EvalParams {
    const INFO: KindInfo = KindInfo {
        name: "eval",
        // 1: first version.
        // 2: acc_norm divides by the choice without its joining space, continuations are
        //    tokenized as lm-evaluation-harness does, and samples.jsonl is written.
        // 3: requests that give the model the same input share one batch row, which changes
        //    the batches and so the last float bits of some log-likelihoods.
        version: 3,
        produces: ArtifactType::EvalReport,
        runner: Runner::Torch,
        // Scores are per model and task; there is no single number to headline.
        headline: None,
        // Scores are sums of floating-point log-probabilities: bit-exact on one CPU setup, and
        // otherwise the report's bytes differ in the last digits while accuracies (counts of
        // argmax decisions) almost never move.
        reproducible: Reproducibility::SameMachine(&[]),
    };

    fn references(&self) -> Vec<Reference> {
        let mut refs: Vec<Reference> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| Reference {
                stage: m.clone(),
                key: format!("models[{i}]"),
                accepts: MODEL_ACCEPTS,
            })
            .collect();
        for (i, t) in self.tasks.iter().enumerate() {
            if let Some(d) = &t.data {
                refs.push(Reference {
                    stage: d.clone(),
                    key: format!("tasks[{i}].data"),
                    accepts: &[ArtifactType::Corpus],
                });
            }
        }
        refs
    }

    fn local_files(&self, _manifest_dir: &Path) -> Result<Vec<String>, LocalFilesError> {
        let mut files: Vec<String> = self.tasks.iter().filter_map(|t| t.path.clone()).collect();
        files.sort();
        files.dedup();
        Ok(files)
    }

    fn validate(&self) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let mut invalid = |path: String, message: String, hint: &str| {
            problems.push(Invalid {
                path,
                on_key: false,
                message,
                hint: Some(hint.to_string()),
            });
        };
        if self.models.is_empty() {
            invalid(
                "models".into(),
                "`models` is empty".into(),
                "name the model stages to score, e.g. `models: [base]`",
            );
        }
        for (i, m) in self.models.iter().enumerate() {
            if self.models[..i].contains(m) {
                invalid(
                    format!("models[{i}]"),
                    format!("`{m}` is listed twice"),
                    "name each model once",
                );
            }
        }
        if self.tasks.is_empty() {
            invalid(
                "tasks".into(),
                "`tasks` is empty".into(),
                "add a task, e.g. `- { task: perplexity, data: corpus }`",
            );
        }
        if self.batch_size == 0 {
            invalid(
                "batch_size".into(),
                "`batch_size` must be at least 1".into(),
                "the default is 16",
            );
        }
        if self.bootstrap < 10 {
            invalid(
                "bootstrap".into(),
                format!("`bootstrap` must be at least 10; got {}", self.bootstrap),
                "the default, 1000 resamples, gives standard errors to about 2 %",
            );
        }
        if !super::pretrain::is_device(&self.device) {
            invalid(
                "device".into(),
                format!("unknown device `{}`", self.device),
                "use auto, cpu, cuda or cuda:N",
            );
        }
        let mut names: Vec<String> = Vec::new();
        for (i, t) in self.tasks.iter().enumerate() {
            let at = |key: &str| format!("tasks[{i}].{key}");
            match t.task {
                TaskKind::Perplexity => {
                    if t.data.is_none() {
                        invalid(
                            at("task"),
                            "a `perplexity` task needs `data`".into(),
                            "name the data stage whose documents to score, e.g. `data: corpus`",
                        );
                    }
                    for (key, set) in [
                        ("path", t.path.is_some()),
                        ("format", t.format.is_some()),
                        ("shots", t.shots != 0),
                    ] {
                        if set {
                            invalid(
                                at(key),
                                format!("`{key}` does not apply to a `perplexity` task"),
                                "perplexity scores a data stage's documents; `path`, `format` and `shots` are for `choice` tasks",
                            );
                        }
                    }
                }
                TaskKind::Generate => {
                    match (&t.data, &t.path) {
                        (None, None) => invalid(
                            at("task"),
                            "a `generate` task needs `path` (a JSONL file of prompts and answers) or `data` (a data stage of exchanges)".into(),
                            "e.g. `data: chats` for a data stage of the `instructions` generator",
                        ),
                        (Some(_), Some(_)) => invalid(
                            at("path"),
                            "a `generate` task reads `path` or `data`, not both".into(),
                            "split it into two tasks",
                        ),
                        _ => {}
                    }
                    for (key, set) in [("format", t.format.is_some()), ("shots", t.shots != 0)] {
                        if set {
                            invalid(
                                at(key),
                                format!("`{key}` does not apply to a `generate` task"),
                                "a generate task reads `{\"prompt\", \"answer\"}` lines and asks each prompt alone",
                            );
                        }
                    }
                    if t.max_new_tokens == Some(0) {
                        invalid(
                            at("max_new_tokens"),
                            "`max_new_tokens` must be at least 1".into(),
                            "the default is 32",
                        );
                    }
                    if let Some(j) = t.stop.iter().position(String::is_empty) {
                        invalid(
                            at(&format!("stop[{j}]")),
                            "a stop sequence is empty".into(),
                            "remove it, or give the text an answer ends before, e.g. \"\\n\"",
                        );
                    }
                }
                TaskKind::Choice => match (&t.data, &t.path) {
                    (None, None) => invalid(
                        at("task"),
                        "a `choice` task needs `path` (a JSONL file) or `data` (a data stage of preference records)".into(),
                        "e.g. `path: tasks/arc.jsonl` with `format: arc`",
                    ),
                    (Some(_), Some(_)) => invalid(
                        at("path"),
                        "a `choice` task reads `path` or `data`, not both".into(),
                        "split it into two tasks",
                    ),
                    (Some(_), None) if t.format.is_some() => invalid(
                        at("format"),
                        "`format` describes a JSONL file; a data stage's preference records have one layout".into(),
                        "remove `format`",
                    ),
                    _ => {}
                },
            }
            if t.task != TaskKind::Generate {
                for (key, set) in [
                    ("stop", !t.stop.is_empty()),
                    ("max_new_tokens", t.max_new_tokens.is_some()),
                    ("chat", t.chat.is_some()),
                ] {
                    if set {
                        invalid(
                            at(key),
                            format!("`{key}` applies to `generate` tasks only"),
                            "remove it, or make the task `task: generate`",
                        );
                    }
                }
            }
            if let Some(p) = &t.path {
                if p.trim().is_empty() {
                    invalid(
                        at("path"),
                        "`path` is empty".into(),
                        "give a JSONL file relative to the manifest",
                    );
                }
            }
            if t.limit == Some(0) {
                invalid(
                    at("limit"),
                    "`limit` must be at least 1".into(),
                    "leave it out to score every item",
                );
            }
            let name = t.display_name();
            if names.contains(&name) {
                invalid(
                    at("name"),
                    format!("two tasks are named `{name}`"),
                    "give one of them a `name`",
                );
            }
            names.push(name);
        }
        problems
    }
}
