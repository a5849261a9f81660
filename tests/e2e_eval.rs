//! The eval stage end to end: two models of different training length scored on perplexity
//! (a data stage's documents), multiple choice from a data stage's preference pairs, and a
//! JSONL quiz with one shot; the report's files, `show`, caching, and a malformed quiz file.

mod common;
use common::{outcomes, Project};

const MANIFEST: &str = r#"
name: evals
seed: 3
stages:
  corpus:
    kind: data
    sources: [{ synthetic: { generator: stories, documents: 300 } }]
    split: { val_fraction: 0.1 }
  prefs:
    kind: data
    sources: [{ synthetic: { generator: preferences, documents: 80 } }]
    split: { val_fraction: 0.5 }
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 400
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: {preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 32}
    train: {steps: 40, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 20, eval_batches: 2, log_every: 10}
  early:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: {preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 32}
    train: {steps: 3, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 1, eval_every: 3, eval_batches: 2, log_every: 1}
  scores:
    kind: eval
    device: cpu
    models: [base, early]
    bootstrap: 200
    tasks:
      - { task: perplexity, data: corpus, limit: 20 }
      - { task: choice, data: prefs, name: story-questions, limit: 30 }
      - { task: choice, path: tasks/quiz.jsonl, shots: 1 }
"#;

const QUIZ: &str = r#"{"question": "Where does a cat sleep?", "choices": ["on a mat", "in the sea", "on the moon"], "answer": 0}
{"question": "What did Ada hold?", "choices": ["a red key", "a blue lamp"], "answer": 0}
{"question": "Who went to the park?", "choices": ["Ben", "Cleo", "Dan"], "answer": 2}
"#;

fn task<'a>(results: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    results["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no task {name} in {results}"))
}

fn metric(task: &serde_json::Value, model: usize, name: &str) -> (f64, f64) {
    let m = &task["scores"][model]["metrics"][name];
    (
        m["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {task}")),
        m["stderr"].as_f64().expect("stderr"),
    )
}

