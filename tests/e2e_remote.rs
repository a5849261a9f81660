//! The remote cache end to end: push from one workspace, pull into a fresh clone (manifest +
//! lockfile), and `run --locked` runs nothing; `run --pull` fetches instead of recomputing; a
//! tampered remote object is refused and not stored; a SIGKILL mid-push or mid-pull leaves no
//! partial object visible on either side, and the next run resumes.

mod common;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{outcomes, Project};

/// The cheap stages (data + tokenizer) plus a command stage with a file big enough for a
/// transfer to be caught mid-way, and the remote named in the manifest.
fn manifest(remote: &Path, big_mb: usize) -> String {
    format!(
        r#"
name: shared
seed: 3
remotes:
  team: {remote}
stages:
  corpus:
    kind: data
    sources: [{{ synthetic: {{ generator: stories, documents: 200 }} }}]
    split: {{ val_fraction: 0.1 }}
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 300
  blob:
    kind: command
    run: head -c {big} /dev/zero > "$BINARYLM_OUT/zeros.bin"; echo done > "$BINARYLM_OUT/note.txt"
"#,
        remote = remote.display(),
        big = big_mb << 20,
    )
}

/// The quickstart's shape, small: data, tokenizer, a pretrained model and its deploy bundle
/// (seconds on a CPU).
fn quickstart(remote: &Path) -> String {
    format!(
        r#"
name: shared-quickstart
seed: 5
remotes:
  team: {remote}
stages:
  corpus:
    kind: data
    sources: [{{ synthetic: {{ generator: stories, documents: 300 }} }}]
    split: {{ val_fraction: 0.1 }}
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 400
  base:
    kind: pretrain
    tokenizer: tok
    device: cpu
    model: {{preset: tiny, n_layer: 2, n_embd: 32, n_head: 2, block_size: 32}}
    train: {{steps: 30, batch_size: 4, lr: 0.01, min_lr: 0.001, warmup_steps: 5, eval_every: 10, eval_batches: 2, log_every: 5}}
  api:
    kind: deploy
    model: base
    device: cpu
    smoke: {{ max_tokens: 6 }}
"#,
        remote = remote.display(),
    )
}

/// A project with the manifest, and (optionally) a lockfile copied from another.
fn clone_of(manifest_text: &str, lock_from: Option<&Project>) -> Project {
    let p = Project::new();
    p.write("pipeline.yaml", manifest_text);
    if let Some(src) = lock_from {
        let lock = std::fs::read_to_string(src.file("pipeline.lock")).expect("lockfile");
        p.write("pipeline.lock", &lock);
    }
    p
}

fn remote_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("remote dir")
}

/// Every file under `dir` (relative path, full path), skipping object_store's staging files.
fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, p));
            }
        }
    }
    out.sort();
    out
}

fn blake3_hex(path: &Path) -> String {
    // The hash binarylm names blobs by, recomputed independently of it.
    blake3::hash(&std::fs::read(path).expect("read"))
        .to_hex()
        .to_string()
}

/// The remote's invariants, whenever it is looked at: every blob holds the bytes its name
/// says, every object's listing names only blobs that are there, every record names an object
/// that is there.
fn assert_remote_consistent(remote: &Path) {
    for (rel, path) in files_under(remote) {
        if rel.contains('#') {
            continue; // a staging file: never visible under a key
        }
        if let Some(name) = rel.strip_prefix("blobs/") {
            let hash = name.rsplit('/').next().unwrap();
            assert_eq!(blake3_hex(&path), hash, "blob {rel} holds other bytes");
        } else if rel.starts_with("objects/") {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("object json");
            for f in meta["files"].as_array().expect("files") {
                let h = f["blake3"].as_str().unwrap();
                let blob = remote.join("blobs").join(&h[..2]).join(h);
                assert!(
                    blob.is_file(),
                    "object {rel} lists {h}, which is not on the remote"
                );
            }
        } else if rel.starts_with("records/") {
            let rec: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("record json");
            let d = rec["digest"].as_str().unwrap();
            let meta = remote
                .join("objects")
                .join(&d[..2])
                .join(format!("{d}.json"));
            assert!(
                meta.is_file(),
                "record {rel} names object {d}, not on the remote"
            );
        } else {
            panic!("unexpected file on the remote: {rel}");
        }
    }
}

