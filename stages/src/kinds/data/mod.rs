//! `kind: data` — reads the sources, cleans, deduplicates and splits the documents, and writes
//! `train.parquet`, `val.parquet` and `stats.json`.
//!
//! Two passes keep memory bounded whatever the corpus size:
//! 1. every source is read in batches; each batch goes through the per-document steps (in
//!    parallel), exact deduplication (a set of 128-bit hashes) and MinHash signing (band
//!    hashes only), and its survivors are parked on disk in buckets by content hash (`spill`);
//! 2. near-duplicate groups are resolved from the band hashes, then the buckets are read back
//!    one at a time in hash order, split, and appended to the Parquet files.

mod clean;
mod doc;
mod error;
mod output;
pub mod render;
mod sources;
mod spill;
mod split;
mod stats;
pub mod synthetic;
#[doc(hidden)]
/// A local HTTP server for tests of `url:` sources; built only for tests (`--features testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::path::Path;
use std::time::Instant;

use common::observe::Observer;
use pipelines::{DataParams, DataSource, Dedup, SourceSpec, SplitName};
use rayon::prelude::*;
use runtime::{StageContext, StageError, StageKind, StageMetrics};

pub use doc::Doc;
pub use error::DataError;
pub use sources::download;
pub use stats::{Stats, StepStats};

/// Output files of a data stage.
pub const TRAIN_FILE: &str = "train.parquet";
pub const VAL_FILE: &str = "val.parquet";
pub const STATS_FILE: &str = "stats.json";

pub struct DataKind;

impl StageKind for DataKind {
    fn name(&self) -> &'static str {
        "data"
    }

    fn run(&self, ctx: &StageContext) -> Result<StageMetrics, StageError> {
        let params = ctx.params::<pipelines::DataParams>()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(ctx.threads.max(1))
            .thread_name(|i| format!("data-{i}"))
            .build()
            .map_err(|e| StageError::Failed(format!("starting the worker threads: {e}")))?;
        let downloads = ctx.cache_dir.clone();
        let started = Instant::now();
        let stats = pool
            .install(|| {
                build(&Build {
                    dir: ctx.manifest.dir.as_path(),
                    params,
                    seed: ctx.seed,
                    out: &ctx.out_dir,
                    scratch: &ctx.work_dir.join("data-scratch"),
                    downloads: &downloads,
                    observer: ctx,
                })
            })
            .map_err(|e| match e {
                DataError::Cancelled => StageError::Cancelled,
                other => StageError::from_error(other),
            })?;
        let seconds = started.elapsed().as_secs_f64();
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
        let m = metrics(&stats, seconds);
        ctx.log.line(&format!(
            "{:.1} MB in {seconds:.2} s: {:.1} MB/s",
            stats.input_bytes as f64 / 1e6,
            m.metrics["throughput_mb_s"]
        ));
        Ok(m)
    }
}

/// The stage's metrics (`documents_train` is the kind's declared headline). The throughput is measured here,
/// not written to `stats.json`, so that the artifact stays byte-for-byte reproducible.
pub fn metrics(stats: &Stats, seconds: f64) -> StageMetrics {
    let removed: usize = stats.removed.values().sum();
    let mb = stats.input_bytes as f64 / 1e6;
    let mut metrics: std::collections::BTreeMap<String, f64> = [
        ("documents_train", stats.train.documents),
        ("documents_val", stats.val.documents),
        ("chars_train", stats.train.chars),
        ("chars_val", stats.val.chars),
        ("documents_removed", removed),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v as f64))
    .collect();
    metrics.insert("input_mb".to_string(), mb);
    metrics.insert(
        "throughput_mb_s".to_string(),
        if seconds > 0.0 { mb / seconds } else { 0.0 },
    );
    StageMetrics {
        metrics,
        headline: None,
        device: Some("cpu".to_string()),
        libtorch: None,
    }
}

