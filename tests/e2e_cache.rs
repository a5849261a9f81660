//! The core promise: run exactly what changed, reuse the rest.

mod common;
use common::{outcomes, ran, Project};

/// a → b → d, and c independent. Each writes a file derived from its inputs.
const PIPELINE: &str = r#"
name: cache-test
seed: 7
stages:
  a:
    kind: command
    run: echo alpha > "$BINARYLM_OUT/a.txt"
  b:
    kind: command
    inputs: [a]
    run: cat "$BINARYLM_INPUT_A/a.txt" > "$BINARYLM_OUT/b.txt"; echo beta >> "$BINARYLM_OUT/b.txt"
  c:
    kind: command
    run: echo gamma > "$BINARYLM_OUT/c.txt"
  d:
    kind: command
    inputs: [b]
    run: wc -l < "$BINARYLM_INPUT_B/b.txt" > "$BINARYLM_OUT/count.txt"
"#;

#[test]
fn second_run_executes_nothing() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    let (r1, j1) = p.run_json(&[]);
    r1.ok();
    assert_eq!(ran(&j1), ["a", "b", "c", "d"]);
    assert_eq!(j1["status"], "succeeded");

    let (r2, j2) = p.run_json(&[]);
    r2.ok();
    assert!(
        ran(&j2).is_empty(),
        "nothing should run: {:?}",
        outcomes(&j2)
    );
    assert!(outcomes(&j2).values().all(|s| s == "cached"));
    // Same digests both times.
    assert_eq!(j1["stages"][3]["digest"], j2["stages"][3]["digest"]);
}

#[test]
fn param_edit_reruns_exactly_the_affected_stages() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.run_json(&[]).0.ok();
    // b's output changes → b and its downstream d re-run; a and c stay cached.
    p.write(
        "pipeline.yaml",
        &PIPELINE.replace("echo beta >>", "echo BETA >>"),
    );
    let plan = p.run(&["plan", "pipeline.yaml"]);
    plan.ok();
    assert!(
        plan.stdout.contains("param `run` changed"),
        "plan should say why b runs:\n{}",
        plan.stdout
    );
    let (r, j) = p.run_json(&[]);
    r.ok();
    let o = outcomes(&j);
    assert_eq!(o["a"], "cached");
    assert_eq!(o["b"], "ran");
    assert_eq!(o["c"], "cached");
    // d's input changed digest, so it re-ran even though its own params did not change.
    assert_eq!(o["d"], "ran");
}

#[test]
fn reordering_keys_comments_and_whitespace_change_nothing() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.run_json(&[]).0.ok();
    let reordered = r#"
# the same pipeline, written differently
seed: 7
name: cache-test
stages:
  d: { inputs: [b], kind: command, run: wc -l < "$BINARYLM_INPUT_B/b.txt" > "$BINARYLM_OUT/count.txt" }
  c:
    run: echo gamma > "$BINARYLM_OUT/c.txt"     # trailing comment
    kind: command


  b:
    run: cat "$BINARYLM_INPUT_A/a.txt" > "$BINARYLM_OUT/b.txt"; echo beta >> "$BINARYLM_OUT/b.txt"
    inputs:
      - a
    kind: command
  a: {kind: command, run: echo alpha > "$BINARYLM_OUT/a.txt"}
"#;
    p.write("pipeline.yaml", reordered);
    let (r, j) = p.run_json(&[]);
    r.ok();
    assert!(ran(&j).is_empty(), "{:?}", outcomes(&j));
}

#[test]
fn early_cutoff_keeps_downstream_cached() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.run_json(&[]).0.ok();
    // b's command changes but produces byte-identical output: b re-runs, d stays cached.
    p.write(
        "pipeline.yaml",
        &PIPELINE.replace("echo beta >>", "printf 'beta\\n' >>"),
    );
    let plan = p.run(&["plan", "pipeline.yaml", "--json"]);
    plan.ok();
    let pj = plan.json();
    let d = pj["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "d")
        .unwrap();
    assert_eq!(d["status"], "pending", "plan cannot know yet: {d}");
    let (r, j) = p.run_json(&[]);
    r.ok();
    let o = outcomes(&j);
    assert_eq!(o["b"], "ran");
    assert_eq!(o["d"], "cached", "early cutoff: {o:?}");
}

#[test]
fn seed_change_reruns_everything_and_force_reruns_one() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    p.run_json(&[]).0.ok();
    let (r, j) = p.run_json(&["--force", "c"]);
    r.ok();
    assert_eq!(ran(&j), ["c"]);
    p.write("pipeline.yaml", &PIPELINE.replace("seed: 7", "seed: 8"));
    let plan = p.run(&["plan", "pipeline.yaml"]);
    assert!(plan.stdout.contains("seed changed"), "{}", plan.stdout);
    let (r, j) = p.run_json(&[]);
    r.ok();
    // Seed is part of every fingerprint; outputs are identical here, so a/c re-run and b/d
    // re-run only because they are fingerprinted with the seed too.
    assert_eq!(ran(&j).len(), 4);
}

