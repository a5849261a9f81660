//! The model's own invariants: parameter counts match the formula, the KV cache gives the same
//! logits and greedy tokens as full recomputation, batched decoding equals sequential decoding,
//! and artifacts round-trip.

mod common;

use pipelines::ModelPreset;
use stages_torch::generate::{generate, Sampling};
use stages_torch::model::{load_artifact, Gpt, ModelConfig, ModelError};
use tch::{Device, Kind, Tensor};

#[test]
fn parameter_counts_match_the_formula() {
    for (name, cfg) in common::configs() {
        let model = Gpt::new(&cfg, Device::Cpu).unwrap();
        assert_eq!(model.num_params(), cfg.param_count(), "{name}");
    }
    let tiny = ModelConfig::preset(ModelPreset::Tiny, 65);
    assert_eq!(
        Gpt::new(&tiny, Device::Cpu).unwrap().num_params(),
        tiny.param_count()
    );
}

#[test]
fn gpt2_small_builds_with_124m_parameters() {
    let cfg = ModelConfig::preset(ModelPreset::Gpt2Small, 50257);
    let model = Gpt::new(&cfg, Device::Cpu).unwrap();
    assert_eq!(model.num_params(), 124_439_808);
}

#[test]
fn init_scales_residual_projections() {
    let cfg = &common::configs()[0].1;
    tch::manual_seed(1);
    let cfg = ModelConfig {
        n_layer: 8,
        n_embd: 256,
        mlp_hidden: 1024,
        ..cfg.clone()
    };
    let model = Gpt::new(&cfg, Device::Cpu).unwrap();
    let vars = model.var_store().variables();
    let std = |name: &str| vars[name].std(true).double_value(&[]);
    assert!((std("blocks.0.mlp.fc.weight") - 0.02).abs() < 1e-3);
    let scaled = 0.02 / (2.0 * 8.0f64).sqrt();
    assert!((std("blocks.3.attn.proj.weight") - scaled).abs() < 1e-3);
    assert!((std("blocks.7.mlp.proj.weight") - scaled).abs() < 1e-3);
    assert_eq!(
        vars["blocks.0.attn.qkv.bias"]
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );
}

fn greedy(kv_cache: bool) -> Sampling {
    Sampling {
        temperature: 0.0,
        max_tokens: 10,
        kv_cache,
        ..Sampling::default()
    }
}

#[test]
fn kv_cache_matches_full_recomputation() {
    for (name, cfg) in common::configs() {
        tch::manual_seed(3);
        let model = Gpt::new(&cfg, Device::Cpu).unwrap();
        let prompt: Vec<i64> = vec![1, 5, 9, 2];
        // Logits: prefill then one-token steps against the uncached forward of the whole prefix.
        let seq: Vec<i64> = (0..12)
            .map(|i| (i * 7 + 3) % cfg.vocab_size as i64)
            .collect();
        let full = tch::no_grad(|| model.forward(&Tensor::from_slice(&seq).view([1, -1]), false))
            .squeeze_dim(0);
        let mut cache = model.new_cache();
        let mut got = vec![model.forward_cached(&mut cache, &seq[..5]).unwrap()];
        for &tok in &seq[5..9] {
            got.push(model.forward_cached(&mut cache, &[tok]).unwrap());
        }
        got.push(model.forward_cached(&mut cache, &seq[9..]).unwrap());
        let cached = Tensor::cat(&got, 0);
        let diff = (&cached - &full).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: cached logits differ by {diff}");
        // Greedy generation, short enough to stay inside the context window.
        let with = generate(&model, &prompt, &greedy(true), |_| {}).unwrap();
        let without = generate(&model, &prompt, &greedy(false), |_| {}).unwrap();
        assert_eq!(with, without, "{name}");
        assert_eq!(with.len(), 10);
    }
}

#[test]
fn batched_decoding_equals_sequential() {
    for (name, cfg) in common::configs() {
        tch::manual_seed(4);
        let model = Gpt::new(&cfg, Device::Cpu).unwrap();
        let prompts: [&[i64]; 3] = [&[1, 2, 3], &[4], &[7, 8, 9, 10, 11, 12]];
        let next = [5i64, 6, 13];
        let mut seq_caches: Vec<_> = prompts.iter().map(|_| model.new_cache()).collect();
        let mut expected = Vec::new();
        for ((c, p), &n) in seq_caches.iter_mut().zip(prompts).zip(&next) {
            let _ = model.forward_cached(c, p).unwrap();
            expected.push(model.forward_cached(c, &[n]).unwrap());
        }
        let expected = Tensor::cat(&expected, 0);
        let mut caches: Vec<_> = prompts.iter().map(|_| model.new_cache()).collect();
        for (c, p) in caches.iter_mut().zip(prompts) {
            let _ = model.forward_cached(c, p).unwrap();
        }
        let mut refs: Vec<&mut _> = caches.iter_mut().collect();
        let batched = model.decode_batch(&mut refs, &next).unwrap();
        let diff = (&batched - &expected).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: batched logits differ by {diff}");
        assert_eq!(
            caches.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![4, 2, 7]
        );
        // A second batched step continues all three correctly.
        let mut refs: Vec<&mut _> = caches.iter_mut().collect();
        let again = model.decode_batch(&mut refs, &[1, 1, 1]).unwrap();
        let mut one = Vec::new();
        for c in seq_caches.iter_mut() {
            one.push(model.forward_cached(c, &[1]).unwrap());
        }
        let diff = (&again - &Tensor::cat(&one, 0))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "{name}: second batched step differs by {diff}");
    }
}

