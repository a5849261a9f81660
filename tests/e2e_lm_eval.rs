//! Parity with EleutherAI's lm-evaluation-harness: a tiny model trained by `binarylm run`
//! (data → tokenizer → pretrain) and scored by an `eval` stage on a local JSONL quiz, then
//! served by `binarylm serve` and scored again by `lm_eval --model local-completions` on the
//! same JSONL through a task YAML of ours; the same questions in ARC's layout are scored with
//! lm_eval's own `arc_easy` definition. Both must give the same `acc` and `acc_norm`, and the
//! same log-likelihood for every choice.
//!
//! Accuracies are counts over the same questions, so any difference means the two sides built
//! different prompts, tokenized them differently or normalised differently. lm_eval runs from
//! its own venv (scripts/setup.sh installs scripts/requirements-lm-eval.txt); offline: the task
//! reads a local file and the tokenizer is the server's (`tokenizer_backend=remote`).

mod common;
use common::server::Server;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Log-likelihoods from the server (one sequence, KV cache) and from the eval stage (batched,
/// one full forward pass) agree to float32 rounding; a different token anywhere moves them by
/// far more than this.
const LOGLIK_TOLERANCE: f64 = 1e-4;

use common::{outcomes, stage, Project};
use serde_json::Value;

const MANIFEST: &str = r#"
name: lm-eval-parity
seed: 5
stages:
  corpus:
    kind: data
    sources: [{ synthetic: { generator: stories, documents: 300 } }]
    split: { val_fraction: 0.1 }
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 400
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: {preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 128}
    train: {steps: 40, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 20, eval_batches: 2, log_every: 10}
  scores:
    kind: eval
    device: cpu
    models: [base]
    bootstrap: 20
    tasks:
      - { task: choice, path: tasks/quiz.jsonl, name: quiz }
      - { task: choice, path: tasks/arc.jsonl, format: arc, name: arc }
      - { task: choice, path: tasks/mmlu.jsonl, format: mmlu, name: mmlu }
"#;

/// The model's window, which lm_eval is told (`max_length`). The quiz's prompts are shorter, so
/// neither side cuts any; the test checks lm_eval did not.
const BLOCK_SIZE: usize = 128;

/// The same quiz as an lm-evaluation-harness task: its `generic` layout and prompt
/// (`Question: …\nAnswer:`, each choice after the default target delimiter, a space).
const TASK_YAML: &str = r#"task: binarylm_quiz
dataset_path: json
dataset_kwargs:
  data_files:
    test: QUIZ_PATH
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{question}}\nAnswer:"
doc_to_choice: "{{choices}}"
doc_to_target: "{{answer}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"#;

/// The quiz again in ARC's layout, scored with lm-evaluation-harness's own `arc_easy` task
/// definition (its prompt, choices and target, from the installed package) with only the data
/// pointed at the local file: our `arc` format is checked against theirs, not a transcription.
const ARC_YAML: &str = r#"include: ARC_EASY_YAML
task: binarylm_arc
tag: []
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: ARC_PATH
training_split: null
validation_split: null
test_split: test
"#;

/// The quiz in MMLU's layout (four lettered choices), with lm_eval's own MMLU template.
const MMLU_YAML: &str = r#"include: MMLU_TEMPLATE
task: binarylm_mmlu
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: MMLU_PATH
fewshot_split: null
test_split: test
"#;

const QUESTIONS: usize = 40;

/// lm_eval takes ~30 s here (most of it importing); a stuck one is stopped long before cargo's
/// own patience runs out.
const LM_EVAL_DEADLINE: Duration = Duration::from_secs(600);

