//! The data stage's build through its public entry point, on files written by each test:
//! every source kind, every cleaning step with its counts, order independence, and the
//! errors a user can run into.

use std::path::{Path, PathBuf};

use polars::prelude::{ParquetReader, SerReader};
use stages::kinds::data::testing::{sha256_hex, Behaviour, Server};
use stages::kinds::data::{build, Build, DataError, Stats};

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    fn out(&self) -> PathBuf {
        self.path().join("out")
    }

    /// Builds the data stage whose YAML body (indented under the stage) is `stage`.
    fn build(&self, stage: &str) -> Result<Stats, DataError> {
        let body: String = stage.lines().map(|l| format!("    {l}\n")).collect();
        let yaml = format!("name: t\nseed: 5\nstages:\n  corpus:\n    kind: data\n{body}");
        let manifest = pipelines::parse(&yaml, &self.path().join("pipeline.yaml"))
            .unwrap_or_else(|e| panic!("manifest: {e}\n{yaml}"));
        let Some(params) = manifest.stages[0].params.get::<pipelines::DataParams>() else {
            panic!("not a data stage");
        };
        let out = self.out();
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).expect("out");
        build(&Build {
            dir: self.path(),
            params,
            seed: manifest.seed,
            out: &out,
            scratch: &self.path().join("scratch"),
            downloads: &self.path().join("downloads"),
            observer: &common::observe::Quiet,
        })
    }

    /// The `column` values of an output split.
    fn column(&self, file: &str, column: &str) -> Vec<String> {
        let f = std::fs::File::open(self.out().join(file)).expect("open");
        let df = ParquetReader::new(f).finish().expect("parquet");
        df.column(column)
            .expect("column")
            .str()
            .expect("strings")
            .iter()
            .map(|v| v.expect("non-null").to_string())
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        let mut all = self.column("train.parquet", "text");
        all.extend(self.column("val.parquet", "text"));
        all.sort();
        all
    }
}

fn step<'a>(stats: &'a Stats, name: &str) -> &'a stages::kinds::data::StepStats {
    stats
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {:?}", stats.steps))
}

fn removed(stats: &Stats, reason: &str) -> usize {
    stats.removed.get(reason).copied().unwrap_or(0)
}

#[test]
fn text_files_by_file_directory_glob_and_separator() {
    let d = Dir::new();
    d.write("texts/a.txt", "first file");
    d.write("texts/sub/b.txt", "second file");
    d.write("texts/c.md", "para one\n\npara two");
    let stats = d
        .build("sources:\n  - path: texts/a.txt\n  - path: texts/sub\n  - path: \"texts/*.md\"\n    separator: \"\\n\\n\"")
        .expect("build");
    assert_eq!(
        d.texts(),
        ["first file", "para one", "para two", "second file"]
    );
    let docs: Vec<usize> = stats.sources.iter().map(|s| s.documents).collect();
    assert_eq!(docs, [1, 1, 2]);
    assert_eq!(
        stats.input_bytes,
        "first filesecond filepara onepara two".len()
    );
}

#[test]
fn jsonl_csv_and_parquet_columns_with_nulls_skipped() {
    let d = Dir::new();
    d.write(
        "a.jsonl",
        "{\"body\": \"from json\", \"n\": 1}\n\n{\"body\": null}\n{\"body\": \"second json\"}\n",
    );
    d.write("b.csv", "id,body\n1,from csv\n2,\"quoted, with comma\"\n");
    let mut df = polars::df!("body" => ["from parquet"], "n" => [3i64]).expect("df");
    let f = std::fs::File::create(d.path().join("c.parquet")).expect("create");
    polars::prelude::ParquetWriter::new(f)
        .finish(&mut df)
        .expect("write");
    let stats = d
        .build(
            "sources:\n  - jsonl: a.jsonl\n    column: body\n  - csv: b.csv\n    column: body\n  - parquet: c.parquet\n    column: body",
        )
        .expect("build");
    assert_eq!(
        d.texts(),
        [
            "from csv",
            "from json",
            "from parquet",
            "quoted, with comma",
            "second json"
        ]
    );
    assert_eq!(stats.sources[0].null_rows, 1);
}

