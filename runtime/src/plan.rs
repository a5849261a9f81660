//! Cache decisions: for each stage, reuse or run — and why. `binarylm plan` shows these without
//! running anything; the executor makes the same decision per stage as upstream digests arrive.

use std::collections::{BTreeMap, BTreeSet};

use pipelines::{FingerprintInput, Manifest, Stage};
use registry::Digest;
use registry::{Registry, StageResult};
use serde::Serialize;

use crate::error::RuntimeError;
use crate::fingerprints::{self, DepHashes};
use crate::kind::Kinds;

/// What will happen to a stage, as far as can be known before running anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PlanStatus {
    /// The registry holds a result for this exact fingerprint.
    Cached { digest: Digest },
    /// The stage will run, for these reasons.
    WillRun { reasons: Vec<String> },
    /// An upstream stage will run; this one runs unless that output comes out byte-identical
    /// (early cutoff), in which case it stays cached.
    Pending { upstream: Vec<String> },
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry {
    pub stage: String,
    pub kind: String,
    /// Known when all inputs are known (none of them pending).
    pub fingerprint: Option<String>,
    #[serde(flatten)]
    pub status: PlanStatus,
}

/// Stages in execution (topological) order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub pipeline: String,
    pub stages: Vec<PlanEntry>,
}

impl Plan {
    pub fn will_run(&self) -> usize {
        self.stages
            .iter()
            .filter(|e| !matches!(e.status, PlanStatus::Cached { .. }))
            .count()
    }
}

/// The decision for one stage whose fingerprint input is fully known.
pub enum Decision {
    Reuse(Box<StageResult>),
    Run(Vec<String>),
}

/// Reuse if a result for this fingerprint exists (its object still in the store); otherwise run,
/// explaining the difference with this stage's latest result.
pub fn decide(
    registry: &Registry,
    manifest: &Manifest,
    stage: &Stage,
    fingerprint: &str,
    input: &FingerprintInput,
    forced: bool,
) -> Decision {
    if forced {
        return Decision::Run(vec!["forced (--force)".to_string()]);
    }
    // A registry that cannot be read here is a cache miss, not a failed stage: running the
    // stage again is always correct, only slower.
    match registry.lookup(fingerprint) {
        Ok(Some(found)) => return Decision::Reuse(Box::new(found)),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(stage = %stage.name, "cache lookup failed, running the stage: {e}");
            return Decision::Run(vec![format!("cache lookup failed ({e}); running it again")]);
        }
    }
    let manifest_key = manifest.path.to_string_lossy();
    let previous = match registry.latest_for_stage(&manifest_key, &stage.name) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(stage = %stage.name, "previous result unreadable: {e}");
            return Decision::Run(vec![format!(
                "no cached result (the previous one is unreadable: {e})"
            )]);
        }
    };
    let reasons = match previous {
        None => vec!["new stage (never run)".to_string()],
        Some(prev) if prev.fingerprint == fingerprint => {
            vec!["output missing from the store (removed by gc or corrupt)".to_string()]
        }
        Some(prev) => match serde_json::from_value::<FingerprintInput>(prev.fingerprint_input) {
            Ok(old) => {
                let changes = pipelines::explain(&old, input);
                if changes.is_empty() {
                    vec!["fingerprint format changed".to_string()]
                } else {
                    changes.iter().map(|c| c.to_string()).collect()
                }
            }
            Err(_) => vec!["previous result has an older record format".to_string()],
        },
    };
    Decision::Run(reasons)
}

/// What `binarylm run` would do now.
pub fn plan(
    manifest: &Manifest,
    registry: &Registry,
    kinds: &Kinds,
    force: &[String],
) -> Result<Plan, RuntimeError> {
    plan_with(manifest, registry, kinds, force, &DepHashes::default())
}

