//! Training metrics: one JSON object per line in `metrics.jsonl`, and model FLOPs utilisation.

use std::io::Write;
use std::path::{Path, PathBuf};

// The line type lives with the other typed artifact files, so that `binarylm ui` (which never
// links libtorch) reads the curves with the same struct.
pub use pipelines::artifacts::MetricsLine;

/// Appends lines to `metrics.jsonl`, flushed each time so a killed run keeps what it logged.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens `path`, keeping only lines up to step `keep_through` (a resumed run rewrites the
    /// steps after its checkpoint).
    pub fn open(path: &Path, keep_through: u64) -> std::io::Result<MetricsLog> {
        let kept: Vec<String> = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter(|l| {
                    serde_json::from_str::<MetricsLine>(l).is_ok_and(|m| m.step <= keep_through)
                })
                .map(str::to_string)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut file = std::fs::File::create(path)?;
        for line in kept {
            writeln!(file, "{line}")?;
        }
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, line: &MetricsLine) -> std::io::Result<()> {
        let text = serde_json::to_string(line).expect("metrics serialize");
        writeln!(self.file, "{text}")?;
        self.file.flush()
    }
}

/// Writes `lines` as an artifact's `metrics.jsonl`: step, loss, lr, grad norm, validation loss
/// and perplexity, tokens seen — no timings.
pub fn write_curve(lines: &[MetricsLine], path: &Path) -> std::io::Result<()> {
    let mut text = String::new();
    for l in lines {
        let curve = pipelines::artifacts::CurvePoint {
            step: l.step,
            loss: l.loss,
            lr: l.lr,
            grad_norm: l.grad_norm,
            val_loss: l.val_loss,
            val_ppl: l.val_ppl,
            tokens: l.tokens,
            extra: l.extra.clone(),
        };
        text.push_str(&serde_json::to_string(&curve).expect("metrics serialize"));
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// Reads every line of a `metrics.jsonl`.
pub fn read(path: &Path) -> std::io::Result<Vec<MetricsLine>> {
    Ok(pipelines::artifacts::parse_metrics_lines(
        &std::fs::read_to_string(path)?,
    ))
}

/// Peak dense bf16 throughput of an H100 SXM and of an H200 (the same chip), FLOP/s.
pub const H100_H200_BF16_PEAK: f64 = 989e12;

/// MFU: achieved model FLOP/s (nanoGPT's `6N + 12·L·H·Q·T` per token) over the peak.
pub fn mfu(flops_per_token: f64, tokens_per_s: f64, peak_flops: f64) -> f64 {
    flops_per_token * tokens_per_s / peak_flops
}
