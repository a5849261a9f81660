//! The eval stage's log-likelihood scorer against tests/python/gpt_ref.py's `loglik`, which
//! scores each request alone with an independent PyTorch model: batched, padded and truncated
//! requests must give the same sums (≤ 1e-4 nats) and the same greedy flags.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

// `::common` is the crate (the observer, the RNG); `common` the tests' shared configs.
use ::common::observe::Quiet;
use stages_torch::eval::score::{loglikelihood, Request};
use stages_torch::model::Gpt;
use tch::Device;

fn python() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV").expect("BINARYLM_VENV is set by scripts/env.sh");
    Path::new(&venv).join("bin/python")
}

#[test]
fn batched_scores_match_one_at_a_time_pytorch() {
    tch::set_num_threads(1);
    for (name, cfg) in common::configs() {
        let dir = tempfile::tempdir().unwrap();
        tch::manual_seed(3);
        let model = Gpt::new(&cfg, Device::Cpu).unwrap();
        model.save(&dir.path().join("model.safetensors")).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_string(&cfg).unwrap(),
        )
        .unwrap();
        // Lengths from one token of continuation to longer than the window (the context is cut
        // from the left), with shared contexts as multiple choice has.
        let mut rng = ::common::rng::SplitMix64::new(11);
        let mut token = || (rng.next_u64() % cfg.vocab_size as u64) as u32;
        let mut requests = Vec::new();
        for (ctx, cont) in [
            (1, 1),
            (3, 2),
            (5, 9),
            (2, 14),
            (12, 10),
            (20, 3),
            (7, 1),
            (1, 16),
        ] {
            requests.push(Request {
                context: (0..ctx).map(|_| token()).collect(),
                continuation: (0..cont).map(|_| token()).collect(),
            });
        }
        // Requests that share a batch row: a repeat, a one-token continuation after the same
        // context as another, and the same tokens split elsewhere between context and
        // continuation.
        requests.push(requests[2].clone());
        let mut other_last = requests[6].clone();
        other_last.continuation[0] = (other_last.continuation[0] + 1) % cfg.vocab_size as u32;
        requests.push(other_last);
        let mut resplit = requests[3].clone();
        resplit.context.extend(resplit.continuation.drain(..5));
        requests.push(resplit);
        let json: Vec<serde_json::Value> = requests
            .iter()
            .map(|r| serde_json::json!({"context": r.context, "continuation": r.continuation}))
            .collect();
        std::fs::write(
            dir.path().join("requests.json"),
            serde_json::to_string(&json).unwrap(),
        )
        .unwrap();
        let out = Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/gpt_ref.py"))
            .arg("loglik")
            .arg(dir.path())
            .output()
            .expect("running the PyTorch reference");
        assert!(
            out.status.success(),
            "{name}: reference failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reference: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("ref.json")).unwrap())
                .unwrap();

        let ours = loglikelihood(&model, &requests, 3, &Quiet);
        for (i, (o, r)) in ours.iter().zip(&reference).enumerate() {
            let theirs = r["logprob"].as_f64().unwrap();
            assert!(
                (o.logprob - theirs).abs() <= 1e-4,
                "{name}: request {i}: ours {}, PyTorch {theirs}",
                o.logprob
            );
            assert!(o.logprob < 0.0, "{name}: request {i}: {}", o.logprob);
            assert_eq!(
                o.greedy,
                r["greedy"].as_bool().unwrap(),
                "{name}: request {i}"
            );
        }
        assert_eq!(
            ours[8], ours[2],
            "{name}: a repeated request scores the same"
        );
        // A continuation made of the model's own argmax tokens is greedy.
        let mut ctx = vec![1u32, 2, 3];
        let mut cont = Vec::new();
        for _ in 0..4 {
            let idx = tch::Tensor::from_slice(
                &ctx.iter()
                    .chain(&cont)
                    .map(|&t| t as i64)
                    .collect::<Vec<_>>(),
            )
            .unsqueeze(0);
            let next = tch::no_grad(|| model.forward(&idx, false))
                .get(0)
                .get(-1)
                .argmax(0, false)
                .int64_value(&[]) as u32;
            cont.push(next);
        }
        ctx.truncate(3);
        let greedy = loglikelihood(
            &model,
            &[Request {
                context: ctx,
                continuation: cont,
            }],
            1,
            &Quiet,
        );
        assert!(greedy[0].greedy, "{name}");
    }
}
