//! The serving engine over a real GPT: prefill logits equal the full forward pass (all rows or
//! the last), a batched decode step over sequences of different lengths equals decoding each
//! alone, padded vocabulary rows are never exposed, and bad input fails without a panic.

mod common;

use serve::{Codec, Engine, PrefillOutput};
use stages_torch::model::Gpt;
use stages_torch::server::engine::{check_vocab, model_info, LoadError, TorchEngine};
use tch::{Device, Tensor};

/// A codec with `n` ids and no special tokens (only its size matters to the engine).
struct Sized(usize);

impl Codec for Sized {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(|b| u32::from(b) % self.0 as u32).collect()
    }
    fn decode(&self, ids: &[u32]) -> Vec<u8> {
        ids.iter().map(|&i| i as u8).collect()
    }
    fn token_to_id(&self, token: &str) -> Option<u32> {
        (token == "<|eos|>").then_some(3)
    }
    fn vocab_size(&self) -> usize {
        self.0
    }
}

/// The full-recompute logits of `tokens` as host rows.
fn reference(model: &Gpt, tokens: &[u32]) -> Vec<Vec<f32>> {
    let _g = tch::no_grad_guard();
    let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    let idx = Tensor::from_slice(&ids).view([1, ids.len() as i64]);
    let logits = model.forward(&idx, false).squeeze_dim(0);
    (0..ids.len() as i64)
        .map(|i| Vec::<f32>::try_from(&logits.get(i)).unwrap())
        .collect()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "logits differ by {worst}");
}

/// Two models with the same weights: one for the engine, one for the reference. (Copied, not
/// drawn twice from one seed: tests run in parallel and share libtorch's generator.)
fn models(cfg: &stages_torch::ModelConfig) -> (Gpt, Gpt) {
    let a = Gpt::new(cfg, Device::Cpu).unwrap();
    let mut b = Gpt::new(cfg, Device::Cpu).unwrap();
    b.var_store_mut().copy(a.var_store()).unwrap();
    (a, b)
}

#[test]
fn prefill_and_batched_decode_match_the_full_forward_pass() {
    for (name, cfg) in common::configs() {
        let vocab = cfg.vocab_size;
        let (model, reference_model) = models(&cfg);
        let mut engine = TorchEngine::new(model, vocab);
        let prompts: [&[u32]; 3] = [&[1, 2, 3, 4, 5], &[7], &[9, 8, 7, 6, 5, 4, 3, 2]];

        let mut seqs = Vec::new();
        for p in prompts {
            let mut seq = engine.new_sequence().unwrap();
            let all = engine.prefill(&mut seq, p, PrefillOutput::All).unwrap();
            assert_eq!((all.rows(), all.vocab()), (p.len(), vocab), "{name}");
            let want = reference(&reference_model, p);
            for (i, row) in want.iter().enumerate() {
                close(all.row(i), row);
            }
            seqs.push(seq);
        }
        // Last only: one row, the same as All's last.
        let mut seq = engine.new_sequence().unwrap();
        let last = engine
            .prefill(&mut seq, prompts[2], PrefillOutput::Last)
            .unwrap();
        assert_eq!(last.rows(), 1);
        close(
            last.row(0),
            reference(&reference_model, prompts[2]).last().unwrap(),
        );

        // Two batched steps over sequences of lengths 5, 1 and 8.
        let mut grown: Vec<Vec<u32>> = prompts.iter().map(|p| p.to_vec()).collect();
        for step in [[10u32, 11, 12], [13, 14, 15]] {
            let mut refs: Vec<_> = seqs.iter_mut().collect();
            let out = engine.decode(&mut refs, &step).unwrap();
            assert_eq!(out.rows(), 3, "{name}");
            for (i, g) in grown.iter_mut().enumerate() {
                g.push(step[i]);
                close(out.row(i), reference(&reference_model, g).last().unwrap());
            }
        }
    }
}

#[test]
fn padded_vocabulary_rows_are_cut_off() {
    let (_, cfg) = common::configs().remove(0);
    // The tokenizer knows 40 ids; the model has rows for 50.
    let (model, reference_model) = models(&cfg);
    let mut engine = TorchEngine::new(model, 40);
    let mut seq = engine.new_sequence().unwrap();
    let out = engine
        .prefill(&mut seq, &[1, 2, 3], PrefillOutput::All)
        .unwrap();
    assert_eq!((out.rows(), out.vocab()), (3, 40));
    let full = reference(&reference_model, &[1, 2, 3]);
    close(out.row(2), &full[2][..40]);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let (_, cfg) = common::configs().remove(0);
    let mut engine = TorchEngine::new(models(&cfg).0, cfg.vocab_size);
    let mut seq = engine.new_sequence().unwrap();
    let e = engine
        .prefill(&mut seq, &[1, 999], PrefillOutput::Last)
        .unwrap_err();
    assert!(e.0.contains("999") && e.0.contains("vocabulary"), "{e}");
    // Longer than the context (16).
    let long: Vec<u32> = (0..17).map(|i| i % 10).collect();
    let e = engine
        .prefill(&mut seq, &long, PrefillOutput::Last)
        .unwrap_err();
    assert!(e.0.contains("context"), "{e}");
    // The failed calls left the sequence usable.
    engine
        .prefill(&mut seq, &[1, 2], PrefillOutput::Last)
        .unwrap();
    let mut refs = vec![&mut seq];
    let e = engine.decode(&mut refs, &[1, 2]).unwrap_err();
    assert!(e.0.contains("one token per cache"), "{e}");
}

#[test]
fn a_tokenizer_bigger_than_the_model_is_refused_and_info_is_reported() {
    let (_, cfg) = common::configs().remove(0);
    let e = check_vocab(&cfg, &Sized(51), std::path::Path::new("tok.json")).unwrap_err();
    assert!(matches!(e, LoadError::VocabMismatch { .. }));
    assert!(e.to_string().contains("51") && e.to_string().contains("tok.json"));
    check_vocab(&cfg, &Sized(50), std::path::Path::new("tok.json")).unwrap();

    let info = model_info("m", &cfg, &Sized(50), 7);
    assert_eq!(info.id, "m");
    assert_eq!(info.context_length, 16);
    assert_eq!(info.eos_token.unwrap().id, 3);
    assert!(info.bos_token.is_none());
    assert_eq!(info.created, 7);
}