/// 40 questions in the story world's vocabulary, with 2 to 4 choices of different lengths (so
/// `acc_norm` can pick differently from `acc`), some not ASCII (lengths count characters, not
/// bytes). Seeded, so the file is the same on every run.
fn quiz() -> String {
    let names = ["Mia", "Ben", "Cleo", "Dan", "Ada", "Tom", "Zoë"];
    let things = [
        "a red key",
        "a blue lamp",
        "an old map",
        "a small boat",
        "the green hat",
        "a cup of tea",
        "a naïve café sign",
    ];
    let places = [
        "the park",
        "the sea",
        "the old mill",
        "the market",
        "the forest",
        "home",
    ];
    let mut state = 0x5eed_u64;
    let mut next = |n: usize| {
        // SplitMix64: a few lines, and the same numbers on every platform.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    };
    let pick = |pool: &[&str], k: usize, next: &mut dyn FnMut(usize) -> usize| {
        let mut out: Vec<String> = Vec::new();
        while out.len() < k {
            let c = pool[next(pool.len())].to_string();
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    };
    let mut lines = String::new();
    for i in 0..QUESTIONS {
        let who = names[next(names.len())];
        let (question, choices) = match i % 3 {
            0 => (format!("What did {who} find?"), pick(&things, 3, &mut next)),
            1 => (format!("Where did {who} go?"), pick(&places, 4, &mut next)),
            _ => (
                format!("Who went to {}?", places[next(places.len())]),
                pick(&names, 2, &mut next),
            ),
        };
        let answer = next(choices.len());
        lines.push_str(
            &serde_json::json!({ "question": question, "choices": choices, "answer": answer })
                .to_string(),
        );
        lines.push('\n');
    }
    lines
}

/// The quiz in ARC's layout: `choices: {text, label}` lettered A, B, …, and `answerKey`.
fn arc(quiz: &str) -> String {
    let mut out = String::new();
    for (i, line) in quiz.lines().enumerate() {
        let q: Value = serde_json::from_str(line).unwrap();
        let texts = q["choices"].as_array().unwrap();
        let labels: Vec<String> = (0..texts.len())
            .map(|k| char::from(b'A' + k as u8).to_string())
            .collect();
        let key = &labels[q["answer"].as_u64().unwrap() as usize];
        out.push_str(
            &serde_json::json!({
                "id": format!("q{i}"),
                "question": q["question"],
                "choices": { "text": texts, "label": labels },
                "answerKey": key,
            })
            .to_string(),
        );
        out.push('\n');
    }
    out
}

/// The quiz in MMLU's layout: exactly four choices (shorter questions get distractors that no
/// other choice uses) and `answer` as an index.
fn mmlu(quiz: &str) -> String {
    let mut out = String::new();
    for line in quiz.lines() {
        let q: Value = serde_json::from_str(line).unwrap();
        let mut choices: Vec<Value> = q["choices"].as_array().unwrap().clone();
        for filler in ["nobody at all", "the moon"] {
            if choices.len() < 4 {
                choices.push(Value::from(filler));
            }
        }
        let item = serde_json::json!({
            "question": q["question"],
            "choices": choices,
            "answer": q["answer"],
        });
        out.push_str(&item.to_string());
        out.push('\n');
    }
    out
}

/// A task definition shipped in lm-evaluation-harness's package, in the venv holding `python`.
fn lm_eval_task_file(python: &Path, rel: &str) -> PathBuf {
    let lib = python.parent().unwrap().parent().unwrap().join("lib");
    std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}", lib.display()))
        .map(|e| {
            e.unwrap()
                .path()
                .join("site-packages/lm_eval/tasks")
                .join(rel)
        })
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no lm_eval/tasks/{rel} under {}", lib.display()))
}

/// lm-evaluation-harness's venv, as scripts/env.sh names it. Missing is a failure, not a skip:
/// scripts/test.sh installs it.
fn lm_eval_python() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_LMEVAL_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("BINARYLM_VENV").map(|v| {
                let mut v = v;
                v.push("-lm-eval");
                PathBuf::from(v)
            })
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-lm-eval"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no lm-evaluation-harness venv at {}: run `bash scripts/setup.sh` (it installs \
         scripts/requirements-lm-eval.txt there)",
        venv.display()
    );
    python
}

/// The one file named `<prefix>*<suffix>` that lm_eval wrote under `dir` (it nests its output
/// in a folder named after the model, with a timestamp in each name).
fn find_output(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.starts_with(prefix) && name.ends_with(suffix) {
                found.push(path);
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "{prefix}*{suffix} under {}: {found:?}",
        dir.display()
    );
    found.pop().unwrap()
}

