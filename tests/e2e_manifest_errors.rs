//! Every malformed manifest in pipelines/tests/malformed/ exits 2 with a located error and
//! leaves the registry untouched. (The rendered messages are snapshot-tested in `pipelines`.)

mod common;
use common::Project;

#[test]
fn malformed_manifests_exit_2_and_touch_nothing() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/tests/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("malformed fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected at least 15 fixtures, found {}",
        files.len()
    );

    let p = Project::new();
    // A good run first, so there is a registry that must stay as it is.
    p.write(
        "good.yaml",
        "name: good\nstages:\n  a: { kind: command, run: 'echo a > \"$BINARYLM_OUT/a\"' }\n",
    );
    p.run(&["run", "good.yaml"]).ok();
    let before = snapshot_tree(&p.workspace());

    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        p.write("bad.yaml", &text);
        for cmd in ["run", "plan"] {
            let r = p.run(&[cmd, "bad.yaml"]);
            assert_eq!(r.code, 2, "{cmd} {}: {}", f.display(), r.stderr);
            assert!(
                r.stderr.contains("bad.yaml:"),
                "{}: error must name file:line:col:\n{}",
                f.display(),
                r.stderr
            );
        }
    }
    assert_eq!(before, snapshot_tree(&p.workspace()), "registry changed");
    assert!(!p.file("bad.lock").exists());
}

#[test]
fn missing_manifest_and_missing_dependency_exit_2() {
    let p = Project::new();
    let r = p.run(&["run", "nope.yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nope.yaml"), "{}", r.stderr);

    p.write(
        "pipeline.yaml",
        "name: d\nstages:\n  a:\n    kind: command\n    run: 'true'\n    deps: [missing.py]\n",
    );
    let r = p.run(&["run", "pipeline.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("missing.py"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    let p = Project::new();
    assert_eq!(p.run(&["run", "--jobs", "many"]).code, 2);
    let help = p.run(&["run", "--help"]);
    help.ok();
    assert!(help.stdout.contains("--keep-going") && help.stdout.contains("early cutoff"));
    let schema = p.run(&["schema"]);
    schema.ok();
    let s = schema.json();
    assert!(s.to_string().contains("command"));
}

/// Relative path → (size, modified) of every file under `dir` — enough to see any write.
fn snapshot_tree(dir: &std::path::Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if e.file_name() != "lock" {
                out.push((
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    m.len(),
                    m.modified().unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}