#[test]
fn cache_refuses_what_does_not_fit_and_bad_ids() {
    let cfg = common::configs()[0].1.clone();
    let model = Gpt::new(&cfg, Device::Cpu).unwrap();
    let mut cache = model.new_cache();
    let too_long: Vec<i64> = vec![1; cfg.block_size + 1];
    assert!(matches!(
        model.forward_cached(&mut cache, &too_long),
        Err(ModelError::ContextFull { .. })
    ));
    assert!(
        cache.is_empty(),
        "a refused call leaves the cache as it was"
    );
    assert!(matches!(
        model.forward_cached(&mut cache, &[cfg.vocab_size as i64]),
        Err(ModelError::BadToken { .. })
    ));
    // Generation past the window keeps going (the cache is refilled).
    let long = Sampling {
        max_tokens: cfg.block_size * 2,
        ..greedy(true)
    };
    assert_eq!(
        generate(&model, &[1], &long, |_| {}).unwrap().len(),
        cfg.block_size * 2
    );
}

#[test]
fn artifacts_round_trip() {
    let (_, cfg) = common::configs().remove(1);
    let dir = tempfile::tempdir().unwrap();
    let model = Gpt::new(&cfg, Device::Cpu).unwrap();
    model.save(&dir.path().join("model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&cfg).unwrap(),
    )
    .unwrap();
    let (loaded, loaded_cfg) = load_artifact(dir.path(), Device::Cpu).unwrap();
    assert_eq!(loaded_cfg, cfg);
    let x = Tensor::from_slice(&[1i64, 2, 3]).view([1, 3]);
    let a = tch::no_grad(|| model.forward(&x, false));
    let b = tch::no_grad(|| loaded.forward(&x, false));
    assert_eq!((a - b).abs().max().double_value(&[]), 0.0);
    std::fs::write(dir.path().join("config.json"), "{\"vocab_size\": 3}").unwrap();
    let err = load_artifact(dir.path(), Device::Cpu).err().unwrap();
    assert!(
        err.to_string().contains("not a valid model config"),
        "{err}"
    );
}

/// The inspector's trace is the model's own forward pass: its logits equal `forward`'s, the
/// logit lens of the last residual is those logits, and every attention row (a query over the
/// keys it may see) sums to 1 — for every test config (GQA, RoPE, learned positions).
#[test]
fn the_trace_is_the_forward_pass_and_attention_rows_sum_to_one() {
    for (name, cfg) in common::configs() {
        tch::manual_seed(5);
        let model = Gpt::new(&cfg, Device::Cpu).unwrap();
        let t = cfg.block_size.min(9);
        let ids: Vec<i64> = (0..t as i64)
            .map(|i| (i * 7 + 3) % cfg.vocab_size as i64)
            .collect();
        let trace = model.trace(&ids).unwrap();
        let full = model
            .forward(&Tensor::from_slice(&ids).view([1, -1]), false)
            .squeeze_dim(0);
        assert!(trace.logits.allclose(&full, 1e-4, 1e-5, false), "{name}");
        let last = trace.residuals.last().unwrap();
        assert!(
            model.lens(last).allclose(&trace.logits, 1e-5, 1e-6, false),
            "{name}"
        );
        assert_eq!(trace.residuals.len(), cfg.n_layer + 1, "{name}");
        for a in &trace.attention {
            assert_eq!(a.size(), [cfg.n_head as i64, t as i64, t as i64], "{name}");
            let sums = a.sum_dim_intlist(-1, false, Kind::Float);
            assert!(
                sums.allclose(&Tensor::ones_like(&sums), 1e-5, 1e-6, false),
                "{name}"
            );
        }
    }
    let cfg = &common::configs()[0].1;
    let model = Gpt::new(cfg, Device::Cpu).unwrap();
    let too_long = vec![1i64; cfg.block_size + 1];
    assert!(matches!(model.trace(&too_long), Err(ModelError::Shape(_))));
}