/// Runs `cmd` with its output in `log`, killed after `deadline` (lm_eval retries a silent server
/// for minutes; a hung test would say nothing). Returns its status and the log.
fn run_logged(mut cmd: Command, log: &Path, deadline: Duration) -> (ExitStatus, String) {
    let file = std::fs::File::create(log).expect("create lm_eval log");
    let mut child = cmd
        .stdout(file.try_clone().expect("log handle"))
        .stderr(file)
        .spawn()
        .expect("start lm_eval");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for lm_eval") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!(
                "lm_eval still running after {deadline:?}; its log ends:\n{}",
                tail(&text)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

/// The last 60 lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// A JSON list of strings.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn lm_eval_local_completions_matches_the_eval_stage() {
    let python = lm_eval_python();
    let p = Project::new();
    p.write("pipeline.yaml", MANIFEST);
    let quiz = quiz();
    p.write("tasks/quiz.jsonl", &quiz);
    p.write("tasks/arc.jsonl", &arc(&quiz));
    p.write("tasks/mmlu.jsonl", &mmlu(&quiz));
    p.write(
        "lm_eval_tasks/binarylm_quiz.yaml",
        &TASK_YAML.replace(
            "QUIZ_PATH",
            &p.file("tasks/quiz.jsonl").display().to_string(),
        ),
    );
    p.write(
        "lm_eval_tasks/binarylm_arc.yaml",
        &ARC_YAML
            .replace(
                "ARC_EASY_YAML",
                &lm_eval_task_file(&python, "arc/arc_easy.yaml")
                    .display()
                    .to_string(),
            )
            .replace("ARC_PATH", &p.file("tasks/arc.jsonl").display().to_string()),
    );
    p.write(
        "lm_eval_tasks/binarylm_mmlu.yaml",
        &MMLU_YAML
            .replace(
                "MMLU_TEMPLATE",
                &lm_eval_task_file(&python, "mmlu/default/_default_template_yaml")
                    .display()
                    .to_string(),
            )
            .replace(
                "MMLU_PATH",
                &p.file("tasks/mmlu.jsonl").display().to_string(),
            ),
    );

    let (ran, report) = p.run_json(&["--threads", "2"]);
    ran.ok();
    assert!(outcomes(&report).values().all(|o| o == "ran"), "{report}");
    let digest = stage(&report, "scores")["digest"].as_str().unwrap();
    let artifact = p
        .workspace()
        .join("objects")
        .join(&digest[..2])
        .join(digest);
    let ours = read_json(&artifact.join("results.json"));
    let our_samples: Vec<Value> = std::fs::read_to_string(artifact.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let server = Server::start(&p, "base");
    let out = p.file("lm_eval_out");
    let started = Instant::now();
    let mut lm_eval = Command::new(&python);
    lm_eval
        .args([
            "-m",
            "lm_eval",
            "--model",
            "local-completions",
            "--model_args",
        ])
        .arg(format!(
            "model=base,base_url={}/v1/completions,tokenizer_backend=remote,max_length={}",
            server.url, BLOCK_SIZE
        ))
        .args([
            "--tasks",
            "binarylm_quiz,binarylm_arc,binarylm_mmlu",
            "--include_path",
        ])
        .arg(p.file("lm_eval_tasks"))
        .args(["--batch_size", "16", "--log_samples", "--output_path"])
        .arg(&out)
        .current_dir(p.path())
        // Nothing beyond the loopback server: the tasks read local files, the tokenizer is
        // the server's, and the datasets cache lives in the scratch project.
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("HF_HOME", p.file("hf"))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null());
    let (status, log) = run_logged(lm_eval, &p.file("lm_eval.log"), LM_EVAL_DEADLINE);
    assert!(
        status.success(),
        "lm_eval failed ({status}):\n{}",
        tail(&log)
    );
    eprintln!("lm_eval took {:.1?}", started.elapsed());
    assert!(
        !log.contains("Left truncating"),
        "lm_eval cut a prompt to fit max_length={BLOCK_SIZE}; parity is checked on whole prompts"
    );
    drop(server);

    let theirs = read_json(&find_output(&out, "results_", ".json"));
    // Each task: its name here and in lm_eval, and the prompt and choices lm_eval's sample
    // must show for a document.
    let qa = |doc: &Value| format!("Question: {}\nAnswer:", doc["question"].as_str().unwrap());
    let lettered = |doc: &Value| {
        let mut prompt = doc["question"].as_str().unwrap().trim().to_string();
        for (k, c) in doc["choices"].as_array().unwrap().iter().enumerate() {
            prompt.push_str(&format!(
                "\n{}. {}",
                char::from(b'A' + k as u8),
                c.as_str().unwrap()
            ));
        }
        prompt + "\nAnswer:"
    };
    let quiz_choices = |doc: &Value| strings(&doc["choices"]);
    let arc_choices = |doc: &Value| strings(&doc["choices"]["text"]);
    let letters = |_: &Value| vec!["A".to_string(), "B".into(), "C".into(), "D".into()];
    let tasks: [(&str, &str, &Prompt, &Choices); 3] = [
        ("quiz", "binarylm_quiz", &qa, &quiz_choices),
        ("arc", "binarylm_arc", &qa, &arc_choices),
        ("mmlu", "binarylm_mmlu", &lettered, &letters),
    ];
    for (ours_name, theirs_name, prompt_of, choices_of) in tasks {
        let samples: Vec<&Value> = our_samples
            .iter()
            .filter(|s| s["task"] == ours_name)
            .collect();
        let their_samples = std::fs::read_to_string(find_output(
            &out,
            &format!("samples_{theirs_name}_"),
            ".jsonl",
        ))
        .unwrap();
        same_scores(&ours, ours_name, &theirs, theirs_name);
        same_questions(&samples, &their_samples, prompt_of, choices_of, theirs_name);
    }
}

