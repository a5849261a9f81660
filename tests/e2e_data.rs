//! The `data` kind through the binary: a synthetic and a JSON Lines source feeding a command
//! stage; caching by source content (not mtime); a bad column fails with a clear message.

mod common;
use common::{ran, Project};

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
