//! `kind: data` — reads the sources, cleans, deduplicates and splits the documents, and writes
//! `train.parquet`, `val.parquet` and `stats.json`.

mod clean;
mod doc;
mod error;
mod output;
mod sources;
mod split;
mod stats;
pub mod synthetic;

use pipelines::{DataParams, DataSource, SourceSpec, StageParams};
use runtime::{StageContext, StageError, StageKind, StageMetrics};

pub use doc::Doc;
pub use error::DataError;
pub use stats::Stats;

/// Output files of a data stage.
pub const TRAIN_FILE: &str = "train.parquet";
pub const VAL_FILE: &str = "val.parquet";
pub const STATS_FILE: &str = "stats.json";

pub struct DataKind;

impl StageKind for DataKind {
    fn name(&self) -> &'static str {
        "data"
    }

    // 1: first version.
    fn version(&self) -> u32 {
        1
    }

    fn run(&self, ctx: &StageContext) -> Result<StageMetrics, StageError> {
        let StageParams::Data(params) = &ctx.stage.params else {
            return Err(StageError::Failed(format!(
                "stage `{}` is not a data stage",
                ctx.stage.name
            )));
        };
        let cancelled = || ctx.cancel.is_cancelled();
        let progress = |done: usize, total: usize| {
            ctx.progress.set_length(total as u64);
            ctx.progress.set_position(done as u64);
        };
        let stats = build(
            ctx.manifest.dir.as_path(),
            params,
            ctx.seed,
            &ctx.out_dir,
            &cancelled,
            &progress,
        )
        .map_err(|e| match e {
            DataError::Cancelled => StageError::Cancelled,
            other => StageError::Failed(other.to_string()),
        })?;
        for s in &stats.sources {
            ctx.log.line(&format!(
                "{}: {} documents, {} characters",
                s.source, s.documents, s.chars
            ));
        }
        for s in &stats.steps {
            ctx.log.line(&format!(
                "{}: {} → {} documents, {} → {} characters",
                s.name, s.documents_in, s.documents_out, s.chars_in, s.chars_out
            ));
        }
        Ok(metrics(&stats))
    }
}

/// The stage's metrics; `documents_train` is the headline.
pub fn metrics(stats: &Stats) -> StageMetrics {
    let removed: usize = stats.removed.values().sum();
    let metrics = [
        ("documents_train", stats.train.documents),
        ("documents_val", stats.val.documents),
        ("chars_train", stats.train.chars),
        ("chars_val", stats.val.chars),
        ("documents_removed", removed),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v as f64))
    .collect();
    StageMetrics {
        metrics,
        headline: Some("documents_train".to_string()),
        device: Some("cpu".to_string()),
    }
}

/// Runs the whole stage: reads every source (paths relative to `dir`), cleans, splits and
/// writes the outputs into `out`. `cancelled` is polled between sources and steps;
/// `progress(done, total)` reports sources read.
pub fn build(
    dir: &std::path::Path,
    params: &DataParams,
    seed: u64,
    out: &std::path::Path,
    cancelled: &dyn Fn() -> bool,
    progress: &dyn Fn(usize, usize),
) -> Result<Stats, DataError> {
    let mut stats = Stats::default();
    let mut docs = Vec::new();
    for (i, source) in params.sources.iter().enumerate() {
        if cancelled() {
            return Err(DataError::Cancelled);
        }
        progress(i, params.sources.len());
        let read = sources::read(dir, i, source, seed, params.clean.invalid_utf8)?;
        stats.sources.push(stats::SourceStats {
            source: describe(source),
            documents: read.docs.len(),
            chars: stats::total_chars(&read.docs),
            null_rows: read.null_rows,
        });
        stats.repaired_utf8_documents += read.repaired_docs;
        docs.extend(read.docs);
    }
    progress(params.sources.len(), params.sources.len());
    if cancelled() {
        return Err(DataError::Cancelled);
    }
    let docs = clean::clean(docs, &params.clean, &mut stats);
    if docs.is_empty() {
        let removed = if stats.removed.is_empty() {
            "the sources gave no documents".to_string()
        } else {
            stats
                .removed
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(DataError::Empty { removed });
    }
    let (train, val) = split::split(docs, params.split.selection());
    stats.train = stats::SplitStats::of(&train);
    stats.val = stats::SplitStats::of(&val);
    stats.length_histogram = stats::length_histogram(train.iter().chain(&val));
    let shape = params.shape();
    output::write_parquet(&out.join(TRAIN_FILE), shape, &train)?;
    output::write_parquet(&out.join(VAL_FILE), shape, &val)?;
    let stats_path = out.join(STATS_FILE);
    let json = serde_json::to_vec_pretty(&stats).map_err(|e| DataError::Write {
        path: stats_path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&stats_path, json).map_err(|e| DataError::Write {
        path: stats_path.clone(),
        message: e.to_string(),
    })?;
    Ok(stats)
}

/// A source as a user wrote it, for stats and logs.
fn describe(source: &DataSource) -> String {
    let pinned = match source.split {
        Some(pipelines::SplitName::Val) => " (val)",
        Some(pipelines::SplitName::Train) => " (train)",
        None => "",
    };
    let what = match source.spec() {
        Some(SourceSpec::Path { path, .. }) => format!("path: {path}"),
        Some(SourceSpec::Jsonl { path, column }) => format!("jsonl: {path} [{column}]"),
        Some(SourceSpec::Csv { path, column }) => format!("csv: {path} [{column}]"),
        Some(SourceSpec::Parquet { path, column }) => format!("parquet: {path} [{column}]"),
        Some(SourceSpec::Synthetic(s)) => {
            format!("synthetic: {:?} x{}", s.generator, s.documents).to_lowercase()
        }
        None => "invalid source".to_string(),
    };
    format!("{what}{pinned}")
}
