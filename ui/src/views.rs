//! The documents the pages are drawn from, built from the registry snapshot and the plan with
//! the same types the command line prints (`RunRecord`, `PlanStatus`, `LineageTree`,
//! `EvalResults`, the data stage's `Stats`, `CurvePoint`).

use std::collections::BTreeMap;

use pipelines::artifacts::{parse_curve, CurvePoint, EvalResults, EVAL_RESULTS_FILE, METRICS_FILE};
use pipelines::Manifest;
use registry::{
    LineageTree, OutcomeStatus, RanWith, Registry, RunRecord, RunStatus, StageOutcome, StageResult,
};
use runtime::plan::{PlanEntry, PlanStatus};
use serde::Serialize;

use crate::error::ApiError;
use crate::files;
use crate::snapshot::{Pipeline, Snapshot};

/// Bytes of a stage log shown on its page (the end of it).
const LOG_TAIL_BYTES: u64 = 64 << 10;
/// Runs listed on the home page (all of them are at /api/runs).
const HOME_RUNS: usize = 30;
/// Kinds whose artifact holds a training curve (`metrics.jsonl`).
pub const TRAINING_KINDS: [&str; 3] = ["pretrain", "sft", "dpo"];

/// A stage's state as the pipeline page colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Up to date, reused by the last run that included it.
    Cached,
    /// Up to date, computed by the last run that included it.
    Ran,
    /// Would run again (the reasons say why).
    Stale,
    /// Failed in the last run that included it (and would run again).
    Failed,
    /// Running now, in a live `binarylm run`.
    Running,
}

#[derive(Debug, Serialize)]
pub struct LastOutcome {
    pub run_id: String,
    pub status: OutcomeStatus,
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct StageNode {
    pub name: String,
    pub kind: String,
    pub upstream: Vec<String>,
    pub state: StageState,
    /// Why it would run again (empty when up to date).
    pub reasons: Vec<String>,
    pub fingerprint: Option<String>,
    pub digest: Option<registry::Digest>,
    pub headline: Option<(String, f64)>,
    pub last: Option<LastOutcome>,
}

#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub pipeline: String,
    pub pipeline_id: Option<usize>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    /// Its process is alive (a `running` record whose process died is not live).
    pub live: bool,
    pub outcomes: Vec<StageOutcome>,
}

/// What names a pipeline on every page: its id, its name (when the manifest loads), its
/// manifest's path, and why it does not load or plan.
#[derive(Debug, Serialize)]
pub struct PipelineHead {
    pub id: usize,
    pub name: Option<String>,
    pub manifest: String,
    pub error: Option<String>,
}