fn digests(report: &serde_json::Value) -> Vec<(String, String)> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["digest"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

#[test]
fn push_then_pull_into_a_fresh_clone_and_locked_runs_nothing() {
    let remote = remote_dir();
    let text = quickstart(remote.path());
    let a = clone_of(&text, None);
    let (ra, ja) = a.run_json(&[]);
    ra.ok();

    let pushed = a.run(&["push", "--json"]);
    pushed.ok();
    let pj = pushed.json();
    assert_eq!(pj["remote"], "team");
    assert_eq!(pj["objects"], 4, "{pj}");
    assert_eq!(pj["records"], 4, "{pj}");
    assert!(
        pushed.stderr.contains("pushed 4 objects"),
        "{}",
        pushed.stderr
    );
    assert_remote_consistent(remote.path());

    // A second push sends nothing.
    let again = a.run(&["push", "--json"]);
    again.ok();
    assert_eq!(again.json()["objects"], 0);
    assert_eq!(again.json()["objects_present"], 4);

    // A fresh clone: the manifest and the lockfile, nothing else.
    let b = clone_of(&text, Some(&a));
    let pulled = b.run(&["pull", "--json"]);
    pulled.ok();
    assert_eq!(pulled.json()["objects"], 4, "{}", pulled.stdout);
    let started = Instant::now();
    let (rb, jb) = b.run_json(&["--locked"]);
    rb.ok();
    assert!(outcomes(&jb).values().all(|s| s == "cached"), "{jb}");
    assert_eq!(digests(&ja), digests(&jb));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );

    // The pulled workspace knows its stages: status, show and verify work, and the model's
    // metrics travelled with its record.
    let status = b.run(&["status", "--json"]);
    status.ok();
    assert!(
        status.json()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "up_to_date"),
        "{}",
        status.stdout
    );
    let show = b.run(&["show", "base", "--json"]);
    show.ok();
    let base_a = common::stage(&ja, "base");
    assert!(base_a["metrics"]["val_loss"].as_f64().is_some(), "{base_a}");
    assert_eq!(
        show.json()["metrics"]["val_loss"],
        base_a["metrics"]["val_loss"]
    );
    b.run(&["verify"]).ok();
}

#[test]
fn run_pull_fetches_instead_of_recomputing() {
    let remote = remote_dir();
    let text = manifest(remote.path(), 1);
    let a = clone_of(&text, None);
    a.run_json(&[]).0.ok();
    a.run(&["push", "tok", "corpus"]).ok();

    // No lockfile here: --pull asks the remote by fingerprint.
    let c = clone_of(&text, None);
    let (rc, jc) = c.run_json(&["--pull"]);
    rc.ok();
    let o = outcomes(&jc);
    assert_eq!(o["corpus"], "cached", "{jc}");
    assert_eq!(o["tok"], "cached", "{jc}");
    // `blob` was not pushed: it ran.
    assert_eq!(o["blob"], "ran", "{jc}");
    let tok = common::stage(&jc, "tok");
    assert_eq!(tok["reasons"][0], "pulled from remote `team`", "{tok}");
}

