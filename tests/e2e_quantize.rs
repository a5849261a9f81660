//! The quantize stage end to end: int8 and int4 copies of a small model, smaller on disk, with
//! the bits-per-byte cost measured; eval, generate and deploy take them like any model.

mod common;
use common::{outcomes, stage, Project};

const MANIFEST: &str = r#"
name: quant
seed: 4
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
    model: {preset: tiny, n_layer: 2, n_embd: 64, n_head: 2, block_size: 32}
    train: {steps: 60, batch_size: 8, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 30, eval_batches: 2, log_every: 10}
  q8:
    kind: quantize
    model: base
    data: corpus
    limit: 20
    device: cpu
  q4:
    kind: quantize
    model: base
    scheme: int4
    group_size: 32
    embeddings: true
    data: corpus
    limit: 20
    device: cpu
  scores:
    kind: eval
    device: cpu
    models: [base, q8, q4]
    bootstrap: 50
    tasks:
      - { task: perplexity, data: corpus, limit: 20 }
  api:
    kind: deploy
    model: q4
    device: cpu
    smoke: { max_tokens: 4 }
"#;

#[test]
fn quantized_models_are_smaller_measured_and_usable_everywhere() {
    let p = Project::new();
    p.write("pipeline.yaml", MANIFEST);
    let (ran, report) = p.run_json(&["--threads", "2"]);
    ran.ok();
    assert!(outcomes(&report).values().all(|o| o == "ran"), "{report}");

    let q8 = &stage(&report, "q8")["metrics"];
    let q4 = &stage(&report, "q4")["metrics"];
    let m = |s: &serde_json::Value, k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k}: {s}"));
    // int8 rounds the linear layers (most weights of this model) to a quarter of their size;
    // int4 with the embeddings too, to about an eighth plus the scales.
    assert!(m(q8, "size_ratio") < 0.6, "{q8}");
    assert!(m(q4, "size_ratio") < m(q8, "size_ratio"), "{q4}");
    assert!(
        m(q4, "quantized_fraction") > m(q8, "quantized_fraction"),
        "{q4}"
    );
    // int8 costs almost nothing; int4 more, but it is still a language model.
    assert!(m(q8, "bits_per_byte_delta").abs() < 0.02, "{q8}");
    assert!(
        m(q4, "bits_per_byte_delta") > m(q8, "bits_per_byte_delta"),
        "{q4} vs {q8}"
    );
    assert!(
        m(q4, "bits_per_byte") < 2.0 * m(q4, "bits_per_byte_source"),
        "{q4}"
    );

    // The eval stage scores the quantized models as it scores the source, and agrees with the
    // quantize stage's own measurement on the same documents.
    let scores = &stage(&report, "scores")["metrics"];
    let eval_q8 = m(scores, "q8/corpus.val/bits_per_byte");
    assert!(
        (eval_q8 - m(q8, "bits_per_byte")).abs() < 1e-9,
        "{eval_q8} vs {q8}"
    );
    assert!(
        (m(scores, "base/corpus.val/bits_per_byte") - m(q8, "bits_per_byte_source")).abs() < 1e-9
    );

    // generate and the deploy bundle (served for its smoke test) take a quantized model.
    let g = p.run(&[
        "generate",
        "q8",
        "--prompt",
        "Once",
        "-n",
        "8",
        "--temperature",
        "0",
    ]);
    g.ok();
    assert!(!g.stdout.trim().is_empty(), "{}", g.stderr);
    assert!(m(&stage(&report, "api")["metrics"], "chat_tokens_per_s") > 0.0);

    // A group size that does not divide a layer's width is named.
    p.write(
        "pipeline.yaml",
        &MANIFEST.replace("group_size: 32", "group_size: 128"),
    );
    let (ran, failed) = p.run_json(&["--threads", "2"]);
    assert_eq!(ran.code, 1, "{failed}");
    let error = stage(&failed, "q4")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("not a multiple of group_size 128"),
        "{error}"
    );
}
