//! `pipeline.lock`: per stage its fingerprint, output digest and headline metrics. Committed
//! beside the manifest, it lets someone else reproduce a build or check that theirs matches.

use common::Digest;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};
use crate::fsutil::write_atomic;
use crate::stage_result::{RanWith, StageResult};

/// Format version of `pipeline.lock`.
/// First lines of every lockfile, so a reader knows what the file is.
const LOCK_HEADER: &str = "# pipeline.lock — written by `binarylm run`; commit it with the manifest.\n# `binarylm run --locked` fails unless every stage reproduces what is recorded here\n# (byte for byte, or within its kind's tolerance where bytes cannot match).\n";

/// 1: initial format.
pub const LOCKFILE_VERSION: u32 = 1;

const LOCK_HINT: &str = "fix the YAML by hand, or delete the lockfile and run again to rewrite it";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lockfile {
    pub version: u32,
    pub pipeline: String,
    pub stages: BTreeMap<String, LockedStage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedStage {
    pub kind: String,
    pub fingerprint: String,
    pub digest: Digest,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// What the output was computed with; `run --locked` expects identical bytes only where
    /// the same holds (docs/pipelines.md, "What reproducible means").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_with: Option<RanWith>,
}

impl LockedStage {
    /// The lock entry for a result: its headline metric when it names one, else all metrics.
    pub fn from_result(result: &StageResult) -> LockedStage {
        let metrics = match result.headline_metric() {
            Some((name, value)) => BTreeMap::from([(name.to_string(), value)]),
            None => result.metrics.clone(),
        };
        LockedStage {
            kind: result.kind.clone(),
            fingerprint: result.fingerprint.clone(),
            digest: result.digest.clone(),
            metrics,
            ran_with: Some(result.ran_with()),
        }
    }
}

impl Lockfile {
    pub fn new(pipeline: impl Into<String>) -> Lockfile {
        Lockfile {
            version: LOCKFILE_VERSION,
            pipeline: pipeline.into(),
            stages: BTreeMap::new(),
        }
    }

    /// A lockfile of the given results, keyed by their stage names.
    pub fn from_results<'a>(
        pipeline: impl Into<String>,
        results: impl IntoIterator<Item = &'a StageResult>,
    ) -> Lockfile {
        let mut lock = Lockfile::new(pipeline);
        for r in results {
            lock.stages
                .insert(r.stage.clone(), LockedStage::from_result(r));
        }
        lock
    }

    /// Read `path`; `Ok(None)` when there is no lockfile.
    pub fn read(path: &Path) -> Result<Option<Lockfile>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::io("read", path, e)),
        };
        let lock: Lockfile =
            serde_yaml::from_str(&text).map_err(|source| RegistryError::CorruptLockfile {
                path: path.to_path_buf(),
                hint: LOCK_HINT,
                source,
            })?;
        if lock.version != LOCKFILE_VERSION {
            return Err(RegistryError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: lock.version,
                expected: LOCKFILE_VERSION,
                hint: "use the binarylm version that wrote it, or delete it and run again",
            });
        }
        Ok(Some(lock))
    }

    /// Write atomically as YAML (like the manifest it sits beside), keys in sorted order, so
    /// that a changed stage shows up as a small diff in review.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = String::from(LOCK_HEADER);
        text.push_str(
            &serde_yaml::to_string(self)
                .map_err(|source| RegistryError::EncodeLockfile { source })?,
        );
        write_atomic(path, text.as_bytes())
    }

    /// What differs between this lockfile (`lock`) and `now` (the current build), by stage in
    /// name order. Metrics are not compared: equal digests imply equal outputs, and metrics
    /// measured on them may differ in the last bits across machines.
    pub fn diff(&self, now: &Lockfile) -> Vec<LockDiff> {
        let mut diffs = Vec::new();
        if self.pipeline != now.pipeline {
            diffs.push(LockDiff::Pipeline {
                lock: self.pipeline.clone(),
                now: now.pipeline.clone(),
            });
        }
        for (stage, locked) in &self.stages {
            let Some(current) = now.stages.get(stage) else {
                diffs.push(LockDiff::MissingStage {
                    stage: stage.clone(),
                });
                continue;
            };
            let mut field = |field: LockField, lock: &str, now: &str| {
                if lock != now {
                    diffs.push(LockDiff::Differs {
                        stage: stage.clone(),
                        field,
                        lock: lock.to_string(),
                        now: now.to_string(),
                    });
                }
            };
            field(LockField::Kind, &locked.kind, &current.kind);
            field(
                LockField::Fingerprint,
                &locked.fingerprint,
                &current.fingerprint,
            );
            field(LockField::Digest, &locked.digest, &current.digest);
        }
        for stage in now.stages.keys() {
            if !self.stages.contains_key(stage) {
                diffs.push(LockDiff::ExtraStage {
                    stage: stage.clone(),
                });
            }
        }
        diffs
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockField {
    Kind,
    Fingerprint,
    Digest,
}

impl fmt::Display for LockField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockField::Kind => "kind",
            LockField::Fingerprint => "fingerprint",
            LockField::Digest => "digest",
        })
    }
}

