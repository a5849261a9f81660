//! Parallelism, failures, interruption and concurrent runs.

mod common;
use std::time::{Duration, Instant};

use common::{outcomes, ran, Project, BIN};

/// Two independent stages that record when they started and ended (ns since epoch).
fn overlap_pipeline(marks: &std::path::Path) -> String {
    format!(
        r#"
name: overlap
stages:
  left:
    kind: command
    run: date +%s%N > {m}/left.start; sleep 1; date +%s%N > {m}/left.end; echo l > "$BINARYLM_OUT/x"
  right:
    kind: command
    run: date +%s%N > {m}/right.start; sleep 1; date +%s%N > {m}/right.end; echo r > "$BINARYLM_OUT/x"
"#,
        m = marks.display()
    )
}

fn mark(dir: &std::path::Path, name: &str) -> u128 {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn jobs_2_overlaps_independent_stages_and_jobs_1_does_not() {
    for (jobs, expect_overlap) in [("2", true), ("1", false)] {
        let p = Project::new();
        let marks = p.file("marks");
        std::fs::create_dir_all(&marks).unwrap();
        p.write("pipeline.yaml", &overlap_pipeline(&marks));
        let (r, _) = p.run_json(&["--jobs", jobs]);
        r.ok();
        let (ls, le) = (mark(&marks, "left.start"), mark(&marks, "left.end"));
        let (rs, re) = (mark(&marks, "right.start"), mark(&marks, "right.end"));
        let overlapped = ls < re && rs < le;
        assert_eq!(
            overlapped, expect_overlap,
            "--jobs {jobs}: left [{ls},{le}] right [{rs},{re}]"
        );
    }
}

/// A root and two stages reading it, each recording the threads it was given.
fn share_pipeline(marks: &std::path::Path, right: &str) -> String {
    format!(
        r#"
name: share
stages:
  root:
    kind: command
    run: echo r > "$BINARYLM_OUT/x"
  left:
    kind: command
    inputs: [root]
    run: echo "$BINARYLM_THREADS" > {m}/left; echo l > "$BINARYLM_OUT/x"
  right:
    kind: command
    inputs: [root]
    run: echo "$BINARYLM_THREADS" > {m}/right; echo {right} > "$BINARYLM_OUT/x"
"#,
        m = marks.display()
    )
}

#[test]
fn the_default_thread_share_counts_only_the_stages_that_run() {
    let p = Project::new();
    let marks = p.file("marks");
    std::fs::create_dir_all(&marks).unwrap();
    p.write("pipeline.yaml", &share_pipeline(&marks, "one"));
    p.run_json(&["--jobs", "2", "--threads", "4"]).0.ok();
    // left and right can run side by side: half the threads each.
    assert_eq!(mark(&marks, "left"), 2);
    assert_eq!(mark(&marks, "right"), 2);
    // Only right changes: left is cached, so right runs alone and gets every thread.
    p.write("pipeline.yaml", &share_pipeline(&marks, "two"));
    let (r, report) = p.run_json(&["--jobs", "2", "--threads", "4"]);
    r.ok();
    assert_eq!(ran(&report), ["right"]);
    assert_eq!(mark(&marks, "right"), 4);
}

const FAILING: &str = r#"
name: failing
stages:
  bad:
    kind: command
    run: echo "about to fail"; echo "disk full on purpose" >&2; exit 3
  after_bad:
    kind: command
    inputs: [bad]
    run: echo x > "$BINARYLM_OUT/x"
  slow_ok:
    kind: command
    run: sleep 1; echo ok > "$BINARYLM_OUT/ok"
"#;

#[test]
fn a_failing_command_fails_the_run_with_its_log_tail() {
    let p = Project::new();
    p.write("pipeline.yaml", FAILING);
    let (r, j) = p.run_json(&["--jobs", "1"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let o = outcomes(&j);
    assert_eq!(o["bad"], "failed");
    assert_eq!(o["after_bad"], "skipped");
    assert!(r.stderr.contains("exited with status 3"), "{}", r.stderr);
    assert!(
        r.stderr.contains("disk full on purpose"),
        "log tail: {}",
        r.stderr
    );
    assert_eq!(j["status"], "failed");
}

#[test]
fn keep_going_runs_what_does_not_depend_on_the_failure() {
    let p = Project::new();
    p.write("pipeline.yaml", FAILING);
    let (r, j) = p.run_json(&["--keep-going", "--jobs", "1"]);
    assert_eq!(r.code, 1);
    let o = outcomes(&j);
    assert_eq!(o["bad"], "failed");
    assert_eq!(o["after_bad"], "skipped");
    assert_eq!(o["slow_ok"], "ran");
}

fn wait_for(path: &std::path::Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stage that signals it started, then sleeps while a flag file exists.
fn interruptible(p: &Project) -> String {
    format!(
        r#"
name: interrupt
stages:
  first:
    kind: command
    run: echo one > "$BINARYLM_OUT/one"
  long:
    kind: command
    inputs: [first]
    run: echo partial > "$BINARYLM_OUT/partial"; touch {started}; while [ -f {flag} ]; do sleep 0.05; done; echo done > "$BINARYLM_OUT/done"
"#,
        started = p.file("started").display(),
        flag = p.file("flag").display()
    )
}

#[test]
fn kill_9_mid_stage_then_rerun_gives_clean_store_and_right_results() {
    let p = Project::new();
    p.write("pipeline.yaml", &interruptible(&p));
    p.write("flag", "");
    let mut child = p.cmd(&["run", "pipeline.yaml"]).spawn().expect("spawn");
    wait_for(&p.file("started"), Duration::from_secs(30));
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL.
    child.wait().unwrap();

    // Nothing half-written under a digest.
    let verify = p.run(&["verify"]);
    assert_eq!(
        verify.code, 0,
        "verify after kill: {}\n{}",
        verify.stdout, verify.stderr
    );

    std::fs::remove_file(p.file("flag")).unwrap();
    let (r, j) = p.run_json(&[]);
    r.ok();
    let o = outcomes(&j);
    assert_eq!(o["first"], "cached", "first finished before the kill");
    assert_eq!(o["long"], "ran");
    let digest = j["stages"][1]["digest"].as_str().unwrap().to_string();
    let show = p.run(&["show", &digest, "--json"]);
    let files: Vec<String> = show.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files, ["done", "partial"]);
    let verify = p.run(&["verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}

#[test]
fn sigterm_cancels_cleanly_and_records_the_run_as_cancelled() {
    let p = Project::new();
    p.write("pipeline.yaml", &interruptible(&p));
    p.write("flag", "");
    let child = p
        .cmd(&["run", "pipeline.yaml", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for(&p.file("started"), Duration::from_secs(30));
    unsafe_sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "cancelled");
    assert_eq!(outcomes(&report)["long"], "cancelled");
    assert_eq!(outcomes(&report)["first"], "ran");

    let status = p.run(&["status", "--json"]);
    status.ok();
    assert_eq!(status.json()["recent_runs"][0]["status"], "cancelled");
    let verify = p.run(&["verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
}

fn unsafe_sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn two_concurrent_runs_on_one_workspace_both_finish() {
    let p = Project::new();
    p.write(
        "pipeline.yaml",
        r#"
name: concurrent
stages:
  a: { kind: command, run: 'sleep 0.5; echo a > "$BINARYLM_OUT/a"' }
  b: { kind: command, inputs: [a], run: 'cat "$BINARYLM_INPUT_A/a" > "$BINARYLM_OUT/b"' }
"#,
    );
    let spawn = || {
        std::process::Command::new(BIN)
            .args(["run", "pipeline.yaml", "--json"])
            .current_dir(p.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (c1, c2) = (spawn(), spawn());
    let (o1, o2) = (
        c1.wait_with_output().unwrap(),
        c2.wait_with_output().unwrap(),
    );
    for o in [&o1, &o2] {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let j1: serde_json::Value = serde_json::from_slice(&o1.stdout).unwrap();
    let j2: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    // One of them did the work; the other found it cached. Same artifacts either way.
    let total_ran = ran(&j1).len() + ran(&j2).len();
    assert_eq!(total_ran, 2, "{j1}\n{j2}");
    assert_eq!(j1["stages"][1]["digest"], j2["stages"][1]["digest"]);
    p.run(&["verify"]).ok();
}
