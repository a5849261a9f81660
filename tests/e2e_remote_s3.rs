//! The remote cache through an S3-compatible bucket, end to end with the real binary: a
//! `moto_server` started here (PyPI `moto[server]`, installed into the project venv by
//! scripts/setup.sh) stands in for S3; the remote is named in the manifest with its endpoint,
//! and the credentials come from the standard AWS environment variables.

mod common;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{outcomes, Project};

struct Moto {
    child: Child,
    endpoint: String,
    python: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moto_server` of the project venv ($BINARYLM_VENV, else the default shared one).
fn moto_bin() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/binarylm/venv")))
        .expect("BINARYLM_VENV or HOME");
    let bin = venv.join("bin/moto_server");
    assert!(
        bin.is_file(),
        "{} not found: run scripts/setup.sh (it installs moto[server] from scripts/requirements-test.txt)",
        bin.display()
    );
    bin
}

fn start_moto() -> Moto {
    let bin = moto_bin();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        python: bin.with_file_name("python"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

impl Moto {
    /// S3 CreateBucket: a PUT on the bucket's path (binarylm never creates buckets).
    fn create_bucket(&self, name: &str) {
        let code = format!(
            "import urllib.request as u; u.urlopen(u.Request('{}/{name}', method='PUT'))",
            self.endpoint
        );
        let ok = Command::new(&self.python)
            .args(["-c", &code])
            .status()
            .expect("python");
        assert!(ok.success(), "could not create bucket {name}");
    }
}

fn with_aws(p: &Project, args: &[&str]) -> common::Ran {
    p.cmd(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("spawn")
        .into()
}

#[test]
fn push_and_pull_through_an_s3_compatible_bucket() {
    let moto = start_moto();
    moto.create_bucket("team-cache");
    let text = format!(
        r#"
name: s3-shared
seed: 4
remotes:
  bucket:
    url: s3://team-cache/experiments/binarylm
    endpoint: {endpoint}
    region: us-east-1
stages:
  corpus:
    kind: data
    sources: [{{ synthetic: {{ generator: stories, documents: 150 }} }}]
  tok:
    kind: tokenizer
    data: corpus
    vocab_size: 300
"#,
        endpoint = moto.endpoint
    );
    let a = Project::new();
    a.write("pipeline.yaml", &text);
    a.run_json(&[]).0.ok();
    let pushed = with_aws(&a, &["push", "--json"]);
    pushed.ok();
    assert_eq!(pushed.json()["objects"], 2, "{}", pushed.stdout);
    assert_eq!(pushed.json()["remote"], "bucket");

    let b = Project::new();
    b.write("pipeline.yaml", &text);
    b.write(
        "pipeline.lock",
        &std::fs::read_to_string(a.file("pipeline.lock")).unwrap(),
    );
    let pulled = with_aws(&b, &["pull", "--json"]);
    pulled.ok();
    assert_eq!(pulled.json()["objects"], 2, "{}", pulled.stdout);
    let (rb, jb) = b.run_json(&["--locked"]);
    rb.ok();
    assert!(outcomes(&jb).values().all(|s| s == "cached"), "{jb}");

    // run --pull in a third workspace, without a lockfile.
    let c = Project::new();
    c.write("pipeline.yaml", &text);
    let ran: common::Ran = c
        .cmd(&["run", "pipeline.yaml", "--json", "--pull"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("spawn")
        .into();
    ran.ok();
    assert!(
        outcomes(&ran.json()).values().all(|s| s == "cached"),
        "{}",
        ran.stdout
    );

    // A bucket that does not exist: a clear error naming the remote, non-zero exit.
    let d = Project::new();
    d.write(
        "pipeline.yaml",
        &text.replace("team-cache", "no-such-bucket"),
    );
    d.write(
        "pipeline.lock",
        &std::fs::read_to_string(a.file("pipeline.lock")).unwrap(),
    );
    let missing = with_aws(&d, &["pull"]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("remote `bucket`"),
        "{}",
        missing.stderr
    );
}
