//! Running a manifest: one dagrs node per stage, edges from references.
//!
//! dagrs edges are channels, not start barriers: every node starts at once and first drains its
//! input channels, receiving each upstream stage's outcome. So the story of a node is: wait for
//! upstream outcomes → skip if one did not produce an artifact → fingerprint → reuse or run
//! (inside the resource budget) → store → commit → tell downstream. Nodes never return a dagrs
//! error: failure, skipping and cancellation are ours to decide (fail-fast or `--keep-going`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dagrs::{
    async_trait::async_trait, Action, Content, DefaultNode, EnvVar, Graph, InChannels, Node,
    NodeTable, OutChannels, Output,
};
use pipelines::{Manifest, Stage};
use registry::Digest;
use registry::{Lockfile, OutcomeStatus, ProducedBy, Registry, RunRecord, RunStatus, StageResult};
use tokio_util::sync::CancellationToken;

use crate::context::{StageContext, StageLog, StageProgress};
use crate::error::{RuntimeError, StageError};
use crate::fetch::{FetchRequest, Fetcher};
use crate::fingerprints;
use crate::kind::Kinds;
use crate::lock_check;
use crate::plan::{decide, plan_with, short, Decision, PlanStatus};
use crate::progress::Reporter;
use crate::report::{format_duration, RunReport, StageReport};
use crate::resources::Budget;

/// How to run (the resolved form of `binarylm run`'s flags).
#[derive(Clone)]
pub struct RunOptions {
    /// Stages running at once.
    pub jobs: usize,
    /// CPU thread budget shared by running stages.
    pub threads: usize,
    /// Keep running what does not depend on a failed stage.
    pub keep_going: bool,
    /// Re-run these stages even if cached.
    pub force: Vec<String>,
    /// Run only these stages and what they need (empty: every stage).
    pub targets: Vec<String>,
    /// `pipeline.lock` must match exactly; it is checked, never rewritten.
    pub locked: bool,
    /// Fired by Ctrl-C / SIGTERM.
    pub cancel: CancellationToken,
    pub reporter: Reporter,
    /// `--pull`: asked for a stage's result before the stage runs.
    pub fetcher: Option<Arc<dyn Fetcher>>,
}

impl RunOptions {
    pub fn new(reporter: Reporter) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        RunOptions {
            jobs: cores,
            threads: cores,
            keep_going: false,
            force: Vec::new(),
            targets: Vec::new(),
            locked: false,
            cancel: CancellationToken::new(),
            reporter,
            fetcher: None,
        }
    }
}

/// What a node tells its downstream nodes: the digest of its artifact, or that it has none.
struct Upstream {
    stage: String,
    digest: Option<Digest>,
}

struct Shared {
    manifest: Arc<Manifest>,
    registry: Arc<Registry>,
    kinds: Kinds,
    budget: Budget,
    reporter: Reporter,
    /// Cancels the rest of the run (user interrupt, or fail-fast).
    run_cancel: CancellationToken,
    /// Only the user's interrupt (to tell "cancelled" from "skipped after a failure").
    user_cancel: CancellationToken,
    keep_going: bool,
    force: BTreeSet<String>,
    lock: Option<Lockfile>,
    /// Under `--locked`: the stages accepted within tolerance rather than byte for byte.
    tolerated: Mutex<BTreeSet<String>>,
    fetcher: Option<Arc<dyn Fetcher>>,
    run_id: String,
    log_dir: PathBuf,
    reports: Mutex<BTreeMap<usize, StageReport>>,
    dep_hashes: fingerprints::DepHashes,
}

impl Shared {
    fn record(&self, idx: usize, report: StageReport) {
        if let Ok(mut r) = self.reports.lock() {
            r.insert(idx, report);
        }
    }

