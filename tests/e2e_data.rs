//! The `data` kind through the binary: a synthetic and a JSON Lines source feeding a command
//! stage; caching by source content (not mtime); a bad column fails with a clear message.

mod common;
use common::{ran, Project};
use stages::kinds::data::testing::{sha256_hex, Behaviour, Server};

const PIPELINE: &str = r#"
name: corpus
seed: 11
stages:
  corpus:
    kind: data
    sources:
      - synthetic: { generator: stories, documents: 200 }
      - jsonl: extra.jsonl
        column: body
    clean: { min_chars: 10 }
    split: { val_fraction: 0.1 }
  listing:
    kind: command
    inputs: [corpus]
    run: ls "$BINARYLM_INPUT_CORPUS" > "$BINARYLM_OUT/files.txt"
"#;

const EXTRA: &str = "{\"body\": \"A hand-written document about the harbor.\"}\n{\"body\": \"Another one, about the market and the barn.\"}\n";

#[test]
fn a_data_stage_runs_caches_by_content_and_feeds_downstream() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.write("extra.jsonl", EXTRA);
    let (r, report) = p.run_json(&[]);
    r.ok();
    assert_eq!(ran(&report), ["corpus", "listing"]);

    let show = p.run(&["show", "corpus", "--json"]);
    show.ok();
    let j = show.json();
    assert_eq!(j["kind"], "data");
    let files: Vec<&str> = j["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    for name in ["stats.json", "train.parquet", "val.parquet"] {
        assert!(files.contains(&name), "{name} missing from {files:?}");
    }
    let train = j["metrics"]["documents_train"]
        .as_f64()
        .expect("documents_train");
    let val = j["metrics"]["documents_val"]
        .as_f64()
        .expect("documents_val");
    assert!(train > 150.0 && val > 0.0, "train {train}, val {val}");
    assert!(train + val <= 202.0);

    // Same content, newer mtime: still cached.
    let file = std::fs::File::options()
        .append(true)
        .open(p.file("extra.jsonl"))
        .expect("open");
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(120))
        .expect("touch");
    let (r, report) = p.run_json(&[]);
    r.ok();
    assert!(ran(&report).is_empty(), "{report}");

    // New content in the source: the data stage runs again.
    p.write(
        "extra.jsonl",
        &format!("{EXTRA}{{\"body\": \"A third document, added later.\"}}\n"),
    );
    let (r, report) = p.run_json(&[]);
    r.ok();
    assert!(ran(&report).contains(&"corpus".to_string()), "{report}");
}

#[test]
fn a_wrong_column_fails_the_stage_naming_the_columns() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        &PIPELINE.replace("column: body", "column: content"),
    );
    p.write("extra.jsonl", EXTRA);
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("no column `content`") && r.stderr.contains("body"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_missing_source_file_is_bad_input_before_anything_runs() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("extra.jsonl"), "{}", r.stderr);
}

#[test]
fn show_prints_steps_reasons_histogram_and_samples() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        "name: s\nstages:\n  corpus:\n    kind: data\n    sources:\n      - path: texts\n        separator: \"\\n\\n\"\n    clean: { min_chars: 12 }\n",
    );
    p.write(
        "texts/a.txt",
        "A first paragraph of text.\n\nshort\n\nA first paragraph of text.\n\nA second, longer paragraph of text.",
    );
    p.run(&["run", "pipeline.yaml"]).ok();
    let show = p.run(&["show", "corpus"]);
    show.ok();
    let out = &show.stdout;
    for needle in [
        "sources",
        "path: texts",
        "min_chars",
        "dedup_exact",
        "removed",
        "too_short",
        "duplicate",
        "document length (characters)",
        "█",
        "samples (train)",
        "paragraph of text.",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
}

