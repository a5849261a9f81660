//! The fine-tuning stages through the real binaries: data (instructions) → tokenizer →
//! pretrain → sft (full and LoRA) → dpo (LoRA, IPO) and deploy. The fine-tuned artifacts are
//! ordinary models (deploy serves one, `generate` samples one, as text or as a chat answer),
//! `binarylm show` summarises them, and a fine-tuning process killed mid-run resumes to the
//! same files as an uninterrupted one (sft full and LoRA, dpo LoRA).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ran, stage, Project};

/// `binarylm-torch`, built beside `binarylm` by `cargo build --workspace`.
fn torch_exe() -> PathBuf {
    let exe = Path::new(common::BIN).with_file_name("binarylm-torch");
    assert!(
        exe.exists(),
        "{} is missing: build it with `cargo build -p stages-torch` (scripts/test.sh does)",
        exe.display()
    );
    exe
}

/// Small enough to run in seconds on two cores. A conversation (a story and a question) is
/// 100–200 tokens, so rows of 384 hold two or three.
const MANIFEST: &str = r#"
name: sft-e2e
seed: 5
stages:
  chats:
    kind: data
    sources: [{ synthetic: { generator: instructions, documents: 300 } }]
    split: { val_docs: 16 }
  tok:
    kind: tokenizer
    data: chats
    vocab_size: 384
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: { n_layer: 1, n_embd: 32, n_head: 2, block_size: 384 }
    train: { steps: 20, batch_size: 4, lr: 0.005, warmup_steps: 2, eval_every: 20, eval_batches: 1, log_every: 10 }
  tuned:
    kind: sft
    model: base
    data: chats
    device: cpu
    train: { steps: 12, batch_size: 4, lr: 0.003, warmup_steps: 2, eval_every: 6, eval_batches: 2, log_every: 3 }
    eval: { examples: 4, max_new_tokens: 8 }
  adapted:
    kind: sft
    model: base
    data: chats
    device: cpu
    epochs: 1
    lora: { r: 2, alpha: 4, targets: [q, v, mlp] }
    train: { batch_size: 16, lr: 0.01, warmup_steps: 2, eval_every: 100, eval_batches: 1, log_every: 5 }
    eval: { examples: 4, max_new_tokens: 8 }
  prefs:
    kind: data
    sources: [{ synthetic: { generator: preferences, documents: 120 } }]
    split: { val_docs: 8 }
  aligned:
    kind: dpo
    model: tuned
    data: prefs
    beta: 0.2
    loss: ipo
    lora: { r: 2, alpha: 4, targets: [q, v] }
    train: { steps: 6, batch_size: 4, lr: 0.003, warmup_steps: 1, eval_every: 3, eval_batches: 2, log_every: 2 }
    eval: { examples: 4, max_new_tokens: 8 }
  api:
    kind: deploy
    model: adapted
    device: cpu
    smoke: { max_tokens: 4 }
  tuned8:
    kind: quantize
    model: tuned
"#;

fn files(p: &Project, stage_name: &str) -> (PathBuf, Vec<String>) {
    let show = p.run(&["show", stage_name, "--json"]);
    show.ok();
    let json = show.json();
    let dir = PathBuf::from(json["path"].as_str().expect("artifact path"));
    let names = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    (dir, names)
}

