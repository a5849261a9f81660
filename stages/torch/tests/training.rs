//! The training loop: it learns, it is deterministic on the CPU, and a run stopped after a
//! checkpoint resumes to exactly the weights of an uninterrupted run.

mod common;

use std::path::Path;

use pipelines::TrainParams;
use stages_torch::model::Gpt;
use stages_torch::train::{self, named_weights, InMemoryTokens, Observer, TrainError, TrainInput};
use tch::Device;

/// A corpus with structure to learn: a repeating pattern with a little noise.
fn corpus(len: usize, vocab: u32) -> InMemoryTokens {
    let mut state = 12345u64;
    InMemoryTokens(
        (0..len)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if state >> 60 == 0 {
                    (state >> 33) as u32 % vocab
                } else {
                    (i as u32 * 7 + (i as u32 / 5)) % vocab
                }
            })
            .collect(),
    )
}

fn params(steps: u64) -> TrainParams {
    TrainParams {
        steps,
        batch_size: 4,
        lr: 3e-3,
        min_lr: 3e-4,
        warmup_steps: 2,
        eval_every: 5,
        eval_batches: 2,
        checkpoint_every: 4,
        log_every: 2,
        ..TrainParams::default()
    }
}

/// libtorch's random generator is global to the process, and training reseeds it every step:
/// tests that train must not interleave (cargo runs tests on parallel threads).
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops the run after step `stop_at`: the loop asks `cancelled()` once after every step but
/// the last, so the n-th question comes after step n.
struct Quiet {
    stop_at: Option<u64>,
    asked: std::cell::Cell<u64>,
}

impl Observer for Quiet {
    fn phase(&self, _: &str) {}
    fn progress(&self, _: u64, _: Option<u64>) {}
    fn log(&self, _: &str) {}
    fn cancelled(&self) -> bool {
        self.asked.set(self.asked.get() + 1);
        self.stop_at == Some(self.asked.get())
    }
}

fn run(
    cfg: &stages_torch::ModelConfig,
    p: &TrainParams,
    work: &Path,
    stop_at: Option<u64>,
) -> (Gpt, Result<train::TrainSummary, TrainError>) {
    tch::manual_seed(11);
    let mut model = Gpt::new(cfg, Device::Cpu).unwrap();
    let data = corpus(4000, cfg.vocab_size as u32);
    let val = corpus(1000, cfg.vocab_size as u32);
    let input = TrainInput {
        train: &data,
        val: &val,
        params: p,
        windows: pipelines::Windows::Random,
        seed: 5,
        work_dir: work,
        peak_flops: Some(1e12),
    };
    let result = train::train(
        &mut model,
        &input,
        &Quiet {
            stop_at,
            asked: Default::default(),
        },
    );
    (model, result)
}

fn max_weight_diff(a: &Gpt, b: &Gpt) -> f64 {
    named_weights(a)
        .iter()
        .zip(named_weights(b))
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, &nb);
            (ta - tb).abs().max().double_value(&[])
        })
        .fold(0.0, f64::max)
}

#[test]
fn learns_and_is_deterministic() {
    let _serial = serial();
    tch::set_num_threads(1);
    let cfg = common::configs().remove(1).1;
    let p = TrainParams {
        grad_accum: 2,
        ..params(30)
    };
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, ra) = run(&cfg, &p, a_dir.path(), None);
    let (b, rb) = run(&cfg, &p, b_dir.path(), None);
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let uniform = (cfg.vocab_size as f64).ln();
    assert!(
        ra.val_loss < uniform - 0.5,
        "val {} vs uniform {uniform}",
        ra.val_loss
    );
    assert_eq!(ra.val_loss, rb.val_loss);
    assert_eq!(max_weight_diff(&a, &b), 0.0);
    assert_eq!(ra.tokens_seen, 30 * 4 * 16 * 2);
    assert!(ra.mfu.is_some_and(|m| m > 0.0));
    let lines = train::metrics::read(&a_dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(lines.iter().filter(|l| l.loss.is_some()).count(), 15);
    assert_eq!(lines.iter().filter(|l| l.val_loss.is_some()).count(), 6);
}

#[test]
fn a_stopped_run_resumes_to_identical_weights() {
    let _serial = serial();
    tch::set_num_threads(1);
    for (name, cfg) in common::configs().into_iter().take(2) {
        let cfg = stages_torch::ModelConfig {
            dropout: 0.1,
            ..cfg
        };
        let p = params(14);
        let straight = tempfile::tempdir().unwrap();
        let (whole, r) = run(&cfg, &p, straight.path(), None);
        let whole_summary = r.unwrap();

        let work = tempfile::tempdir().unwrap();
        // Stop after step 10: the last checkpoint is step 8, so steps 9–10 are redone.
        let (_, stopped) = run(&cfg, &p, work.path(), Some(10));
        assert!(
            matches!(stopped, Err(TrainError::Stopped { step: 10 })),
            "{name}"
        );
        let (resumed, r) = run(&cfg, &p, work.path(), None);
        let r = r.unwrap();
        assert_eq!(r.resumed_from, Some(8), "{name}");
        assert_eq!(max_weight_diff(&whole, &resumed), 0.0, "{name}");
        assert_eq!(r.val_loss, whole_summary.val_loss, "{name}");
        // The metrics file has each step once.
        let steps: Vec<u64> = train::metrics::read(&work.path().join("metrics.jsonl"))
            .unwrap()
            .iter()
            .map(|l| l.step)
            .collect();
        let mut dedup = steps.clone();
        dedup.dedup();
        assert_eq!(steps, dedup, "{name}");
    }
}

/// The error a short training run on `data` (both splits) stops with.
fn training_error(data: &InMemoryTokens, windows: pipelines::Windows) -> String {
    let _serial = serial();
    let cfg = common::configs().remove(0).1;
    let mut model = Gpt::new(&cfg, Device::Cpu).unwrap();
    let work = tempfile::tempdir().unwrap();
    let p = params(2);
    let input = TrainInput {
        train: data,
        val: data,
        params: &p,
        windows,
        seed: 1,
        work_dir: work.path(),
        peak_flops: None,
    };
    let quiet = Quiet {
        stop_at: None,
        asked: Default::default(),
    };
    train::train(&mut model, &input, &quiet)
        .unwrap_err()
        .to_string()
}

#[test]
fn too_little_data_is_a_clear_error() {
    let err = training_error(&InMemoryTokens(vec![1; 10]), pipelines::Windows::Random);
    assert!(err.contains("the train split has 10 tokens"), "{err}");
}

/// `windows: documents` on tokens without document boundaries says so instead of training on
/// random windows.
#[test]
fn document_windows_need_document_boundaries() {
    let data = InMemoryTokens((0..4096u32).map(|i| i % 50).collect());
    let err = training_error(&data, pipelines::Windows::Documents);
    assert!(err.contains("document boundaries"), "{err}");
}