impl PipelineHead {
    fn of(p: &Pipeline) -> PipelineHead {
        PipelineHead {
            id: p.id,
            name: p.manifest.as_ref().ok().map(|m| m.name.clone()),
            manifest: p.path.display().to_string(),
            error: p.manifest.as_ref().err().cloned(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PipelineSummary {
    #[serde(flatten)]
    pub head: PipelineHead,
    pub stages: usize,
    pub to_run: usize,
}

#[derive(Debug, Serialize)]
pub struct Home {
    pub workspace: String,
    pub pipelines: Vec<PipelineSummary>,
    pub runs: Vec<RunSummary>,
    pub total_runs: usize,
    /// Workspace files the snapshot could not read.
    pub skipped: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PipelineView {
    #[serde(flatten)]
    pub head: PipelineHead,
    pub stages: Vec<StageNode>,
    pub runs: Vec<RunSummary>,
}

#[derive(Debug, Serialize)]
pub struct ResultView {
    pub digest: registry::Digest,
    pub fingerprint: String,
    pub run_id: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub ran_with: RanWith,
    pub metrics: BTreeMap<String, f64>,
    pub headline: Option<String>,
    pub inputs: BTreeMap<String, registry::Digest>,
    /// Whether this is the stage's current result (false: the previous one of a stale stage).
    pub current: bool,
}

#[derive(Debug, Serialize)]
pub struct FileView {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Serialize)]
pub struct LogView {
    pub run_id: String,
    pub text: String,
    pub truncated: bool,
}

/// What a kind's artifact shows besides its files.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Details {
    None,
    Data {
        stats: Box<stages::kinds::data::Stats>,
    },
    Training {
        curve: Vec<CurvePoint>,
    },
    Eval {
        results: EvalResults,
        chart: Option<String>,
    },
}

#[derive(Debug, Serialize)]
pub struct StageView {
    pub pipeline_id: usize,
    pub pipeline: String,
    pub node: StageNode,
    /// The resolved params the next run would use (defaults applied).
    pub params: serde_json::Value,
    pub result: Option<ResultView>,
    pub files: Vec<FileView>,
    pub lineage: Option<LineageTree>,
    pub log: Option<LogView>,
    pub details: Details,
    /// The artifact holds a `tokenizer.json`: the page offers the tokenize box.
    pub tokenizer: bool,
    /// The artifact is a model (its `config.json` and tokenizer): the page links the inspector.
    pub model: bool,
}

#[derive(Debug, Serialize)]
pub struct CurveSource {
    pub digest: registry::Digest,
    pub stage: String,
    pub kind: String,
    pub pipeline: String,
    pub run_id: String,
    pub started_at: String,
    pub headline: Option<(String, f64)>,
    /// The run's mean training throughput (the curve itself keeps no timings).
    pub tokens_per_s: Option<f64>,
}

pub fn run_summary(snap: &Snapshot, r: &RunRecord) -> RunSummary {
    RunSummary {
        id: r.id.clone(),
        pipeline: r.pipeline.clone(),
        pipeline_id: snap.pipeline_of(&r.manifest).map(|p| p.id),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        status: r.status,
        live: r.status == RunStatus::Running && snap.registry.run_is_live(&r.id),
        outcomes: r.outcomes.clone(),
    }
}

pub fn home(snap: &Snapshot) -> Home {
    Home {
        workspace: snap.registry.root().display().to_string(),
        pipelines: snap
            .pipelines
            .iter()
            .map(|p| PipelineSummary {
                head: PipelineHead::of(p),
                stages: p.manifest.as_ref().map_or(0, |m| m.stages.len()),
                to_run: p.plan.as_ref().map_or(0, |plan| plan.will_run()),
            })
            .collect(),
        runs: snap
            .runs
            .iter()
            .take(HOME_RUNS)
            .map(|r| run_summary(snap, r))
            .collect(),
        total_runs: snap.runs.len(),
        skipped: snap.skipped.clone(),
    }
}

fn pipeline_or_404(snap: &Snapshot, id: usize) -> Result<&Pipeline, ApiError> {
    snap.pipeline(id)
        .ok_or_else(|| ApiError::not_found(format!("no pipeline {id}")))
}

/// Runs of one pipeline, newest first.
fn runs_of<'a>(snap: &'a Snapshot, p: &'a Pipeline) -> impl Iterator<Item = &'a RunRecord> {
    snap.runs
        .iter()
        .filter(move |r| p.path.as_os_str() == r.manifest.as_str())
}

/// A live run of a pipeline: the stages it has finished and those it is running (started —
/// they have a log — with no result committed by this run yet).
pub struct LiveStages<'a> {
    pub run: &'a RunRecord,
    pub done: Vec<String>,
    pub running: Vec<String>,
}

pub fn live_stages<'a>(snap: &'a Snapshot, p: &'a Pipeline) -> Vec<LiveStages<'a>> {
    let Ok(m) = &p.manifest else {
        return Vec::new();
    };
    let manifest = p.path.to_string_lossy();
    runs_of(snap, p)
        .filter(|r| r.status == RunStatus::Running && snap.registry.run_is_live(&r.id))
        .map(|run| {
            let dir = snap.registry.log_dir(&run.id);
            let (mut done, mut running) = (Vec::new(), Vec::new());
            for s in &m.stages {
                if !dir.join(format!("{}.log", s.name)).is_file() {
                    continue;
                }
                let committed = snap
                    .registry
                    .latest_for_stage(&manifest, &s.name)
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.run_id == run.id);
                if committed {
                    done.push(s.name.clone());
                } else {
                    running.push(s.name.clone());
                }
            }
            LiveStages { run, done, running }
        })
        .collect()
}

fn node(snap: &Snapshot, p: &Pipeline, m: &Manifest, e: &PlanEntry, running: bool) -> StageNode {
    let dag = m.dag();
    let upstream = m
        .index_of(&e.stage)
        .map(|i| {
            dag.upstream(i)
                .iter()
                .map(|&u| m.stages[u].name.clone())
                .collect()
        })
        .unwrap_or_default();
    let last = runs_of(snap, p).find_map(|r| {
        r.outcomes
            .iter()
            .find(|o| o.stage == e.stage)
            .map(|o| LastOutcome {
                run_id: r.id.clone(),
                status: o.status,
                error: o.error.clone(),
                duration_ms: o.duration_ms,
            })
    });
    let last_status = last.as_ref().map(|l| l.status);
    let failed = matches!(last_status, Some(OutcomeStatus::Failed));
    let (state, reasons, digest) = match &e.status {
        _ if running => (StageState::Running, Vec::new(), None),
        PlanStatus::Cached { digest } => {
            let state = if last_status == Some(OutcomeStatus::Ran) {
                StageState::Ran
            } else {
                StageState::Cached
            };
            (state, Vec::new(), Some(digest.clone()))
        }
        PlanStatus::WillRun { reasons } => (
            if failed {
                StageState::Failed
            } else {
                StageState::Stale
            },
            reasons.clone(),
            None,
        ),
        PlanStatus::Pending { upstream } => (
            if failed {
                StageState::Failed
            } else {
                StageState::Stale
            },
            vec![format!(
                "upstream {} will run (stays cached if its output comes out unchanged)",
                upstream.join(", ")
            )],
            None,
        ),
    };
    let headline = e
        .fingerprint
        .as_deref()
        .filter(|_| digest.is_some())
        .and_then(|fp| snap.registry.lookup(fp).ok().flatten())
        .and_then(|r| r.headline_metric().map(|(n, v)| (n.to_string(), v)));
    StageNode {
        name: e.stage.clone(),
        kind: e.kind.clone(),
        upstream,
        state,
        reasons,
        fingerprint: e.fingerprint.clone(),
        digest,
        headline,
        last,
    }
}

fn nodes(snap: &Snapshot, p: &Pipeline) -> Result<Vec<StageNode>, String> {
    let m = p.manifest.as_ref().map_err(Clone::clone)?;
    let plan = p.plan.as_ref().map_err(Clone::clone)?;
    let running: Vec<String> = live_stages(snap, p)
        .into_iter()
        .flat_map(|l| l.running)
        .collect();
    Ok(plan
        .stages
        .iter()
        .map(|e| node(snap, p, m, e, running.contains(&e.stage)))
        .collect())
}

pub fn pipeline(snap: &Snapshot, id: usize) -> Result<PipelineView, ApiError> {
    let p = pipeline_or_404(snap, id)?;
    let mut head = PipelineHead::of(p);
    let stages = nodes(snap, p).unwrap_or_else(|e| {
        head.error = Some(e);
        Vec::new()
    });
    Ok(PipelineView {
        head,
        stages,
        runs: runs_of(snap, p).map(|r| run_summary(snap, r)).collect(),
    })
}

/// The result a stage page shows: the current one when up to date, else the latest.
fn stage_result(snap: &Snapshot, p: &Pipeline, node: &StageNode) -> Option<(StageResult, bool)> {
    if let (Some(fp), Some(_)) = (&node.fingerprint, &node.digest) {
        if let Ok(Some(r)) = snap.registry.lookup(fp) {
            return Some((r, true));
        }
    }
    let manifest = p.path.to_string_lossy();
    snap.registry
        .latest_for_stage(&manifest, &node.name)
        .ok()
        .flatten()
        .map(|r| (r, false))
}

/// A stage of a pipeline with the artifact its page shows.
struct Located<'a> {
    pipeline: &'a Pipeline,
    manifest: &'a Manifest,
    stage: &'a pipelines::Stage,
    node: StageNode,
    /// The result shown, and whether it is the current one.
    found: Option<(StageResult, bool)>,
    meta: Option<registry::ObjectMeta>,
}