#[test]
fn a_tampered_remote_object_is_refused_and_not_stored() {
    let remote = remote_dir();
    let text = manifest(remote.path(), 1);
    let a = clone_of(&text, None);
    let (_, ja) = a.run_json(&[]);
    a.run(&["push"]).ok();
    let tok_digest = common::stage(&ja, "tok")["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Flip one byte of the tokenizer's tokenizer.json blob on the remote.
    let meta_path = remote
        .path()
        .join("objects")
        .join(&tok_digest[..2])
        .join(format!("{tok_digest}.json"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let entry = meta["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "tokenizer.json")
        .expect("tokenizer.json in the listing");
    let h = entry["blake3"].as_str().unwrap();
    let blob = remote.path().join("blobs").join(&h[..2]).join(h);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&blob, &bytes).unwrap();

    let b = clone_of(&text, Some(&a));
    let pulled = b.run(&["pull", "tok"]);
    assert_eq!(pulled.code, 1, "{}", pulled.stderr);
    assert!(pulled.stderr.contains("refused"), "{}", pulled.stderr);
    assert!(pulled.stderr.contains(h), "{}", pulled.stderr);
    let object = b
        .workspace()
        .join("objects")
        .join(&tok_digest[..2])
        .join(&tok_digest);
    assert!(!object.exists(), "a tampered object entered the store");
    // And the stage is not cached here: a --locked run must recompute it (and match).
    let plan = b.run(&["plan", "pipeline.yaml", "--json"]);
    plan.ok();
    assert!(plan.stdout.contains("will_run"), "{}", plan.stdout);
}

/// Start `binarylm args` in `p`, wait until `seen` finds a transfer in flight, SIGKILL it.
fn kill_mid_transfer(p: &Project, args: &[&str], seen: impl Fn() -> bool) {
    let mut child = p.cmd(args).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut caught = false;
    while Instant::now() < deadline {
        if seen() {
            caught = true;
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    assert!(
        caught,
        "the transfer finished before it could be interrupted"
    );
}

#[test]
fn sigkill_mid_push_and_mid_pull_leaves_nothing_partial_and_resumes() {
    let remote = remote_dir();
    // Big enough that writing it takes a while even on a fast disk.
    let text = manifest(remote.path(), 400);
    let a = clone_of(&text, None);
    let (_, ja) = a.run_json(&[]);
    let big = common::stage(&ja, "blob")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let big_meta = remote
        .path()
        .join("objects")
        .join(&big[..2])
        .join(format!("{big}.json"));

    // Push: killed while a blob is being written (its staging file exists).
    let staging_seen = || {
        files_under(remote.path())
            .iter()
            .any(|(rel, _)| rel.contains('#'))
    };
    kill_mid_transfer(&a, &["push", "blob"], staging_seen);
    assert!(
        !big_meta.exists(),
        "the object became visible before its blobs were complete"
    );
    assert_remote_consistent(remote.path());
    let resumed = a.run(&["push", "--json"]);
    resumed.ok();
    assert!(big_meta.is_file());
    assert_remote_consistent(remote.path());

    // Pull: killed while a file is arriving in the workspace's tmp/.
    let b = clone_of(&text, Some(&a));
    let ws = b.workspace();
    let incoming_seen = || {
        files_under(&ws.join("tmp"))
            .iter()
            .any(|(rel, _)| rel.starts_with("incoming-") && rel.contains(".partial/"))
    };
    kill_mid_transfer(&b, &["pull", "blob"], incoming_seen);
    let object = ws.join("objects").join(&big[..2]).join(&big);
    assert!(!object.exists(), "a partial object is visible in the store");
    b.run(&["pull"]).ok();
    assert!(object.is_dir());
    b.run(&["verify"]).ok();
    let (rb, jb) = b.run_json(&["--locked"]);
    rb.ok();
    assert!(outcomes(&jb).values().all(|s| s == "cached"), "{jb}");
}

#[test]
fn bad_remotes_and_missing_lockfile_are_clear_errors() {
    let remote = remote_dir();
    let text = manifest(remote.path(), 1);
    let p = clone_of(&text, None);

    let no_lock = p.run(&["push"]);
    assert_eq!(no_lock.code, 2, "{}", no_lock.stderr);
    assert!(no_lock.stderr.contains("no lockfile"), "{}", no_lock.stderr);

    p.run_json(&[]).0.ok();
    let unknown = p.run(&["push", "--remote", "nope"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("unknown remote `nope`"),
        "{}",
        unknown.stderr
    );
    assert!(unknown.stderr.contains("team"), "{}", unknown.stderr);

    let missing = p.file("no/such/dir");
    let unreachable = p.run(&["push", "--remote", missing.to_str().unwrap()]);
    assert_eq!(unreachable.code, 2, "{}", unreachable.stderr);
    assert!(
        unreachable.stderr.contains("does not exist"),
        "{}",
        unreachable.stderr
    );

    let not_locked = p.run(&["pull", "nosuchstage"]);
    assert_eq!(not_locked.code, 2, "{}", not_locked.stderr);

    // An empty remote given directly: the stage is not there.
    let empty = remote_dir();
    let absent = p.run(&["pull", "tok", "--remote", empty.path().to_str().unwrap()]);
    // tok is cached locally already, so pull has nothing to fetch.
    absent.ok();
    let fresh = clone_of(&text, Some(&p));
    let absent = fresh.run(&["pull", "tok", "--remote", empty.path().to_str().unwrap()]);
    assert_eq!(absent.code, 1, "{}", absent.stderr);
    assert!(
        absent.stderr.contains("is not on remote"),
        "{}",
        absent.stderr
    );

    // The manifest refuses a malformed remote at load time, with its line.
    let bad = clone_of(
        &text.replace(
            &format!("team: {}", remote.path().display()),
            "team: gs://bucket/x",
        ),
        None,
    );
    let r = bad.run(&["plan", "pipeline.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("gs://"), "{}", r.stderr);
    // And unknown top-level keys are still refused.
    let typo = clone_of(&text.replace("remotes:", "remote:"), None);
    let r = typo.run(&["plan", "pipeline.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown top-level key `remote`"),
        "{}",
        r.stderr
    );
}

#[test]
fn remote_add_list_and_diff_of_two_lockfiles() {
    let remote = remote_dir();
    let text = manifest(remote.path(), 1);
    let a = clone_of(&text, None);
    a.run_json(&[]).0.ok();
    let other = remote_dir();
    a.run(&[
        "remote",
        "add",
        "mine",
        other.path().to_str().unwrap(),
        "--default",
    ])
    .ok();
    let list = a.run(&["remote", "list"]);
    list.ok();
    assert!(
        list.stdout.contains("mine") && list.stdout.contains("(default)"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("team"), "{}", list.stdout);
    // The default is now `mine`.
    let pushed = a.run(&["push", "--json"]);
    pushed.ok();
    assert_eq!(pushed.json()["remote"], "mine");
    assert!(other.path().join("objects").is_dir());

    // diff: the same pipeline with another vocab_size.
    std::fs::copy(a.file("pipeline.lock"), a.file("before.lock")).unwrap();
    a.write(
        "pipeline.yaml",
        &text.replace("vocab_size: 300", "vocab_size: 320"),
    );
    a.run_json(&[]).0.ok();
    let d = a.run(&["diff", "before.lock", "pipeline.lock", "--json"]);
    d.ok();
    let j = d.json();
    let stages = j["stages"].as_array().unwrap();
    let tok = stages
        .iter()
        .find(|s| s["stage"] == "tok")
        .expect("tok differs");
    let row = tok["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["what"] == "param" && r["key"] == "vocab_size")
        .expect("vocab_size row");
    assert_eq!(
        (row["a"].as_u64(), row["b"].as_u64()),
        (Some(300), Some(320))
    );
    assert!(
        !stages.iter().any(|s| s["stage"] == "corpus"),
        "corpus did not change: {j}"
    );
    let text_out = a.run(&["diff", "before.lock", "pipeline.lock"]);
    text_out.ok();
    assert!(
        text_out.stdout.contains("param vocab_size"),
        "{}",
        text_out.stdout
    );

    // Two runs by id, as `binarylm runs` lists them.
    let runs = a.run(&["runs", "--json"]);
    runs.ok();
    let ids: Vec<String> = runs
        .json()
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() >= 2, "{ids:?}");
    let d = a.run(&["diff", &ids[1], &ids[0], "--json"]);
    d.ok();
    assert!(d.stdout.contains("vocab_size"), "{}", d.stdout);
}

#[test]
fn two_pushers_at_once_are_safe() {
    let remote = remote_dir();
    let text = manifest(remote.path(), 64);
    // Two workspaces that built the same artifacts push them to one remote at the same time.
    let a = clone_of(&text, None);
    let (_, ja) = a.run_json(&[]);
    let a2 = clone_of(&text, None);
    let (_, ja2) = a2.run_json(&[]);
    assert_eq!(digests(&ja), digests(&ja2));
    let spawn = |p: &Project| {
        p.cmd(&["push"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn push")
    };
    let (one, two) = (spawn(&a), spawn(&a2));
    for child in [one, two] {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_remote_consistent(remote.path());

    let b = clone_of(&text, Some(&a));
    b.run(&["pull"]).ok();
    b.run(&["verify"]).ok();
    let (rb, jb) = b.run_json(&["--locked"]);
    rb.ok();
    assert!(outcomes(&jb).values().all(|s| s == "cached"), "{jb}");
}
