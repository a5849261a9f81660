//! The README's quickstart manifest runs, yields a sensible corpus, and is cached the second time.

mod common;
use common::{ran, Project};

#[test]
fn quickstart_example_runs_and_reruns_nothing() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        &std::fs::read_to_string(src.join("pipeline.yaml")).unwrap(),
    );
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert_eq!(ran(&j), ["corpus"]);
    let corpus = &j["stages"][0];
    assert_eq!(corpus["headline"], "documents_train");
    let train = corpus["metrics"]["documents_train"].as_f64().unwrap();
    let val = corpus["metrics"]["documents_val"].as_f64().unwrap();
    // 2000 generated stories, 5 % to validation; the grammar repeats few stories exactly.
    assert!(
        train > 1700.0 && val > 50.0 && train + val <= 2000.0,
        "{corpus}"
    );
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert!(ran(&j).is_empty(), "{j}");
    let show = p.run(&["show", "corpus"]);
    show.ok();
    assert!(show.stdout.contains("samples (train)"), "{}", show.stdout);
}