#[test]
fn sft_full_and_lora_make_models_that_deploy_and_generate() {
    torch_exe();
    let p = Project::new();
    p.write("pipeline.yaml", MANIFEST);
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert_eq!(
        ran(&j),
        ["adapted", "aligned", "api", "base", "chats", "prefs", "tok", "tuned", "tuned8"]
    );
    // The quantized assistant keeps the chat template (it ends turns at <|end|>).
    let (tuned_dir, _) = files(&p, "tuned");
    let (q_dir, q_files) = files(&p, "tuned8");
    assert!(
        q_files.iter().any(|f| f == "tokenizer_config.json"),
        "{q_files:?}"
    );
    assert_eq!(
        std::fs::read(tuned_dir.join("tokenizer_config.json")).unwrap(),
        std::fs::read(q_dir.join("tokenizer_config.json")).unwrap()
    );

    let tuned = &stage(&j, "tuned")["metrics"];
    assert_eq!(stage(&j, "tuned")["headline"], "val_loss", "{tuned}");
    let (before, after) = (
        tuned["val_loss_before"].as_f64().unwrap(),
        tuned["val_loss"].as_f64().unwrap(),
    );
    assert!(
        after < before - 0.1,
        "fine-tuning should lower the assistant-token loss: {before} → {after}"
    );
    assert_eq!(tuned["trainable_params"], tuned["params"], "{tuned}");
    assert_eq!(tuned["steps"].as_f64(), Some(12.0));
    for key in ["exact_match", "exact_match_before", "examples", "rows"] {
        assert!(tuned[key].as_f64().is_some(), "{key} missing: {tuned}");
    }
    // Packing: fewer rows than conversations.
    assert!(
        tuned["rows"].as_f64() < tuned["examples"].as_f64(),
        "{tuned}"
    );

    let adapted = &stage(&j, "adapted")["metrics"];
    let trainable = adapted["trainable_params"].as_f64().unwrap();
    let total = adapted["params"].as_f64().unwrap();
    assert!(trainable > 0.0 && trainable < total / 5.0, "{adapted}");
    // One epoch over the packed rows, 16 rows a step.
    let rows = adapted["rows"].as_f64().unwrap();
    assert_eq!(adapted["steps"].as_f64(), Some((rows / 16.0).ceil()));
    assert!(
        adapted["val_loss"].as_f64().unwrap() < adapted["val_loss_before"].as_f64().unwrap(),
        "{adapted}"
    );

    // Artifacts: ordinary model directories, plus the chat template and (LoRA) adapters.
    let (dir, names) = files(&p, "tuned");
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "metrics.jsonl",
        "loss.svg",
        "summary.json",
        "answers.jsonl",
    ] {
        assert!(names.iter().any(|x| x == f), "{f} missing from {names:?}");
    }
    assert!(!names.iter().any(|x| x.starts_with("adapter")), "{names:?}");
    // The held-out answers behind `exact_match`, one line per evaluated prompt.
    let answers = std::fs::read_to_string(dir.join("answers.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = answers
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{answers}");
    let exact = lines.iter().filter(|l| l["exact"] == true).count() as f64 / 4.0;
    assert_eq!(tuned["exact_match"].as_f64(), Some(exact), "{answers}");
    assert!(lines[0]["prompt"][0]["content"]
        .as_str()
        .unwrap()
        .contains("\nQuestion: "));
    let tc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap())
            .unwrap();
    let template = tc["chat_template"].as_str().unwrap();
    assert!(
        template.contains("<|end|>") && template.contains("<|assistant|>"),
        "{template}"
    );
    assert_eq!(tc["eos_token"], "<|end|>");
    assert_eq!(tc["model_max_length"], 384);
    // No timings in the artifact's curve.
    let curve = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert!(
        curve.contains("\"val_loss\"") && !curve.contains("tokens_per_s"),
        "{curve}"
    );
    let (_, names) = files(&p, "adapted");
    for f in ["adapters.safetensors", "adapter_config.json"] {
        assert!(names.iter().any(|x| x == f), "{f} missing from {names:?}");
    }

    let show = p.run(&["show", "adapted"]);
    show.ok();
    assert!(
        show.stdout.contains("exact match") && show.stdout.contains("LoRA adapters"),
        "{}",
        show.stdout
    );
    let show = p.run(&["show", "tuned"]);
    show.ok();
    assert!(show.stdout.contains("every weight"), "{}", show.stdout);

    // DPO from the sft model: the preference measures, before and after, and an ordinary
    // model directory.
    let aligned = stage(&j, "aligned");
    assert_eq!(aligned["headline"], "val_preference_accuracy", "{aligned}");
    let m = &aligned["metrics"];
    for key in [
        "val_loss",
        "val_preference_accuracy",
        "val_reward_margin",
        "val_likelihood_accuracy",
        "val_likelihood_accuracy_before",
        "chosen_match",
        "rejected_match_before",
    ] {
        assert!(m[key].as_f64().is_some_and(f64::is_finite), "{key}: {m}");
    }
    assert_eq!(m["beta"].as_f64(), Some(0.2));
    let (_, names) = files(&p, "aligned");
    for f in [
        "model.safetensors",
        "adapters.safetensors",
        "tokenizer_config.json",
    ] {
        assert!(names.iter().any(|x| x == f), "{f} missing from {names:?}");
    }
    let show = p.run(&["show", "aligned"]);
    show.ok();
    assert!(
        show.stdout.contains("ranked right by the implicit reward")
            && show.stdout.contains("ipo loss"),
        "{}",
        show.stdout
    );

    // Deploy smoke-tested the LoRA model through the server; generate samples the full one.
    let api = &stage(&j, "api")["metrics"];
    assert!(api["chat_tokens_per_s"].as_f64().unwrap() > 0.0, "{api}");
    let gen = p.run(&["generate", "tuned", "--prompt", "Ada", "-n", "5"]);
    gen.ok();
    assert!(gen.stdout.starts_with("Ada"), "{}", gen.stdout);
    // `--chat` renders the prompt as a user turn with the chat template: the same text plus
    // `<|user|>`, `<|end|>` and `<|assistant|>` as three token ids.
    let json_gen = |chat: bool| {
        let mut args = vec![
            "generate",
            "tuned",
            "--json",
            "--temperature",
            "0",
            "-n",
            "3",
        ];
        if chat {
            args.push("--chat");
        }
        args.extend(["--prompt", "Where is the red key?"]);
        let r = p.run(&args);
        r.ok();
        serde_json::from_str::<serde_json::Value>(r.stdout.trim()).unwrap()
    };
    let (plain, chat) = (json_gen(false), json_gen(true));
    assert_eq!(
        chat["prompt_tokens"].as_u64(),
        plain["prompt_tokens"].as_u64().map(|n| n + 3),
        "{plain} {chat}"
    );

    // The served dpo model, through the official `openai` SDK: the server's chat template
    // gives the prompt `generate --chat` gives, and the same greedy answer, ending by the same
    // rule (`<|end|>`, or the token budget).
    let question = "Ada was in the park.\nQuestion: Where is Ada?";
    let served = serve_chat(&p, "aligned", question, 12);
    let local = p.run(&[
        "generate",
        "aligned",
        "--chat",
        "--json",
        "--temperature",
        "0",
        "-n",
        "12",
        "--prompt",
        question,
    ]);
    local.ok();
    let local: serde_json::Value = serde_json::from_str(local.stdout.trim()).unwrap();
    let prompt_ids: Vec<u64> = served["prompt_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert_eq!(
        Some(prompt_ids.len() as u64),
        local["prompt_tokens"].as_u64(),
        "{served} {local}"
    );
    assert_eq!(served["content"], local["text"], "{served} {local}");
    assert_eq!(
        served["finish_reason"], local["finish_reason"],
        "{served} {local}"
    );

    // `binarylm chat`: the first answer is `generate --chat`'s; the second is asked with the
    // whole conversation before it (a message of two lines goes between `"""` lines).
    let mut child = p
        .cmd(&[
            "chat", "aligned", "--json", "-t", "0", "-n", "12", "--device", "cpu",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!("\"\"\"\n{question}\n\"\"\"\nWhere is Ada?\n/exit\nnever read\n");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let turns: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(turns.len(), 2, "{turns:?}");
    assert_eq!(turns[0]["text"], local["text"], "{turns:?} {local}");
    assert_eq!(
        turns[0]["prompt_tokens"], local["prompt_tokens"],
        "{turns:?}"
    );
    let first = turns[0]["prompt_tokens"].as_u64().unwrap()
        + turns[0]["tokens"].as_array().unwrap().len() as u64;
    assert!(
        turns[1]["prompt_tokens"].as_u64().unwrap() > first,
        "the second question is asked after the first exchange: {turns:?}"
    );

    let (r, j) = p.run_json(&[]);
    r.ok();
    assert!(ran(&j).is_empty(), "{j}");
}

/// Serves `stage` with `binarylm serve` and sends one chat through the `openai` SDK
/// (tests/python/openai_chat.py).
fn serve_chat(p: &Project, stage: &str, message: &str, max_tokens: usize) -> serde_json::Value {
    use std::io::{BufRead, BufReader};
    let mut child = p
        .cmd(&["serve", stage, "--port", "0", "--device", "cpu"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start binarylm serve");
    let stdout = child.stdout.take().unwrap();
    let url = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on ").map(str::to_string));
    let Some(url) = url else {
        let _ = child.kill();
        panic!("`binarylm serve {stage}` printed no address");
    };
    let venv = std::env::var_os("BINARYLM_VENV").expect("BINARYLM_VENV is set by scripts/env.sh");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_chat.py");
    let out = Command::new(Path::new(&venv).join("bin/python"))
        .arg(script)
        .args([&url, stage, message, &max_tokens.to_string()])
        .output()
        .expect("run the openai client");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "openai client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client output is JSON")
}

/// A model whose tokenizer has no chat markers (pretrained on stories with only `<|eos|>`
/// reserved): sft refuses it, naming the fix.
#[test]
fn a_tokenizer_without_chat_markers_is_refused() {
    torch_exe();
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"
name: no-markers
stages:
  stories:
    kind: data
    sources: [{ synthetic: { generator: stories, documents: 60 } }]
  chats:
    kind: data
    sources: [{ synthetic: { generator: instructions, documents: 20 } }]
  tok:
    kind: tokenizer
    data: stories
    vocab_size: 300
    special_tokens: ["<|eos|>"]
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: { n_layer: 1, n_embd: 16, n_head: 2, block_size: 32 }
    train: { steps: 2, batch_size: 2, warmup_steps: 0, eval_batches: 1 }
  tuned:
    kind: sft
    model: base
    data: chats
    device: cpu
"#,
    );
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("no chat markers") && r.stderr.contains("special_tokens"),
        "{}",
        r.stderr
    );
    // Nor can a model of that tokenizer hold a conversation.
    let chat = p.run(&["chat", "base", "--device", "cpu"]);
    assert_eq!(chat.code, 2, "{}", chat.stderr);
    assert!(chat.stderr.contains("no chat markers"), "{}", chat.stderr);
}

/// The three runs a resume test compares.
#[derive(Clone, Copy, PartialEq)]
enum Run {
    Full,
    Lora,
    /// dpo with LoRA (and `also_train`) and the IPO loss.
    Dpo,
}

fn job(dir: &Path, inputs: &serde_json::Value, name: &str, run: Run) -> PathBuf {
    let work = dir.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    let mut params = serde_json::json!({
        "kind": "sft", "model": "base", "data": "chats", "device": "cpu",
        "train": {"steps": 40, "batch_size": 2, "checkpoint_every": 2, "eval_every": 100,
                  "eval_batches": 1, "log_every": 2, "warmup_steps": 2, "lr": 0.003},
        "eval": {"examples": 2, "max_new_tokens": 4},
    });
    if run != Run::Full {
        params["lora"] = serde_json::json!({"r": 2, "alpha": 4, "dropout": 0.1,
                                             "targets": ["q", "k", "o", "mlp"]});
    }
    if run == Run::Dpo {
        params["kind"] = "dpo".into();
        params["data"] = "prefs".into();
        params["loss"] = "ipo".into();
        // Base weights trained beside the adapters resume with them.
        params["lora"]["also_train"] = serde_json::json!(["embedding", "bias", "norm"]);
    }
    let job = serde_json::json!({
        "format": pipelines::TORCH_JOB_FORMAT, "kind": params["kind"], "stage": "tuned",
        "manifest_dir": dir,
        "params": params,
        "inputs": inputs,
        "out_dir": dir.join(format!("{name}-out")),
        "work_dir": work,
        "resumed": false, "seed": 3, "threads": 1, "fingerprint": "test",
    });
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, job.to_string()).unwrap();
    path
}