/// Everything one build needs.
pub struct Build<'a> {
    /// The manifest's directory; relative source paths start here.
    pub dir: &'a Path,
    pub params: &'a DataParams,
    pub seed: u64,
    /// Where the outputs go.
    pub out: &'a Path,
    /// Scratch space for the spilled documents (removed at the end).
    pub scratch: &'a Path,
    /// The download cache for `url:` sources.
    pub downloads: &'a Path,
    /// Progress (phases, documents or bytes read), log lines, and cancellation, polled
    /// between batches.
    pub observer: &'a dyn Observer,
}

/// Band hashes of the kept documents, for near-duplicate resolution after the first pass.
#[derive(Default)]
struct NearIndex {
    keys: Vec<u128>,
    chars: Vec<usize>,
    /// `bands` values per document with words; `offset[i]` is where document i's start
    /// (`u32::MAX`: no words).
    bands: Vec<u64>,
    offset: Vec<u32>,
}

/// Runs the whole stage on the current rayon pool.
pub fn build(b: &Build) -> Result<Stats, DataError> {
    let params = b.params;
    let mut stats = Stats {
        columns: params
            .shape()
            .columns()
            .iter()
            .map(|c| c.to_string())
            .collect(),
        ..Stats::default()
    };
    let cleaner = clean::Cleaner::new(&params.clean)?;
    let hasher = params
        .clean
        .near_dedup
        .as_ref()
        .map(clean::near_dedup::MinHasher::new);
    let mut tally = clean::Tally::default();
    let mut exact = (params.clean.dedup == Dedup::Exact).then(clean::ExactDedup::default);
    let mut near = NearIndex::default();
    let mut spill = spill::Spill::create(&b.scratch.join("spill"))?;
    let mut seen = 0u64;

    // Pass 1: read, clean, deduplicate exactly, sign, park on disk.
    for (i, source) in params.sources.iter().enumerate() {
        if b.observer.cancelled() {
            return Err(DataError::Cancelled);
        }
        b.observer.phase(&format!(
            "reading source {}/{}: {}",
            i + 1,
            params.sources.len(),
            describe(source)
        ));
        let mut sink = |docs: Vec<Doc>| -> Result<(), DataError> {
            if b.observer.cancelled() {
                return Err(DataError::Cancelled);
            }
            seen += docs.len() as u64;
            let mut kept = cleaner.run(docs, &mut tally);
            if let Some(e) = &mut exact {
                kept = e.filter(kept);
            }
            if let Some(h) = &hasher {
                let sigs: Vec<Option<Vec<u64>>> = kept
                    .par_iter()
                    .map(|c| h.band_hashes(&c.doc.joined()))
                    .collect();
                for (c, sig) in kept.iter().zip(sigs) {
                    near.keys.push(clean::key(&c.hash));
                    near.chars.push(c.chars);
                    match sig {
                        Some(s) => {
                            near.offset.push(near.bands.len() as u32);
                            near.bands.extend(s);
                        }
                        None => near.offset.push(u32::MAX),
                    }
                }
            }
            for c in &kept {
                spill.push(&c.hash, &c.doc)?;
            }
            b.observer.progress(seen, None);
            Ok(())
        };
        let env = sources::Env {
            dir: b.dir,
            seed: b.seed,
            utf8: params.clean.invalid_utf8,
            downloads: b.downloads,
            observer: b.observer,
        };
        let totals = sources::read(&env, i, source, &mut sink)?;
        stats.sources.push(stats::SourceStats {
            source: describe(source),
            documents: totals.documents,
            chars: totals.chars,
            bytes: totals.bytes,
            null_rows: totals.null_rows,
        });
        stats.repaired_utf8_documents += totals.repaired_docs;
        stats.input_bytes += totals.bytes;
    }
    let spill_dir = spill.finish()?;
    stats.steps = cleaner.steps(&tally);
    stats.removed = tally.removed;
    if let Some(e) = exact {
        record(e.stats.into_step("dedup_exact"), "duplicate", &mut stats);
    }

    // Near-duplicates: resolved over the whole corpus, preferring the smallest content hash.
    let mut dropped: Vec<u128> = Vec::new();
    if let (Some(h), Some(p)) = (&hasher, &params.clean.near_dedup) {
        b.observer.phase("grouping near-duplicates");
        let mut order: Vec<u32> = (0..near.keys.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (near.keys[i as usize], i));
        let sigs: Vec<Option<&[u64]>> = order
            .iter()
            .map(|&i| match near.offset[i as usize] {
                u32::MAX => None,
                o => Some(&near.bands[o as usize..o as usize + h.bands]),
            })
            .collect();
        let dup = clean::near_dedup::resolve(h.bands, &sigs);
        let mut flow = clean::Flow::default();
        for (&i, is_dup) in order.iter().zip(dup) {
            let chars = near.chars[i as usize];
            flow.documents_in += 1;
            flow.chars_in += chars;
            if is_dup {
                dropped.push(near.keys[i as usize]);
            } else {
                flow.documents_out += 1;
                flow.chars_out += chars;
            }
        }
        dropped.sort_unstable();
        record(flow.into_step("dedup_near"), "near_duplicate", &mut stats);
        stats.near_dedup = Some(stats::NearDedupLayout {
            permutations: p.permutations,
            bands: h.bands,
            rows: h.rows,
        });
    }
    drop(near);

    let kept = stats.steps.last().map_or(0, |s| s.documents_out);
    if kept == 0 {
        let _ = std::fs::remove_dir_all(&spill_dir);
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

    // Pass 2: buckets in hash order → split → Parquet.
    b.observer.phase("writing the splits");
    let shape = params.shape();
    let mut train = output::SplitWriter::create(&b.out.join(TRAIN_FILE), shape)?;
    let mut val = output::SplitWriter::create(&b.out.join(VAL_FILE), shape)?;
    let mut splitter = split::Splitter::new(params.split.selection());
    let mut histogram = stats::Histogram::default();
    for i in 0..spill::BUCKETS {
        if b.observer.cancelled() {
            return Err(DataError::Cancelled);
        }
        b.observer.progress(i as u64, Some(spill::BUCKETS as u64));
        for (hash, doc) in spill::read_bucket(&spill_dir, i)? {
            if dropped.binary_search(&clean::key(&hash)).is_ok() {
                continue;
            }
            histogram.add(doc.chars());
            match splitter.assign(&hash, doc.pinned) {
                SplitName::Train => {
                    stats.train.add(&doc);
                    if stats.samples.len() < stats::SAMPLES {
                        stats.samples.push(
                            doc.fields
                                .iter()
                                .map(|f| f.chars().take(stats::SAMPLE_CHARS).collect())
                                .collect(),
                        );
                    }
                    train.push(doc)?;
                }
                SplitName::Val => {
                    stats.val.add(&doc);
                    val.push(doc)?;
                }
            }
        }
    }
    train.finish()?;
    val.finish()?;
    let _ = std::fs::remove_dir_all(&spill_dir);
    stats.length_histogram = histogram.finish();
    let stats_path = b.out.join(STATS_FILE);
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

/// Adds a corpus-wide step to `stats`, counting what it removed under `reason`.
fn record(step: stats::StepStats, reason: &str, stats: &mut Stats) {
    let removed = step.documents_in - step.documents_out;
    if removed > 0 {
        *stats.removed.entry(reason.to_string()).or_default() += removed;
    }
    stats.steps.push(step);
}

/// A source as a user wrote it, for stats and logs.
fn describe(source: &DataSource) -> String {
    let pinned = match source.split {
        Some(SplitName::Val) => " (val)",
        Some(SplitName::Train) => " (train)",
        None => "",
    };
    let what = match source.spec() {
        Some(SourceSpec::Path { path, .. }) => format!("path: {path}"),
        Some(SourceSpec::Jsonl { path, column }) => format!("jsonl: {path} [{column}]"),
        Some(SourceSpec::Csv { path, column }) => format!("csv: {path} [{column}]"),
        Some(SourceSpec::Parquet { path, column }) => format!("parquet: {path} [{column}]"),
        Some(SourceSpec::Url { url, .. }) => format!("url: {url}"),
        Some(SourceSpec::Synthetic(s)) => {
            format!("synthetic: {:?} x{}", s.generator, s.documents).to_lowercase()
        }
        None => "invalid source".to_string(),
    };
    format!("{what}{pinned}")
}