#[test]
fn eval_scores_models_on_every_task_and_reports_them() {
    let p = Project::new();
    p.write("pipeline.yaml", MANIFEST);
    p.write("tasks/quiz.jsonl", QUIZ);
    let (ran, report) = p.run_json(&["--threads", "2"]);
    ran.ok();
    assert!(outcomes(&report).values().all(|o| o == "ran"), "{report}");

    let scores = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "scores")
        .unwrap();
    let dir = p.workspace().join("objects");
    let digest = scores["digest"].as_str().unwrap();
    let out = dir.join(&digest[..2]).join(digest);
    for f in ["results.json", "results.md", "results.svg"] {
        assert!(out.join(f).is_file(), "{f} missing from {}", out.display());
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["models"], serde_json::json!(["base", "early"]));

    // Perplexity: the longer-trained model compresses the stories better.
    let ppl = task(&results, "corpus.val");
    assert_eq!(ppl["items"], 20);
    let (bpb_base, se) = metric(ppl, 0, "bits_per_byte");
    let (bpb_early, _) = metric(ppl, 1, "bits_per_byte");
    assert!(bpb_base > 0.0 && se > 0.0, "{ppl}");
    assert!(bpb_base < bpb_early, "base {bpb_base} vs early {bpb_early}");
    let (nll, _) = metric(ppl, 0, "nll");
    let (perplexity, _) = metric(ppl, 0, "ppl");
    assert!((perplexity - nll.exp()).abs() < 1e-9 * perplexity);

    // Multiple choice from the preference pairs (the first 30 of the val split), and the quiz.
    let qa = task(&results, "story-questions");
    assert_eq!(qa["items"], 30);
    for model in 0..2 {
        for m in ["acc", "acc_norm"] {
            let (v, se) = metric(qa, model, m);
            assert!((0.0..=1.0).contains(&v), "{m} {v}");
            // A fraction of 30 answers: a multiple of 1/30.
            assert!(((v * 30.0).round() - v * 30.0).abs() < 1e-9, "{m} {v}");
            assert!(se >= 0.0);
        }
    }
    let quiz = task(&results, "quiz");
    assert_eq!(
        (quiz["items"].as_u64(), quiz["shots"].as_u64()),
        (Some(3), Some(1))
    );

    // The registry's metrics, and `show`.
    assert!(
        scores["metrics"]["base/story-questions/acc"].is_number(),
        "{scores}"
    );
    assert!(
        scores["metrics"]["early/quiz/acc_norm_stderr"].is_number(),
        "{scores}"
    );
    let shown = p.run(&["show", "scores"]);
    shown.ok();
    assert!(
        shown.stdout.contains("| task | metric | base | early |"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("| story-questions (n=30) | acc |"),
        "{}",
        shown.stdout
    );

    // `compare`: the two models' shared metrics side by side, with deltas from the first.
    let compared = p.run(&["compare", "base", "early", "--json"]);
    compared.ok();
    let c = compared.json();
    let val = &c["metrics"]["val_loss"];
    let (base_loss, early_loss) = (
        val[0]["value"].as_f64().unwrap(),
        val[1]["value"].as_f64().unwrap(),
    );
    assert!(
        (val[1]["delta"].as_f64().unwrap() - (early_loss - base_loss)).abs() < 1e-12,
        "{c}"
    );
    let text = p.run(&["compare", "base", "early"]);
    text.ok();
    assert!(
        text.stdout.lines().next().unwrap().starts_with("metric"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("val_loss"), "{}", text.stdout);
    let one = p.run(&["compare", "base"]);
    assert_eq!(one.code, 2, "{}", one.stderr);

    // `--plot`: both training curves in one SVG, one legend entry per run and loss.
    let svg = p.dir.path().join("curves.svg");
    let plotted = p.run(&["compare", "base", "early", "--plot", svg.to_str().unwrap()]);
    plotted.ok();
    let drawn = std::fs::read_to_string(&svg).expect("the plot is written");
    for label in ["base train", "base val", "early train", "early val"] {
        assert!(
            drawn.contains(label),
            "{label} missing from {}",
            svg.display()
        );
    }
    // Artifacts without a curve (data stages) cannot be plotted: said, exit 2.
    let none = p.run(&[
        "compare",
        "corpus",
        "prefs",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("training curve"), "{}", none.stderr);

    // Nothing changed: nothing runs.
    let (ran, again) = p.run_json(&["--threads", "2"]);
    ran.ok();
    assert!(outcomes(&again).values().all(|o| o == "cached"), "{again}");

    // A malformed quiz line: the file is a dependency, so eval runs again and fails, naming
    // the file and line; the earlier result stays in the store.
    p.write(
        "tasks/quiz.jsonl",
        &QUIZ.replace(
            r#""answer": 0}
{"question": "What"#,
            r#""answer": 0}
{"question": "What", "choices": ["x"], "answer": 0}
{"question": "What"#,
        ),
    );
    let (ran, failed) = p.run_json(&["--threads", "2"]);
    assert_eq!(ran.code, 1, "{failed}");
    let eval = &failed["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "scores")
        .unwrap();
    let error = eval["error"].as_str().unwrap_or_default();
    assert!(error.contains("quiz.jsonl:2: 1 choice(s)"), "{error}");
    assert!(
        out.join("results.json").is_file(),
        "the earlier artifact is kept"
    );
}

const GENERATE_MANIFEST: &str = r#"
name: answers
seed: 5
stages:
  corpus:
    kind: data
    sources: [{ synthetic: { generator: stories, documents: 200 } }]
    split: { val_fraction: 0.1 }
  chats:
    kind: data
    sources: [{ synthetic: { generator: instructions, documents: 40 } }]
    split: { val_docs: 10 }
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 400
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: {preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 64}
    train: {steps: 30, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 30, eval_batches: 2, log_every: 10}
  answers:
    kind: eval
    device: cpu
    models: [base]
    bootstrap: 100
    tasks:
      - { task: generate, path: qa.jsonl, chat: false, stop: ["."], max_new_tokens: 12 }
      - { task: generate, data: chats }
"#;

const PROMPTS: [&str; 2] = ["Once upon a time", "The dog"];

fn samples(p: &Project, report: &serde_json::Value, stage: &str) -> Vec<serde_json::Value> {
    let s = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .unwrap();
    let digest = s["digest"].as_str().unwrap();
    let out = p
        .workspace()
        .join("objects")
        .join(&digest[..2])
        .join(digest);
    std::fs::read_to_string(out.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The eval stage's greedy answer equals `binarylm generate --temperature 0`'s text, cut at the
/// task's stop sequence; references that are that answer (or a piece of it) score 1.
#[test]
fn generate_task_scores_greedy_answers_against_references() {
    let p = Project::new();
    p.write("pipeline.yaml", GENERATE_MANIFEST);
    let qa = |answers: [&str; 2]| {
        PROMPTS
            .iter()
            .zip(answers)
            .map(|(q, a)| serde_json::json!({"prompt": q, "answer": a}).to_string() + "\n")
            .collect::<String>()
    };
    p.write("qa.jsonl", &qa(["never said", "never said either"]));
    let (ran, report) = p.run_json(&["--threads", "2"]);
    ran.ok();
    let lines = samples(&p, &report, "answers");
    // Two prompts from the file, ten held-out exchanges from the data stage.
    assert_eq!(lines.len(), 12, "{lines:?}");
    let scores = &report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "answers")
        .unwrap()["metrics"];
    assert_eq!(scores["base/qa/exact_match"], 0.0, "{scores}");
    assert!(scores["base/chats.val/exact_match"].is_number(), "{scores}");

    // What `generate` says, greedily, for the same prompts and budget.
    let greedy: Vec<String> = PROMPTS
        .iter()
        .map(|q| {
            let g = p.run(&[
                "generate",
                "base",
                "--prompt",
                q,
                "-n",
                "12",
                "--temperature",
                "0",
                "--json",
            ]);
            g.ok();
            let v: serde_json::Value = serde_json::from_str(g.stdout.trim()).unwrap();
            let text = v["text"]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"))
                .to_string();
            text.split('.').next().unwrap().to_string()
        })
        .collect();
    for (line, want) in lines.iter().zip(&greedy) {
        assert_eq!(line["answer"].as_str().unwrap(), want, "{line}");
        assert_eq!(line["exact_match"], false);
    }

    // References that are the first answer, and a piece of the second: exact 1/2, contains 2/2.
    let piece: String = greedy[1].trim().chars().take(3).collect();
    assert!(!piece.trim().is_empty(), "{greedy:?}");
    p.write("qa.jsonl", &qa([&greedy[0], &piece]));
    let (ran, report) = p.run_json(&["--threads", "2"]);
    ran.ok();
    let stage = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "answers")
        .unwrap();
    assert_eq!(stage["status"], "ran", "the references file is an input");
    let m = &stage["metrics"];
    let exact = m["base/qa/exact_match"].as_f64().unwrap();
    let contains = m["base/qa/contains"].as_f64().unwrap();
    // The second answer equals its 3-character piece only if it is that short.
    let second_exact = greedy[1].trim() == piece;
    assert_eq!(exact, if second_exact { 1.0 } else { 0.5 }, "{m}");
    assert_eq!(contains, 1.0, "{m}");

    // A malformed line is named with its line number.
    p.write(
        "qa.jsonl",
        "{\"prompt\": \"x\", \"answer\": \"y\"}\n{\"prompt\": \"x\"}\n",
    );
    let (ran, failed) = p.run_json(&["--threads", "2"]);
    assert_eq!(ran.code, 1, "{failed}");
    let error = failed["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "answers")
        .unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("qa.jsonl:2:") && error.contains("missing"),
        "{error}"
    );
}
