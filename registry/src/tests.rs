//! Tests of the registry as a whole: store, records, runs, verify, rebuild, gc, resolve.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::*;

struct Ws {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

fn workspace() -> Ws {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join(".binarylm");
    Ws { _dir: dir, root }
}

fn hex(n: u64) -> String {
    blake3::hash(&n.to_le_bytes()).to_hex().to_string()
}

fn d(digest: &str) -> Digest {
    Digest::parse(digest).expect("a digest")
}

const MANIFEST: &str = "/work/p/pipeline.yaml";

/// Stage `files` as the output of `fingerprint` and store it.
fn store_files(reg: &Registry, fingerprint: &str, stage: &str, files: &[(&str, &str)]) -> Digest {
    let staging = reg.staging(fingerprint).expect("staging");
    for (rel, content) in files {
        let p = staging.out_dir().join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, content).expect("write");
    }
    reg.store(
        staging,
        ProducedBy {
            stage: stage.into(),
            fingerprint: fingerprint.into(),
            pipeline: "p".into(),
        },
    )
    .expect("store")
}

fn result(fp: &str, digest: &str, stage: &str, inputs: &[(&str, &str)]) -> StageResult {
    StageResult {
        fingerprint: fp.into(),
        digest: d(digest),
        stage: stage.into(),
        kind: "command".into(),
        manifest: MANIFEST.into(),
        pipeline: "p".into(),
        inputs: inputs.iter().map(|(k, v)| (k.to_string(), d(v))).collect(),
        fingerprint_input: serde_json::json!({ "kind": "command" }),
        metrics: BTreeMap::from([("loss".to_string(), 1.5)]),
        headline: Some("loss".into()),
        run_id: "20260101T000000Z-00000000".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        duration_ms: 10,
        device: "cpu".into(),
        binarylm_version: "0.1.0".into(),
        threads: Some(2),
        libtorch: None,
    }
}

/// Store and commit one stage; returns its digest.
fn build(reg: &Registry, fp: &str, stage: &str, content: &str, inputs: &[(&str, &str)]) -> Digest {
    let digest = store_files(reg, fp, stage, &[("out.txt", content)]);
    reg.commit(&result(fp, &digest, stage, inputs))
        .expect("commit");
    digest
}

fn run_record(id: &str, status: RunStatus, outcomes: &[(&str, &str, &str)]) -> RunRecord {
    RunRecord {
        id: id.into(),
        manifest: MANIFEST.into(),
        pipeline: "p".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        status,
        outcomes: outcomes
            .iter()
            .map(|(stage, fp, digest)| StageOutcome {
                stage: stage.to_string(),
                status: OutcomeStatus::Ran,
                fingerprint: Some(fp.to_string()),
                digest: Some(d(digest)),
                duration_ms: 1,
                error: None,
            })
            .collect(),
        lockfile: None,
    }
}

fn is_read_only(p: &Path) -> bool {
    fs::metadata(p).expect("metadata").permissions().readonly()
}

#[test]
fn store_and_lookup_round_trip() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let fp = hex(1);
    assert_eq!(reg.lookup(&fp).expect("lookup"), None);

    let digest = store_files(&reg, &fp, "a", &[("x.txt", "hello"), ("d/y.txt", "world")]);
    let obj = reg.object_path(&digest);
    assert_eq!(
        fs::read_to_string(obj.join("d/y.txt")).expect("read"),
        "world"
    );
    assert!(is_read_only(&obj.join("x.txt")));
    assert!(
        !ws.root.join("tmp").join(&fp).exists(),
        "staging dir removed"
    );

    let meta = reg.object_meta(&digest).expect("meta").expect("some meta");
    assert_eq!(meta.digest, digest);
    assert_eq!(meta.total_size, 10);
    assert_eq!(meta.files.len(), 2);
    assert_eq!(meta.produced_by.fingerprint, fp);

    let r = result(&fp, &digest, "a", &[]);
    reg.commit(&r).expect("commit");
    assert_eq!(reg.lookup(&fp).expect("lookup"), Some(r.clone()));
    assert_eq!(
        reg.latest_for_stage(MANIFEST, "a").expect("latest"),
        Some(r)
    );
    assert!(ws
        .root
        .join("records")
        .join(&fp[..2])
        .join(format!("{fp}.json"))
        .is_file());
}

