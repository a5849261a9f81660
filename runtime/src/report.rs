//! The result of a run: per-stage outcomes, rendered as a summary table or as JSON.

use std::collections::BTreeMap;

use registry::Digest;
use registry::{LockedStage, OutcomeStatus, RanWith, RunStatus, StageOutcome};
use serde::Serialize;

use crate::plan::short;

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: String,
    pub kind: String,
    pub status: OutcomeStatus,
    pub fingerprint: Option<String>,
    pub digest: Option<Digest>,
    pub duration_ms: u64,
    pub metrics: BTreeMap<String, f64>,
    pub headline: Option<String>,
    /// Why it did not succeed (failed, skipped, cancelled).
    pub error: Option<String>,
    /// Why it ran; for a result pulled from a remote cache (`run --pull`), where it came from;
    /// empty when cached locally.
    pub reasons: Vec<String>,
    pub log: Option<String>,
    /// What the artifact was computed with (this run, or the run that made a cached result).
    pub ran_with: Option<RanWith>,
    /// Under `--locked`: which check the stage passed or failed, in words.
    pub lock_check: Option<String>,
}

impl StageReport {
    /// A report for a stage that has not got anywhere yet (skipped until decided otherwise).
    pub fn new(stage: &str, kind: &str) -> Self {
        StageReport {
            stage: stage.to_string(),
            kind: kind.to_string(),
            status: OutcomeStatus::Skipped,
            fingerprint: None,
            digest: None,
            duration_ms: 0,
            metrics: BTreeMap::new(),
            headline: None,
            error: None,
            reasons: Vec::new(),
            log: None,
            ran_with: None,
            lock_check: None,
        }
    }

    pub fn outcome(&self) -> StageOutcome {
        StageOutcome {
            stage: self.stage.clone(),
            status: self.status,
            fingerprint: self.fingerprint.clone(),
            digest: self.digest.clone(),
            duration_ms: self.duration_ms,
            error: self.error.clone(),
        }
    }

    /// The lockfile entry: fingerprint, digest, what it ran with, and the headline metric (all
    /// metrics if none is named) plus the metrics `checked` when it is reproduced elsewhere.
    /// None for a stage with no artifact (it did not run, or failed).
    pub fn locked(&self, checked: &[&str]) -> Option<LockedStage> {
        let (Some(fingerprint), Some(digest)) = (&self.fingerprint, &self.digest) else {
            return None;
        };
        let mut metrics = match self
            .headline
            .as_ref()
            .and_then(|h| self.metrics.get_key_value(h))
        {
            Some((k, v)) => BTreeMap::from([(k.clone(), *v)]),
            None => self.metrics.clone(),
        };
        for name in checked {
            if let Some((k, v)) = self.metrics.get_key_value(*name) {
                metrics.insert(k.clone(), *v);
            }
        }
        Some(LockedStage {
            kind: self.kind.clone(),
            fingerprint: fingerprint.clone(),
            digest: digest.clone(),
            metrics,
            ran_with: self.ran_with.clone(),
        })
    }

    fn headline_text(&self) -> String {
        match &self.headline {
            Some(name) => match self.metrics.get(name) {
                Some(v) => format!("{name}={}", format_metric(*v)),
                None => String::new(),
            },
            None => String::new(),
        }
    }
}

fn format_metric(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 1000.0 || v.abs() < 0.01 {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub pipeline: String,
    pub status: RunStatus,
    /// In execution order.
    pub stages: Vec<StageReport>,
    pub lockfile: Option<String>,
    pub duration_ms: u64,
}

impl RunReport {
    pub fn count(&self, status: OutcomeStatus) -> usize {
        self.stages.iter().filter(|s| s.status == status).count()
    }

    /// The table printed at the end of `binarylm run`.
    pub fn summary_table(&self) -> String {
        let name_w = self
            .stages
            .iter()
            .map(|s| s.stage.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!(
            "{:name_w$}  {:9}  {:>9}  {:12}  {}\n",
            "stage",
            "outcome",
            "time",
            "output",
            "metric",
            name_w = name_w
        );
        for s in &self.stages {
            let status = match s.status {
                OutcomeStatus::Ran => "ran",
                OutcomeStatus::Cached => "cached",
                OutcomeStatus::Failed => "FAILED",
                OutcomeStatus::Skipped => "skipped",
                OutcomeStatus::Cancelled => "cancelled",
            };
            let time = if s.status == OutcomeStatus::Ran || s.status == OutcomeStatus::Failed {
                format_duration(s.duration_ms)
            } else {
                "-".to_string()
            };
            out.push_str(&format!(
                "{:name_w$}  {:9}  {:>9}  {:12}  {}\n",
                s.stage,
                status,
                time,
                s.digest.as_deref().map(short).unwrap_or("-"),
                s.headline_text(),
                name_w = name_w
            ));
        }
        out.push_str(&format!(
            "{} ran, {} cached, {} failed, {} skipped, {} cancelled in {}",
            self.count(OutcomeStatus::Ran),
            self.count(OutcomeStatus::Cached),
            self.count(OutcomeStatus::Failed),
            self.count(OutcomeStatus::Skipped),
            self.count(OutcomeStatus::Cancelled),
            format_duration(self.duration_ms)
        ));
        out
    }
}

pub fn format_duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(12), "12ms");
        assert_eq!(format_duration(1500), "1.5s");
        assert_eq!(format_duration(125_000), "2m05s");
    }

    #[test]
    fn metrics_keep_useful_precision() {
        assert_eq!(format_metric(3.0), "3");
        assert_eq!(format_metric(2.34567), "2.3457");
        assert_eq!(format_metric(0.00012), "1.2000e-4");
    }
}
