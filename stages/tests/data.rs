//! The `data` kind end to end at the library level: every source type from fixtures written
//! here, the cleaning counts in stats.json, the split, and the errors users meet.

use std::path::{Path, PathBuf};

use pipelines::DataParams;
use polars::prelude::{Column, DataFrame, ParquetReader, ParquetWriter, SerReader};
use stages::kinds::data::{build, Build, DataError, Stats};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, bytes).expect("write fixture");
    }

    /// The params of a manifest whose only stage is `kind: data` with `body` (YAML lines
    /// indented by four spaces).
    fn params(&self, body: &str) -> DataParams {
        let text = format!("name: t\nstages:\n  corpus:\n    kind: data\n{body}");
        let path = self.path().join("pipeline.yaml");
        std::fs::write(&path, text).expect("write manifest");
        let m = pipelines::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let params = &m.stages[0].params;
        match params.get::<DataParams>() {
            Some(p) => p.clone(),
            None => panic!("not a data stage: {params:?}"),
        }
    }

    /// Runs the stage into a fresh `out-<n>` directory.
    fn run(
        &self,
        params: &DataParams,
        seed: u64,
        out: &str,
    ) -> Result<(Stats, PathBuf), DataError> {
        let out = self.path().join(out);
        std::fs::create_dir_all(&out).expect("mkdir out");
        let stats = build(&Build {
            dir: self.path(),
            params,
            seed,
            out: &out,
            scratch: &out.with_extension("scratch"),
            downloads: &self.path().join("downloads"),
            observer: &common::observe::Quiet,
        })?;
        Ok((stats, out))
    }
}

fn column(path: &Path, name: &str) -> Vec<String> {
    let file = std::fs::File::open(path).expect("open parquet");
    let df = ParquetReader::new(file).finish().expect("read parquet");
    let col = df.column(name).expect("column");
    col.str()
        .expect("strings")
        .iter()
        .map(|v| v.expect("no nulls").to_string())
        .collect()
}

fn all_texts(out: &Path) -> Vec<String> {
    let mut texts = column(&out.join("train.parquet"), "text");
    texts.extend(column(&out.join("val.parquet"), "text"));
    texts.sort();
    texts
}

#[test]
fn text_files_one_per_file_or_split_at_a_separator() {
    let f = Fixture::new();
    f.write("texts/a.txt", "first document");
    f.write("texts/b.txt", "second\n\nthird");
    f.write("texts/skip.md", "not matched");
    let p = f.params("    sources: [{ path: \"texts/*.txt\" }]\n");
    let (stats, out) = f.run(&p, 1, "whole").expect("runs");
    assert_eq!(all_texts(&out), ["first document", "second\n\nthird"]);
    assert_eq!(stats.sources[0].documents, 2);

    let p = f.params("    sources: [{ path: texts, separator: \"\\n\\n\" }]\n");
    let (_, out) = f.run(&p, 1, "split").expect("runs");
    assert_eq!(
        all_texts(&out),
        ["first document", "not matched", "second", "third"]
    );
}

#[test]
fn jsonl_csv_and_parquet_columns_are_read() {
    let f = Fixture::new();
    f.write(
        "a.jsonl",
        "{\"body\": \"from json\", \"id\": 1}\n\n{\"body\": null}\n{\"body\": \"more json\"}\n",
    );
    f.write("b.csv", "id,body\n1,from csv\n2,\"quoted, with comma\"\n");
    let mut df = DataFrame::new(
        2,
        vec![Column::new(
            "body".into(),
            ["from parquet", "again parquet"],
        )],
    )
    .expect("frame");
    let file = std::fs::File::create(f.path().join("c.parquet")).expect("create");
    ParquetWriter::new(file)
        .finish(&mut df)
        .expect("write parquet");

    let p = f.params(
        "    sources:\n      - { jsonl: a.jsonl, column: body }\n      - { csv: b.csv, column: body }\n      - { parquet: c.parquet, column: body }\n",
    );
    let (stats, out) = f.run(&p, 1, "out").expect("runs");
    assert_eq!(
        all_texts(&out),
        [
            "again parquet",
            "from csv",
            "from json",
            "from parquet",
            "more json",
            "quoted, with comma"
        ]
    );
    assert_eq!(stats.sources[0].null_rows, 1);
    let counts: Vec<usize> = stats.sources.iter().map(|s| s.documents).collect();
    assert_eq!(counts, [2, 2, 2]);
}