    /// How many of the stages that are not cached can run side by side: the width of the
    /// graph without its cached stages (`binarylm plan`'s view). Cached stages never sit
    /// below a stage that runs, so leaving them out keeps every path between running stages.
    /// Planned once, when the first stage is about to run (a no-op run never pays for it);
    /// if planning fails, the whole graph's width.
    fn width_of_what_runs(&self) -> usize {
        let dag = self.manifest.dag();
        let force: Vec<String> = self.force.iter().cloned().collect();
        match plan_with(
            &self.manifest,
            &self.registry,
            &self.kinds,
            &force,
            &self.dep_hashes,
        ) {
            Ok(p) => {
                let cached: BTreeSet<&str> = p
                    .stages
                    .iter()
                    .filter(|e| matches!(e.status, PlanStatus::Cached { .. }))
                    .map(|e| e.stage.as_str())
                    .collect();
                dag.width_among(|i| !cached.contains(self.manifest.stages[i].name.as_str()))
            }
            Err(_) => dag.width(),
        }
    }
}

struct StageAction {
    idx: usize,
    shared: Arc<Shared>,
}

#[async_trait]
impl Action for StageAction {
    async fn run(
        &self,
        in_channels: &mut InChannels,
        out_channels: &mut OutChannels,
        _env: Arc<EnvVar>,
    ) -> Output {
        let upstream: Vec<Option<Arc<Upstream>>> = in_channels
            .map(|content| content.ok().and_then(|c| c.into_inner::<Upstream>()))
            .await;
        let report = self.execute(upstream).await;
        let message = Upstream {
            stage: report.stage.clone(),
            digest: match report.status {
                OutcomeStatus::Ran | OutcomeStatus::Cached => report.digest.clone(),
                _ => None,
            },
        };
        self.shared.record(self.idx, report);
        out_channels.broadcast(Content::new(message)).await;
        Output::empty()
    }
}

impl StageAction {
    /// One stage, as a story: gather the upstream digests, fingerprint, check the lockfile,
    /// reuse a cached result or wait for a share of the machine, then run, store and commit.
    async fn execute(&self, upstream: Vec<Option<Arc<Upstream>>>) -> StageReport {
        let sh = &self.shared;
        let stage = &sh.manifest.stages[self.idx];
        let mut report = StageReport::new(&stage.name, stage.params.kind());

        let inputs = match upstream_digests(&upstream) {
            Ok(inputs) => inputs,
            Err(message) => {
                report.error = Some(message);
                return report;
            }
        };
        if sh.run_cancel.is_cancelled() {
            return self.not_started(report);
        }
        let (fp, input) = match self.fingerprint(stage, &inputs) {
            Ok(f) => f,
            Err(message) => return self.fail(report, message),
        };
        report.fingerprint = Some(fp.clone());
        if let Err(message) = self.check_lock_fingerprint(&stage.name, &fp, &input) {
            return self.fail(report, message);
        }
        let forced = sh.force.contains(&stage.name);
        report.reasons = match decide(&sh.registry, &sh.manifest, stage, &fp, &input, forced) {
            Decision::Reuse(found) => return self.reuse(report, &fp, &input, *found),
            Decision::Run(reasons) => reasons,
        };
        if !forced {
            if let Some(found) = self.fetch(&fp).await {
                report.reasons = vec![format!("pulled from {}", found.0)];
                return self.reuse(report, &fp, &input, found.1);
            }
        }

        // Wait for a slot in the budget (or for the run to be cancelled).
        sh.budget.size_once(|| sh.width_of_what_runs());
        let grant = tokio::select! {
            g = sh.budget.acquire(&stage.resources) => g,
            _ = sh.run_cancel.cancelled() => None,
        };
        let Some(grant) = grant else {
            return self.not_started(report);
        };
        if sh.run_cancel.is_cancelled() {
            return self.not_started(report);
        }
        let threads = grant.threads;
        let report = self.run(report, fp, input, inputs, threads).await;
        drop(grant);
        report
    }

    /// The stage's fingerprint and what it was computed from.
    fn fingerprint(
        &self,
        stage: &Stage,
        inputs: &BTreeMap<String, Digest>,
    ) -> Result<(String, pipelines::FingerprintInput), String> {
        // Every stage's kind has an implementation: `check_before_running` made sure.
        let sh = &self.shared;
        let deps = fingerprints::dep_digests(&sh.manifest, stage, &sh.dep_hashes)
            .map_err(|e| e.to_string())?;
        Ok(fingerprints::fingerprint_stage(
            &sh.manifest,
            stage,
            inputs,
            deps,
        ))
    }