#[test]
fn identical_content_is_stored_once() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let d1 = store_files(&reg, &hex(1), "a", &[("x", "same")]);
    let d2 = store_files(&reg, &hex(2), "b", &[("x", "same")]);
    assert_eq!(d1, d2);
    assert_eq!(reg.object_digests().expect("digests"), vec![d1.clone()]);
    assert!(!ws.root.join("tmp").join(hex(2)).exists());
    let meta = reg.object_meta(&d1).expect("meta").expect("some");
    assert_eq!(meta.produced_by.stage, "a", "first producer is kept");
}

#[test]
fn store_rejects_a_symlink_and_keeps_the_staging_dir() {
    #[cfg(unix)]
    {
        let ws = workspace();
        let reg = Registry::open(&ws.root).expect("open");
        let staging = reg.staging(&hex(1)).expect("staging");
        fs::write(staging.out_dir().join("real"), "x").expect("write");
        std::os::unix::fs::symlink("/etc/hostname", staging.out_dir().join("link"))
            .expect("symlink");
        let err = reg
            .store(
                staging,
                ProducedBy {
                    stage: "a".into(),
                    fingerprint: hex(1),
                    pipeline: "p".into(),
                },
            )
            .expect_err("symlink");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(reg.object_digests().expect("digests").is_empty());
        assert!(ws.root.join("tmp").join(hex(1)).join("out/real").exists());
    }
}

#[test]
fn interrupted_staging_is_found_again() {
    let ws = workspace();
    let fp = hex(7);
    {
        let reg = Registry::open(&ws.root).expect("open");
        let staging = reg.staging(&fp).expect("staging");
        assert!(!staging.existed);
        fs::write(staging.path().join("checkpoint.bin"), "step 500").expect("write");
        // The process "crashes" here: nothing is stored, the registry is dropped.
    }
    let reg = Registry::open(&ws.root).expect("reopen");
    let staging = reg.staging(&fp).expect("staging again");
    assert!(staging.existed);
    assert_eq!(
        fs::read_to_string(staging.path().join("checkpoint.bin")).expect("checkpoint"),
        "step 500"
    );
    assert!(reg.staging("../escape").is_err(), "ids must be hex");
}

#[test]
fn commit_and_runs_are_visible_after_reopen() {
    let ws = workspace();
    let fp = hex(1);
    let digest;
    {
        let reg = Registry::open(&ws.root).expect("open");
        let mut run = run_record("20260101T000000Z-aaaaaaaa", RunStatus::Running, &[]);
        reg.begin_run(&run).expect("begin");
        digest = build(&reg, &fp, "a", "x", &[]);
        run.status = RunStatus::Succeeded;
        run.finished_at = Some(now_rfc3339());
        run.outcomes = run_record("x", RunStatus::Succeeded, &[("a", &fp, &digest)]).outcomes;
        reg.finish_run(&run).expect("finish");
        reg.begin_run(&run_record(
            "20260102T000000Z-bbbbbbbb",
            RunStatus::Failed,
            &[],
        ))
        .expect("begin 2");
    }
    let reg = Registry::open(&ws.root).expect("reopen");
    assert_eq!(
        reg.lookup(&fp).expect("lookup").expect("some").digest,
        digest
    );
    let runs = reg.runs().expect("runs");
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["20260102T000000Z-bbbbbbbb", "20260101T000000Z-aaaaaaaa"]
    );
    let first = reg
        .run("20260101T000000Z-aaaaaaaa")
        .expect("run")
        .expect("some");
    assert_eq!(first.status, RunStatus::Succeeded);
    assert_eq!(first.outcomes.len(), 1);
}

