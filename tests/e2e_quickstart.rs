//! The README's quickstart manifest runs end to end — data → tokenizer → pretrain → deploy,
//! quantize and eval — trains a model clearly better than the unigram baseline (and than its
//! shorter twin), serves it for the deploy smoke test, scores the three models on held-out
//! stories, samples text from it, and is cached the second time.

mod common;
use common::{ran, stage, Project};

#[test]
fn quickstart_example_trains_generates_and_reruns_nothing() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        &std::fs::read_to_string(src.join("pipeline.yaml")).unwrap(),
    );
    let (r, j) = p.run_json(&[]);
    r.ok();
    // Sorted by name.
    assert_eq!(
        ran(&j),
        [
            "api",
            "base",
            "base-int8",
            "corpus",
            "scores",
            "short",
            "tok"
        ]
    );

    let corpus = stage(&j, "corpus");
    assert_eq!(corpus["headline"], "documents_train");
    let train = corpus["metrics"]["documents_train"].as_f64().unwrap();
    let val = corpus["metrics"]["documents_val"].as_f64().unwrap();
    // 4000 generated stories, 5 % to validation; the grammar repeats few stories exactly.
    assert!(
        train > 3400.0 && val > 100.0 && train + val <= 4000.0,
        "{corpus}"
    );

    // The model must have learned more than token frequencies: its validation loss is well
    // below the entropy of the unigram distribution (the best a context-free model can do).
    let base = &stage(&j, "base")["metrics"];
    let val_loss = base["val_loss"].as_f64().unwrap();
    let unigram = base["unigram_entropy"].as_f64().unwrap();
    assert!(
        val_loss < unigram - 1.0,
        "val loss {val_loss} vs unigram entropy {unigram}: {base}"
    );

    let api = &stage(&j, "api")["metrics"];
    assert!(api["chat_tokens_per_s"].as_f64().unwrap() > 0.0, "{api}");

    // Held-out bits per byte, against the unigram baseline in the same unit (nats per token
    // over bytes per token).
    let bytes_per_token = stage(&j, "tok")["metrics"]["bytes_per_token_val"]
        .as_f64()
        .unwrap();
    let unigram_bpb = unigram / std::f64::consts::LN_2 / bytes_per_token;
    let scores = &stage(&j, "scores")["metrics"];
    let bpb = scores["base/corpus.val/bits_per_byte"].as_f64().unwrap();
    let se = scores["base/corpus.val/bits_per_byte_stderr"]
        .as_f64()
        .unwrap();
    assert!(
        bpb > 0.0 && bpb < unigram_bpb / 2.0,
        "{bpb} vs unigram {unigram_bpb}"
    );
    assert!(se > 0.0 && se < bpb / 10.0, "stderr {se}");
    // Four times the steps buy a clearly better model; 8-bit weights cost almost nothing.
    let short = scores["short/corpus.val/bits_per_byte"].as_f64().unwrap();
    assert!(short > bpb + 2.0 * se, "short {short} vs base {bpb} ± {se}");
    let int8 = scores["base-int8/corpus.val/bits_per_byte"]
        .as_f64()
        .unwrap();
    assert!((int8 - bpb).abs() < 0.01 * bpb, "int8 {int8} vs f32 {bpb}");

    let (r, j) = p.run_json(&[]);
    r.ok();
    assert!(ran(&j).is_empty(), "{j}");
    let show = p.run(&["show", "corpus"]);
    show.ok();
    assert!(show.stdout.contains("samples (train)"), "{}", show.stdout);

    // Greedy continuation is deterministic and reads like the corpus (words, not bytes).
    let gen = |extra: &[&str]| {
        let mut args = vec!["generate", "base", "--prompt", "Once", "-n", "30"];
        args.extend_from_slice(extra);
        let r = p.run(&args);
        r.ok();
        r.stdout
    };
    let a = gen(&["--temperature", "0"]);
    let quiet = p.run(&["-q", "generate", "base", "--prompt", "Once", "-n", "5"]);
    quiet.ok();
    assert!(!quiet.stderr.contains("tokens/s"), "{}", quiet.stderr);
    assert!(quiet.stdout.starts_with("Once"), "{}", quiet.stdout);
    let b = gen(&["--temperature", "0", "--no-kv-cache"]);
    assert_eq!(a, b, "KV cache and full recompute disagree");
    let cpu = gen(&["--temperature", "0", "--device", "cpu"]);
    let one = p.run(&[
        "generate",
        "base",
        "--prompt",
        "Once",
        "-n",
        "30",
        "--temperature",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]);
    one.ok();
    assert_eq!(one.stdout, cpu, "one thread and one per core disagree");
    assert!(one.stderr.contains("cpu (1 thread)"), "{}", one.stderr);
    assert!(a.starts_with("Once"), "{a}");
    let words = a.split_whitespace().filter(|w| w.len() > 1).count();
    assert!(words >= 5, "{a}");
    let sampled = p.run(&["generate", "base", "--samples", "2", "--json", "-n", "20"]);
    sampled.ok();
    let docs: Vec<serde_json::Value> = sampled
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    assert!(docs[0]["tokens"].as_array().unwrap().len() <= 20);

    // A reader that stops early (`| head`) is not an error.
    let mut child = p
        .cmd(&["generate", "base", "--prompt", "Once", "-n", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");

    // Asking a data stage for text names what is wrong.
    let bad = p.run(&["generate", "corpus", "--prompt", "x"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not a model"), "{}", bad.stderr);
}
