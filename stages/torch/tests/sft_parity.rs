//! Fine-tuning against an independent PyTorch reference (tests/python/sft_ref.py), for every
//! architecture option of the parity configs:
//! - the loss of packed rows (block-diagonal mask, positions restarting per example, targets
//!   only on assistant tokens) equals the assistant-token loss of each example run alone
//!   through PyTorch (≤ 1e-5);
//! - a model with LoRA adapters, merged into its weights, gives the logits PyTorch computes
//!   with the adapters as separate low-rank branches (≤ 1e-5), and the same as before merging.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pipelines::{LoraParams, LoraTarget};
use stages_torch::model::{Gpt, Lora};
use stages_torch::sft::loss;
use stages_torch::sft::pack::{pack, Example};
use tch::{Device, Kind, Tensor};

fn python() -> PathBuf {
    let venv = std::env::var_os("BINARYLM_VENV").expect("BINARYLM_VENV is set by scripts/env.sh");
    Path::new(&venv).join("bin/python")
}

fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/sft_ref.py")
}

/// Conversations of random tokens: a prompt part (not targets) then an answer part (targets),
/// lengths chosen so that rows of 16 hold several and some rows are padded.
fn examples(vocab: i64) -> Vec<Example> {
    let lengths = [(3, 4), (2, 3), (5, 4), (1, 2), (4, 5), (6, 3), (2, 2)];
    lengths
        .iter()
        .map(|&(prompt, answer)| {
            let n = prompt + answer;
            let tokens = Tensor::randint(vocab, [n], (Kind::Int64, Device::Cpu));
            Example {
                tokens: Vec::<i64>::try_from(&tokens)
                    .unwrap()
                    .into_iter()
                    .map(|t| t as u32)
                    .collect(),
                targets: (0..n).map(|i| i >= prompt).collect(),
            }
        })
        .collect()
}

#[test]
fn packed_assistant_loss_and_merged_lora_match_pytorch() {
    tch::set_num_threads(1);
    for (name, cfg) in common::configs() {
        let dir = tempfile::tempdir().unwrap();
        tch::manual_seed(11);
        let mut model = Gpt::new(&cfg, Device::Cpu).unwrap();
        model.save(&dir.path().join("model.safetensors")).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_string(&cfg).unwrap(),
        )
        .unwrap();

        let examples = examples(cfg.vocab_size as i64);
        let packed = pack(&examples, cfg.block_size);
        assert!(
            packed.rows() < examples.len() && packed.examples == examples.len(),
            "{name}: the examples should share rows"
        );
        let rows: Vec<usize> = (0..packed.rows()).collect();
        let batch = packed.batch(&rows, Device::Cpu);
        let ours = tch::no_grad(|| loss::loss(&model, &batch, false)).double_value(&[]);
        let json: Vec<serde_json::Value> = examples
            .iter()
            .map(|e| serde_json::json!({"tokens": e.tokens, "targets": e.targets}))
            .collect();
        std::fs::write(
            dir.path().join("examples.json"),
            serde_json::Value::Array(json).to_string(),
        )
        .unwrap();

        let params = LoraParams {
            r: 2,
            alpha: 6.0,
            dropout: 0.0,
            targets: vec![
                LoraTarget::Q,
                LoraTarget::K,
                LoraTarget::V,
                LoraTarget::O,
                LoraTarget::Mlp,
            ],
            also_train: Vec::new(),
        };
        // Three token ids whose embedding rows are trained, as the chat markers' are.
        let token_ids = [1_u32, 4, 7];
        let lora = Lora::attach(&mut model, &params, &token_ids);
        // B starts at zero and the rows at their base values (the adapted model is the base
        // model); give them other values so the comparison sees the adapters and the rows.
        tch::no_grad(|| {
            for (n, mut t) in lora.var_store().variables() {
                if n.ends_with("lora_b") || n == "tok_emb.rows" {
                    t.copy_(&(Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.2));
                }
            }
        });
        lora.save(&dir.path().join("adapters.safetensors")).unwrap();
        std::fs::write(
            dir.path().join("lora.json"),
            serde_json::json!({"r": params.r, "alpha": params.alpha, "token_ids": token_ids})
                .to_string(),
        )
        .unwrap();
        let x = Tensor::randint(
            cfg.vocab_size as i64,
            [2, cfg.block_size as i64],
            (Kind::Int64, Device::Cpu),
        );
        Tensor::write_safetensors(&[("x", &x)], dir.path().join("batch.safetensors")).unwrap();
        let unmerged = tch::no_grad(|| model.forward(&x, false));
        lora.merge(&mut model);
        let merged = tch::no_grad(|| model.forward(&x, false));

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
        let theirs = reference["loss"].double_value(&[0]);
        assert!(
            (ours - theirs).abs() <= 1e-5,
            "{name}: packed loss {ours}, PyTorch per-example {theirs}"
        );
        let max_diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        let lora_ref = &reference["lora_logits"];
        let base = tch::no_grad(|| {
            let plain = Gpt::new(&cfg, Device::Cpu).unwrap();
            let mut plain = plain;
            plain.load(&dir.path().join("model.safetensors")).unwrap();
            plain.forward(&x, false)
        });
        assert!(
            max_diff(&base, lora_ref) > 1e-3,
            "{name}: the adapters should change the logits"
        );
        let d = max_diff(&unmerged, lora_ref);
        assert!(d <= 1e-5, "{name}: unmerged LoRA logits differ by {d}");
        let d = max_diff(&merged, lora_ref);
        assert!(d <= 1e-5, "{name}: merged LoRA logits differ by {d}");
    }
}

/// The loss counts assistant tokens only: changing a prompt token's target, or a padding
/// token, leaves it unchanged, and a packed row gives each example the loss it has alone.
#[test]
fn the_loss_ignores_everything_but_assistant_tokens() {
    tch::set_num_threads(1);
    let (_, cfg) = common::configs().remove(1); // RoPE: positions must restart per example
    tch::manual_seed(3);
    let model = Gpt::new(&cfg, Device::Cpu).unwrap();
    let examples = examples(cfg.vocab_size as i64);
    let together = pack(&examples, cfg.block_size);
    let all: Vec<usize> = (0..together.rows()).collect();
    let packed = tch::no_grad(|| {
        let b = together.batch(&all, Device::Cpu);
        loss::masked_cross_entropy(
            &loss::logits(&model, &b, false),
            &b.targets,
            tch::Reduction::Sum,
        )
    })
    .double_value(&[]);
    let mut alone = 0.0;
    for e in &examples {
        let p = pack(std::slice::from_ref(e), cfg.block_size);
        let b = p.batch(&[0], Device::Cpu);
        alone += tch::no_grad(|| {
            loss::masked_cross_entropy(
                &loss::logits(&model, &b, false),
                &b.targets,
                tch::Reduction::Sum,
            )
        })
        .double_value(&[]);
    }
    assert!(
        (packed - alone).abs() <= 1e-4,
        "packed {packed} vs one example per row {alone}"
    );

    // Marking one prompt token as the assistant's adds exactly that one target.
    let mut edited = examples.clone();
    edited[0].targets[1] = true; // score a prompt token too
    let more = pack(&edited, cfg.block_size);
    assert_eq!(more.target_count(), together.target_count() + 1);
}
