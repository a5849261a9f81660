//! An artifact holds only what its inputs determine: the same manifest run in two fresh
//! workspaces on this machine gives the same digest for every stage (data, tokenizer, pretrain,
//! deploy), and a lockfile written by one run holds for the other under `--locked`.
//! Timings, tokens/s and latencies are still recorded — in the run's record, as metrics.

mod common;
use common::{outcomes, Project};

const MANIFEST: &str = r#"
name: repro
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
    model: {preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 32}
    train: {steps: 30, batch_size: 4, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 10, eval_batches: 2, log_every: 5}
  api:
    kind: deploy
    model: base
    device: cpu
    smoke: { max_tokens: 6 }
"#;

/// stage → output digest, from a run report.
fn digests(report: &serde_json::Value) -> Vec<(String, String)> {
    report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap_or("?").to_string(),
                s["digest"].as_str().unwrap_or("none").to_string(),
            )
        })
        .collect()
}

#[test]
fn two_fresh_workspaces_give_identical_artifacts_and_locked_holds() {
    // One libtorch thread on both sides: bit-exactness holds for one thread count.
    let run = |p: &Project, extra: &[&str]| {
        let mut args = vec!["run", "pipeline.yaml", "--json", "--threads", "1"];
        args.extend_from_slice(extra);
        let r = p.run(&args);
        r.ok();
        r.json()
    };
    let first = Project::new();
    first.write("pipeline.yaml", MANIFEST);
    let a = run(&first, &[]);
    let second = Project::new();
    second.write("pipeline.yaml", MANIFEST);
    let b = run(&second, &[]);
    assert!(digests(&a).iter().all(|(_, d)| d.len() == 64), "{a}");
    assert_eq!(
        digests(&a),
        digests(&b),
        "a stage's artifact differs between workspaces"
    );
    assert!(outcomes(&b).values().all(|o| o == "ran"), "{b}");

    // The run's measurements are still there, in the record.
    let base = &b["stages"].as_array().unwrap()[2];
    assert!(
        base["metrics"]["tokens_per_s"].as_f64().unwrap() > 0.0,
        "{base}"
    );
    assert!(base["metrics"]["elapsed_s"].as_f64().is_some(), "{base}");

    // The first workspace's lockfile, used by a third, fresh one.
    let third = Project::new();
    third.write("pipeline.yaml", MANIFEST);
    let lock = std::fs::read_to_string(first.file("pipeline.lock")).expect("lockfile");
    third.write("pipeline.lock", &lock);
    let c = run(&third, &["--locked"]);
    assert_eq!(digests(&a), digests(&c));
}
