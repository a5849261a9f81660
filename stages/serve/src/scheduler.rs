//! Continuous batching on one dedicated engine thread.
//!
//! HTTP handlers turn a request into [`Job`]s (one per prompt × choice) and put them in a
//! bounded queue; a full queue is refused at once (the handler answers 503 + Retry-After) rather
//! than letting latency grow without bound. The engine thread loops:
//!
//! 1. admit queued jobs while the batch has room: prefill each (one sequence at a time), emit
//!    its prompt log-probabilities if asked, sample its first token;
//! 2. run one batched decode step over every active sequence and sample each next token.
//!
//! New requests therefore join between decode steps instead of waiting for the batch to drain.
//! A job whose event receiver is gone (client disconnected, request timed out) is dropped
//! before the next step, which frees its KV cache.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::rng::{mix64, SplitMix64};
use tokio::sync::mpsc::UnboundedSender;

use crate::engine::{Codec, Engine, EngineError, Logits, PrefillOutput};
use crate::metrics::Metrics;
use crate::sampling::{self, SamplingParams};
use crate::text::TextStream;

/// Why a sequence ended (the API's `finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// End-of-sequence token, end-of-turn token or stop string.
    Stop,
    /// `max_tokens` reached or the context window is full.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// One token with its log-probability and the most likely alternatives at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub id: u32,
    /// `None` for the first prompt token, which nothing predicts.
    pub logprob: Option<f32>,
    pub top: Vec<(u32, f32)>,
}

/// What the engine thread tells a request, per choice `index`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Log-probabilities of the prompt tokens (only when asked).
    Prompt {
        index: usize,
        tokens: Vec<TokenLogprob>,
    },
    /// New text, and the tokens generated since the last delta.
    Delta {
        index: usize,
        text: String,
        tokens: Vec<TokenLogprob>,
    },
    Finished {
        index: usize,
        reason: FinishReason,
        completion_tokens: usize,
    },
    Failed {
        index: usize,
        message: String,
    },
}

/// One sequence to generate.
#[derive(Debug)]
pub struct Job {
    /// Choice index in the response.
    pub index: usize,
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub seed: u64,
    /// Stop strings (the text ends before them).
    pub stop: Vec<String>,
    /// Token ids that end the sequence (not part of the text).
    pub stop_tokens: Vec<u32>,
    /// `Some(k)`: report prompt log-probabilities with the top k alternatives.
    pub prompt_logprobs: Option<usize>,
    /// `Some(k)`: report generated tokens' log-probabilities with the top k alternatives.
    pub logprobs: Option<usize>,
    pub events: UnboundedSender<Event>,
    /// When the HTTP request arrived (time to first token counts from here).
    pub arrived: Instant,
}

/// Why a submission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue cannot hold these jobs now; try again shortly.
    QueueFull,
    /// The server is shutting down.
    ShuttingDown,
}

/// Limits of the scheduler.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Most sequences in one decode step.
    pub max_batch: usize,
    /// Most jobs waiting to join the batch.
    pub queue_capacity: usize,
}

struct Queue {
    jobs: VecDeque<Job>,
    closing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    metrics: Arc<Metrics>,
    config: SchedulerConfig,
}

/// The handle HTTP handlers submit jobs through.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

/// Joins the engine thread; returned by [`Scheduler::start`].
pub struct EngineThread {
    handle: JoinHandle<()>,
}

