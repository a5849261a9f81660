//! The README's quickstart manifest runs, yields a sensible metric, and is cached the second time.

mod common;
use common::{ran, Project};

#[test]
fn quickstart_example_runs_and_reruns_nothing() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let p = Project::new();
    for rel in [
        "pipeline.yaml",
        "scripts/make_corpus.sh",
        "scripts/unigram.awk",
    ] {
        p.write(rel, &std::fs::read_to_string(src.join(rel)).unwrap());
    }
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert_eq!(ran(&j), ["corpus", "unigram", "vocab"]);
    let unigram = &j["stages"][2];
    assert_eq!(unigram["headline"], "unigram_bits_per_word");
    let bits = unigram["metrics"]["unigram_bits_per_word"]
        .as_f64()
        .unwrap();
    // ~30 distinct words, skewed: well above 1 bit and below log2(30) ≈ 4.9.
    assert!(bits > 1.0 && bits < 4.95, "unigram entropy {bits}");
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert!(ran(&j).is_empty(), "{j}");
}