    /// With `--locked`, the stage must be in the lockfile with this very fingerprint — computed
    /// with the locked digests of upstream stages that reproduced within tolerance.
    fn check_lock_fingerprint(
        &self,
        stage: &str,
        fp: &str,
        input: &pipelines::FingerprintInput,
    ) -> Result<(), String> {
        let Some(lock) = &self.shared.lock else {
            return Ok(());
        };
        let Some(entry) = lock.stages.get(stage) else {
            return Err("not in pipeline.lock (run without --locked to update it)".to_string());
        };
        if entry.fingerprint == fp {
            return Ok(());
        }
        let tolerated = self.tolerated_inputs(input);
        if !tolerated.is_empty()
            && lock_check::fingerprint_under_lock(input, lock, &tolerated) == entry.fingerprint
        {
            return Ok(());
        }
        Err(format!(
            "fingerprint {} differs from pipeline.lock ({}): params, inputs or dependencies changed since the lock was written (run without --locked to update it)",
            short(fp),
            short(&entry.fingerprint)
        ))
    }

    /// The inputs of this stage that `--locked` accepted within tolerance.
    fn tolerated_inputs(&self, input: &pipelines::FingerprintInput) -> BTreeSet<String> {
        let tolerated = match self.shared.tolerated.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        input
            .inputs
            .keys()
            .filter(|name| tolerated.contains(*name))
            .cloned()
            .collect()
    }

    /// `--pull`: the result of this fingerprint from the remote, if it has it (with the
    /// remote's name). A remote that fails is a cache miss: the stage runs, which is always
    /// correct, only slower.
    async fn fetch(&self, fp: &str) -> Option<(String, StageResult)> {
        let sh = &self.shared;
        let fetcher = sh.fetcher.as_ref()?;
        let stage = &sh.manifest.stages[self.idx];
        let request = FetchRequest {
            manifest: sh.manifest.path.to_string_lossy().into_owned(),
            stage: stage.name.clone(),
            fingerprint: fp.to_string(),
            digest: sh
                .lock
                .as_ref()
                .and_then(|l| l.stages.get(&stage.name))
                .map(|e| e.digest.clone()),
        };
        let source = fetcher.describe();
        match fetcher.fetch(sh.registry.clone(), request).await {
            Ok(Some(found)) => {
                sh.reporter
                    .say(&format!("↓ {} pulled from {source}", stage.name));
                Some((source, found))
            }
            Ok(None) => None,
            Err(e) => {
                sh.reporter.say(&format!(
                    "! {}: could not pull from {source}, running it: {}",
                    stage.name,
                    first_line(&e)
                ));
                None
            }
        }
    }

    /// A cached result of the same fingerprint: report it instead of running.
    fn reuse(
        &self,
        mut report: StageReport,
        fp: &str,
        input: &pipelines::FingerprintInput,
        found: StageResult,
    ) -> StageReport {
        let sh = &self.shared;
        let stage = &sh.manifest.stages[self.idx];
        // A reused older result (say, a param edited back) becomes the stage's latest, so
        // `plan` explains the next change against what is actually current.
        let manifest_key = sh.manifest.path.to_string_lossy();
        if let Err(e) = sh.registry.mark_reused(&manifest_key, &stage.name, fp) {
            return self.fail(report, e.to_string());
        }
        sh.reporter.say(&format!(
            "· {} cached ({})",
            stage.name,
            short(&found.digest)
        ));
        report.status = OutcomeStatus::Cached;
        report.ran_with = Some(found.ran_with());
        report.digest = Some(found.digest);
        report.metrics = found.metrics;
        report.headline = found.headline;
        self.check_lock_digest(report, input)
    }