#[test]
fn dependency_files_are_hashed_by_content() {
    let p = Project::new();
    p.write("scripts/gen.sh", "echo one\n");
    p.write(
        "pipeline.yaml",
        r#"
name: deps
stages:
  gen:
    kind: command
    run: sh scripts/gen.sh > "$BINARYLM_OUT/out.txt"
    deps: [scripts/gen.sh]
"#,
    );
    p.run_json(&[]).0.ok();
    // Touching (same content) does not re-run.
    let f = std::fs::File::options()
        .append(true)
        .open(p.file("scripts/gen.sh"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let (_, j) = p.run_json(&[]);
    assert!(ran(&j).is_empty());
    // Editing does.
    p.write("scripts/gen.sh", "echo two\n");
    let plan = p.run(&["plan", "pipeline.yaml"]);
    assert!(
        plan.stdout.contains("dependency `scripts/gen.sh` changed"),
        "{}",
        plan.stdout
    );
    let (_, j) = p.run_json(&[]);
    assert_eq!(ran(&j), ["gen"]);
}

#[test]
fn inputs_arrive_as_read_only_store_paths() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    let (r, j) = p.run_json(&[]);
    r.ok();
    let d_digest = j["stages"][3]["digest"].as_str().unwrap().to_string();
    let show = p.run(&["show", &d_digest[..10], "--json"]);
    show.ok();
    let sj = show.json();
    assert_eq!(sj["stage"], "d");
    // b.txt has "alpha" and "beta": two lines.
    let path = std::path::PathBuf::from(sj["path"].as_str().unwrap()).join("count.txt");
    assert_eq!(std::fs::read_to_string(path).unwrap().trim(), "2");
}

/// The stage names of a lockfile, in its (sorted) order.
fn locked_stages(p: &Project) -> Vec<String> {
    let text = std::fs::read_to_string(p.file("pipeline.lock")).unwrap();
    let lock: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    lock["stages"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn named_stages_run_with_what_they_need_and_the_lockfile_keeps_the_rest() {
    let p = Project::new();
    p.write("pipeline.yaml", PIPELINE);
    // `b` needs `a`; nothing downstream (`d`) or beside it (`c`) runs.
    let (r, j) = p.run_json(&["b"]);
    r.ok();
    assert_eq!(ran(&j), ["a", "b"]);
    assert_eq!(locked_stages(&p), ["a", "b"]);
    // Without a manifest word the stages are ./pipeline.yaml's; `plan` reads the same way.
    let plan = p.run(&["plan", "d"]);
    plan.ok();
    assert!(
        plan.stdout.contains("1 of 3 stages to run"),
        "{}",
        plan.stdout
    );
    let r = p.run(&["run", "d", "c"]);
    r.ok();
    assert_eq!(locked_stages(&p), ["a", "b", "c", "d"]);

    // A change to `a` re-runs what `b` needs; the lock keeps `c` and `d` as they were.
    let before = std::fs::read_to_string(p.file("pipeline.lock")).unwrap();
    p.write(
        "pipeline.yaml",
        &PIPELINE.replace("echo alpha", "echo ALPHA"),
    );
    let (r, j) = p.run_json(&["b"]);
    r.ok();
    assert_eq!(ran(&j), ["a", "b"]);
    let after = std::fs::read_to_string(p.file("pipeline.lock")).unwrap();
    let entry = |text: &str, stage: &str| -> serde_yaml::Value {
        serde_yaml::from_str::<serde_yaml::Value>(text).unwrap()["stages"][stage].clone()
    };
    assert_eq!(entry(&before, "c"), entry(&after, "c"));
    assert_eq!(entry(&before, "d"), entry(&after, "d"), "d was not run");
    assert_ne!(entry(&before, "a"), entry(&after, "a"));
    // Now `d` is stale: the whole manifest under --locked says so.
    let locked = p.run(&["run", "--locked"]);
    assert_eq!(locked.code, 1, "{}", locked.stderr);

    // Bad names: an unknown stage, a --force of a stage the run leaves out, a manifest that
    // is not there.
    let bad = p.run(&["run", "pipeline.yaml", "nope"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("no stage `nope` in the manifest (its stages: a, b, c, d)"),
        "{}",
        bad.stderr
    );
    let bad = p.run(&["run", "b", "--force", "c"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("it runs a, b"), "{}", bad.stderr);
    let elsewhere = Project::new();
    let bad = elsewhere.run(&["run", "b"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("`b` was read as a stage to run"),
        "{}",
        bad.stderr
    );
}
