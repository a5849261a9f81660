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
    assert_eq!(lock_check(&c, "base").0, "identical to pipeline.lock");
    locked_checks_follow_each_kinds_promise(&third, &lock);
}

/// A stage's `--locked` verdict and error, from a run report.
fn lock_check(report: &serde_json::Value, stage: &str) -> (String, String) {
    let s = report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} in {report}"));
    (
        s["lock_check"].as_str().unwrap_or("").to_string(),
        s["error"].as_str().unwrap_or("").to_string(),
    )
}

/// What `--locked` checks depends on the kind and on what the lock says the output was
/// computed with (docs/pipelines.md, "What reproducible means"). `project` has every stage
/// cached, so each variant of the lockfile below is only a check, not a rerun.
fn locked_checks_follow_each_kinds_promise(project: &Project, lock: &str) {
    let fake = "0".repeat(64);
    let with_lock = |edit: &dyn Fn(&mut serde_yaml::Value)| {
        let mut v: serde_yaml::Value = serde_yaml::from_str(lock).expect("lockfile YAML");
        edit(&mut v);
        project.write("pipeline.lock", &serde_yaml::to_string(&v).expect("YAML"));
        let r = project.run(&[
            "run",
            "pipeline.yaml",
            "--json",
            "--threads",
            "1",
            "--locked",
        ]);
        let json = r.json();
        (r.code, json)
    };

    // The deploy bundle locked on another setup (4 threads), with other bytes: the kind
    // declares no metric, so the fingerprint is what is checked, and the run passes.
    let (code, json) = with_lock(&|v| {
        v["stages"]["api"]["digest"] = fake.clone().into();
        v["stages"]["api"]["ran_with"]["threads"] = 4.into();
    });
    let (check, _) = lock_check(&json, "api");
    assert_eq!(code, 0, "{json}");
    assert!(
        check.contains("as expected (ran with cpu, 1 thread"),
        "{check}"
    );
    assert!(check.contains("locked with cpu, 4 threads"), "{check}");
    assert!(check.contains("fingerprint checked"), "{check}");

    // The same, but locked with this very setup: identical bytes were expected.
    let (code, json) = with_lock(&|v| {
        v["stages"]["api"]["digest"] = fake.clone().into();
    });
    let (_, error) = lock_check(&json, "api");
    assert_eq!(code, 1, "{json}");
    assert!(
        error.contains("although it ran as the locked output did"),
        "{error}"
    );

    // Pretraining locked on another setup: other bytes are fine, a validation loss 5 % away is
    // not (the kind allows ±1 %); the message says by how much it moved.
    let (code, json) = with_lock(&|v| {
        let base = &mut v["stages"]["base"];
        base["digest"] = fake.clone().into();
        base["ran_with"]["threads"] = 4.into();
        let loss = base["metrics"]["val_loss"]
            .as_f64()
            .expect("val_loss locked");
        base["metrics"]["val_loss"] = (loss / 1.05).into();
    });
    let (_, error) = lock_check(&json, "base");
    assert_eq!(code, 1, "{json}");
    assert!(error.contains("val_loss"), "{error}");
    assert!(error.contains("+5.000 %, tolerance ±1 %"), "{error}");

    // A tokenizer promises identical bytes from identical inputs on any setup.
    let (code, json) = with_lock(&|v| {
        v["stages"]["tok"]["digest"] = fake.clone().into();
        v["stages"]["tok"]["ran_with"]["threads"] = 4.into();
    });
    let (_, error) = lock_check(&json, "tok");
    assert_eq!(code, 1, "{json}");
    assert!(
        error.contains("identical bytes for identical inputs"),
        "{error}"
    );
}
