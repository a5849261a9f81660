//! Progress of a running pipeline, read from outside the `binarylm run` that executes it.
//!
//! What such a process leaves readable while it runs: its run record (`runs/<id>.json`,
//! status `running`) and owner marker (`runs/<id>.owner`, so a crashed run is told apart), one
//! log per started stage (`logs/<id>/<stage>.log`, the torch process's stderr included), each
//! committed stage's record as it finishes, and a training stage's `metrics.jsonl` in its
//! staging directory (`tmp/<fingerprint>/`), appended and flushed at every logged step. The
//! progress bars themselves go to the run's terminal only.

use pipelines::artifacts::{parse_metrics_lines, MetricsLine, METRICS_FILE};
use serde::Serialize;

use crate::files;
use crate::snapshot::Snapshot;

/// Bytes of a running stage's log sent with each update.
const LIVE_LOG_BYTES: u64 = 4 << 10;
/// Training lines sent per running stage (the newest).
const LIVE_CURVE_LINES: usize = 5_000;

#[derive(Debug, Serialize, PartialEq)]
pub struct LiveStage {
    pub stage: String,
    pub fingerprint: Option<String>,
    pub log_tail: String,
    /// Training lines logged so far (with timings: tokens/s is only here).
    pub metrics: Vec<MetricsLine>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct LiveRun {
    pub id: String,
    pub pipeline: String,
    pub pipeline_id: usize,
    pub started_at: String,
    /// Stages finished in this run so far (their records are committed).
    pub done: Vec<String>,
    pub running: Vec<LiveStage>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Live {
    pub runs: Vec<LiveRun>,
}

pub fn live(snap: &Snapshot) -> Live {
    let mut runs = Vec::new();
    for p in &snap.pipelines {
        let Ok(plan) = &p.plan else { continue };
        for l in crate::views::live_stages(snap, p) {
            let run = l.run;
            let mut running = Vec::new();
            for name in l.running {
                let fingerprint = plan
                    .stages
                    .iter()
                    .find(|e| e.stage == name)
                    .and_then(|e| e.fingerprint.clone());
                let log_tail = files::log_file(&snap.registry, &run.id, &name, true)
                    .ok()
                    .and_then(|path| files::tail(&path, LIVE_LOG_BYTES).ok())
                    .map(|(text, _)| text)
                    .unwrap_or_default();
                let metrics = fingerprint
                    .as_deref()
                    .and_then(|fp| snap.registry.staging_path(fp).ok())
                    .and_then(|dir| std::fs::read_to_string(dir.join(METRICS_FILE)).ok())
                    .map(|text| {
                        let mut lines = parse_metrics_lines(&text);
                        let drop = lines.len().saturating_sub(LIVE_CURVE_LINES);
                        lines.drain(..drop);
                        lines
                    })
                    .unwrap_or_default();
                running.push(LiveStage {
                    stage: name,
                    fingerprint,
                    log_tail,
                    metrics,
                });
            }
            runs.push(LiveRun {
                id: run.id.clone(),
                pipeline: run.pipeline.clone(),
                pipeline_id: p.id,
                started_at: run.started_at.clone(),
                done: l.done,
                running,
            });
        }
    }
    Live { runs }
}
