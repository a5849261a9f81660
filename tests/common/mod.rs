//! Helpers for end-to-end tests: a scratch project directory and the real `binarylm` binary.
#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_binarylm");

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Self {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.file(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }

    pub fn workspace(&self) -> PathBuf {
        self.file(".binarylm")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.path())
            .env_remove("BINARYLM_WORKSPACE")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.cmd(args).output().expect("spawn binarylm").into()
    }

    /// `binarylm run --json` and the per-stage outcome names.
    pub fn run_json(&self, extra: &[&str]) -> (Ran, serde_json::Value) {
        let mut args = vec!["run", "pipeline.yaml", "--json"];
        args.extend_from_slice(extra);
        let ran = self.run(&args);
        let json = ran.json();
        (ran, json)
    }
}

/// The project venv's Python ($BINARYLM_VENV, else `.venv`), where scripts/setup.sh installs
/// the peers the parity tests compare against (scripts/requirements-test.txt).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python at {}: run `bash scripts/setup.sh` (it installs scripts/requirements-test.txt)",
        python.display()
    );
    python
}

/// stage name → outcome status ("ran", "cached", …) from a run report.
pub fn outcomes(report: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    report["stages"]
        .as_array()
        .expect("stages array")
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().expect("stage").to_string(),
                s["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

pub fn ran(report: &serde_json::Value) -> Vec<String> {
    outcomes(report)
        .into_iter()
        .filter(|(_, s)| s == "ran")
        .map(|(n, _)| n)
        .collect()
}

/// One stage's entry in a `run --json` report.
pub fn stage<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {report}"))
}