/// The prompt lm_eval must have built for a document.
type Prompt = dyn Fn(&Value) -> String;
/// The choices (as lm_eval's `doc_to_choice` gives them) of a document.
type Choices = dyn Fn(&Value) -> Vec<String>;

/// `acc` and `acc_norm` of the eval stage's task `ours_name` and lm_eval's `theirs_name`.
/// lm_eval's MMLU definition reports `acc` only: its choices are single letters, all of length
/// 1, so `acc_norm` equals `acc` (checked on our side).
fn same_scores(ours: &Value, ours_name: &str, theirs: &Value, theirs_name: &str) {
    let task = ours["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == ours_name)
        .unwrap_or_else(|| panic!("no {ours_name} task in {ours}"));
    assert_eq!(task["items"], QUESTIONS, "{task}");
    assert_eq!(
        theirs["n-samples"][theirs_name]["effective"], QUESTIONS,
        "{theirs}"
    );
    let r = &theirs["results"][theirs_name];
    let value = |metric: &str| {
        task["scores"][0]["metrics"][metric]["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{metric}: {task}"))
    };
    if r.get("acc_norm,none").is_none() {
        assert_eq!(value("acc"), value("acc_norm"), "{ours_name}: {task}");
    }
    for metric in ["acc", "acc_norm"] {
        let mine = value(metric);
        if metric == "acc_norm" && r.get("acc_norm,none").is_none() {
            continue;
        }
        let other = r[format!("{metric},none")]
            .as_f64()
            .unwrap_or_else(|| panic!("{metric}: {r}"));
        assert!(
            (mine - other).abs() < 1e-6,
            "{ours_name} {metric}: lm_eval {other}, eval stage {mine}"
        );
    }
}

/// Question by question: the same prompts, the same log-likelihood for every choice, the same
/// lengths and picks. Counts could agree by chance; 100-odd log-likelihoods cannot.
fn same_questions(
    ours: &[&Value],
    theirs: &str,
    prompt_of: &Prompt,
    choices_of: &Choices,
    task: &str,
) {
    assert_eq!(ours.len(), QUESTIONS, "{task}");
    let mut compared = 0;
    for line in theirs.lines() {
        let s: Value = serde_json::from_str(line).unwrap();
        let i = s["doc_id"].as_u64().unwrap() as usize;
        let mine = ours[i];
        assert_eq!(mine["index"], i);
        let doc = &s["doc"];
        let choices = choices_of(doc);
        let args = &s["arguments"];
        for (k, choice) in choices.iter().enumerate() {
            let arg = &args[format!("gen_args_{k}")];
            assert_eq!(
                arg["arg_0"].as_str().unwrap(),
                prompt_of(doc),
                "{task} question {i}"
            );
            assert_eq!(arg["arg_1"].as_str().unwrap(), format!(" {choice}"));
        }
        // lm_eval logs each response as [loglikelihood, is_greedy], both as strings.
        let lls: Vec<f64> = s["resps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0][0].as_str().unwrap().parse().unwrap())
            .collect();
        let our_lls: Vec<f64> = mine["loglikelihoods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(lls.len(), our_lls.len(), "{task} question {i}");
        for (k, (a, b)) in lls.iter().zip(&our_lls).enumerate() {
            assert!(
                (a - b).abs() < LOGLIK_TOLERANCE,
                "{task} question {i} choice {k} ({:?}): lm_eval {a}, eval stage {b}",
                choices[k]
            );
        }
        // acc_norm divides by the choice's characters, without the delimiter's space.
        let lengths: Vec<u64> = choices.iter().map(|c| c.chars().count() as u64).collect();
        assert_eq!(
            mine["lengths"],
            serde_json::json!(lengths),
            "{task} question {i}"
        );
        let argmax =
            |v: &[f64]| (0..v.len()).fold(0, |best, j| if v[j] > v[best] { j } else { best });
        let norm: Vec<f64> = lls
            .iter()
            .zip(&lengths)
            .map(|(l, n)| l / *n as f64)
            .collect();
        assert_eq!(mine["pred"], argmax(&lls), "{task} question {i}");
        assert_eq!(mine["pred_norm"], argmax(&norm), "{task} question {i}");
        // Their gold answer is ours (for ARC: the position of `answerKey` among the labels).
        let gold = s["target"].as_str().unwrap_or_default().parse::<u64>().ok();
        assert_eq!(gold, mine["answer"].as_u64(), "{task} question {i}: {s}");
        compared += 1;
    }
    assert_eq!(compared, QUESTIONS, "{task}");
}