    /// Runs, stores and commits the stage: blocking work, off the async threads.
    async fn run(
        &self,
        mut report: StageReport,
        fp: String,
        input: pipelines::FingerprintInput,
        inputs: BTreeMap<String, Digest>,
        threads: usize,
    ) -> StageReport {
        let sh = &self.shared;
        let stage = &sh.manifest.stages[self.idx];
        sh.reporter.say(&format!(
            "▶ {} running ({})",
            stage.name,
            report.reasons.join("; ")
        ));
        let log_path = sh.log_dir.join(format!("{}.log", stage.name));
        report.log = Some(log_path.display().to_string());
        let started = Instant::now();
        let shared = self.shared.clone();
        let idx = self.idx;
        let fingerprint_input = input.clone();
        let result = tokio::task::spawn_blocking(move || {
            run_and_store(&shared, idx, &fp, &input, &inputs, threads, &log_path)
        })
        .await;
        report.duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(Ok(stored)) => {
                sh.reporter.say(&format!(
                    "✓ {} ran in {} ({})",
                    stage.name,
                    format_duration(report.duration_ms),
                    short(&stored.digest)
                ));
                report.status = OutcomeStatus::Ran;
                report.ran_with = Some(stored.ran_with);
                report.digest = Some(stored.digest);
                report.metrics = stored.metrics;
                report.headline = stored.headline;
                self.check_lock_digest(report, &fingerprint_input)
            }
            Ok(Err(StageError::Cancelled)) => {
                report.status = OutcomeStatus::Cancelled;
                report.error = Some("cancelled while running".to_string());
                sh.reporter.say(&format!("✗ {} cancelled", stage.name));
                report
            }
            Ok(Err(e)) => self.fail(report, e.render()),
            Err(join) => self.fail(report, format!("stage thread panicked: {join}")),
        }
    }

    /// With `--locked`, a reproduced output must be byte-identical to the locked one where the
    /// kind promises that (same kind of machine, same inputs), and otherwise keep each declared
    /// metric within its tolerance. Says which check applied.
    fn check_lock_digest(
        &self,
        mut report: StageReport,
        input: &pipelines::FingerprintInput,
    ) -> StageReport {
        let sh = &self.shared;
        let Some(lock) = &sh.lock else {
            return report;
        };
        let (Some(entry), Some(digest)) = (lock.stages.get(&report.stage), report.digest.clone())
        else {
            return report;
        };
        let info = sh.manifest.stages[self.idx].params.info();
        let now = lock_check::Reproduced {
            digest: &digest,
            metrics: &report.metrics,
            ran_with: report.ran_with.as_ref(),
            tolerated_inputs: self.tolerated_inputs(input).into_iter().collect(),
        };
        match lock_check::check_output(&info, entry, &now) {
            lock_check::Verdict::Exact => {
                report.lock_check = Some("identical to pipeline.lock".to_string());
                report
            }
            lock_check::Verdict::Tolerated(text) => {
                sh.reporter
                    .say(&format!("≈ {} reproduced: {text}", report.stage));
                if let Ok(mut t) = sh.tolerated.lock() {
                    t.insert(report.stage.clone());
                }
                report.lock_check = Some(text);
                report
            }
            lock_check::Verdict::Mismatch(text) => {
                report.lock_check = Some(text.clone());
                self.fail(report, text)
            }
        }
    }

    fn not_started(&self, mut report: StageReport) -> StageReport {
        if self.shared.user_cancel.is_cancelled() {
            report.status = OutcomeStatus::Cancelled;
            report.error = Some("run interrupted before this stage started".to_string());
        } else {
            report.status = OutcomeStatus::Skipped;
            report.error = Some("not started: the run stopped after a failure".to_string());
        }
        report
    }

    fn fail(&self, mut report: StageReport, message: String) -> StageReport {
        report.status = OutcomeStatus::Failed;
        self.shared.reporter.say(&format!(
            "✗ {} failed: {}",
            report.stage,
            first_line(&message)
        ));
        report.error = Some(message);
        if !self.shared.keep_going {
            self.shared.run_cancel.cancel();
        }
        report
    }
}