#[test]
fn a_missing_object_is_a_cache_miss_and_commit_requires_the_object() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let fp = hex(1);
    let digest = build(&reg, &fp, "a", "x", &[]);
    crate::fsutil::remove_tree(&reg.object_path(&digest)).expect("remove");
    assert_eq!(reg.lookup(&fp).expect("lookup"), None);
    assert_eq!(reg.latest_for_stage(MANIFEST, "a").expect("latest"), None);

    let err = reg
        .commit(&result(&hex(2), &digest, "b", &[]))
        .expect_err("object missing");
    assert!(matches!(err, RegistryError::ObjectMissing { .. }), "{err}");
}

#[test]
fn verify_detects_a_flipped_byte() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let digest = build(&reg, &hex(1), "a", "some bytes", &[]);
    let clean = reg.verify().expect("verify");
    assert!(clean.is_clean(), "{clean}");
    assert_eq!(clean.objects_checked, 1);

    let file = reg.object_path(&digest).join("out.txt");
    let mut perms = fs::metadata(&file).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&file, perms).expect("chmod");
    let mut bytes = fs::read(&file).expect("read");
    bytes[3] ^= 0x01;
    fs::write(&file, bytes).expect("write");

    let report = reg.verify().expect("verify");
    assert!(!report.is_clean());
    assert!(
        matches!(&report.issues[..], [VerifyIssue::CorruptObject { digest: d, detail, .. }]
            if *d == digest && detail.contains("out.txt")),
        "{report}"
    );
}

#[test]
fn verify_detects_a_deleted_object_and_notes_leftovers() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let digest = build(&reg, &hex(1), "a", "x", &[]);
    let staging = reg.staging(&hex(9)).expect("staging");
    drop(staging);
    crate::fsutil::remove_tree(&reg.object_path(&digest)).expect("remove");

    let report = reg.verify().expect("verify");
    assert!(
        report.issues.iter().any(|i| matches!(i,
            VerifyIssue::MissingObject { digest: d, referenced_by } if *d == digest && referenced_by.contains("stage `a`"))),
        "{report}"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("leftover temp dir")),
        "{report}"
    );
}

#[test]
fn verify_reports_index_drift_and_rebuild_fixes_it() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    build(&reg, &hex(1), "a", "x", &[]);
    reg.index.clear_results();
    let report = reg.verify().expect("verify");
    assert!(!report.is_clean() && report.only_index_issues(), "{report}");
    reg.rebuild().expect("rebuild");
    let report = reg.verify().expect("verify");
    assert!(report.is_clean(), "{report}");
}

#[test]
fn rebuild_after_deleting_the_index_restores_everything() {
    let ws = workspace();
    let (fa, fb) = (hex(1), hex(2));
    let (da, db);
    let run_id = "20260101T000000Z-aaaaaaaa";
    {
        let reg = Registry::open(&ws.root).expect("open");
        da = build(&reg, &fa, "a", "A", &[]);
        db = build(&reg, &fb, "b", "B", &[("a", &da)]);
        let run = run_record(
            run_id,
            RunStatus::Succeeded,
            &[("a", &fa, &da), ("b", &fb, &db)],
        );
        reg.begin_run(&run).expect("begin");
        reg.finish_run(&run).expect("finish");
    }
    let expected_lineage = {
        let reg = Registry::open(&ws.root).expect("open");
        reg.lineage(&db).expect("lineage")
    };
    fs::remove_dir_all(ws.root.join("registry.sled")).expect("delete index");

    // An index that is gone is rebuilt on open.
    let reg = Registry::open(&ws.root).expect("reopen");
    assert_eq!(reg.lookup(&fb).expect("lookup").expect("b").digest, db);
    assert_eq!(
        reg.latest_for_stage(MANIFEST, "a")
            .expect("latest")
            .expect("a")
            .fingerprint,
        fa
    );
    assert_eq!(reg.runs().expect("runs").len(), 1);
    assert_eq!(
        reg.run(run_id).expect("run").expect("some").outcomes.len(),
        2
    );
    let lineage = reg.lineage(&db).expect("lineage");
    assert_eq!(lineage, expected_lineage);
    assert_eq!(lineage.inputs.len(), 1);
    assert_eq!(lineage.inputs[0].tree.digest, da);
    assert!(reg.verify().expect("verify").is_clean());

    // And an explicit rebuild gives the same counts.
    let report = reg.rebuild().expect("rebuild");
    assert_eq!(
        (report.objects, report.results, report.runs),
        (2, 2, 1),
        "{report}"
    );
}