impl Located<'_> {
    /// Whether the artifact's listing holds `file`.
    fn listed(&self, file: &str) -> bool {
        self.meta
            .as_ref()
            .is_some_and(|m| m.files.iter().any(|e| e.path == file))
    }
}

fn locate<'a>(snap: &'a Snapshot, id: usize, name: &str) -> Result<Located<'a>, ApiError> {
    let p = pipeline_or_404(snap, id)?;
    let m = p
        .manifest
        .as_ref()
        .map_err(|e| ApiError::not_found(format!("pipeline {id} does not load: {e}")))?;
    let stage = m.stage(name).ok_or_else(|| {
        ApiError::not_found(format!("pipeline `{}` has no stage `{name}`", m.name))
    })?;
    let node = nodes(snap, p)
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|n| n.name == name)
        .ok_or_else(|| ApiError::not_found(format!("stage `{name}` is not planned")))?;
    let found = stage_result(snap, p, &node);
    let meta = match &found {
        Some((r, _)) => snap.registry.object_meta(&r.digest)?,
        None => None,
    };
    Ok(Located {
        pipeline: p,
        manifest: m,
        stage,
        node,
        found,
        meta,
    })
}

/// The digest of the artifact a stage's page shows, when its listing holds every file of
/// `needs` (a tokenizer for the tokenize box; a model's config and tokenizer for the
/// inspector); otherwise why not, naming `what` it lacks.
pub fn artifact_with(
    snap: &Snapshot,
    id: usize,
    name: &str,
    needs: &[&str],
    what: &str,
) -> Result<registry::Digest, ApiError> {
    let l = locate(snap, id, name)?;
    match &l.found {
        Some((r, _)) if needs.iter().all(|f| l.listed(f)) => Ok(r.digest.clone()),
        _ => Err(ApiError::not_found(format!(
            "stage `{name}` has no stored {what}"
        ))),
    }
}

