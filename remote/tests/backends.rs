//! Both backends through the same story, with real registries on each side: push, push again
//! (nothing sent), pull into a fresh workspace (verified, visible, indexed), a tampered blob
//! refused, an interrupted push (blobs without their object) invisible and then resumed.
//! The directory backend runs in a temp dir; the S3 backend against a `moto_server` this test
//! starts on a free local port (installed into the project venv by scripts/setup.sh).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use registry::{ProducedBy, Registry, StageResult};
use remote::{Location, Remote, RemoteError, Resolved, Source, Wanted};

/// One committed stage result in `reg`, with two files (one executable, one in a subfolder).
fn produce(reg: &Registry, stage: &str, content: &str) -> StageResult {
    let fp = blake3::hash(format!("{stage}{content}").as_bytes())
        .to_hex()
        .to_string();
    let staging = reg.staging(&fp).expect("staging");
    let out = staging.out_dir();
    std::fs::create_dir_all(out.join("sub")).expect("mkdir");
    std::fs::write(out.join("data.txt"), content).expect("write");
    std::fs::write(out.join("sub/run.sh"), "#!/bin/sh\necho hi\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            out.join("sub/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
    let digest = reg
        .store(
            staging,
            ProducedBy {
                stage: stage.into(),
                fingerprint: fp.clone(),
                pipeline: "p".into(),
            },
        )
        .expect("store");
    // Through JSON, as records are read: fields added to the record later keep their defaults.
    let result: StageResult = serde_json::from_value(serde_json::json!({
        "fingerprint": fp,
        "digest": digest,
        "stage": stage,
        "kind": "command",
        "manifest": "/elsewhere/pipeline.yaml",
        "pipeline": "p",
        "inputs": {},
        "fingerprint_input": {"params": {"run": content}},
        "metrics": {"score": 1.5},
        "headline": "score",
        "run_id": "20260101T000000Z-00000000",
        "started_at": "2026-01-01T00:00:00Z",
        "duration_ms": 1,
        "device": "cpu",
        "binarylm_version": "test",
    }))
    .expect("a stage result");
    reg.commit(&result).expect("commit");
    result
}

fn wanted(r: &StageResult) -> Wanted {
    Wanted {
        stage: r.stage.clone(),
        fingerprint: r.fingerprint.clone(),
        digest: Some(r.digest.clone()),
    }
}

fn blob_key(hash: &str) -> Key {
    Key::from(format!("blobs/{}/{hash}", &hash[..2]))
}

/// The story, against `remote`; `raw` reaches the same storage without binarylm's checks.
async fn story(remote: &Remote, raw: Arc<dyn ObjectStore>) {
    let a_dir = tempfile::tempdir().expect("tempdir");
    let a = Registry::open(a_dir.path()).expect("open a");
    let one = produce(&a, "one", "first artifact");
    let two = produce(&a, "two", "second artifact, longer");

    let t = remote::push(remote, &a, &[one.clone(), two.clone()], true)
        .await
        .expect("push");
    assert_eq!(
        (t.objects, t.objects_present, t.records),
        (2, 0, 2),
        "{t:?}"
    );
    // The shared run.sh is one blob: 3 distinct files in all.
    assert_eq!(t.files, 3, "{t:?}");
    let t = remote::push(remote, &a, &[one.clone(), two.clone()], true)
        .await
        .expect("push again");
    assert_eq!(
        (t.objects, t.objects_present, t.files, t.records),
        (0, 2, 0, 0),
        "{t:?}"
    );

    // A fresh workspace pulls both; they are verified, stored and indexed for its manifest.
    let b_dir = tempfile::tempdir().expect("tempdir");
    let b = Registry::open(b_dir.path()).expect("open b");
    let t = remote::pull(
        remote,
        &b,
        "/here/pipeline.yaml",
        &[wanted(&one), wanted(&two)],
        true,
    )
    .await
    .expect("pull");
    assert_eq!((t.objects, t.records), (2, 2), "{t:?}");
    assert!(b.has_object(&one.digest) && b.has_object(&two.digest));
    let got = b
        .lookup(&one.fingerprint)
        .expect("lookup")
        .expect("pulled result");
    assert_eq!(got.manifest, "/here/pipeline.yaml");
    assert_eq!(got.metrics, one.metrics);
    assert_eq!(
        b.latest_for_stage("/here/pipeline.yaml", "two")
            .expect("latest")
            .map(|r| r.digest),
        Some(two.digest.clone())
    );
    assert!(b.verify().expect("verify").is_clean());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(b.object_path(&one.digest).join("sub/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o111, 0, "the executable bit survives the trip");
    }

    // `fetch` (run --pull) by fingerprint alone.
    let c_dir = tempfile::tempdir().expect("tempdir");
    let c = Registry::open(c_dir.path()).expect("open c");
    let mut by_fp = wanted(&two);
    by_fp.digest = None;
    let fetched = remote::fetch(remote, &c, "/c/pipeline.yaml", &by_fp)
        .await
        .expect("fetch");
    assert_eq!(fetched.map(|r| r.digest), Some(two.digest.clone()));
    let mut absent = by_fp.clone();
    absent.fingerprint = "ab".repeat(32);
    assert_eq!(
        remote::fetch(remote, &c, "/c/pipeline.yaml", &absent)
            .await
            .expect("absent"),
        None
    );

    // A tampered blob: refused, nothing stored in a fresh workspace.
    let meta = a.object_meta(&one.digest).expect("meta").expect("exists");
    let data = meta
        .files
        .iter()
        .find(|f| f.path == "data.txt")
        .expect("data.txt");
    raw.put(
        &blob_key(&data.blake3),
        PutPayload::from("FIRST artifact".as_bytes().to_vec()),
    )
    .await
    .expect("tamper");
    let d_dir = tempfile::tempdir().expect("tempdir");
    let d = Registry::open(d_dir.path()).expect("open d");
    let err = remote::pull(remote, &d, "/d/pipeline.yaml", &[wanted(&one)], true)
        .await
        .expect_err("tampered");
    assert!(matches!(err, RemoteError::Tampered { .. }), "{err}");
    assert!(err.to_string().contains(&data.blake3), "{err}");
    assert!(!d.has_object(&one.digest));
    assert!(d.lookup(&one.fingerprint).expect("lookup").is_none());

    // A push interrupted after its blobs, before the object's metadata: the object is not
    // there for a puller; the next push completes it, sending only what is missing.
    let three = produce(&a, "three", "third");
    let meta3 = a.object_meta(&three.digest).expect("meta").expect("exists");
    let first = &meta3
        .files
        .iter()
        .find(|f| f.path == "data.txt")
        .expect("data")
        .blake3;
    raw.put(
        &blob_key(first),
        PutPayload::from("third".as_bytes().to_vec()),
    )
    .await
    .expect("put");
    let err = remote::pull(remote, &d, "/d/pipeline.yaml", &[wanted(&three)], true)
        .await
        .expect_err("not there yet");
    assert!(matches!(err, RemoteError::NotOnRemote { .. }), "{err}");
    let t = remote::push(remote, &a, std::slice::from_ref(&three), true)
        .await
        .expect("resume");
    assert_eq!(
        (t.objects, t.files),
        (1, 0),
        "data.txt and run.sh were already there: {t:?}"
    );
    remote::pull(remote, &d, "/d/pipeline.yaml", &[wanted(&three)], true)
        .await
        .expect("pull");
    assert!(d.has_object(&three.digest));

    // Two stages whose outputs are the same bytes, fetched at once (as `run --pull` does for
    // parallel stages): both get it, the object is assembled once and verifies.
    let four = produce(&a, "four", "same bytes");
    let five = produce(&a, "five", "same bytes");
    assert_eq!(four.digest, five.digest);
    assert_ne!(four.fingerprint, five.fingerprint);
    remote::push(remote, &a, &[four.clone(), five.clone()], true)
        .await
        .expect("push");
    let e_dir = tempfile::tempdir().expect("tempdir");
    let e = Registry::open(e_dir.path()).expect("open e");
    let (w4, w5) = (wanted(&four), wanted(&five));
    let (x, y) = tokio::join!(
        remote::fetch(remote, &e, "/e/pipeline.yaml", &w4),
        remote::fetch(remote, &e, "/e/pipeline.yaml", &w5),
    );
    assert_eq!(x.expect("four").map(|r| r.stage), Some("four".to_string()));
    assert_eq!(y.expect("five").map(|r| r.stage), Some("five".to_string()));
    assert!(e.verify().expect("verify").is_clean());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn directory_remote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let resolved = Resolved {
        name: "shared".into(),
        location: Location::Dir(dir.path().to_path_buf()),
        source: Source::Flag,
    };
    let remote = Remote::open(&resolved).expect("open");
    let raw: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("raw"));
    runtime().block_on(story(&remote, raw));

    // A directory that does not exist is refused up front, with the path.
    let missing = Resolved {
        location: Location::Dir(dir.path().join("nope")),
        ..resolved
    };
    let err = Remote::open(&missing).expect_err("missing dir");
    assert!(
        err.is_input_error() && err.to_string().contains("nope"),
        "{err}"
    );
}

/// `moto_server` from the project venv (scripts/setup.sh installs it), else from PATH.
fn moto_server() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV").map(PathBuf::from);
    let candidates = venv
        .into_iter()
        .map(|v| v.join("bin/moto_server"))
        .chain(
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/binarylm/venv/bin/moto_server")),
        )
        .chain(std::iter::once(PathBuf::from("moto_server")));
    for c in candidates {
        if c.is_file()
            || Command::new(&c)
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        {
            return c;
        }
    }
    panic!("moto_server not found: run scripts/setup.sh (it installs moto[server] into the project venv)");
}

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto_server did not start listening on port {port}");
}