#[test]
fn a_corrupt_index_is_reported_and_open_rebuilding_recovers() {
    let ws = workspace();
    let fp = hex(1);
    let digest = {
        let reg = Registry::open(&ws.root).expect("open");
        build(&reg, &fp, "a", "x", &[])
    };
    let index = ws.root.join("registry.sled");
    fs::remove_dir_all(&index).expect("rm");
    // sled cannot open a database where a plain file sits.
    fs::write(&index, "garbage").expect("write garbage");

    let err = Registry::open(&ws.root).expect_err("corrupt index");
    assert!(err.to_string().contains("verify --rebuild"), "{err}");

    let (reg, report) = Registry::open_rebuilding(&ws.root).expect("open rebuilding");
    assert_eq!(report.results, 1);
    assert_eq!(
        reg.lookup(&fp).expect("lookup").expect("some").digest,
        digest
    );
    let aside = crate::fsutil::list_dir(&ws.root).expect("list");
    assert!(
        aside
            .iter()
            .any(|n| n.starts_with("registry.sled.corrupt-")),
        "{aside:?}"
    );
}

#[test]
fn gc_keeps_locked_recent_and_latest_and_removes_the_rest() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    // Stage `a` was rebuilt three times; only its latest result is the stage's latest.
    let locked = build(&reg, &hex(1), "a", "v1", &[]);
    let old_run = build(&reg, &hex(2), "a", "v2", &[]);
    let junk = build(&reg, &hex(3), "a", "v3", &[]);
    let latest_a = build(&reg, &hex(4), "a", "v4", &[]);
    // `b` consumed the locked version of `a`: kept through the lockfile's closure upstream.
    let b = build(&reg, &hex(5), "b", "B", &[("a", &locked)]);

    reg.begin_run(&run_record(
        "20260101T000000Z-00000001",
        RunStatus::Succeeded,
        &[("a", &hex(2), &old_run)],
    ))
    .expect("run 1");
    reg.begin_run(&run_record(
        "20260101T000000Z-00000002",
        RunStatus::Succeeded,
        &[("a", &hex(4), &latest_a)],
    ))
    .expect("run 2");
    let mut run3 = run_record("20260101T000000Z-00000003", RunStatus::Succeeded, &[]);
    run3.outcomes.clear();
    reg.begin_run(&run3).expect("run 3");

    let lock_path = ws.root.parent().expect("parent").join("pipeline.lock");
    let mut lock = Lockfile::new("p");
    lock.stages.insert(
        "b".into(),
        LockedStage::from_result(&reg.lookup(&hex(5)).expect("lookup").expect("b")),
    );
    lock.write(&lock_path).expect("write lock");

    // A stale staging dir (owner gone) and a live one (this process).
    let stale = ws.root.join("tmp").join(hex(8));
    fs::create_dir_all(stale.join("out")).expect("mkdir");
    fs::write(stale.join("ckpt"), "123").expect("write");
    let live = reg.staging(&hex(9)).expect("live staging");

    let policy = GcPolicy {
        keep_runs: 3,
        keep_lockfiles: vec![lock_path.clone(), ws.root.join("missing.lock")],
    };
    let before = reg.object_digests().expect("digests");
    let dry = reg.gc(&policy, true).expect("dry run");
    assert_eq!(dry.removed, vec![junk.clone()], "{dry}");
    assert_eq!(dry.tmp_removed, vec![stale.clone()]);
    assert!(dry.bytes_freed >= 5);
    assert_eq!(
        reg.object_digests().expect("digests"),
        before,
        "dry run removes nothing"
    );
    assert!(stale.exists());

    let report = reg.gc(&policy, false).expect("gc");
    assert_eq!(report.removed, vec![junk.clone()]);
    assert_eq!(report.records_removed, 1);
    assert_eq!(report.kept, 4);
    assert!(!reg.has_object(&junk));
    assert!(!reg.files.layout.object_meta(&junk).exists());
    assert_eq!(reg.lookup(&hex(3)).expect("lookup"), None);
    assert!(!reg.files.layout.record(&hex(3)).exists());
    for kept in [&locked, &old_run, &latest_a, &b] {
        assert!(reg.has_object(kept));
    }
    assert!(!stale.exists());
    assert!(live.path().exists());
    assert!(reg.verify().expect("verify").is_clean());

    // With fewer runs kept (runs 3 and 2), the oldest run's output goes too.
    let report = reg
        .gc(
            &GcPolicy {
                keep_runs: 2,
                keep_lockfiles: vec![lock_path],
            },
            false,
        )
        .expect("gc 2");
    assert_eq!(report.removed, vec![old_run]);
}