#[test]
fn a_missing_column_names_the_columns_that_exist() {
    let d = Dir::new();
    d.write("a.jsonl", "{\"body\": \"x\"}\n");
    d.write("b.csv", "id,body\n1,x\n");
    let mut df = polars::df!("body" => ["x"]).expect("df");
    let f = std::fs::File::create(d.path().join("c.parquet")).expect("create");
    polars::prelude::ParquetWriter::new(f)
        .finish(&mut df)
        .expect("write");
    for source in ["jsonl: a.jsonl", "csv: b.csv", "parquet: c.parquet"] {
        let err = d
            .build(&format!("sources:\n  - {source}\n    column: content"))
            .expect_err("missing column")
            .to_string();
        assert!(
            err.contains("no column `content`") && err.contains("body"),
            "{source}: {err}"
        );
    }
}

#[test]
fn synthetic_generators_keep_their_fields() {
    let d = Dir::new();
    d.build("sources:\n  - synthetic: { generator: preferences, documents: 30 }")
        .expect("build");
    let prompts = d.column("train.parquet", "prompt");
    let chosen = d.column("train.parquet", "chosen");
    let rejected = d.column("train.parquet", "rejected");
    assert!(!prompts.is_empty() && prompts.len() == chosen.len());
    assert!(chosen.iter().zip(&rejected).all(|(c, r)| c != r));
    assert!(prompts.iter().all(|p| p.contains("\nQuestion: ")));
}

#[test]
fn invalid_utf8_is_repaired_and_counted_or_an_error() {
    let d = Dir::new();
    d.write("bad.txt", b"caf\xe9 au lait");
    let stats = d.build("sources:\n  - path: bad.txt").expect("repair");
    assert_eq!(d.texts(), ["caf\u{fffd} au lait"]);
    assert_eq!(stats.repaired_utf8_documents, 1);
    let err = d
        .build("sources:\n  - path: bad.txt\nclean: { invalid_utf8: error }")
        .expect_err("error")
        .to_string();
    assert!(err.contains("bad.txt") && err.contains("byte 3"), "{err}");
    d.write(
        "bad.jsonl",
        b"{\"text\": \"fine\"}\n{\"text\": \"caf\xe9\"}\n",
    );
    let err = d
        .build("sources:\n  - jsonl: bad.jsonl\nclean: { invalid_utf8: error }")
        .expect_err("error")
        .to_string();
    assert!(
        err.contains("bad.jsonl") && err.contains("byte 30"),
        "{err}"
    );
}