/// One difference between a lockfile and the current build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDiff {
    Pipeline {
        lock: String,
        now: String,
    },
    /// In the lockfile, not in the current build.
    MissingStage {
        stage: String,
    },
    /// In the current build, not in the lockfile.
    ExtraStage {
        stage: String,
    },
    Differs {
        stage: String,
        field: LockField,
        lock: String,
        now: String,
    },
}

impl fmt::Display for LockDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockDiff::Pipeline { lock, now } => {
                write!(f, "pipeline name differs (lock `{lock}`, now `{now}`)")
            }
            LockDiff::MissingStage { stage } => {
                write!(
                    f,
                    "stage `{stage}`: in the lockfile but not in the manifest"
                )
            }
            LockDiff::ExtraStage { stage } => {
                write!(
                    f,
                    "stage `{stage}`: in the manifest but not in the lockfile"
                )
            }
            LockDiff::Differs {
                stage,
                field: LockField::Kind,
                lock,
                now,
            } => write!(
                f,
                "stage `{stage}`: kind differs (lock `{lock}`, now `{now}`)"
            ),
            LockDiff::Differs {
                stage,
                field,
                lock,
                now,
            } => write!(
                f,
                "stage `{stage}`: {field} differs (lock {}, now {})",
                abbreviate(lock),
                abbreviate(now)
            ),
        }
    }
}

/// First 8 characters and an ellipsis, enough to tell hashes apart in a message.
fn abbreviate(id: &str) -> String {
    match id.get(..8) {
        Some(head) if id.len() > 8 => format!("{head}…"),
        _ => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(kind: &str, fp: &str, digest: &str) -> LockedStage {
        LockedStage {
            kind: kind.into(),
            fingerprint: fp.into(),
            // A real digest, named by the label the test reads better.
            digest: Digest::from_hash(blake3::hash(digest.as_bytes())),
            metrics: BTreeMap::from([("val_loss".to_string(), 2.5)]),
            ran_with: None,
        }
    }

    #[test]
    fn round_trip_is_stable_sorted_yaml() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pipeline.lock");
        assert_eq!(Lockfile::read(&path).expect("read missing"), None);

        let mut lock = Lockfile::new("quickstart");
        lock.stages
            .insert("tok".into(), stage("tokenizer", "aa11", "bb22"));
        lock.stages
            .insert("corpus".into(), stage("data", "cc33", "dd44"));
        lock.write(&path).expect("write");

        let text = std::fs::read_to_string(&path).expect("read text");
        assert!(text.starts_with("# pipeline.lock"), "{text}");
        assert!(
            text.contains("\nversion: 1\npipeline: quickstart\n"),
            "{text}"
        );
        assert!(text.ends_with('\n'));
        // BTreeMap order: corpus before tok, whatever the insertion order.
        assert!(text.find("  corpus:") < text.find("  tok:"), "{text}");
        assert_eq!(Lockfile::read(&path).expect("read"), Some(lock.clone()));

        lock.write(&path).expect("rewrite");
        assert_eq!(std::fs::read_to_string(&path).expect("reread"), text);
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pipeline.lock");
        std::fs::write(&path, r#"{"version": 7, "pipeline": "p", "stages": {}}"#).expect("w");
        let err = Lockfile::read(&path).expect_err("version 7");
        assert!(err.to_string().contains("version 7"), "{err}");
        std::fs::write(&path, "{ not json").expect("w");
        let err = Lockfile::read(&path).expect_err("garbage");
        assert!(err.to_string().contains("pipeline.lock"), "{err}");
    }

    #[test]
    fn diff_names_each_difference() {
        let mut lock = Lockfile::new("p");
        lock.stages
            .insert("a".into(), stage("data", "1111", "2222"));
        lock.stages
            .insert("b".into(), stage("tokenizer", "1a2b3c4d5e6f", "3333"));
        lock.stages
            .insert("gone".into(), stage("eval", "4444", "5555"));
        let mut now = lock.clone();
        now.stages.remove("gone");
        now.stages
            .insert("new".into(), stage("eval", "6666", "7777"));
        let b = now.stages.get_mut("b").expect("b");
        b.fingerprint = "3c4d5e6f7a8b".into();
        b.metrics.insert("val_loss".into(), 9.0);

        let diffs = lock.diff(&now);
        let text: Vec<String> = diffs.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            [
                "stage `b`: fingerprint differs (lock 1a2b3c4d…, now 3c4d5e6f…)",
                "stage `gone`: in the lockfile but not in the manifest",
                "stage `new`: in the manifest but not in the lockfile",
            ]
        );
        assert!(lock.diff(&lock).is_empty());
    }
}
