//! Benchmark of the GPT on the CPU, run by `bench/gpt_cpu.sh` next to the PyTorch reference.
//!
//! `bench_gpt train <steps> <threads> [tiny|gpt2]`: ms per training step (forward, backward,
//! clipping, AdamW) of nanoGPT's CPU config — 4 layers, 4 heads, 128 wide, block 64, batch 12,
//! vocab 65 — or of GPT-2 small (124M parameters, vocab padded to 50304) on batches of 4 × 128
//! tokens.
//! `bench_gpt generate <tokens> <threads>`: generation tokens/s with and without the KV cache,
//! for that config and for nanoGPT's Shakespeare-char config (6 layers, 6 heads, 384 wide,
//! block 256). Each prints one JSON object per measurement.

use std::time::Instant;

use pipelines::{ModelPreset, TrainParams};
use stages_torch::generate::{generate, Sampling};
use stages_torch::model::{Gpt, ModelConfig};
use stages_torch::train::adamw::{AdamW, AdamWConfig};
use stages_torch::train::sampler::{Sampler, Stream};
use stages_torch::train::InMemoryTokens;
use tch::Device;

/// Token `i` of the benchmark's training data: a period-91 pattern (13 × 7) over 65 symbols.
fn bench_token(i: u32) -> u32 {
    (i % 13 * 5 + i / 13 % 7 * 3) % 65
}

fn nanogpt_cpu() -> ModelConfig {
    ModelConfig::preset(ModelPreset::Tiny, 65)
}

fn shakespeare_char() -> ModelConfig {
    ModelConfig {
        n_layer: 6,
        n_head: 6,
        n_kv_head: 6,
        n_embd: 384,
        block_size: 256,
        mlp_hidden: 4 * 384,
        ..nanogpt_cpu()
    }
}

/// A model to time training steps of, and the batches it trains on.
struct TrainBench {
    cfg: ModelConfig,
    batch: usize,
    seq: usize,
    /// Untimed steps first (torch.compile compiles in its side's first).
    warmup: u64,
    /// A constant learning rate (GPT-2 small at 1e-3 with no warmup climbs before it falls).
    lr: f64,
}

impl TrainBench {
    /// `tiny` (nanoGPT's CPU config) or `gpt2` (GPT-2 small); tests/python/gpt_ref.py's
    /// `bench` has the same two.
    fn named(name: &str) -> Option<TrainBench> {
        match name {
            "tiny" => Some(TrainBench {
                cfg: nanogpt_cpu(),
                batch: 12,
                seq: 64,
                warmup: 5,
                lr: 1e-3,
            }),
            // Short sequences and a small batch: a step is seconds on 2 cores as it is.
            "gpt2" => Some(TrainBench {
                cfg: ModelConfig::preset(ModelPreset::Gpt2Small, 50304),
                batch: 4,
                seq: 128,
                warmup: 2,
                lr: 3e-4,
            }),
            _ => None,
        }
    }
}

fn train(steps: usize, threads: usize, name: &str, bench: &TrainBench) {
    let cfg = &bench.cfg;
    tch::manual_seed(1337);
    let model = Gpt::new(cfg, Device::Cpu).expect("model");
    let p = TrainParams::default();
    let mut opt = AdamW::new(
        model.var_store(),
        AdamWConfig {
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            weight_decay: p.weight_decay,
        },
    );
    // A sequence with structure to learn (the same formula as tests/python/gpt_ref.py's bench),
    // so the final losses of the two implementations can be checked against each other.
    let data = InMemoryTokens((0..100_000u32).map(bench_token).collect());
    let sampler = Sampler {
        tokens: &data,
        batch: bench.batch,
        block: bench.seq,
        seed: 1,
        stream: Stream::Train,
        starts: None,
    };
    // Where a step's time goes (summed over the timed steps): on the CPU every call below
    // returns when its work is done, so the clock between them splits the step.
    let mut phases = [0.0f64; 3];
    let mut step = |s: u64, phases: &mut [f64; 3]| {
        let (x, y) = sampler.batch(s, 0, Device::Cpu);
        let t0 = Instant::now();
        opt.zero_grad();
        let loss = model.loss(&x, &y, true);
        loss.backward();
        let t1 = Instant::now();
        let _ = opt.clip_grad_norm(1.0);
        let t2 = Instant::now();
        opt.step(bench.lr);
        let t3 = Instant::now();
        for (sum, d) in phases.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2]) {
            *sum += d.as_secs_f64() * 1000.0;
        }
        loss.double_value(&[])
    };
    for s in 0..bench.warmup {
        step(s, &mut [0.0; 3]);
    }
    let start = Instant::now();
    let mut last = f64::NAN;
    for s in 0..steps as u64 {
        last = step(bench.warmup + s, &mut phases);
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0 / steps as f64;
    let [fb, clip, adamw] = phases.map(|p| p / steps as f64);
    println!(
        "{}",
        serde_json::json!({"impl": "binarylm", "model": name, "ms_per_step": ms, "steps": steps,
                           "threads": threads, "final_loss": last,
                           "phases_ms": {"forward_backward": fb, "clip": clip, "adamw": adamw}})
    );
}

fn generation(tokens: usize, threads: usize) {
    for (name, cfg) in [
        ("nanogpt-cpu", nanogpt_cpu()),
        ("shakespeare-char", shakespeare_char()),
    ] {
        tch::manual_seed(1);
        let model = Gpt::new(&cfg, Device::Cpu).expect("model");
        let max_tokens = tokens.min(cfg.block_size - 1);
        for kv_cache in [true, false] {
            let s = Sampling {
                temperature: 1.0,
                max_tokens,
                kv_cache,
                seed: 3,
                ..Sampling::default()
            };
            generate(&model, &[1], &s, |_| {}).expect("warm-up");
            let start = Instant::now();
            let out = generate(&model, &[1], &s, |_| {}).expect("generate");
            let tps = out.len() as f64 / start.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({"impl": "binarylm", "config": name, "kv_cache": kv_cache,
                                   "tokens": out.len(), "tokens_per_s": tps, "threads": threads})
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let threads = num(2, 2);
    stages_torch::device::set_threads(threads);
    match args.first().map(String::as_str) {
        Some("train") => {
            let name = args.get(3).map_or("tiny", String::as_str);
            let Some(bench) = TrainBench::named(name) else {
                eprintln!("bench_gpt: unknown model {name:?} (tiny or gpt2)");
                std::process::exit(2);
            };
            train(num(1, 50), threads, name, &bench)
        }
        Some("generate") => generation(num(1, 255), threads),
        _ => {
            eprintln!("usage: bench_gpt train <steps> <threads> [tiny|gpt2] | generate <tokens> <threads>");
            std::process::exit(2);
        }
    }
}
