//! Sampling text from a model: temperature, top-k, top-p (nucleus), a seed, a token budget,
//! stopping at `<|eos|>`; with the KV cache (one new token per step) or without (the whole
//! window recomputed each step, the reference the cache is tested and benchmarked against).

pub mod chat;
pub mod cli;

use common::rng::SplitMix64;
use serve::sampling::{self, SamplingParams};
use tch::{Device, Kind, Tensor};

use crate::model::{Gpt, ModelError};

/// How to pick each next token.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 is greedy (argmax); otherwise logits are divided by it before the softmax.
    pub temperature: f64,
    /// Keep only the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches p (1.0: all).
    pub top_p: f64,
    pub seed: u64,
    pub max_tokens: usize,
    /// Stop after emitting this token (not included in the output).
    pub stop: Option<i64>,
    /// Use the KV cache.
    pub kv_cache: bool,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.8,
            top_k: 0,
            top_p: 1.0,
            seed: 1337,
            max_tokens: 100,
            stop: None,
            kv_cache: true,
        }
    }
}

impl Sampling {
    /// The server's sampling parameters for these settings: `generate` and the server pick
    /// tokens with the same code ([`serve::sampling::sample`]).
    pub fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature as f32,
            top_p: self.top_p as f32,
            top_k: self.top_k,
        }
    }
}

/// Picks a token from logits `[V]` (any float kind, any device) with the server's sampler:
/// greedy is the argmax, otherwise temperature, top-k and top-p, drawn with `gen`, our own
/// generator, so a seed gives the same text on any device.
pub fn pick(logits: &Tensor, params: &SamplingParams, gen: &mut SplitMix64) -> i64 {
    let row = Vec::<f32>::try_from(logits.to_kind(Kind::Float).to_device(Device::Cpu))
        .unwrap_or_default();
    sampling::sample(&row, params, gen) as i64
}

/// Generates up to `s.max_tokens` tokens after `prompt`, calling `on_token` with each one as it
/// is produced (for streaming). Returns the new tokens (without the stop token).
pub fn generate(
    model: &Gpt,
    prompt: &[i64],
    s: &Sampling,
    mut on_token: impl FnMut(i64),
) -> Result<Vec<i64>, ModelError> {
    if prompt.is_empty() {
        return Err(ModelError::Shape(
            "the prompt encodes to no tokens; give some text".to_string(),
        ));
    }
    let _guard = tch::no_grad_guard();
    let block = model.config().block_size;
    let params = s.params();
    let mut gen = SplitMix64::new(s.seed);
    let mut context: Vec<i64> = prompt.to_vec();
    let mut out = Vec::new();
    let mut cache = s.kv_cache.then(|| model.new_cache());
    for _ in 0..s.max_tokens {
        let logits = match &mut cache {
            Some(cache) => {
                // The first step feeds the prompt (its last block_size tokens), later steps
                // only the token just picked.
                let mut new = if cache.is_empty() {
                    &context[context.len().saturating_sub(block)..]
                } else {
                    &context[context.len() - 1..]
                };
                if new.len() > cache.remaining() {
                    // The window is full: refill the cache from the last half block, so the
                    // next block/2 steps are one token each again.
                    cache.clear();
                    new = &context[context.len() - (block / 2).max(1)..];
                }
                let logits = model.forward_cached(cache, new)?;
                logits.get(logits.size()[0] - 1)
            }
            None => {
                let start = context.len().saturating_sub(block);
                let window = &context[start..];
                let idx = Tensor::from_slice(window)
                    .to_device(model.device())
                    .view([1, window.len() as i64]);
                let logits = model.forward(&idx, false);
                logits.get(0).get(window.len() as i64 - 1)
            }
        };
        let next = pick(&logits, &params, &mut gen);
        if Some(next) == s.stop {
            break;
        }
        context.push(next);
        out.push(next);
        on_token(next);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_pick_is_the_argmax_in_any_float_kind() {
        tch::manual_seed(0);
        let greedy = Sampling {
            temperature: 0.0,
            ..Sampling::default()
        }
        .params();
        let mut gen = SplitMix64::new(0);
        for kind in [Kind::Float, Kind::BFloat16, Kind::Half] {
            for _ in 0..50 {
                let logits = Tensor::randn([300], (Kind::Float, Device::Cpu)).to_kind(kind);
                let want = logits
                    .to_kind(Kind::Float)
                    .argmax(0, false)
                    .int64_value(&[]);
                assert_eq!(pick(&logits, &greedy, &mut gen), want, "{kind:?}");
            }
        }
    }
}