/// [`plan`], sharing the dependency digests a run computes.
pub(crate) fn plan_with(
    manifest: &Manifest,
    registry: &Registry,
    kinds: &Kinds,
    force: &[String],
    hashes: &DepHashes,
) -> Result<Plan, RuntimeError> {
    let forced: BTreeSet<&str> = force.iter().map(String::as_str).collect();
    for f in &forced {
        if !manifest.stages.iter().any(|s| s.name == *f) {
            return Err(RuntimeError::UnknownForce((*f).to_string()));
        }
    }
    let dag = manifest.dag();
    // Output digest of each stage when known (cached); None when it will run.
    let mut digests: BTreeMap<usize, Option<Digest>> = BTreeMap::new();
    let mut entries = Vec::new();
    for &idx in dag.topo_order() {
        let stage = &manifest.stages[idx];
        // A kind this build cannot run is refused before anything is planned as runnable.
        kinds
            .get(stage.params.kind())
            .ok_or_else(|| RuntimeError::UnknownKind(stage.params.kind().to_string()))?;
        let mut inputs = BTreeMap::new();
        let mut pending = Vec::new();
        for &up in dag.upstream(idx) {
            let up_stage = &manifest.stages[up];
            match digests.get(&up).cloned().flatten() {
                Some(d) => {
                    inputs.insert(up_stage.name.clone(), d);
                }
                None => pending.push(up_stage.name.clone()),
            }
        }
        let deps = fingerprints::dep_digests(manifest, stage, hashes)?;
        let (fingerprint, status) = if pending.is_empty() {
            let (fp, input) = fingerprints::fingerprint_stage(manifest, stage, &inputs, deps);
            let forced_here = forced.contains(stage.name.as_str());
            let status = match decide(registry, manifest, stage, &fp, &input, forced_here) {
                Decision::Reuse(r) => PlanStatus::Cached { digest: r.digest },
                Decision::Run(reasons) => PlanStatus::WillRun { reasons },
            };
            (Some(fp), status)
        } else {
            (None, PlanStatus::Pending { upstream: pending })
        };
        digests.insert(
            idx,
            match &status {
                PlanStatus::Cached { digest } => Some(digest.clone()),
                _ => None,
            },
        );
        entries.push(PlanEntry {
            stage: stage.name.clone(),
            kind: stage.params.kind().to_string(),
            fingerprint,
            status,
        });
    }
    Ok(Plan {
        pipeline: manifest.name.clone(),
        stages: entries,
    })
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = self.stages.iter().map(|e| e.stage.len()).max().unwrap_or(5);
        for e in &self.stages {
            match &e.status {
                PlanStatus::Cached { digest } => writeln!(
                    f,
                    "  {:width$}  cached     {}",
                    e.stage,
                    short(digest),
                    width = width
                )?,
                PlanStatus::WillRun { reasons } => {
                    writeln!(f, "  {:width$}  will run   {}", e.stage, reasons.join("; "), width = width)?
                }
                PlanStatus::Pending { upstream } => writeln!(
                    f,
                    "  {:width$}  may run    upstream {} will run (stays cached if its output is unchanged)",
                    e.stage,
                    upstream
                        .iter()
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    width = width
                )?,
            }
        }
        let n = self.will_run();
        write!(
            f,
            "{} of {} stage{} to run",
            n,
            self.stages.len(),
            if self.stages.len() == 1 { "" } else { "s" }
        )
    }
}

/// First 12 hex characters of a digest, as shown in tables.
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage record that cannot be read is a cache miss with a reason, not a failed stage:
    /// running the stage again is always correct, only slower.
    #[test]
    fn an_unreadable_record_is_a_miss_that_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = pipelines::parse(
            "name: t\nstages:\n  c: { kind: command, run: echo hi }\n",
            &dir.path().join("pipeline.yaml"),
        )
        .expect("manifest");
        let workspace = dir.path().join(".binarylm");
        let registry = Registry::open(&workspace).expect("registry");
        let stage = &manifest.stages[0];
        let (fp, input) =
            fingerprints::fingerprint_stage(&manifest, stage, &BTreeMap::new(), BTreeMap::new());
        // The record files are the truth the index is rebuilt from; this one is garbage (say,
        // a disk error mid-write by another tool).
        let record = workspace
            .join("records")
            .join(&fp[..2])
            .join(format!("{fp}.json"));
        std::fs::create_dir_all(record.parent().expect("parent")).expect("mkdir");
        std::fs::write(&record, "{ not json").expect("write");

        match decide(&registry, &manifest, stage, &fp, &input, false) {
            Decision::Run(reasons) => {
                assert_eq!(reasons.len(), 1, "{reasons:?}");
                assert!(
                    reasons[0].starts_with("cache lookup failed ("),
                    "{reasons:?}"
                );
                assert!(reasons[0].ends_with("running it again"), "{reasons:?}");
            }
            Decision::Reuse(found) => panic!("reused {found:?}"),
        }
    }
}