pub fn stage(snap: &Snapshot, id: usize, name: &str) -> Result<StageView, ApiError> {
    let located = locate(snap, id, name)?;
    let reg = &snap.registry;
    let tokenizer = located.listed(TOKENIZER_FILE);
    let model = tokenizer && located.listed(MODEL_CONFIG_FILE);
    let details = match &located.found {
        Some((r, _)) => details(reg, r, &|f| located.listed(f)),
        None => Details::None,
    };
    let Located {
        pipeline: p,
        manifest: m,
        stage,
        node,
        found,
        meta,
    } = located;
    // The log worth reading: the failed run's, the running one's, else the result's.
    let log_run = match (&node.last, node.state, &found) {
        (Some(l), StageState::Failed, _) => Some(l.run_id.clone()),
        (_, StageState::Running, _) => live_stages(snap, p)
            .into_iter()
            .find(|l| l.running.iter().any(|s| s == name))
            .map(|l| l.run.id.clone()),
        (_, _, Some((r, _))) => Some(r.run_id.clone()),
        _ => None,
    };
    let log = log_run.and_then(|run| {
        let path = files::log_file(reg, &run, name, true).ok()?;
        let (text, truncated) = files::tail(&path, LOG_TAIL_BYTES).ok()?;
        Some(LogView {
            run_id: run,
            text,
            truncated,
        })
    });
    Ok(StageView {
        pipeline_id: id,
        pipeline: m.name.clone(),
        params: stage.params.canonical(),
        lineage: match &found {
            Some((r, _)) => Some(reg.lineage(&r.digest)?),
            None => None,
        },
        tokenizer,
        model,
        files: meta
            .map(|m| {
                m.files
                    .into_iter()
                    .map(|f| FileView {
                        path: f.path,
                        size: f.size,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        result: found.map(|(r, current)| ResultView {
            ran_with: r.ran_with(),
            digest: r.digest,
            fingerprint: r.fingerprint,
            run_id: r.run_id,
            started_at: r.started_at,
            duration_ms: r.duration_ms,
            metrics: r.metrics,
            headline: r.headline,
            inputs: r.inputs,
            current,
        }),
        log,
        details,
        node,
    })
}

/// The tokenizer file of tokenizer and model artifacts.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// A model artifact's configuration (with its weights beside it).
pub const MODEL_CONFIG_FILE: &str = "config.json";

fn details(reg: &Registry, r: &StageResult, listed: &dyn Fn(&str) -> bool) -> Details {
    let read = |file: &str| -> Option<Vec<u8>> {
        let path = files::object_file(reg, &r.digest, file).ok()?;
        files::read_whole(&path).ok()
    };
    match r.kind.as_str() {
        "data" => read(stages::kinds::data::STATS_FILE)
            .and_then(|b| serde_json::from_slice::<stages::kinds::data::Stats>(&b).ok())
            .map_or(Details::None, |stats| Details::Data {
                stats: Box::new(stats),
            }),
        k if TRAINING_KINDS.contains(&k) => read(METRICS_FILE)
            .and_then(|b| parse_curve(&String::from_utf8_lossy(&b)).ok())
            .map_or(Details::None, |curve| Details::Training { curve }),
        "eval" => read(EVAL_RESULTS_FILE)
            .and_then(|b| serde_json::from_slice::<EvalResults>(&b).ok())
            .map_or(Details::None, |results| Details::Eval {
                results,
                chart: listed("results.svg")
                    .then(|| format!("/api/objects/{}/files/results.svg", r.digest)),
            }),
        _ => Details::None,
    }
}

/// Every stored training result, newest first: what the curves page can overlay.
pub fn curve_sources(snap: &Snapshot) -> Result<Vec<CurveSource>, ApiError> {
    let mut results: Vec<StageResult> = snap
        .registry
        .results()?
        .into_iter()
        .filter(|r| {
            TRAINING_KINDS.contains(&r.kind.as_str()) && snap.registry.has_object(&r.digest)
        })
        .collect();
    results.sort_by(|a, b| (&b.started_at, &b.run_id).cmp(&(&a.started_at, &a.run_id)));
    results.dedup_by(|a, b| a.digest == b.digest);
    Ok(results
        .into_iter()
        .map(|r| CurveSource {
            headline: r.headline_metric().map(|(n, v)| (n.to_string(), v)),
            tokens_per_s: r.metrics.get("tokens_per_s").copied(),
            digest: r.digest,
            stage: r.stage,
            kind: r.kind,
            pipeline: r.pipeline,
            run_id: r.run_id,
            started_at: r.started_at,
        })
        .collect())
}

/// The training curve stored in object `digest`.
pub fn curve(snap: &Snapshot, digest: &str) -> Result<Vec<CurvePoint>, ApiError> {
    let path = files::object_file(&snap.registry, digest, METRICS_FILE)?;
    let bytes = files::read_whole(&path)?;
    parse_curve(&String::from_utf8_lossy(&bytes))
        .map_err(|e| ApiError::internal(format!("the curve of {digest}: {e}")))
}