#[test]
fn resolve_by_stage_digest_and_prefix() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let da = build(&reg, &hex(1), "base", "A", &[]);
    let r = reg.resolve("base").expect("stage");
    assert_eq!(r.digest, da);
    assert_eq!(
        r.by,
        ResolvedBy::Stage {
            manifest: MANIFEST.into()
        }
    );
    assert_eq!(reg.resolve(&da).expect("digest").by, ResolvedBy::Digest);
    let by_prefix = reg.resolve(&da[..8]).expect("prefix");
    assert_eq!(by_prefix.by, ResolvedBy::DigestPrefix);
    assert_eq!(by_prefix.result.expect("result").stage, "base");

    let err = reg.resolve("nope").expect_err("unknown");
    let text = err.to_string();
    assert!(
        text.contains("known stages: base") && text.contains("1 object(s)"),
        "{text}"
    );
    let err = reg.resolve(&da[..4]).expect_err("short prefix");
    assert!(err.to_string().contains("at least 6"), "{err}");

    // The same stage name in another manifest is ambiguous unless a manifest is preferred.
    let other = "/work/q/pipeline.yaml";
    let staged = store_files(&reg, &hex(2), "base", &[("o", "Q")]);
    let mut rq = result(&hex(2), &staged, "base", &[]);
    rq.manifest = other.into();
    reg.commit(&rq).expect("commit");
    let err = reg.resolve("base").expect_err("ambiguous");
    let text = err.to_string();
    assert!(text.contains(MANIFEST) && text.contains(other), "{text}");
    assert_eq!(
        reg.resolve_in(other, "base").expect("preferred").digest,
        staged
    );
}

#[test]
fn lineage_draws_upstream_and_consumers() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let corpus = build(&reg, &hex(1), "corpus", "text", &[]);
    let tok = build(&reg, &hex(2), "tok", "vocab", &[("corpus", &corpus)]);
    let base = build(
        &reg,
        &hex(3),
        "base",
        "weights",
        &[("corpus", &corpus), ("tok", &tok)],
    );
    let chat = build(&reg, &hex(4), "chat", "tuned", &[("model", &base)]);

    let tree = reg.lineage(&base).expect("lineage");
    assert_eq!(tree.producer.as_ref().expect("producer").stage, "base");
    assert_eq!(tree.consumers.len(), 1);
    assert_eq!(tree.consumers[0].digest, chat);
    let text = tree.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&base[..12]) && lines[0].contains("base (command)"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("├── corpus: ") && lines[1].contains(&corpus[..12]),
        "{text}"
    );
    assert!(lines[2].starts_with("└── tok: "), "{text}");
    assert!(lines[3].starts_with("    └── corpus: "), "{text}");
    assert!(
        lines[4] == "used by:" && lines[5].contains("chat"),
        "{text}"
    );
}