#[test]
fn a_missing_column_names_the_columns_there() {
    let f = Fixture::new();
    f.write("a.jsonl", "{\"body\": \"x\", \"id\": 1}\n");
    f.write("b.csv", "id,body\n1,x\n");
    let p = f.params("    sources: [{ jsonl: a.jsonl }]\n");
    let err = f.run(&p, 1, "j").expect_err("no `text` field").to_string();
    assert!(
        err.contains("a.jsonl:1") && err.contains("no column `text`") && err.contains("body, id"),
        "{err}"
    );
    let p = f.params("    sources: [{ csv: b.csv, column: content }]\n");
    let err = f.run(&p, 1, "c").expect_err("no `content`").to_string();
    assert!(
        err.contains("no column `content`") && err.contains("id, body") && err.contains("hint"),
        "{err}"
    );
}

#[test]
fn cleaning_steps_are_counted_in_stats_json() {
    let f = Fixture::new();
    f.write(
        "docs.jsonl",
        [
            "{\"text\": \"  spaced   out\\u0007 text  \"}",
            "{\"text\": \"spaced out text\"}",
            "{\"text\": \"tiny\"}",
            "{\"text\": \"cafe\\u0301 au lait, long enough\"}",
        ]
        .join("\n"),
    );
    let p = f.params(
        "    sources: [{ jsonl: docs.jsonl }]\n    clean: { collapse_whitespace: true, min_chars: 5 }\n    split: { val_fraction: 0.0 }\n",
    );
    let (stats, out) = f.run(&p, 1, "out").expect("runs");
    assert_eq!(
        all_texts(&out),
        ["café au lait, long enough", "spaced out text"]
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).expect("stats.json"))
            .expect("json");
    assert_eq!(json["removed"]["too_short"], 1);
    assert_eq!(json["removed"]["duplicate"], 1);
    let steps: Vec<(&str, u64, u64)> = json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or(""),
                s["documents_in"].as_u64().unwrap_or(0),
                s["documents_out"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("normalize_nfc", 4, 4),
            ("strip_control", 4, 4),
            ("collapse_whitespace", 4, 4),
            ("min_chars", 4, 3),
            ("dedup_exact", 3, 2),
        ]
    );
    assert_eq!(json["train"]["documents"], 2);
    assert_eq!(stats.val.documents, 0);
    let histogram_total: u64 = json["length_histogram"]
        .as_array()
        .expect("histogram")
        .iter()
        .map(|b| b["documents"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(histogram_total, 2);
}

#[test]
fn the_split_does_not_depend_on_input_order() {
    let f = Fixture::new();
    let lines: Vec<String> = (0..200)
        .map(|i| format!("{{\"text\": \"document {i} with some words\"}}"))
        .collect();
    let mut shuffled = lines.clone();
    shuffled.reverse();
    shuffled.rotate_left(37);
    f.write("a.jsonl", lines.join("\n"));
    f.write("b.jsonl", shuffled.join("\n"));
    let (sa, a) = f
        .run(
            &f.params("    sources: [{ jsonl: a.jsonl }]\n    split: { val_fraction: 0.2 }\n"),
            1,
            "a",
        )
        .expect("runs");
    let (_, b) = f
        .run(
            &f.params("    sources: [{ jsonl: b.jsonl }]\n    split: { val_fraction: 0.2 }\n"),
            1,
            "b",
        )
        .expect("runs");
    for file in ["train.parquet", "val.parquet"] {
        let left = std::fs::read(a.join(file)).expect("read");
        assert_eq!(left, std::fs::read(b.join(file)).expect("read"), "{file}");
    }
    assert!(
        sa.val.documents > 10 && sa.val.documents < 80,
        "{}",
        sa.val.documents
    );
}

#[test]
fn a_pinned_source_goes_to_validation_whole() {
    let f = Fixture::new();
    f.write("train.txt", "t1\n---\nt2\n---\nt3");
    f.write("val.txt", "v1\n---\nv2");
    let p = f.params(
        "    sources:\n      - { path: train.txt, separator: \"\\n---\\n\" }\n      - { path: val.txt, separator: \"\\n---\\n\", split: val }\n    split: { val_fraction: 0.0 }\n",
    );
    let (_, out) = f.run(&p, 1, "out").expect("runs");
    let mut val = column(&out.join("val.parquet"), "text");
    val.sort();
    assert_eq!(val, ["v1", "v2"]);
    assert_eq!(column(&out.join("train.parquet"), "text").len(), 3);
}

#[test]
fn nothing_left_is_an_error_that_says_why() {
    let f = Fixture::new();
    f.write("a.txt", "short");
    let p = f.params("    sources: [{ path: a.txt }]\n    clean: { min_chars: 100 }\n");
    let err = f.run(&p, 1, "out").expect_err("all filtered").to_string();
    assert!(
        err.contains("no documents left")
            && err.contains("1 too_short")
            && err.contains("min_chars"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_is_repaired_and_counted_or_an_error() {
    let f = Fixture::new();
    f.write("bad.txt", b"caf\xe9 latte");
    f.write("good.txt", "fine text");
    let p = f.params("    sources: [{ path: \"*.txt\" }]\n");
    let (stats, out) = f.run(&p, 1, "repair").expect("repairs");
    assert_eq!(all_texts(&out), ["caf\u{fffd} latte", "fine text"]);
    assert_eq!(stats.repaired_utf8_documents, 1);

    let p = f.params("    sources: [{ path: \"*.txt\" }]\n    clean: { invalid_utf8: error }\n");
    let err = f.run(&p, 1, "error").expect_err("strict").to_string();
    assert!(err.contains("bad.txt") && err.contains("byte 3"), "{err}");
}

#[test]
fn synthetic_corpora_are_deterministic_per_seed() {
    let f = Fixture::new();
    let p = f.params("    sources: [{ synthetic: { generator: stories, documents: 50 } }]\n");
    let (stats, a) = f.run(&p, 7, "a").expect("runs");
    let (_, b) = f.run(&p, 7, "b").expect("runs");
    let (_, c) = f.run(&p, 8, "c").expect("runs");
    let bytes = |dir: &Path| std::fs::read(dir.join("train.parquet")).expect("read");
    assert_eq!(bytes(&a), bytes(&b));
    assert_ne!(bytes(&a), bytes(&c));
    assert_eq!(
        stats.train.documents + stats.val.documents + stats.removed.values().sum::<usize>(),
        50
    );
}

#[test]
fn instructions_and_preferences_keep_their_fields() {
    let f = Fixture::new();
    let p = f.params("    sources: [{ synthetic: { generator: instructions, documents: 20 } }]\n");
    let (_, out) = f.run(&p, 1, "inst").expect("runs");
    let prompts = column(&out.join("train.parquet"), "prompt");
    let responses = column(&out.join("train.parquet"), "response");
    assert_eq!(prompts.len(), responses.len());
    assert!(prompts.iter().all(|p| p.contains("\nQuestion: ")));

    let p = f.params("    sources: [{ synthetic: { generator: preferences, documents: 20 } }]\n");
    let (_, out) = f.run(&p, 1, "pref").expect("runs");
    let chosen = column(&out.join("train.parquet"), "chosen");
    let rejected = column(&out.join("train.parquet"), "rejected");
    assert!(chosen.iter().zip(&rejected).all(|(c, r)| c != r));
}
