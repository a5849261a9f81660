//! `kind: export` with `format: hf`, checked by the peer itself: `transformers` (in the project
//! venv, offline) loads each exported architecture with `AutoModelForCausalLM` and
//! `AutoTokenizer` alone (tests/python/hf_export_check.py), and
//! - its tokenizer gives our ids on varied text (unicode, whitespace runs, digits, special
//!   tokens);
//! - its logits on a batch of those texts equal ours (`binarylm-torch logits`) within 1e-4;
//! - its greedy `generate` writes the text `binarylm generate --temperature 0` writes.
//!
//! One GPT-2-style model (tied head, biases, grouped-query attention that GPT-2 gets as repeated
//! heads), one Llama-style (untied, no biases, GQA) and the int8 copy of the latter (exported
//! dequantized). A mix of the two is refused when the manifest loads.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{outcomes, python, Project};
use serde_json::{json, Value};

const MANIFEST: &str = r#"
name: export
seed: 7
stages:
  corpus:
    kind: data
    sources: [{ synthetic: { generator: stories, documents: 300 } }]
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 400
  gpt:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: { preset: tiny, n_layer: 2, n_embd: 64, n_head: 4, n_kv_head: 2, block_size: 48 }
    train: { steps: 60, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 60, eval_batches: 1 }
  llama:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: { preset: llama-small, n_layer: 2, n_embd: 64, n_head: 4, n_kv_head: 2, block_size: 48 }
    train: { steps: 60, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 60, eval_batches: 1 }
  llama_q8: { kind: quantize, model: llama, device: cpu }
  gpt_hf: { kind: export, model: gpt, format: hf }
  llama_hf: { kind: export, model: llama, format: hf }
  q8_hf: { kind: export, model: llama_q8, format: hf }
"#;

/// Texts for the tokenizer and logits checks: non-ASCII letters, whitespace runs, digit runs,
/// contractions and the special tokens' spellings. Each fits the 48-token context.
const TEXTS: &[&str] = &[
    "Once upon a time, a little fox",
    "Héllo wörld — naïve café, 東京 🙂",
    "digits 1234567 and 3.14159",
    "  two  spaces,\ttabs\t\tand\n\nnewlines  \n",
    "it's we'll they're I'M<|eos|>The end",
    "<|user|>Hi there<|end|><|assistant|>",
];

/// Prompts of the generation check and how many tokens each continues for.
const PROMPTS: &[(&str, usize)] = &[("Once upon a time", 20), ("The little dog", 20)];

/// The artifact directory of `stage`.
fn artifact(p: &Project, stage: &str) -> PathBuf {
    let show = p.run(&["show", stage, "--json"]);
    show.ok();
    PathBuf::from(show.json()["path"].as_str().expect("path"))
}

