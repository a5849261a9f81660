//! The `tokenizer` kind through the binary: BPE, char and chat-record tokenizers trained on
//! data stages; the shards read back equal to encoding the data stage's splits; `show` and
//! `tokenize` print what a user needs; bad inputs fail with clear messages.

mod common;
use common::{ran, Project};

use stages::kinds::tokenizer::records::{read_split, Record};
use tokenizer::shards::Shards;
use tokenizer::Tokenizer;

const PIPELINE: &str = r#"
name: tok-test
seed: 5
stages:
  corpus:
    kind: data
    sources: [{ synthetic: { generator: stories, documents: 300 } }]
    split: { val_fraction: 0.1 }
  chat:
    kind: data
    sources: [{ synthetic: { generator: instructions, documents: 60 } }]
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 600
  chars:
    kind: tokenizer
    data: corpus
    model: char
  chattok:
    kind: tokenizer
    data: chat
    vocab_size: 500
    pattern: gpt2
"#;

fn artifact(p: &Project, stage: &str) -> (serde_json::Value, std::path::PathBuf) {
    let show = p.run(&["show", stage, "--json"]);
    show.ok();
    let j = show.json();
    let path = std::path::PathBuf::from(j["path"].as_str().expect("path"));
    (j, path)
}

/// Every document of every split, encoded by the stage's own tokenizer.json, equals what the
/// shards hold between its offsets (its `<|eos|>` included).
fn assert_shards_equal_encoding(data_dir: &std::path::Path, tok_dir: &std::path::Path) {
    let tok = Tokenizer::from_file(tok_dir.join("tokenizer.json")).unwrap();
    let shards = Shards::open(tok_dir).unwrap();
    let eos = tok.token_to_id("<|eos|>").unwrap();
    assert_eq!(shards.meta().eos_id, eos);
    assert_eq!(shards.meta().vocab_size, tok.vocab_size());
    for name in ["train", "val"] {
        let records = read_split(&data_dir.join(format!("{name}.parquet"))).unwrap();
        let split = shards.split(name).unwrap();
        assert_eq!(split.documents(), records.len(), "{name}");
        for (i, r) in records.iter().enumerate() {
            let mut expected = tok.encode_segments(&r.segments()).unwrap();
            expected.push(eos);
            let range = split.document(i);
            let got: Vec<u32> = range.clone().map(|t| split.get(t)).collect();
            assert_eq!(got, expected, "{name} document {i}");
            if let Record::Text(text) = r {
                assert_eq!(tok.decode_lossy(&got[..got.len() - 1]), *text);
            }
        }
    }
}

