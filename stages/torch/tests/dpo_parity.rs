//! DPO against an independent PyTorch reference (tests/python/dpo_ref.py), for the sigmoid
//! and IPO losses and the sigmoid loss with RPO's chosen-answer term: the loss alone on the same answer log-probabilities, with its gradient
//! (≤ 1e-6 in fp32), and the loss of a real model on a batch of padded answer rows with the
//! gradient of every weight (≤ 1e-5 relative: an answer's log-probability sums a dozen token
//! log-probabilities, each matching PyTorch's to ~1e-6, and the IPO loss is quadratic in their
//! differences).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pipelines::DpoLoss;
use stages_torch::dpo::loss::{preference_loss, scored_tokens, sequence_logps, LossSettings};
use stages_torch::model::Gpt;
use tch::{Device, Kind, Tensor};

fn python() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV").expect("BINARYLM_VENV is set by scripts/env.sh");
    Path::new(&venv).join("bin/python")
}

fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/dpo_ref.py")
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn dpo_loss_and_gradients_match_pytorch() {
    tch::set_num_threads(1);
    let configs = common::configs();
    for (kind, name, rpo_alpha) in [
        (DpoLoss::Sigmoid, "sigmoid", 0.0),
        (DpoLoss::Ipo, "ipo", 0.0),
        (DpoLoss::Sigmoid, "sigmoid", 0.7),
    ] {
        for (arch, cfg) in [&configs[0], &configs[1]] {
            let dir = tempfile::tempdir().unwrap();
            tch::manual_seed(5);
            let model = Gpt::new(cfg, Device::Cpu).unwrap();
            model.save(&dir.path().join("model.safetensors")).unwrap();
            std::fs::write(
                dir.path().join("config.json"),
                serde_json::to_string(cfg).unwrap(),
            )
            .unwrap();
            let settings = LossSettings {
                beta: 0.3,
                kind,
                rpo_alpha,
            };
            std::fs::write(
                dir.path().join("dpo.json"),
                serde_json::json!({"beta": settings.beta, "loss": name, "rpo_alpha": rpo_alpha})
                    .to_string(),
            )
            .unwrap();
            // 3 pairs: chosen rows then rejected rows, answers scored from column 4 on, the
            // last columns of some rows padding.
            let (pairs, t) = (3i64, cfg.block_size as i64);
            let inputs = Tensor::randint(
                cfg.vocab_size as i64,
                [2 * pairs, t],
                (Kind::Int64, Device::Cpu),
            );
            let targets = Tensor::randint(
                cfg.vocab_size as i64,
                [2 * pairs, t],
                (Kind::Int64, Device::Cpu),
            );
            let _ = targets.narrow(1, 0, 4).fill_(-100);
            let _ = targets.narrow(0, 1, 2).narrow(1, t - 3, 3).fill_(-100);
            // References near the policy's own log-probabilities, as at the start of training
            // (the policy is the reference plus what it learned), so `h` is of order one.
            let start = tch::no_grad(|| sequence_logps(&model, &inputs, &targets, false));
            let noise = |n: i64| Tensor::randn([n], (Kind::Float, Device::Cpu)) * 0.5;
            let ref_chosen = start.narrow(0, 0, pairs) + noise(pairs);
            let ref_rejected = start.narrow(0, pairs, pairs) + noise(pairs);
            let given = &start + noise(2 * pairs);
            let chosen_tokens = scored_tokens(&targets.narrow(0, 0, pairs));
            Tensor::write_safetensors(
                &[
                    ("inputs", &inputs),
                    ("targets", &targets),
                    ("ref_chosen", &ref_chosen),
                    ("ref_rejected", &ref_rejected),
                    ("logps", &given),
                    ("chosen_tokens", &chosen_tokens),
                ],
                dir.path().join("batch.safetensors"),
            )
            .unwrap();
            let out = Command::new(python())
                .arg(reference_script())
                .arg("parity")
                .arg(dir.path())
                .output()
                .expect("running the PyTorch reference");
            assert!(
                out.status.success(),
                "{name}/{arch}: reference failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let r: HashMap<String, Tensor> =
                Tensor::read_safetensors(dir.path().join("ref.safetensors"))
                    .unwrap()
                    .into_iter()
                    .collect();

            // The loss alone.
            let g = given.copy().set_requires_grad(true);
            let only = preference_loss(
                &g.narrow(0, 0, pairs),
                &g.narrow(0, pairs, pairs),
                &ref_chosen,
                &ref_rejected,
                &chosen_tokens,
                settings,
            )
            .loss;
            only.backward();
            let d = (only.double_value(&[]) - r["loss_only"].double_value(&[0])).abs();
            assert!(d <= 1e-6, "{name}: loss alone differs by {d}");
            let d = max_diff(&g.grad(), &r["grad_logps"]);
            assert!(d <= 1e-6, "{name}: its gradient differs by {d}");

            // Through the model.
            let logps = sequence_logps(&model, &inputs, &targets, false);
            let loss = preference_loss(
                &logps.narrow(0, 0, pairs),
                &logps.narrow(0, pairs, pairs),
                &ref_chosen,
                &ref_rejected,
                &chosen_tokens,
                settings,
            )
            .loss;
            loss.backward();
            let theirs = r["loss"].double_value(&[0]);
            let d = (loss.double_value(&[]) - theirs).abs();
            assert!(
                d <= 1e-5 * theirs.abs().max(1.0),
                "{name}/{arch}: model loss differs by {d} (PyTorch {theirs})"
            );
            let mut compared = 0;
            for (param, value) in model.var_store().variables() {
                let theirs = &r[&format!("grad.{param}")];
                let d = max_diff(&value.grad(), theirs);
                let scale = theirs.abs().max().double_value(&[]);
                assert!(
                    d <= 1e-5 * scale.max(1.0),
                    "{name}/{arch}: gradient of {param} differs by {d} (largest {scale})"
                );
                compared += 1;
            }
            assert!(compared > 10);
        }
    }
}
