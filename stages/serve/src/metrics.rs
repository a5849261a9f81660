//! Server metrics in the Prometheus text exposition format (version 0.0.4).
//!
//! A handful of counters and histograms behind one mutex: updates happen a few times per
//! generated token at most, far below where contention would matter, and one lock keeps a
//! scrape consistent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Latency buckets (seconds) for time to first token.
const TTFT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Latency buckets (seconds) for time per output token.
const TPOT_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
/// Sequences per decode step.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Debug)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    ttft: Histogram,
    tpot: Histogram,
    batch: Histogram,
    prompt_tokens: u64,
    generated_tokens: u64,
    cancelled: u64,
}

/// All metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    queue_depth: AtomicUsize,
    running: AtomicUsize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                requests: BTreeMap::new(),
                ttft: Histogram::new(TTFT_BUCKETS),
                tpot: Histogram::new(TPOT_BUCKETS),
                batch: Histogram::new(BATCH_BUCKETS),
                prompt_tokens: 0,
                generated_tokens: 0,
                cancelled: 0,
            }),
            queue_depth: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        }
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic while holding the lock cannot leave the counters inconsistent in a way that
        // matters more than losing metrics altogether.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// One finished HTTP request on `route` answered with `status`.
    pub fn request(&self, route: &str, status: u16) {
        self.with(|m| *m.requests.entry((route.to_string(), status)).or_default() += 1);
    }

    pub fn time_to_first_token(&self, seconds: f64) {
        self.with(|m| m.ttft.observe(seconds));
    }

    pub fn time_per_output_token(&self, seconds: f64) {
        self.with(|m| m.tpot.observe(seconds));
    }

    /// One decode step over `sequences` sequences.
    pub fn decode_step(&self, sequences: usize) {
        self.with(|m| m.batch.observe(sequences as f64));
    }

    pub fn prompt_tokens(&self, n: usize) {
        self.with(|m| m.prompt_tokens += n as u64);
    }

    pub fn generated_tokens(&self, n: usize) {
        self.with(|m| m.generated_tokens += n as u64);
    }

    /// A sequence dropped because its client went away or timed out.
    pub fn cancelled(&self) {
        self.with(|m| m.cancelled += 1);
    }

    pub fn set_queue_depth(&self, n: usize) {
        self.queue_depth.store(n, Ordering::Relaxed);
    }

    pub fn set_running(&self, n: usize) {
        self.running.store(n, Ordering::Relaxed);
    }

    pub fn generated_total(&self) -> u64 {
        self.with(|m| m.generated_tokens)
    }

    /// The Prometheus text page.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with(|m| {
            out.push_str("# HELP binarylm_requests_total HTTP requests answered, by route and status.\n# TYPE binarylm_requests_total counter\n");
            for ((route, status), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "binarylm_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
            m.ttft.render(
                &mut out,
                "binarylm_time_to_first_token_seconds",
                "Time from request arrival to its first generated token.",
            );
            m.tpot.render(
                &mut out,
                "binarylm_time_per_output_token_seconds",
                "Mean time between generated tokens, per sequence.",
            );
            m.batch.render(
                &mut out,
                "binarylm_batch_size",
                "Sequences per decode step.",
            );
            let _ = writeln!(out, "# HELP binarylm_prompt_tokens_total Prompt tokens prefilled.\n# TYPE binarylm_prompt_tokens_total counter\nbinarylm_prompt_tokens_total {}", m.prompt_tokens);
            let _ = writeln!(out, "# HELP binarylm_generated_tokens_total Tokens generated.\n# TYPE binarylm_generated_tokens_total counter\nbinarylm_generated_tokens_total {}", m.generated_tokens);
            let _ = writeln!(out, "# HELP binarylm_cancelled_sequences_total Sequences stopped because the client disconnected or timed out.\n# TYPE binarylm_cancelled_sequences_total counter\nbinarylm_cancelled_sequences_total {}", m.cancelled);
        });
        let _ = writeln!(out, "# HELP binarylm_queue_depth Sequences waiting to join the batch.\n# TYPE binarylm_queue_depth gauge\nbinarylm_queue_depth {}", self.queue_depth.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP binarylm_running_sequences Sequences in the decode batch.\n# TYPE binarylm_running_sequences gauge\nbinarylm_running_sequences {}", self.running.load(Ordering::Relaxed));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.time_to_first_token(0.007);
        m.time_to_first_token(0.3);
        let text = m.render();
        assert!(text.contains("binarylm_time_to_first_token_seconds_bucket{le=\"0.005\"} 0"));
        assert!(text.contains("binarylm_time_to_first_token_seconds_bucket{le=\"0.01\"} 1"));
        assert!(text.contains("binarylm_time_to_first_token_seconds_bucket{le=\"0.5\"} 2"));
        assert!(text.contains("binarylm_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("binarylm_time_to_first_token_seconds_count 2"));
    }

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let m = Metrics::default();
        m.request("/v1/completions", 200);
        m.request("/v1/completions", 200);
        m.request("/v1/completions", 400);
        let text = m.render();
        assert!(
            text.contains("binarylm_requests_total{route=\"/v1/completions\",status=\"200\"} 2")
        );
        assert!(
            text.contains("binarylm_requests_total{route=\"/v1/completions\",status=\"400\"} 1")
        );
    }
}
