use std::process::ExitCode;

use runtime::PlanStatus;
use serde::Serialize;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::error::CliError;
use crate::workspace;

#[derive(Serialize)]
struct StageStatus {
    stage: String,
    kind: String,
    /// "up_to_date", "stale" (will run), or "pending" (an upstream stage is stale).
    state: &'static str,
    fingerprint: Option<String>,
    digest: Option<registry::Digest>,
    reasons: Vec<String>,
    metrics: std::collections::BTreeMap<String, f64>,
    /// Which of `metrics` summarises the stage (the kind's declared headline, or a command's
    /// own).
    headline: Option<String>,
}

#[derive(Serialize)]
struct StatusDoc {
    workspace: String,
    manifest: Option<String>,
    pipeline: Option<String>,
    stages: Vec<StageStatus>,
    recent_runs: Vec<registry::RunRecord>,
}

const RECENT_RUNS: usize = 5;

pub fn status(args: &StatusArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let (manifest, ws) =
        workspace::optional_manifest(args.manifest.as_deref(), g.workspace.as_deref())?;
    let opened = workspace::open(&ws, g.quiet)?;
    let reg = &opened.registry;
    reg.mark_stale_runs_interrupted()?;

    let mut stages = Vec::new();
    if let Some(m) = &manifest {
        let plan = runtime::plan(m, reg, &super::run::kinds(), &[])?;
        for e in plan.stages {
            let latest = reg.latest_for_stage(&m.path.to_string_lossy(), &e.stage)?;
            let (state, digest, reasons) = match e.status {
                PlanStatus::Cached { digest } => ("up_to_date", Some(digest), Vec::new()),
                PlanStatus::WillRun { reasons } => ("stale", None, reasons),
                PlanStatus::Pending { upstream } => (
                    "pending",
                    None,
                    upstream
                        .iter()
                        .map(|u| format!("upstream `{u}` is stale"))
                        .collect(),
                ),
            };
            let (metrics, headline) = match (&digest, latest) {
                (Some(_), Some(r)) => (r.metrics, r.headline),
                _ => Default::default(),
            };
            stages.push(StageStatus {
                stage: e.stage,
                kind: e.kind,
                state,
                fingerprint: e.fingerprint,
                digest,
                reasons,
                metrics,
                headline,
            });
        }
    }
    let mut runs = reg.runs()?;
    runs.truncate(RECENT_RUNS);
    let doc = StatusDoc {
        workspace: ws.display().to_string(),
        manifest: manifest.as_ref().map(|m| m.path.display().to_string()),
        pipeline: manifest.as_ref().map(|m| m.name.clone()),
        stages,
        recent_runs: runs,
    };
    if args.json {
        super::print_json(&doc)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("workspace: {}", doc.workspace);
    if let (Some(p), Some(name)) = (&doc.manifest, &doc.pipeline) {
        println!("pipeline `{name}` ({p})");
        let w = doc.stages.iter().map(|s| s.stage.len()).max().unwrap_or(5);
        for s in &doc.stages {
            let detail = match s.state {
                "up_to_date" => {
                    // The headline metric; without one, the first (names are sorted).
                    let metric = s
                        .headline
                        .as_ref()
                        .and_then(|h| s.metrics.get_key_value(h))
                        .or_else(|| s.metrics.iter().next())
                        .map(|(k, v)| format!("  {k}={v}"))
                        .unwrap_or_default();
                    format!(
                        "{}{metric}",
                        s.digest.as_deref().map(runtime::plan::short).unwrap_or("")
                    )
                }
                _ => s.reasons.join("; "),
            };
            println!(
                "  {:w$}  {:10}  {detail}",
                s.stage,
                s.state.replace('_', " "),
                w = w
            );
        }
    }
    if doc.recent_runs.is_empty() {
        println!("no runs yet");
    } else {
        println!("recent runs:");
        for r in &doc.recent_runs {
            let ran = r
                .outcomes
                .iter()
                .filter(|o| o.status == registry::OutcomeStatus::Ran)
                .count();
            println!(
                "  {}  {:9}  {}  {} stage(s), {} ran",
                r.id,
                format!("{:?}", r.status).to_lowercase(),
                r.pipeline,
                r.outcomes.len(),
                ran
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