#[test]
fn every_cleaning_step_is_counted() {
    let d = Dir::new();
    let prose = "The farmer walked along the river to the market with a basket of apples, \
                 and on the way he met the miller, who told him that the bridge had been \
                 washed away by the storm during the night and that the ferry would be \
                 running until the carpenters had built a new one in the spring.";
    let docs = [
        format!("<p>{prose}</p>"),               // HTML, kept
        format!("{prose}  \u{7}extra   spaces"), // control + whitespace, kept
        "cafe\u{301} short".to_string(),         // NFC, then too short
        format!("{prose} {prose}"),              // too long
        "Der Bauer ging am Fluss entlang zum Markt, mit einem Korb voller Äpfel, und traf \
         unterwegs den Müller, der ihm erzählte, dass die Brücke in der Nacht vom Sturm \
         weggespült worden war und die Fähre fahren würde, bis die Zimmerleute eine neue \
         gebaut hätten."
            .to_string(), // language
        "- buy the apples\n- buy the pears\n- buy the bread\n- buy the honey and the milk \
         and the eggs for breakfast and the cheese"
            .to_string(), // quality: bullets
        format!("{prose}  \u{7}extra   spaces"), // exact duplicate of the second
    ];
    let jsonl: String = docs
        .iter()
        .map(|t| format!("{}\n", serde_json::json!({ "text": t })))
        .collect();
    d.write("docs.jsonl", jsonl);
    let stats = d
        .build(
            "sources:\n  - jsonl: docs.jsonl\nclean:\n  strip_html: true\n  collapse_whitespace: true\n  min_chars: 20\n  max_chars: 400\n  languages: [en]\n  quality: { min_words: 10 }",
        )
        .expect("build");
    assert_eq!(d.texts().len(), 2, "{:?}", d.texts());
    assert_eq!(step(&stats, "strip_html").changed, 1);
    assert_eq!(step(&stats, "normalize_nfc").changed, 1);
    assert_eq!(step(&stats, "strip_control").changed, 2);
    assert_eq!(step(&stats, "collapse_whitespace").changed, 2);
    assert_eq!(removed(&stats, "too_short"), 1);
    assert_eq!(removed(&stats, "too_long"), 1);
    assert_eq!(removed(&stats, "language"), 1);
    assert_eq!(removed(&stats, "quality_bullet_lines"), 1);
    assert_eq!(removed(&stats, "duplicate"), 1);
    let names: Vec<&str> = stats.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "strip_html",
            "normalize_nfc",
            "strip_control",
            "collapse_whitespace",
            "min_chars",
            "max_chars",
            "language",
            "quality",
            "dedup_exact"
        ]
    );
    // Each step starts with what the previous one left.
    for pair in stats.steps.windows(2) {
        assert_eq!(pair[0].documents_out, pair[1].documents_in, "{pair:?}");
        assert_eq!(pair[0].chars_out, pair[1].chars_in, "{pair:?}");
    }
    assert_eq!(stats.train.documents + stats.val.documents, 2);
}

/// Pseudo-random words from a 2,000-word vocabulary: documents built from it share few
/// 5-word shingles unless planted.
fn random_doc(state: &mut u64, words: usize) -> Vec<String> {
    (0..words)
        .map(|_| {
            *state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            format!("w{}", (*state >> 33) % 2000)
        })
        .collect()
}

#[test]
fn planted_near_duplicates_are_removed_and_the_smallest_hash_survives() {
    let d = Dir::new();
    let mut state = 42u64;
    let mut lines = Vec::new();
    let mut planted = 0;
    for i in 0..60 {
        let words = random_doc(&mut state, 120);
        lines.push(words.join(" "));
        if i % 6 == 0 {
            // One word changed: Jaccard of 5-word shingles ≈ 0.92.
            let mut near = words.clone();
            near[60] = "changed".to_string();
            lines.push(near.join(" "));
            planted += 1;
        }
    }
    let jsonl: String = lines
        .iter()
        .map(|t| format!("{}\n", serde_json::json!({ "text": t })))
        .collect();
    d.write("docs.jsonl", &jsonl);
    let stats = d
        .build("sources:\n  - jsonl: docs.jsonl\nclean: { near_dedup: { threshold: 0.8 } }")
        .expect("build");
    assert_eq!(planted, 10);
    assert_eq!(removed(&stats, "near_duplicate"), planted);
    let near = step(&stats, "dedup_near");
    assert_eq!((near.documents_in, near.documents_out), (70, 60));
    let layout = stats.near_dedup.as_ref().expect("layout");
    assert!(layout.bands * layout.rows <= 128);
    let kept = d.texts();

    // The same documents in another order keep the same members of each pair.
    let mut reversed: Vec<&str> = jsonl.lines().collect();
    reversed.reverse();
    d.write("docs.jsonl", reversed.join("\n"));
    d.build("sources:\n  - jsonl: docs.jsonl\nclean: { near_dedup: { threshold: 0.8 } }")
        .expect("build");
    assert_eq!(d.texts(), kept);
}