/// `binarylm-torch logits` over `TEXTS` for the model artifact `dir`.
fn our_logits(dir: &Path) -> Vec<Value> {
    let exe = Path::new(common::BIN).with_file_name("binarylm-torch");
    let mut child = Command::new(exe)
        .args(["logits".as_ref(), dir.as_os_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binarylm-torch");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!(TEXTS).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("logits JSON")
}

/// What `transformers` computes from the export in `dir`.
fn peer(p: &Project, dir: &Path, name: &str) -> Value {
    let request = json!({
        "dir": dir,
        "texts": TEXTS,
        "prompts": PROMPTS.iter().map(|(t, n)| json!({"text": t, "max_new_tokens": n})).collect::<Vec<_>>(),
    });
    let path = p.file(&format!("{name}-request.json"));
    std::fs::write(&path, request.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/hf_export_check.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&path)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{name}: transformers failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

/// `binarylm generate --temperature 0` of `prompt`: the generated ids and the text after it.
fn our_generate(p: &Project, stage: &str, prompt: &str, n: usize) -> (Vec<u64>, String) {
    let n = n.to_string();
    let args = [
        "generate",
        stage,
        "--prompt",
        prompt,
        "-n",
        &n,
        "--temperature",
        "0",
        "--device",
        "cpu",
    ];
    let text = p.run(&args);
    text.ok();
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let doc = p.run(&json_args);
    doc.ok();
    let tokens = doc.json()["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    // The text mode prints the prompt, the continuation and a newline.
    let continuation = text
        .stdout
        .strip_prefix(prompt)
        .and_then(|s| s.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected generate output {:?}", text.stdout))
        .to_string();
    (tokens, continuation)
}

fn check(p: &Project, model: &str, export: &str, class: &str) {
    let model_dir = artifact(p, model);
    let export_dir = artifact(p, export);
    let ours = our_logits(&model_dir);
    let theirs = peer(p, &export_dir, export);
    assert_eq!(theirs["class"], class, "{export}");

    for (i, text) in TEXTS.iter().enumerate() {
        assert_eq!(
            theirs["ids"][i], ours[i]["tokens"],
            "{export}: the Hugging Face tokenizer splits {text:?} differently"
        );
        let (a, b) = (&ours[i]["logits"], &theirs["logits"][i]);
        let rows = a.as_array().unwrap();
        assert_eq!(rows.len(), b.as_array().unwrap().len(), "{export}: {text:?}");
        let mut worst = 0f64;
        for (ra, rb) in rows.iter().zip(b.as_array().unwrap()) {
            let (ra, rb) = (ra.as_array().unwrap(), rb.as_array().unwrap());
            assert_eq!(ra.len(), rb.len(), "{export}: vocabulary width");
            for (x, y) in ra.iter().zip(rb) {
                worst = worst.max((x.as_f64().unwrap() - y.as_f64().unwrap()).abs());
            }
        }
        assert!(
            worst <= 1e-4,
            "{export}: logits of {text:?} differ by {worst}"
        );
    }

    for (j, &(prompt, n)) in PROMPTS.iter().enumerate() {
        let (tokens, text) = our_generate(p, model, prompt, n);
        let hf = &theirs["generated"][j];
        let hf_tokens: Vec<u64> = hf["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap())
            .collect();
        assert_eq!(hf_tokens, tokens, "{export}: greedy ids after {prompt:?}");
        assert_eq!(hf["text"], text.as_str(), "{export}: greedy text after {prompt:?}");
    }

    // The chat template travels in tokenizer_config.json.
    assert_eq!(
        theirs["chat"], "<|user|>Hi<|end|><|assistant|>",
        "{export}"
    );
    let files: Vec<String> = std::fs::read_dir(&export_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(files.iter().any(|x| x == f), "{export}: no {f} in {files:?}");
    }
}

#[test]
fn transformers_loads_each_architecture_and_computes_what_we_compute() {
    let p = Project::new();
    p.write("pipeline.yaml", MANIFEST);
    let (ran, report) = p.run_json(&["--threads", "2"]);
    ran.ok();
    assert!(outcomes(&report).values().all(|o| o == "ran"), "{report}");

    check(&p, "gpt", "gpt_hf", "GPT2LMHeadModel");
    check(&p, "llama", "llama_hf", "LlamaForCausalLM");
    // The int8 model's export holds its dequantized weights: what binarylm itself computes
    // with it.
    check(&p, "llama_q8", "q8_hf", "LlamaForCausalLM");

    // The safetensors header carries the metadata transformers checks.
    let weights = std::fs::read(artifact(&p, "gpt_hf").join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&weights[8..8 + n]).unwrap();
    assert_eq!(header["__metadata__"], json!({"format": "pt"}));

    // Exports are reproducible: a second run reuses every stage.
    let (again, report) = p.run_json(&["--threads", "2"]);
    again.ok();
    assert!(outcomes(&report).values().all(|o| o == "cached"), "{report}");
}

#[test]
fn a_mix_no_transformers_class_computes_is_refused_when_the_manifest_loads() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"
name: mix
stages:
  corpus: { kind: data, sources: [{ synthetic: { generator: stories, documents: 20 } }] }
  tok: { kind: tokenizer, data: corpus, vocab_size: 300 }
  base:
    kind: pretrain
    tokenizer: tok
    model: { preset: tiny, positions: rope, mlp: swiglu }
  tuned: { kind: quantize, model: base }
  hf: { kind: export, model: tuned, format: hf }
"#,
    );
    let out = p.run(&["plan", "pipeline.yaml"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("cannot export `tuned`")
            && out.stderr.contains("RoPE positions, LayerNorm, SwiGLU"),
        "{}",
        out.stderr
    );
}