fn run_stage(job: &Path) -> std::process::Child {
    Command::new(torch_exe())
        .arg("run-stage")
        .arg(job)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn checkpoint_step(work: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(work.join("checkpoint/state.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["step"].as_u64()
}

#[test]
fn a_killed_fine_tuning_resumes_to_identical_files() {
    torch_exe();
    let p = Project::new();
    // Only what the jobs read: the data and a (briefly) pretrained model.
    let manifest = format!(
        "{}  prefs:\n    kind: data\n    sources: [{{ synthetic: {{ generator: preferences, documents: 60 }} }}]\n    split: {{ val_docs: 4 }}\n",
        MANIFEST.split("  tuned:").next().unwrap()
    );
    p.write("pipeline.yaml", &manifest);
    p.run(&["run", "pipeline.yaml"]).ok();
    let (base, _) = files(&p, "base");
    let (chats, _) = files(&p, "chats");
    let (prefs, _) = files(&p, "prefs");
    let inputs = serde_json::json!({"base": base, "chats": chats, "prefs": prefs});

    for run in [Run::Full, Run::Lora, Run::Dpo] {
        let lora = run != Run::Full;
        let dir = tempfile::tempdir().unwrap();
        let whole = job(dir.path(), &inputs, "whole", run);
        assert!(run_stage(&whole).wait().unwrap().success());

        let killed = job(dir.path(), &inputs, "killed", run);
        let work = dir.path().join("killed-work");
        let mut child = run_stage(&killed);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if checkpoint_step(&work).is_some_and(|s| s >= 4) {
                break;
            }
            assert!(Instant::now() < deadline, "no checkpoint appeared");
            assert!(
                child.try_wait().unwrap().is_none(),
                "fine-tuning ended before it was killed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        let at = checkpoint_step(&work).unwrap();
        assert!(at < 40, "killed after finishing ({at})");

        assert!(run_stage(&killed).wait().unwrap().success());
        let mut compared = vec![
            "model.safetensors",
            "config.json",
            "metrics.jsonl",
            "summary.json",
            "tokenizer_config.json",
        ];
        if lora {
            compared.extend(["adapters.safetensors", "adapter_config.json"]);
        }
        for file in compared {
            let a = std::fs::read(dir.path().join("whole-out").join(file)).unwrap();
            let b = std::fs::read(dir.path().join("killed-out").join(file)).unwrap();
            assert!(
                a == b,
                "{file} of the resumed run differs from the uninterrupted run's (lora: {lora}, dpo: {})",
                run == Run::Dpo
            );
        }
    }
}

/// An OpenAI-style `messages` file through the data stage into sft: multi-turn conversations
/// with a system turn, where every assistant turn is learned and the held-out answer asked for
/// is the last one, given all the turns before it.
#[test]
fn sft_trains_on_a_multi_turn_messages_file() {
    torch_exe();
    const WORDS: &[&str] = &[
        "apple", "river", "stone", "cloud", "bread", "lamp", "tiger", "rope", "glass", "seed",
    ];
    let mut chats = String::new();
    for (i, a) in WORDS.iter().enumerate() {
        for b in WORDS.iter().skip(i + 1) {
            let turns = serde_json::json!({"messages": [
                {"role": "system", "content": "Repeat the words you are given."},
                {"role": "user", "content": format!("Say {a}.")},
                {"role": "assistant", "content": format!("{a}.")},
                {"role": "user", "content": format!("Now say {b}.")},
                {"role": "assistant", "content": format!("{b}.")},
            ]});
            chats.push_str(&turns.to_string());
            chats.push('\n');
        }
    }
    let p = Project::new();
    p.write("chats.jsonl", &chats);
    p.write(
        "pipeline.yaml",
        r#"
name: messages-e2e
seed: 3
stages:
  chats:
    kind: data
    sources: [{ jsonl: chats.jsonl, records: messages }]
    split: { val_docs: 5 }
  tok: { kind: tokenizer, data: chats, vocab_size: 300 }
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: { n_layer: 1, n_embd: 32, n_head: 2, block_size: 128 }
    train: { steps: 10, batch_size: 4, lr: 0.005, warmup_steps: 2, eval_every: 10, eval_batches: 1, log_every: 5 }
  tuned:
    kind: sft
    model: base
    data: chats
    device: cpu
    train: { steps: 20, batch_size: 4, lr: 0.005, warmup_steps: 2, eval_every: 10, eval_batches: 1, log_every: 5 }
    eval: { examples: 5, max_new_tokens: 4 }
"#,
    );
    let (r, j) = p.run_json(&[]);
    r.ok();
    let tuned = &stage(&j, "tuned")["metrics"];
    assert_eq!(tuned["examples"].as_f64(), Some(40.0), "{tuned}");
    assert!(
        tuned["val_loss"].as_f64().unwrap() < tuned["val_loss_before"].as_f64().unwrap(),
        "{tuned}"
    );
    let (dir, _) = files(&p, "tuned");
    let answers = std::fs::read_to_string(dir.join("answers.jsonl")).unwrap();
    for line in answers.lines() {
        let l: serde_json::Value = serde_json::from_str(line).unwrap();
        let roles: Vec<&str> = l["prompt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"], "{line}");
        let asked = l["prompt"][3]["content"].as_str().unwrap();
        let reference = l["reference"].as_str().unwrap();
        assert_eq!(format!("Now say {reference}"), asked, "{line}");
    }
}
