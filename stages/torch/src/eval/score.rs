//! Log-likelihood of a continuation given a context, batched: one full forward pass per batch
//! (no KV cache), so memory is bounded by batch × context × vocabulary whatever the number of
//! requests.
//!
//! For a request (context c, continuation x₁…xₙ), the score is Σᵢ log p(xᵢ | c, x₁…xᵢ₋₁) from
//! one forward pass over c‖x: the logits at the position before each xᵢ. `greedy` says whether
//! every xᵢ was also the argmax there. A request longer than the model's window keeps its last
//! `block_size + 1` tokens (the context is cut from the left), as lm-evaluation-harness does.

use common::observe::Observer;
use tch::{Device, Kind, Tensor};

use crate::model::Gpt;

/// One continuation to score.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// At least one token (a document starts from the end-of-document token).
    pub context: Vec<u32>,
    pub continuation: Vec<u32>,
}

/// A scored request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Sum of the continuation tokens' log-probabilities (nats).
    pub logprob: f64,
    /// Every continuation token was the most likely next token.
    pub greedy: bool,
}

/// Scores `requests` in batches of `batch` (longest first, so padding stays small), reporting
/// progress as requests done. Results are in request order.
pub fn loglikelihood(
    model: &Gpt,
    requests: &[Request],
    batch: usize,
    obs: &dyn Observer,
) -> Vec<Scored> {
    let window = model.config().block_size + 1;
    let device = model.device();
    let mut order: Vec<usize> = (0..requests.len()).collect();
    // Longest first; ties by index so the batches (and float sums) never depend on sort
    // stability.
    order.sort_by_key(|&i| {
        let r = &requests[i];
        (std::cmp::Reverse(r.context.len() + r.continuation.len()), i)
    });
    let mut out = vec![
        Scored {
            logprob: 0.0,
            greedy: true,
        };
        requests.len()
    ];
    let _guard = tch::no_grad_guard();
    for (done, chunk) in order.chunks(batch.max(1)).enumerate() {
        let rows: Vec<(Vec<i64>, usize)> = chunk
            .iter()
            .map(|&i| {
                let r = &requests[i];
                let full: Vec<i64> = r
                    .context
                    .iter()
                    .chain(&r.continuation)
                    .map(|&t| t as i64)
                    .collect();
                let keep = &full[full.len().saturating_sub(window)..];
                (keep.to_vec(), r.continuation.len().min(keep.len() - 1))
            })
            .collect();
        let width = rows.iter().map(|(t, _)| t.len() - 1).max().unwrap_or(1);
        let mut input = vec![0i64; rows.len() * width];
        for (b, (tokens, _)) in rows.iter().enumerate() {
            let n = tokens.len() - 1;
            input[b * width..b * width + n].copy_from_slice(&tokens[..n]);
        }
        let idx = Tensor::from_slice(&input)
            .view([rows.len() as i64, width as i64])
            .to_device(device);
        let logits = model.forward(&idx, false);
        for (b, (tokens, n_cont)) in rows.iter().enumerate() {
            let n = tokens.len() - 1;
            let start = n - n_cont;
            // Only the continuation's positions get a softmax over the vocabulary.
            let row = logits
                .get(b as i64)
                .narrow(0, start as i64, *n_cont as i64)
                .log_softmax(-1, Kind::Float)
                .to_device(Device::Cpu);
            let targets = Tensor::from_slice(&tokens[start + 1..=n]);
            let picked = row.gather(1, &targets.unsqueeze(1), false).squeeze_dim(1);
            let values: Vec<f32> = Vec::<f32>::try_from(&picked).unwrap_or_default();
            let argmax: Vec<i64> = Vec::<i64>::try_from(&row.argmax(1, false)).unwrap_or_default();
            out[chunk[b]] = Scored {
                // Summed in f64, in token order.
                logprob: values.iter().map(|&v| v as f64).sum(),
                greedy: argmax
                    .iter()
                    .zip(&tokens[start + 1..=n])
                    .all(|(a, t)| a == t),
            };
        }
        obs.progress(
            ((done + 1) * batch).min(requests.len()) as u64,
            Some(requests.len() as u64),
        );
    }
    out
}
