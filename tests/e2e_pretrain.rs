//! The `pretrain` stage through the real binaries: `binarylm run` hands the stage to
//! `binarylm-torch`, which trains on token shards and stores a model artifact; a training
//! process killed mid-run resumes to the same weights as an uninterrupted one; bad shards fail
//! with a message naming the file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{outcomes, stage, Project};

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

/// Token shards per the tokenizer contract, of a tiny "language" with structure to learn:
/// documents are runs of a cyclic pattern whose step depends on the document, plus noise.
fn write_shards(dir: &Path) -> f64 {
    const VOCAB: u32 = 40;
    const EOS: u32 = 0;
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 99u64;
    let mut rand = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut entropy = 0.0;
    let mut splits = serde_json::Map::new();
    for (split, docs) in [("train", 300), ("val", 40)] {
        let mut ids: Vec<u32> = Vec::new();
        let mut offsets: Vec<u64> = Vec::new();
        for _ in 0..docs {
            offsets.push(ids.len() as u64);
            let step = 1 + rand() % 5;
            let mut t = 1 + rand() % (VOCAB - 1);
            for _ in 0..(40 + rand() % 40) {
                ids.push(if rand() % 10 == 0 {
                    1 + rand() % (VOCAB - 1)
                } else {
                    t
                });
                t = 1 + (t - 1 + step) % (VOCAB - 1);
            }
            ids.push(EOS);
        }
        offsets.push(ids.len() as u64);
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| (i as u16).to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{split}.bin")), bytes).unwrap();
        let docs_bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{split}.docs")), docs_bytes).unwrap();
        let mut counts = vec![0f64; VOCAB as usize];
        for &i in &ids {
            counts[i as usize] += 1.0;
        }
        let n = ids.len() as f64;
        let h: f64 = counts
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -(c / n) * (c / n).ln())
            .sum();
        if split == "val" {
            entropy = h;
        }
        splits.insert(
            split.to_string(),
            serde_json::json!({"tokens": ids.len(), "documents": docs, "bytes": 0,
                               "bytes_per_token": 1.0, "unigram_entropy_nats": h}),
        );
    }
    let meta = serde_json::json!({
        "format": 1, "dtype": "u16", "vocab_size": VOCAB, "eos_id": EOS, "bos_id": null,
        "pad_id": null,
        "splits": splits,
    });
    std::fs::write(dir.join("shards.json"), meta.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    entropy
}

const MANIFEST: &str = r#"
name: pretrain-e2e
seed: 7
stages:
  tok:
    kind: command
    run: cp shards/* "$BINARYLM_OUT/"
    deps: [shards]
    produces: tokenizer
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: {preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 16}
    train: {steps: 60, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 20, eval_batches: 4, log_every: 10}
  aligned:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: {preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 16}
    windows: documents
    train: {steps: 60, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 20, eval_batches: 4, log_every: 10}
"#;

#[test]
fn pretrain_trains_below_the_unigram_baseline_and_is_cached() {
    torch_exe();
    let p = Project::new();
    let entropy = write_shards(&p.file("shards"));
    p.write("pipeline.yaml", MANIFEST);
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert_eq!(outcomes(&j)["base"], "ran", "{j}");
    let base = stage(&j, "base");
    assert_eq!(base["headline"], "val_loss", "{base}");
    let val = base["metrics"]["val_loss"].as_f64().unwrap();
    assert!(
        val < entropy - 0.3,
        "val loss {val} should be clearly below the unigram entropy {entropy}"
    );
    assert_eq!(
        base["metrics"]["tokens_seen"].as_f64(),
        Some(60.0 * 8.0 * 16.0)
    );

    // Windows at document starts: trains as well, on other windows (another model).
    let aligned = stage(&j, "aligned");
    assert_eq!(outcomes(&j)["aligned"], "ran", "{j}");
    let aligned_val = aligned["metrics"]["val_loss"].as_f64().unwrap();
    assert!(aligned_val < entropy - 0.3, "{aligned}");
    assert_ne!(aligned["digest"], base["digest"], "{j}");

    let show = p.run(&["show", "base", "--json"]);
    show.ok();
    let files: Vec<String> = show.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "metrics.jsonl",
        "loss.svg",
        "summary.json",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} missing from {files:?}");
    }
    // In words: the outcome, and where the run sits against the scaling laws.
    let words = p.run(&["show", "base"]);
    words.ok();
    let tokens = base["metrics"]["tokens_seen"].as_f64().unwrap();
    let params = base["metrics"]["params"].as_f64().unwrap();
    let per_param = format!("budget     {:.2} tokens per parameter", tokens / params);
    assert!(words.stdout.contains(&per_param), "{}", words.stdout);
    assert!(words.stdout.contains("Chinchilla"), "{}", words.stdout);
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert_eq!(outcomes(&j)["base"], "cached", "{j}");
    assert_eq!(outcomes(&j)["aligned"], "cached", "{j}");
}

#[test]
fn bad_shards_fail_naming_the_file() {
    torch_exe();
    let p = Project::new();
    write_shards(&p.file("shards"));
    std::fs::write(p.file("shards/shards.json"), "{\"format\": 1}").unwrap();
    p.write("pipeline.yaml", MANIFEST);
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("shards.json") && r.stderr.contains("not a valid shards.json"),
        "{}",
        r.stderr
    );
}

fn job(dir: &Path, shards: &Path, name: &str) -> PathBuf {
    let work = dir.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    let job = serde_json::json!({
        "format": pipelines::TORCH_JOB_FORMAT, "kind": "pretrain", "stage": "base",
        "manifest_dir": dir,
        "params": {
            "kind": "pretrain", "tokenizer": "tok", "device": "cpu",
            "model": {"preset": "tiny", "n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 16,
                      "dropout": 0.1},
            "train": {"steps": 300, "batch_size": 8, "checkpoint_every": 5, "eval_every": 100,
                      "eval_batches": 2, "log_every": 5, "warmup_steps": 5}
        },
        "inputs": {"tok": shards},
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
fn a_killed_training_resumes_to_identical_weights() {
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    write_shards(&shards);

    let whole = job(dir.path(), &shards, "whole");
    assert!(run_stage(&whole).wait().unwrap().success());

    let killed = job(dir.path(), &shards, "killed");
    let work = dir.path().join("killed-work");
    let mut child = run_stage(&killed);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if checkpoint_step(&work).is_some_and(|s| s >= 10) {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let at = checkpoint_step(&work).unwrap();
    assert!(at < 300, "killed after finishing ({at})");

    assert!(run_stage(&killed).wait().unwrap().success());
    // The resumed run's artifact is the uninterrupted one's, file for file: weights, curve,
    // summary (which holds no timing or "resumed from" that would tell them apart).
    for file in [
        "model.safetensors",
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "loss.svg",
    ] {
        let a = std::fs::read(dir.path().join("whole-out").join(file)).unwrap();
        let b = std::fs::read(dir.path().join("killed-out").join(file)).unwrap();
        assert!(
            a == b,
            "{file} of the resumed run differs from the uninterrupted run's"
        );
    }
}