#[test]
fn stale_running_runs_are_marked_cancelled() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let crashed = run_record("20260101T000000Z-00000001", RunStatus::Running, &[]);
    let live = run_record("20260101T000000Z-00000002", RunStatus::Running, &[]);
    reg.begin_run(&crashed).expect("begin");
    reg.begin_run(&live).expect("begin");
    // The crashed run's process is gone: its marker names no live process.
    fs::write(reg.files.layout.run_owner(&crashed.id), "4294967295 1\n").expect("write marker");

    let marked = reg.mark_stale_runs_interrupted().expect("mark");
    assert_eq!(marked, vec![crashed.id.clone()]);
    assert_eq!(
        reg.run(&crashed.id).expect("run").expect("some").status,
        RunStatus::Cancelled
    );
    assert_eq!(
        reg.run(&live.id).expect("run").expect("some").status,
        RunStatus::Running
    );
}

#[test]
fn a_second_open_is_busy_and_never_moved_aside() {
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    let digest = build(&reg, &hex(1), "a", "x", &[]);
    let err = Registry::open(&ws.root).expect_err("second open");
    assert!(matches!(err, RegistryError::IndexBusy { .. }), "{err}");
    let err = Registry::open_rebuilding(&ws.root).expect_err("second open");
    assert!(matches!(err, RegistryError::IndexBusy { .. }), "{err}");
    let names = crate::fsutil::list_dir(&ws.root).expect("list");
    assert!(!names.iter().any(|n| n.contains("corrupt")), "{names:?}");
    assert!(reg
        .lookup(&hex(1))
        .expect("lookup")
        .is_some_and(|r| r.digest == digest));
}

#[cfg(unix)]
#[test]
fn record_files_are_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let ws = workspace();
    let reg = Registry::open(&ws.root).expect("open");
    build(&reg, &hex(1), "a", "x", &[]);
    let mode = fs::metadata(reg.files.layout.record(&hex(1)))
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
}

/// Every file under `root` with its length and modification time: what a writer would change.
fn tree_state(root: &Path) -> BTreeMap<std::path::PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let meta = fs::symlink_metadata(entry.path()).expect("metadata");
            if meta.is_dir() {
                todo.push(entry.path());
            }
            out.insert(entry.path(), (meta.len(), meta.modified().expect("mtime")));
        }
    }
    out
}

/// `binarylm ui` reads a workspace through a snapshot while `binarylm run` may hold it: the
/// snapshot sees what the files hold, needs neither the lock nor the index, and writes nothing.
#[test]
fn a_snapshot_reads_a_held_workspace_without_writing_to_it() {
    let ws = workspace();
    let fp = hex(7);
    let reg = Registry::open(&ws.root).expect("open");
    let _lock = WorkspaceLock::acquire(&ws.root, || {}).expect("lock");
    let digest = build(&reg, &fp, "a", "x", &[]);
    reg.begin_run(&run_record(
        "20260101T000000Z-cccccccc",
        RunStatus::Running,
        &[("a", &fp, &digest)],
    ))
    .expect("begin");

    let before = tree_state(&ws.root);
    let (snap, report) = Registry::open_snapshot(&ws.root).expect("snapshot");
    assert_eq!((report.objects, report.results, report.runs), (1, 1, 1));
    assert_eq!(
        snap.lookup(&fp).expect("lookup").expect("hit").digest,
        digest
    );
    assert_eq!(
        snap.latest_for_stage(MANIFEST, "a")
            .expect("latest")
            .expect("some")
            .fingerprint,
        fp
    );
    assert_eq!(snap.runs().expect("runs")[0].status, RunStatus::Running);
    let lineage = snap.lineage(&digest).expect("lineage");
    assert_eq!(lineage.producer.expect("producer").stage, "a");
    drop(snap);
    assert_eq!(
        tree_state(&ws.root),
        before,
        "the snapshot wrote to the workspace"
    );

    let missing = Registry::open_snapshot(&ws.root.join("nope")).expect_err("no workspace");
    assert!(missing.to_string().contains("nope"), "{missing}");
}