#[test]
fn tokenizer_stages_train_encode_show_and_tokenize() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    let (r, report) = p.run_json(&[]);
    r.ok();
    assert_eq!(ran(&report), ["chars", "chat", "chattok", "corpus", "tok"]);

    let (corpus, corpus_dir) = artifact(&p, "corpus");
    assert_eq!(corpus["kind"], "data");
    let (j, tok_dir) = artifact(&p, "tok");
    assert_eq!(j["kind"], "tokenizer");
    assert_eq!(j["headline"], "bytes_per_token_val");
    let m = &j["metrics"];
    // 300 short stories run out of pairs seen twice before 600 ids.
    let vocab = m["vocab_size"].as_f64().unwrap();
    assert!(vocab > 400.0 && vocab <= 600.0, "vocab {vocab}");
    let bpt = m["bytes_per_token_val"].as_f64().unwrap();
    assert!(
        bpt > 2.0,
        "BPE compresses English stories: {bpt} bytes/token"
    );
    let h = m["unigram_entropy_nats_train"].as_f64().unwrap();
    assert!(h > 1.0 && h < (600f64).ln(), "entropy {h}");
    assert!(
        m["val_unigram_cross_entropy_nats"].as_f64().unwrap()
            >= m["unigram_entropy_nats_val"].as_f64().unwrap() - 1e-9
    );
    assert_shards_equal_encoding(&corpus_dir, &tok_dir);

    let (chars, chars_dir) = artifact(&p, "chars");
    let cbpt = chars["metrics"]["bytes_per_token_val"].as_f64().unwrap();
    assert!(
        cbpt < 1.1 && cbpt > 0.8,
        "char tokenizer: about a byte per token, got {cbpt}"
    );
    assert_shards_equal_encoding(&corpus_dir, &chars_dir);

    let (_, chat_dir) = artifact(&p, "chat");
    let (_, chattok_dir) = artifact(&p, "chattok");
    assert_shards_equal_encoding(&chat_dir, &chattok_dir);
    let tok = Tokenizer::from_file(chattok_dir.join("tokenizer.json")).unwrap();
    let shards = Shards::open(&chattok_dir).unwrap();
    let train = shards.split("train").unwrap();
    assert_eq!(
        train.get(0),
        tok.token_to_id("<|user|>").unwrap(),
        "a chat record starts with <|user|>"
    );

    let show = p.run(&["show", "tok"]);
    show.ok();
    for needle in [
        "tokenizer  byte-level BPE, vocab ",
        "train ",
        "bytes/token",
        "sample     val document 0",
    ] {
        assert!(
            show.stdout.contains(needle),
            "`{needle}` missing:\n{}",
            show.stdout
        );
    }

    let text = "Once upon a time<|eos|>";
    let out = p.run(&["tokenize", "tok", text, "--json"]);
    out.ok();
    let j = out.json();
    let ids: Vec<u32> = j["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap() as u32)
        .collect();
    let tok = Tokenizer::from_file(tok_dir.join("tokenizer.json")).unwrap();
    assert_eq!(ids, tok.encode(text));
    assert_eq!(
        j["tokens"].as_array().unwrap().last().unwrap()["special"],
        true
    );
    let rows = p.run(&["tokenize", "tok", text]);
    rows.ok();
    assert!(
        rows.stdout.contains("\"<|eos|>\"  (special)"),
        "{}",
        rows.stdout
    );
    let lines: Vec<&str> = rows.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        ids.len() + 1,
        "a row per token and a total:\n{}",
        rows.stdout
    );
    assert_eq!(
        lines[0].split_whitespace().next(),
        Some(ids[0].to_string().as_str())
    );
    assert!(
        lines[ids.len()].starts_with(&format!("{} tokens, 23 bytes", ids.len())),
        "{}",
        rows.stdout
    );
    let ordinary = p.run(&[
        "tokenize",
        tok_dir.to_str().unwrap(),
        text,
        "--ordinary",
        "--json",
    ]);
    ordinary.ok();
    assert!(ordinary.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["special"] == false));

    let (_, again) = p.run_json(&[]);
    assert!(ran(&again).is_empty(), "second run reuses everything");
}

#[test]
fn a_pretrained_tokenizer_json_is_used_as_is() {
    let p = Project::new();
    // Train one, then load its file in a second pipeline as `pretrained:`.
    p.write(
        "pipeline.yaml",
        &PIPELINE.replace(
            "  chars:\n    kind: tokenizer\n    data: corpus\n    model: char\n",
            "",
        ),
    );
    p.run_json(&[]).0.ok();
    let (_, tok_dir) = artifact(&p, "tok");
    std::fs::copy(tok_dir.join("tokenizer.json"), p.file("mine.json")).unwrap();
    p.write(
        "pipeline.yaml",
        "name: tok-test\nseed: 5\nstages:\n  corpus:\n    kind: data\n    sources: [{ synthetic: { generator: stories, documents: 300 } }]\n    split: { val_fraction: 0.1 }\n  loaded:\n    kind: tokenizer\n    data: corpus\n    pretrained: mine.json\n",
    );
    let (r, report) = p.run_json(&[]);
    r.ok();
    assert_eq!(ran(&report), ["loaded"]);
    let (_, loaded_dir) = artifact(&p, "loaded");
    assert_eq!(
        std::fs::read(loaded_dir.join("train.bin")).unwrap(),
        std::fs::read(tok_dir.join("train.bin")).unwrap(),
        "the same tokenizer gives the same shards"
    );
}

#[test]
fn bad_tokenizer_inputs_fail_clearly() {
    let p = Project::new();
    let base = "name: bad\nstages:\n  corpus:\n    kind: data\n    sources: [{ synthetic: { generator: stories, documents: 20 } }]\n  tok:\n    kind: tokenizer\n    data: corpus\n";
    p.write(
        "pipeline.yaml",
        &format!("{base}    pretrained: nowhere.json\n"),
    );
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nowhere.json"), "{}", r.stderr);

    p.write(
        "wordpiece.json",
        r#"{"model": {"type": "WordPiece", "vocab": {}}}"#,
    );
    p.write(
        "pipeline.yaml",
        &format!("{base}    pretrained: wordpiece.json\n"),
    );
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("model type WordPiece"), "{all}");

    p.write("pipeline.yaml", &format!("{base}    vocab_size: 100\n"));
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("vocab_size 100 is below 263"),
        "{}",
        r.stderr
    );

    p.write("pipeline.yaml", base);
    let r = p.run(&["tokenize", "no-such-stage", "x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no-such-stage"), "{}", r.stderr);
}