impl EngineThread {
    /// Waits until the thread has finished every admitted job and exited.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

impl Scheduler {
    /// Starts the engine thread. `make_engine` runs on that thread (a model may hold
    /// thread-bound device state); its error is returned here and no thread keeps running.
    pub fn start<E, F>(
        make_engine: F,
        codec: Arc<dyn Codec>,
        context_length: usize,
        config: SchedulerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<(Scheduler, EngineThread), EngineError>
    where
        E: Engine,
        F: FnOnce() -> Result<E, EngineError> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closing: false,
            }),
            wake: Condvar::new(),
            metrics,
            config: SchedulerConfig {
                max_batch: config.max_batch.max(1),
                queue_capacity: config.queue_capacity,
            },
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("binarylm-engine".into())
            .spawn(move || {
                let engine = match make_engine() {
                    Ok(e) => {
                        let _ = ready_tx.send(Ok(()));
                        e
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                Worker {
                    engine,
                    codec,
                    context_length,
                    shared: thread_shared,
                    active: Vec::new(),
                }
                .run();
            })
            .map_err(|e| EngineError(format!("cannot start the engine thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((Scheduler { shared }, EngineThread { handle })),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(EngineError(
                    "the engine thread panicked while loading".into(),
                ))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues all `jobs` or none of them.
    pub fn submit(&self, jobs: Vec<Job>) -> Result<(), Refused> {
        let mut q = self.lock();
        if q.closing {
            return Err(Refused::ShuttingDown);
        }
        if q.jobs.len() + jobs.len() > self.shared.config.queue_capacity {
            return Err(Refused::QueueFull);
        }
        q.jobs.extend(jobs);
        self.shared.metrics.set_queue_depth(q.jobs.len());
        drop(q);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Refuses new jobs from now on; the engine thread finishes the queued and active ones and
    /// then exits.
    pub fn close(&self) {
        self.lock().closing = true;
        self.shared.wake.notify_one();
    }

    pub fn is_closing(&self) -> bool {
        self.lock().closing
    }
}

/// A seed for requests without one: distinct per job, not reproducible (as the API promises).
pub fn fresh_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    mix64(nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32))
}

struct Active<S> {
    job: Job,
    seq: S,
    rng: SplitMix64,
    text: TextStream,
    /// Last sampled token, not yet fed to the model.
    last: u32,
    /// Tokens in the sequence's cache.
    cached: usize,
    generated: usize,
    pending: Vec<TokenLogprob>,
    first_token_at: Option<Instant>,
}

struct Worker<E: Engine> {
    engine: E,
    codec: Arc<dyn Codec>,
    context_length: usize,
    shared: Arc<Shared>,
    active: Vec<Active<E::Sequence>>,
}

/// What sampling one token did to a sequence.
enum Step {
    Continue,
    Done,
}

impl<E: Engine> Worker<E> {
    fn run(mut self) {
        loop {
            let admitted = match self.take_jobs() {
                Some(jobs) => jobs,
                None => break,
            };
            for job in admitted {
                self.admit(job);
            }
            self.shared.metrics.set_running(self.active.len());
            self.drop_cancelled();
            if !self.active.is_empty() {
                self.decode_step();
            }
            self.shared.metrics.set_running(self.active.len());
        }
    }

    /// Jobs to admit now; waits while there is nothing to do. `None`: closed and drained.
    fn take_jobs(&mut self) -> Option<Vec<Job>> {
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        while self.active.is_empty() && q.jobs.is_empty() {
            if q.closing {
                return None;
            }
            q = self
                .shared
                .wake
                .wait_timeout(q, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let room = self
            .shared
            .config
            .max_batch
            .saturating_sub(self.active.len());
        let take = room.min(q.jobs.len());
        let jobs: Vec<Job> = q.jobs.drain(..take).collect();
        self.shared.metrics.set_queue_depth(q.jobs.len());
        Some(jobs)
    }

    fn admit(&mut self, job: Job) {
        if job.events.is_closed() {
            self.shared.metrics.cancelled();
            return;
        }
        let index = job.index;
        let events = job.events.clone();
        if let Err(e) = self.try_admit(job) {
            tracing::error!(error = %e, "prefill failed");
            let _ = events.send(Event::Failed {
                index,
                message: format!("the model failed: {e}"),
            });
        }
    }

    fn try_admit(&mut self, job: Job) -> Result<(), EngineError> {
        let want_all = job.prompt_logprobs.is_some();
        self.shared.metrics.prompt_tokens(job.prompt.len());
        if job.max_tokens == 0 && !want_all {
            let _ = job.events.send(Event::Finished {
                index: job.index,
                reason: FinishReason::Length,
                completion_tokens: 0,
            });
            return Ok(());
        }
        let mut seq = guarded(|| self.engine.new_sequence())?;
        let output = if want_all {
            PrefillOutput::All
        } else {
            PrefillOutput::Last
        };
        let logits = guarded(|| self.engine.prefill(&mut seq, &job.prompt, output))?;
        let expected_rows = if want_all { job.prompt.len() } else { 1 };
        if logits.rows() != expected_rows || logits.vocab() < self.codec.vocab_size() {
            return Err(EngineError(format!(
                "prefill returned {} rows of {} logits, expected {expected_rows} of at least {}",
                logits.rows(),
                logits.vocab(),
                self.codec.vocab_size()
            )));
        }
        if let Some(k) = job.prompt_logprobs {
            let _ = job.events.send(Event::Prompt {
                index: job.index,
                tokens: prompt_logprobs(&job.prompt, &logits, self.codec.vocab_size(), k),
            });
        }
        let last_row = logits.row(logits.rows() - 1).to_vec();
        let cached = job.prompt.len();
        let mut active = Active {
            rng: SplitMix64::new(job.seed),
            text: TextStream::new(job.stop.clone()),
            job,
            seq,
            last: 0,
            cached,
            generated: 0,
            pending: Vec::new(),
            first_token_at: None,
        };
        if active.job.max_tokens == 0 {
            self.finish(&mut active, FinishReason::Length);
            return Ok(());
        }
        if let Step::Continue = self.next_token(&mut active, &last_row) {
            self.active.push(active);
        }
        Ok(())
    }

    fn drop_cancelled(&mut self) {
        let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.active)
            .into_iter()
            .partition(|a| a.job.events.is_closed());
        self.active = keep;
        for _ in &gone {
            self.shared.metrics.cancelled();
        }
        // Counted first, then freed: whoever sees the memory released sees the count too.
        drop(gone);
    }

    fn decode_step(&mut self) {
        let tokens: Vec<u32> = self.active.iter().map(|a| a.last).collect();
        let mut seqs: Vec<&mut E::Sequence> = self.active.iter_mut().map(|a| &mut a.seq).collect();
        self.shared.metrics.decode_step(seqs.len());
        let result = guarded(|| self.engine.decode(&mut seqs, &tokens));
        drop(seqs);
        let logits = match result {
            Ok(l) if l.rows() == tokens.len() && l.vocab() >= self.codec.vocab_size() => l,
            Ok(l) => {
                self.fail_all(&format!(
                    "decode returned {} rows of {} logits for {} sequences",
                    l.rows(),
                    l.vocab(),
                    tokens.len()
                ));
                return;
            }
            Err(e) => {
                self.fail_all(&e.0);
                return;
            }
        };
        let mut active = std::mem::take(&mut self.active);
        let mut keep = Vec::with_capacity(active.len());
        for (i, mut a) in active.drain(..).enumerate() {
            a.cached += 1;
            if let Step::Continue = self.next_token(&mut a, logits.row(i)) {
                keep.push(a);
            }
        }
        self.active = keep;
    }

    fn fail_all(&mut self, message: &str) {
        tracing::error!(error = message, "decode step failed");
        for a in self.active.drain(..) {
            let _ = a.job.events.send(Event::Failed {
                index: a.job.index,
                message: format!("the model failed: {message}"),
            });
        }
    }

    /// Samples the next token of `a` from `row` and tells the client.
    fn next_token(&mut self, a: &mut Active<E::Sequence>, row: &[f32]) -> Step {
        let row = &row[..self.codec.vocab_size()];
        let token = sampling::sample(row, &a.job.sampling, &mut a.rng);
        let now = Instant::now();
        if a.first_token_at.is_none() {
            a.first_token_at = Some(now);
            self.shared
                .metrics
                .time_to_first_token(now.duration_since(a.job.arrived).as_secs_f64());
        }
        a.generated += 1;
        a.last = token;
        self.shared.metrics.generated_tokens(1);
        if let Some(k) = a.job.logprobs {
            let lp = sampling::log_softmax(row);
            a.pending.push(TokenLogprob {
                id: token,
                logprob: Some(lp[token as usize]),
                top: sampling::top_n(&lp, k),
            });
        }
        if a.job.stop_tokens.contains(&token) {
            self.finish(a, FinishReason::Stop);
            return Step::Done;
        }
        let pushed = a.text.push(&self.codec.decode(&[token]));
        if pushed.stopped {
            self.send_delta(a, pushed.delta);
            self.finish(a, FinishReason::Stop);
            return Step::Done;
        }
        if !pushed.delta.is_empty() || !a.pending.is_empty() {
            self.send_delta(a, pushed.delta);
        }
        if a.generated >= a.job.max_tokens || a.cached + 1 > self.context_length {
            self.finish(a, FinishReason::Length);
            return Step::Done;
        }
        Step::Continue
    }

    fn send_delta(&self, a: &mut Active<E::Sequence>, text: String) {
        let tokens = std::mem::take(&mut a.pending);
        if text.is_empty() && tokens.is_empty() {
            return;
        }
        let _ = a.job.events.send(Event::Delta {
            index: a.job.index,
            text,
            tokens,
        });
    }

    fn finish(&self, a: &mut Active<E::Sequence>, reason: FinishReason) {
        let rest = a.text.finish();
        self.send_delta(a, rest);
        if let Some(first) = a.first_token_at {
            if a.generated > 1 {
                let per = first.elapsed().as_secs_f64() / (a.generated - 1) as f64;
                self.shared.metrics.time_per_output_token(per);
            }
        }
        let _ = a.job.events.send(Event::Finished {
            index: a.job.index,
            reason,
            completion_tokens: a.generated,
        });
    }
}

/// Runs one engine call, turning a panic (libtorch reports some device errors, such as running
/// out of memory, by panicking) into an error of the sequences involved, so the server and the
/// other sequences keep going.
fn guarded<T>(f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(EngineError(format!("the model panicked: {what}")))
        }
    }
}

/// Log-probabilities of each prompt token given the ones before it; `logits` row `i` predicts
/// token `i + 1`.
fn prompt_logprobs(prompt: &[u32], logits: &Logits, vocab: usize, k: usize) -> Vec<TokenLogprob> {
    let mut out = Vec::with_capacity(prompt.len());
    for (i, &id) in prompt.iter().enumerate() {
        if i == 0 {
            out.push(TokenLogprob {
                id,
                logprob: None,
                top: Vec::new(),
            });
            continue;
        }
        let lp = sampling::log_softmax(&logits.row(i - 1)[..vocab]);
        out.push(TokenLogprob {
            id,
            logprob: Some(lp.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY)),
            top: sampling::top_n(&lp, k),
        });
    }
    out
}