#[test]
fn s3_remote_against_moto() {
    let port = free_port();
    let _moto = Moto(
        Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server"),
    );
    wait_listening(port);
    let endpoint = format!("http://127.0.0.1:{port}");
    // moto accepts any credentials; they must still be present for the client to sign.
    let builder = || {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("cache")
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
    };
    // The bucket, made through S3's CreateBucket (a PUT on the bucket's path), with the
    // venv's Python beside moto_server (object_store does not create buckets).
    let python = moto_server().with_file_name("python");
    let created = Command::new(&python)
        .args([
            "-c",
            &format!("import urllib.request as u; u.urlopen(u.Request('{endpoint}/cache', method='PUT'))"),
        ])
        .status()
        .expect("run python");
    assert!(created.success(), "could not create the bucket");
    // The remote reads its credentials from the standard AWS variables.
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let resolved = Resolved {
        name: "bucket".into(),
        location: Location::S3 {
            bucket: "cache".into(),
            prefix: "team/binarylm".into(),
            endpoint: Some(endpoint.clone()),
            region: Some("us-east-1".into()),
        },
        source: Source::Flag,
    };
    let remote = Remote::open(&resolved).expect("open");
    let raw: Arc<dyn ObjectStore> = Arc::new(object_store::prefix::PrefixStore::new(
        builder().build().expect("raw client"),
        "team/binarylm",
    ));
    runtime().block_on(story(&remote, raw));
}