#[test]
fn shuffled_input_gives_byte_identical_outputs() {
    let outputs = |order: &dyn Fn(&mut Vec<String>)| {
        let d = Dir::new();
        let mut lines: Vec<String> = (0..3000)
            .map(|i| {
                serde_json::json!({ "text": format!("document {i} about {}", i % 17) }).to_string()
            })
            .collect();
        order(&mut lines);
        // Split over two files, so batches and sources differ too.
        let half = lines.len() / 2;
        d.write("a/part.jsonl", lines[..half].join("\n"));
        d.write("b/part.jsonl", lines[half..].join("\n"));
        d.build("sources:\n  - jsonl: \"*/part.jsonl\"\nclean: { near_dedup: {} }\nsplit: { val_fraction: 0.1 }")
            .expect("build");
        ["train.parquet", "val.parquet", "stats.json"]
            .map(|f| std::fs::read(d.out().join(f)).expect("read"))
    };
    let plain = outputs(&|_| {});
    let reversed = outputs(&|l| l.reverse());
    let rotated = outputs(&|l| l.rotate_left(1234));
    assert!(plain == reversed && plain == rotated);
}

#[test]
fn nothing_left_is_a_clear_error() {
    let d = Dir::new();
    d.write("tiny.txt", "a\n\nb\n\nc");
    let err = d
        .build("sources:\n  - path: tiny.txt\n    separator: \"\\n\\n\"\nclean: { min_chars: 5 }")
        .expect_err("empty")
        .to_string();
    assert!(
        err.contains("no documents left") && err.contains("3 too_short"),
        "{err}"
    );
}

#[test]
fn a_url_source_downloads_once_and_checks_its_pin() {
    let d = Dir::new();
    let body = b"one document\n\nanother document\n".to_vec();
    let server = Server::start(body.clone(), Behaviour::Normal);
    let sha = sha256_hex(&body);
    let stage = |url: &str, sha: &str| {
        format!("sources:\n  - url: {url}\n    sha256: {sha}\n    separator: \"\\n\\n\"\nclean: {{ collapse_whitespace: true }}")
    };
    let url = server.url("/corpus.txt");
    d.build(&stage(&url, &sha)).expect("build");
    assert_eq!(d.texts(), ["another document", "one document"]);
    assert!(d.path().join("downloads/sha256").join(&sha).is_file());
    d.build(&stage(&url, &sha)).expect("cached build");
    assert_eq!(server.requests(), 1, "the second build used the cache");

    let wrong = "f".repeat(64);
    let err = d
        .build(&stage(&url, &wrong))
        .expect_err("mismatch")
        .to_string();
    assert!(err.contains(&wrong) && err.contains(&sha), "{err}");
    assert!(!d.path().join("downloads/sha256").join(&wrong).exists());

    // A table format from the extension.
    let rows = b"{\"text\": \"row one\"}\n{\"text\": \"row two\"}\n".to_vec();
    let tables = Server::start(rows.clone(), Behaviour::Normal);
    d.build(&format!(
        "sources:\n  - url: {}\n    sha256: {}",
        tables.url("/rows.jsonl"),
        sha256_hex(&rows)
    ))
    .expect("jsonl url");
    assert_eq!(d.texts(), ["row one", "row two"]);
}

#[test]
fn a_cancelled_build_stops() {
    let d = Dir::new();
    d.write("a.txt", "text");
    let manifest = pipelines::parse(
        "name: t\nstages:\n  corpus:\n    kind: data\n    sources:\n      - path: a.txt\n",
        &d.path().join("pipeline.yaml"),
    )
    .expect("manifest");
    let Some(params) = manifest.stages[0].params.get::<pipelines::DataParams>() else {
        panic!()
    };
    let err = build(&Build {
        dir: d.path(),
        params,
        seed: 1,
        out: d.path(),
        scratch: &d.path().join("scratch"),
        downloads: &d.path().join("downloads"),
        observer: &common::observe::AlreadyCancelled,
    })
    .expect_err("cancelled");
    assert!(matches!(err, DataError::Cancelled));
}
