//! Lockfile, --locked, status/show/lineage JSON, gc and verify through the binary.

mod common;
use common::{ran, Project};

const PIPELINE: &str = r#"
name: reg
stages:
  src:
    kind: command
    run: echo "hello world" > "$BINARYLM_OUT/text.txt"
  upper:
    kind: command
    inputs: [src]
    run: tr a-z A-Z < "$BINARYLM_INPUT_SRC/text.txt" > "$BINARYLM_OUT/text.txt"
"#;

#[test]
fn lockfile_is_written_and_locked_runs_check_it() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    let (r, j) = p.run_json(&[]);
    r.ok();
    let text = std::fs::read_to_string(p.file("pipeline.lock")).unwrap();
    assert!(text.starts_with("# pipeline.lock"), "{text}");
    let lock: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(lock["pipeline"], "reg");
    assert_eq!(lock["stages"]["upper"]["digest"], j["stages"][1]["digest"]);
    assert_eq!(
        lock["stages"]["upper"]["fingerprint"],
        j["stages"][1]["fingerprint"]
    );

    // Unchanged: --locked passes and does not rewrite the file.
    let before = std::fs::read(p.file("pipeline.lock")).unwrap();
    p.run(&["run", "pipeline.yaml", "--locked"]).ok();
    assert_eq!(before, std::fs::read(p.file("pipeline.lock")).unwrap());

    // A param edit: --locked fails, names the stage, and keeps the lockfile as it was.
    p.write(
        "pipeline.yaml",
        &PIPELINE.replace("tr a-z A-Z", "tr a-y A-Y"),
    );
    let r = p.run(&["run", "pipeline.yaml", "--locked"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("upper"), "{}", r.stderr);
    assert!(r.stderr.contains("pipeline.lock"), "{}", r.stderr);
    assert_eq!(before, std::fs::read(p.file("pipeline.lock")).unwrap());
}

#[test]
fn locked_without_a_lockfile_is_an_error() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    let r = p.run(&["run", "pipeline.yaml", "--locked"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no lockfile"), "{}", r.stderr);
}

#[test]
fn status_show_and_lineage_describe_the_artifacts() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.run_json(&[]).0.ok();

    let st = p.run(&["status", "--json"]);
    st.ok();
    let sj = st.json();
    assert_eq!(sj["pipeline"], "reg");
    assert_eq!(sj["stages"][0]["state"], "up_to_date");
    assert_eq!(sj["recent_runs"][0]["status"], "succeeded");

    let show = p.run(&["show", "upper", "--json"]);
    show.ok();
    let j = show.json();
    assert_eq!(j["stage"], "upper");
    assert_eq!(j["kind"], "command");
    assert!(j["inputs"]["src"].is_string());
    assert_eq!(j["files"][0]["path"], "text.txt");

    let text = p.run(&["show", "upper"]);
    text.ok();
    assert!(text.stdout.contains("text.txt"), "{}", text.stdout);

    let lin = p.run(&["lineage", "upper"]);
    lin.ok();
    assert!(
        lin.stdout.contains("upper") && lin.stdout.contains("src"),
        "{}",
        lin.stdout
    );

    let missing = p.run(&["show", "nope"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
}

#[test]
fn status_shows_the_headline_metric() {
    // `aaa` sorts first; the stage names `words` as its headline, and status shows that one.
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"
name: head
stages:
  count:
    kind: command
    run: |
      echo '{"aaa": 1, "words": 2, "headline": "words"}' > "$BINARYLM_OUT/metrics.json"
"#,
    );
    p.run_json(&[]).0.ok();
    let st = p.run(&["status"]);
    st.ok();
    assert!(st.stdout.contains("words=2"), "{}", st.stdout);
    let j = p.run(&["status", "--json"]).json();
    assert_eq!(j["stages"][0]["headline"], "words");
}

#[test]
fn verify_names_a_corrupted_object_and_exits_nonzero() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    let (_, j) = p.run_json(&[]);
    let digest = j["stages"][0]["digest"].as_str().unwrap().to_string();
    let show = p.run(&["show", &digest, "--json"]);
    let file = std::path::PathBuf::from(show.json()["path"].as_str().unwrap()).join("text.txt");
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&file, perms).unwrap();
    std::fs::write(&file, "tampered\n").unwrap();
    let v = p.run(&["verify"]);
    assert_eq!(v.code, 1, "{}\n{}", v.stdout, v.stderr);
    assert!(
        v.stdout.contains(&digest[..12]) || v.stderr.contains(&digest[..12]),
        "verify must name the object: {}{}",
        v.stdout,
        v.stderr
    );
}

#[test]
fn gc_keeps_what_the_lockfile_references() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.run_json(&[]).0.ok();
    // Produce an artifact that nothing references any more.
    p.write(
        "pipeline.yaml",
        &PIPELINE.replace("hello world", "hello there"),
    );
    let (_, j) = p.run_json(&[]);
    assert_eq!(ran(&j), ["src", "upper"]);

    let dry = p.run(&["gc", "--dry-run", "--keep-runs", "0"]);
    dry.ok();
    let again = p.run(&["gc", "--keep-runs", "0"]);
    again.ok();
    // Current pipeline stays cached after gc.
    let (_, j) = p.run_json(&[]);
    assert!(ran(&j).is_empty(), "{j}");
    p.run(&["verify"]).ok();
}

#[test]
fn a_lost_registry_database_is_rebuilt_from_the_store() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    let (_, j1) = p.run_json(&[]);
    std::fs::remove_dir_all(p.workspace().join("registry.sled")).unwrap();
    // The indexes come back from the files: nothing re-runs, lineage and runs are intact.
    let (r, j2) = p.run_json(&[]);
    r.ok();
    assert!(ran(&j2).is_empty(), "{j2}");
    assert_eq!(j1["stages"][1]["digest"], j2["stages"][1]["digest"]);
    let lin = p.run(&["lineage", "upper", "--json"]);
    lin.ok();
    assert_eq!(lin.json()["inputs"][0]["name"], "src");
    let v = p.run(&["verify", "--rebuild"]);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    let st = p.run(&["status", "--json"]);
    assert_eq!(st.json()["recent_runs"].as_array().unwrap().len(), 2);
}