#[test]
fn a_url_source_is_fetched_once_per_pin_across_runs() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let body = std::fs::read(example.join("local-corpus/texts/harbor.txt")).expect("harbor");
    let server = Server::start(body.clone(), Behaviour::Normal);
    let manifest = std::fs::read_to_string(example.join("pinned-url/pipeline.yaml"))
        .expect("example")
        .replace(
            "http://127.0.0.1:8000/corpus.txt",
            &server.url("/corpus.txt"),
        );
    // The example pins exactly the file its README serves.
    assert!(manifest.contains(&sha256_hex(&body)));
    let p = Project::new();
    p.write("pipeline.yaml", &manifest);
    let (r, report) = p.run_json(&[]);
    r.ok();
    assert_eq!(ran(&report), ["corpus"]);
    assert_eq!(server.requests(), 1);
    let cached = p
        .workspace()
        .join("downloads/sha256")
        .join(sha256_hex(&body));
    assert!(cached.is_file(), "{}", cached.display());

    // Other cleaning: the stage runs again, the download does not.
    p.write(
        "pipeline.yaml",
        &manifest.replace("min_chars: 40", "min_chars: 50"),
    );
    let (r, report) = p.run_json(&[]);
    r.ok();
    assert_eq!(ran(&report), ["corpus"]);
    assert_eq!(server.requests(), 1, "the second run made a request");

    // A wrong pin: a clear failure, nothing kept under it.
    let wrong = "0".repeat(64);
    p.write(
        "pipeline.yaml",
        &manifest.replace(&sha256_hex(&body), &wrong),
    );
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("SHA-256") && r.stderr.contains(&wrong),
        "{}",
        r.stderr
    );
    assert!(!p.workspace().join("downloads/sha256").join(&wrong).exists());
}

#[test]
fn the_local_corpus_example_runs() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local-corpus");
    let p = Project::new();
    for rel in [
        "pipeline.yaml",
        "texts/harbor.txt",
        "texts/garden.md",
        "texts/letters.txt",
    ] {
        p.write(
            rel,
            &std::fs::read_to_string(src.join(rel)).expect("example file"),
        );
    }
    let (r, report) = p.run_json(&[]);
    r.ok();
    let stage = &report["stages"][0];
    let kept = stage["metrics"]["documents_train"].as_f64().expect("train")
        + stage["metrics"]["documents_val"].as_f64().expect("val");
    let stats: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(
                p.run(&["show", "corpus", "--json"]).json()["path"]
                    .as_str()
                    .expect("path"),
            )
            .join("stats.json"),
        )
        .expect("stats"),
    )
    .expect("json");
    let removed = &stats["removed"];
    // The planted problems of the sample texts: a near-copy, a German letter, a bullet list.
    assert_eq!(removed["near_duplicate"], 1, "{stats}");
    assert_eq!(removed["language"], 1, "{stats}");
    assert!(
        removed["quality_bullet_lines"].as_u64().is_some(),
        "{stats}"
    );
    assert!(kept >= 7.0, "{stats}");
}

/// A `records: messages` file whose conversations are malformed fails the stage with the file,
/// the line and what is wrong with it; a well-formed one gives one `messages` column.
#[test]
fn malformed_messages_fail_naming_the_line_and_the_problem() {
    const CHATS: &str = r#"
name: chats
stages:
  chats:
    kind: data
    sources:
      - jsonl: chats.jsonl
        records: messages
"#;
    let good = r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}"#;
    let cases = [
        (
            r#"{"messages": [{"role": "user", "content": "Hi"}, {"content": "Hello."}]}"#,
            "`messages[1]` has no `role`",
        ),
        (
            r#"{"messages": [{"role": "tool", "content": "42"}, {"role": "assistant", "content": "ok"}]}"#,
            "`messages[0]` has role `tool`; expected system, user or assistant",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "Hi"}]}"#,
            "no message has role `assistant`",
        ),
        (
            r#"{"prompt": "Hi", "response": "Hello."}"#,
            "no field `messages`; fields there: prompt, response",
        ),
    ];
    for (bad, message) in cases {
        let p = Project::new();
        p.write("pipeline.yaml", CHATS);
        p.write("chats.jsonl", &format!("{good}\n\n{bad}\n{good}\n"));
        let r = p.run(&["run", "pipeline.yaml"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("chats.jsonl:3: ") && r.stderr.contains(message),
            "expected line 3 and {message:?} in:\n{}",
            r.stderr
        );
    }

    let p = Project::new();
    p.write("pipeline.yaml", CHATS);
    p.write("chats.jsonl", &format!("{good}\n"));
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert_eq!(ran(&j), ["chats"]);
    let show = p.run(&["show", "chats"]);
    show.ok();
    assert!(show.stdout.contains("messages"), "{}", show.stdout);
}