/// The digests of the upstream stages' artifacts, or why one is missing (an upstream stage
/// failed, was skipped or was cancelled).
fn upstream_digests(
    upstream: &[Option<Arc<Upstream>>],
) -> Result<BTreeMap<String, Digest>, String> {
    let mut inputs = BTreeMap::new();
    let mut missing = Vec::new();
    for up in upstream {
        match up.as_deref() {
            Some(Upstream {
                stage,
                digest: Some(d),
            }) => {
                inputs.insert(stage.clone(), d.clone());
            }
            Some(Upstream {
                stage,
                digest: None,
            }) => missing.push(format!("`{stage}`")),
            None => missing.push("`(unknown)`".to_string()),
        }
    }
    if missing.is_empty() {
        Ok(inputs)
    } else {
        Err(format!(
            "upstream {} did not produce an artifact",
            missing.join(", ")
        ))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

struct Stored {
    digest: Digest,
    metrics: BTreeMap<String, f64>,
    headline: Option<String>,
    ran_with: registry::RanWith,
}

#[allow(clippy::too_many_arguments)]
fn run_and_store(
    sh: &Shared,
    idx: usize,
    fingerprint: &str,
    input: &pipelines::FingerprintInput,
    inputs: &BTreeMap<String, Digest>,
    threads: usize,
    log_path: &std::path::Path,
) -> Result<Stored, StageError> {
    let started_at = Instant::now();
    let started_at_text = registry::now_rfc3339();
    let stage = &sh.manifest.stages[idx];
    let kind = sh
        .kinds
        .get(stage.params.kind())
        .ok_or_else(|| StageError::Failed(format!("no kind `{}`", stage.params.kind())))?;
    let log =
        StageLog::create(log_path).map_err(|e| StageError::io("creating the stage log", e))?;
    let staging = sh
        .registry
        .staging(fingerprint)
        .map_err(|e| StageError::Failed(e.to_string()))?;
    let out_dir = staging.out_dir();
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| StageError::io(format!("creating {}", out_dir.display()), e))?;
    let input_paths = inputs
        .iter()
        .map(|(name, digest)| (name.clone(), sh.registry.object_path(digest)))
        .collect();
    let bar = sh.reporter.stage_bar(&stage.name);
    let ctx = StageContext {
        manifest: &sh.manifest,
        stage,
        out_dir,
        work_dir: staging.path().to_path_buf(),
        resumed: staging.existed,
        cache_dir: sh.registry.cache_dir(),
        inputs: input_paths,
        fingerprint: fingerprint.to_string(),
        seed: sh.manifest.seed,
        threads,
        log: log.clone(),
        progress: StageProgress::new(bar.clone()),
        cancel: sh.run_cancel.clone(),
    };
    let outcome = kind.run(&ctx);
    bar.finish();
    let metrics = outcome?;
    if sh.run_cancel.is_cancelled() && sh.user_cancel.is_cancelled() {
        // Finished just as the user interrupted: still a complete artifact, keep it.
        log.line("run interrupted after this stage finished; keeping its artifact");
    }
    let digest = sh
        .registry
        .store(
            staging,
            ProducedBy {
                stage: stage.name.clone(),
                fingerprint: fingerprint.to_string(),
                pipeline: sh.manifest.name.clone(),
            },
        )
        .map_err(|e| StageError::Failed(format!("storing the artifact: {e}")))?;
    // The kind's declared headline unless the stage named its own (a command can).
    let headline = metrics
        .headline
        .clone()
        .or_else(|| stage.params.info().headline.map(str::to_string));
    let result = StageResult {
        fingerprint: fingerprint.to_string(),
        digest: digest.clone(),
        stage: stage.name.clone(),
        kind: stage.params.kind().to_string(),
        manifest: sh.manifest.path.to_string_lossy().into_owned(),
        pipeline: sh.manifest.name.clone(),
        inputs: inputs.clone(),
        fingerprint_input: serde_json::to_value(input).unwrap_or(serde_json::Value::Null),
        metrics: metrics.metrics.clone(),
        headline: headline.clone(),
        run_id: sh.run_id.clone(),
        started_at: started_at_text,
        duration_ms: started_at.elapsed().as_millis() as u64,
        device: metrics.device.clone().unwrap_or_else(|| "cpu".to_string()),
        binarylm_version: env!("CARGO_PKG_VERSION").to_string(),
        threads: Some(threads),
        libtorch: metrics.libtorch.clone(),
    };
    sh.registry
        .commit(&result)
        .map_err(|e| StageError::Failed(format!("committing the result: {e}")))?;
    Ok(Stored {
        ran_with: result.ran_with(),
        digest,
        metrics: metrics.metrics,
        headline,
    })
}

/// Runs the manifest. The caller holds the workspace lock.
pub async fn run(
    manifest: Arc<Manifest>,
    registry: Arc<Registry>,
    kinds: Kinds,
    opts: RunOptions,
) -> Result<RunReport, RuntimeError> {
    let started = Instant::now();
    // `binarylm run STAGE…`: the graph is the targets and what they need; the whole manifest
    // still decides what the lockfile must list.
    let full = manifest;
    let manifest = if opts.targets.is_empty() {
        full.clone()
    } else {
        Arc::new(full.select(&opts.targets)?)
    };
    check_before_running(&full, &manifest, &kinds, &opts)?;
    let lock_path = lockfile_path(&manifest);
    let lock = if opts.locked {
        Some(read_lock_for(&full, &lock_path)?)
    } else {
        None
    };

    let run_id = registry::new_run_id();
    let mut record = RunRecord {
        id: run_id.clone(),
        manifest: manifest.path.to_string_lossy().into_owned(),
        pipeline: manifest.name.clone(),
        started_at: registry::now_rfc3339(),
        finished_at: None,
        status: RunStatus::Running,
        outcomes: Vec::new(),
        lockfile: None,
    };
    registry.begin_run(&record)?;

    let shared = Arc::new(Shared {
        manifest: manifest.clone(),
        registry: registry.clone(),
        kinds,
        budget: Budget::new(opts.jobs, opts.threads),
        reporter: opts.reporter.clone(),
        run_cancel: opts.cancel.child_token(),
        user_cancel: opts.cancel.clone(),
        keep_going: opts.keep_going,
        force: opts.force.iter().cloned().collect(),
        lock,
        tolerated: Mutex::new(BTreeSet::new()),
        fetcher: opts.fetcher.clone(),
        run_id: run_id.clone(),
        log_dir: registry.log_dir(&run_id),
        reports: Mutex::new(BTreeMap::new()),
        dep_hashes: fingerprints::DepHashes::default(),
    });
    let stages = run_graph(&shared).await?;

    let any = |st: OutcomeStatus| stages.iter().any(|s| s.status == st);
    let status = if opts.cancel.is_cancelled() {
        RunStatus::Cancelled
    } else if any(OutcomeStatus::Failed) || any(OutcomeStatus::Skipped) {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    // Under --locked the lockfile is only checked, never rewritten.
    let lockfile = if opts.locked {
        None
    } else {
        write_lockfile(&full, &manifest, &stages, &lock_path)?;
        Some(lock_path.display().to_string())
    };

    record.finished_at = Some(registry::now_rfc3339());
    record.status = status;
    record.outcomes = stages.iter().map(StageReport::outcome).collect();
    record.lockfile = lockfile.clone();
    registry.finish_run(&record)?;

    Ok(RunReport {
        run_id,
        pipeline: manifest.name.clone(),
        status,
        stages,
        lockfile,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Bad input found before anything runs (exit 2, not a stage failure halfway through): a kind
/// this build cannot run, a `--force` of an unknown stage or of one the targets leave out, a
/// missing dependency file. `manifest` is `full` cut down to the targets.
fn check_before_running(
    full: &Manifest,
    manifest: &Manifest,
    kinds: &Kinds,
    opts: &RunOptions,
) -> Result<(), RuntimeError> {
    for stage in &manifest.stages {
        if kinds.get(stage.params.kind()).is_none() {
            return Err(RuntimeError::UnknownKind(stage.params.kind().to_string()));
        }
    }
    for f in &opts.force {
        if full.stage(f).is_none() {
            return Err(RuntimeError::UnknownForce(f.clone()));
        }
        if manifest.stage(f).is_none() {
            return Err(RuntimeError::ForceNotSelected {
                stage: f.clone(),
                selected: manifest.stages.iter().map(|s| s.name.clone()).collect(),
            });
        }
    }
    for stage in &manifest.stages {
        for dep in fingerprints::declared_deps(manifest, stage)? {
            let path = manifest.dir.join(&dep);
            if let Err(source) = std::fs::metadata(&path) {
                return Err(RuntimeError::Dependency {
                    stage: stage.name.clone(),
                    path: dep,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// The lockfile `--locked` checks against; it must list exactly the manifest's stages.
fn read_lock_for(
    manifest: &Manifest,
    lock_path: &std::path::Path,
) -> Result<Lockfile, RuntimeError> {
    let lock = Lockfile::read(lock_path)?.ok_or_else(|| {
        RuntimeError::Locked(format!(
            "--locked: no lockfile at {} (run once without --locked to create it)",
            lock_path.display()
        ))
    })?;
    let in_manifest: BTreeSet<&str> = manifest.stages.iter().map(|s| s.name.as_str()).collect();
    let in_lock: BTreeSet<&str> = lock.stages.keys().map(String::as_str).collect();
    if in_manifest != in_lock {
        let added: Vec<_> = in_manifest.difference(&in_lock).collect();
        let removed: Vec<_> = in_lock.difference(&in_manifest).collect();
        return Err(RuntimeError::Locked(format!(
            "--locked: {} does not match the manifest's stages (not locked: {:?}; locked but gone: {:?})",
            lock_path.display(),
            added,
            removed
        )));
    }
    Ok(lock)
}

/// One dagrs node per stage, edges from the DAG; returns every stage's report in topological
/// order (a stage that never ran gets a report saying so).
async fn run_graph(shared: &Arc<Shared>) -> Result<Vec<StageReport>, RuntimeError> {
    let manifest = &shared.manifest;
    let dag = manifest.dag();
    let mut table = NodeTable::default();
    let mut graph = Graph::new();
    let mut ids = Vec::with_capacity(manifest.stages.len());
    for (idx, stage) in manifest.stages.iter().enumerate() {
        let node = DefaultNode::with_action(
            stage.name.clone(),
            StageAction {
                idx,
                shared: shared.clone(),
            },
            &mut table,
        );
        ids.push(node.id());
        graph
            .add_node(node)
            .map_err(|e| RuntimeError::Internal(format!("adding node `{}`: {e:?}", stage.name)))?;
    }
    for idx in 0..manifest.stages.len() {
        let down: Vec<_> = dag.downstream(idx).iter().map(|&d| ids[d]).collect();
        if !down.is_empty() {
            graph
                .add_edge(ids[idx], down)
                .map_err(|e| RuntimeError::Internal(format!("adding edges: {e:?}")))?;
        }
    }
    graph.set_env(EnvVar::new(table));
    let graph_result = graph.async_start().await;

    let mut reports = std::mem::take(
        &mut *shared
            .reports
            .lock()
            .map_err(|_| RuntimeError::Internal("report mutex poisoned".into()))?,
    );
    Ok(dag
        .topo_order()
        .iter()
        .map(|&idx| {
            let stage = &manifest.stages[idx];
            reports.remove(&idx).unwrap_or_else(|| {
                let mut r = StageReport::new(&stage.name, stage.params.kind());
                r.error = Some(match &graph_result {
                    Err(e) => format!("not executed: {e:?}"),
                    Ok(_) => "not executed".to_string(),
                });
                r
            })
        })
        .collect())
}

/// The lockfile records every stage that has a current artifact. A run of some stages
/// (`selected` smaller than `full`) keeps the previous lockfile's entries for the others that
/// are still in the manifest, as `dvc repro STAGE` keeps the rest of dvc.lock.
fn write_lockfile(
    full: &Manifest,
    selected: &Manifest,
    stages: &[StageReport],
    lock_path: &std::path::Path,
) -> Result<(), RuntimeError> {
    let mut lock = Lockfile::new(&full.name);
    if selected.stages.len() < full.stages.len() {
        // An unreadable previous lockfile has nothing to keep: it is replaced, as by a full run.
        if let Ok(Some(previous)) = Lockfile::read(lock_path) {
            for (name, entry) in previous.stages {
                if full.stage(&name).is_some() && selected.stage(&name).is_none() {
                    lock.stages.insert(name, entry);
                }
            }
        }
    }
    for s in stages {
        if matches!(s.status, OutcomeStatus::Ran | OutcomeStatus::Cached) {
            let checked: Vec<&str> = match full.stage(&s.stage).map(|st| st.params.info()) {
                Some(pipelines::KindInfo {
                    reproducible: pipelines::Reproducibility::SameMachine(tolerances),
                    ..
                }) => tolerances.iter().map(|t| t.metric).collect(),
                _ => Vec::new(),
            };
            if let Some(entry) = s.locked(&checked) {
                lock.stages.insert(s.stage.clone(), entry);
            }
        }
    }
    lock.write(lock_path)?;
    Ok(())
}

/// `pipeline.lock` beside the manifest (for `foo.yaml`, `foo.lock`).
pub fn lockfile_path(manifest: &Manifest) -> PathBuf {
    manifest.path.with_extension("lock")
}
