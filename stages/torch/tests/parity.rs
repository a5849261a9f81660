//! Our tch GPT against an independent PyTorch implementation (tests/python/gpt_ref.py), for
//! every architecture option: the same initial logits (≤ 1e-5) and the same losses over a few
//! AdamW steps with weight decay and gradient clipping.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use stages_torch::model::Gpt;
use stages_torch::train::adamw::{AdamW, AdamWConfig};
use tch::{Device, Kind, Tensor};

const STEPS: usize = 4;
const LR: f64 = 3e-3;

fn python() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV").expect("BINARYLM_VENV is set by scripts/env.sh");
    Path::new(&venv).join("bin/python")
}

fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/gpt_ref.py")
}

#[test]
fn logits_and_adamw_steps_match_pytorch() {
    tch::set_num_threads(1);
    for (name, cfg) in common::configs() {
        let dir = tempfile::tempdir().unwrap();
        tch::manual_seed(7);
        let model = Gpt::new(&cfg, Device::Cpu).unwrap();
        model.save(&dir.path().join("model.safetensors")).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_string(&cfg).unwrap(),
        )
        .unwrap();
        let (b, t) = (3, cfg.block_size as i64);
        let x = Tensor::randint(cfg.vocab_size as i64, [b, t], (Kind::Int64, Device::Cpu));
        let y = Tensor::randint(cfg.vocab_size as i64, [b, t], (Kind::Int64, Device::Cpu));
        Tensor::write_safetensors(
            &[("x", &x), ("y", &y)],
            dir.path().join("batch.safetensors"),
        )
        .unwrap();
        let train = serde_json::json!({
            "lr": LR, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8,
            "grad_clip": 0.5, "steps": STEPS,
        });
        std::fs::write(dir.path().join("train.json"), train.to_string()).unwrap();

        let out = Command::new(python())
            .arg(reference_script())
            .arg("parity")
            .arg(dir.path())
            .output()
            .expect("running the PyTorch reference");
        assert!(
            out.status.success(),
            "{name}: reference failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reference: std::collections::HashMap<String, Tensor> =
            Tensor::read_safetensors(dir.path().join("ref.safetensors"))
                .unwrap()
                .into_iter()
                .collect();

        let logits = tch::no_grad(|| model.forward(&x, false));
        let diff = (&logits - &reference["logits"])
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff <= 1e-5, "{name}: logits differ by {diff}");

        let mut opt = AdamW::new(
            model.var_store(),
            AdamWConfig {
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                weight_decay: 0.1,
            },
        );
        let mut losses = Vec::new();
        for _ in 0..STEPS {
            opt.zero_grad();
            let loss = model.loss(&x, &y, true);
            losses.push(loss.double_value(&[]));
            loss.backward();
            let _ = opt.clip_grad_norm(0.5);
            opt.step(LR);
        }
        losses.push(tch::no_grad(|| model.loss(&x, &y, false)).double_value(&[]));
        let expected = Vec::<f64>::try_from(&reference["losses"]).unwrap();
        assert!(
            expected[STEPS] < expected[0] - 1e-3,
            "{name}: the steps should lower the loss: {expected:?}"
        );
        for (i, (ours, theirs)) in losses.iter().zip(&expected).enumerate() {
            assert!(
                (ours - theirs).abs() <= 1e-5,
                "{name}: loss before step {i}: ours {ours}, PyTorch {theirs} ({losses:?} vs {expected:?})"
            );
        }
    }
}
