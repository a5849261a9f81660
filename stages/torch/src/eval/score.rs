//! Log-likelihood of a continuation given a context, batched: one full forward pass per batch
//! (no KV cache), so memory is bounded by batch × context × vocabulary whatever the number of
//! requests.
//!
//! For a request (context c, continuation x₁…xₙ), the score is Σᵢ log p(xᵢ | c, x₁…xᵢ₋₁) from
//! one forward pass over c‖x: the logits at the position before each xᵢ. `greedy` says whether
//! every xᵢ was also the argmax there. A request longer than the model's window keeps its last
//! `block_size + 1` tokens (the context is cut from the left), as lm-evaluation-harness does.
//!
//! Requests that give the model the same input (c‖x without its last token) share one row of a
//! batch, as lm-evaluation-harness's `hf` backend groups them: a choice repeated word for word
//! across questions, or one-token choices after the same context (`" A"` … `" D"`), cost one
//! row, not one each.

use std::collections::hash_map::{Entry, HashMap};

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

/// A request cut to the model's window: the model reads every token but the last, and the last
/// `n_cont` tokens are scored.
struct Cut {
    tokens: Vec<u32>,
    n_cont: usize,
}

impl Cut {
    fn new(r: &Request, window: usize) -> Cut {
        let full = r.context.len() + r.continuation.len();
        let tokens: Vec<u32> = r
            .context
            .iter()
            .chain(&r.continuation)
            .skip(full.saturating_sub(window))
            .copied()
            .collect();
        let n_cont = r.continuation.len().min(tokens.len() - 1);
        Cut { tokens, n_cont }
    }

    fn input(&self) -> &[u32] {
        &self.tokens[..self.tokens.len() - 1]
    }

    fn targets(&self) -> &[u32] {
        &self.tokens[self.tokens.len() - self.n_cont..]
    }
}

/// The rows of the forward passes: the requests reading each distinct input, first come first,
/// ordered longest first (by the whole request) so padding stays small. Ties go by the first
/// request's index, so the batches (and float sums) never depend on sort stability, and
/// requests with inputs of their own are batched exactly as one row per request would be.
fn rows(requests: &[Request], cuts: &[Cut]) -> Vec<Vec<usize>> {
    let mut row_of: HashMap<&[u32], usize> = HashMap::new();
    let mut rows: Vec<Vec<usize>> = Vec::new();
    for (i, cut) in cuts.iter().enumerate() {
        match row_of.entry(cut.input()) {
            Entry::Occupied(row) => rows[*row.get()].push(i),
            Entry::Vacant(slot) => {
                slot.insert(rows.len());
                rows.push(vec![i]);
            }
        }
    }
    rows.sort_by_key(|row| {
        let first = &requests[row[0]];
        (
            std::cmp::Reverse(first.context.len() + first.continuation.len()),
            row[0],
        )
    });
    rows
}

/// Scores `requests` in batches of `batch` rows (see [`rows`]), reporting progress as requests
/// done. Results are in request order.
pub fn loglikelihood(
    model: &Gpt,
    requests: &[Request],
    batch: usize,
    obs: &dyn Observer,
) -> Vec<Scored> {
    let window = model.config().block_size + 1;
    let cuts: Vec<Cut> = requests.iter().map(|r| Cut::new(r, window)).collect();
    let mut out = vec![
        Scored {
            logprob: 0.0,
            greedy: true,
        };
        requests.len()
    ];
    let _guard = tch::no_grad_guard();
    let mut done = 0;
    for chunk in rows(requests, &cuts).chunks(batch.max(1)) {
        let inputs: Vec<&[u32]> = chunk.iter().map(|row| cuts[row[0]].input()).collect();
        let logits = forward(model, &inputs);
        for (b, row) in chunk.iter().enumerate() {
            let logits = logits.get(b as i64);
            for &i in row {
                out[i] = score(&logits, &cuts[i]);
            }
            done += row.len();
        }
        obs.progress(done as u64, Some(requests.len() as u64));
    }
    out
}

/// Logits `(B, T, V)` for `inputs`, right-padded to the longest.
fn forward(model: &Gpt, inputs: &[&[u32]]) -> Tensor {
    let width = inputs.iter().map(|t| t.len()).max().unwrap_or(1);
    let mut flat = vec![0i64; inputs.len() * width];
    for (b, tokens) in inputs.iter().enumerate() {
        for (slot, &t) in flat[b * width..].iter_mut().zip(*tokens) {
            *slot = i64::from(t);
        }
    }
    let idx = Tensor::from_slice(&flat)
        .view([inputs.len() as i64, width as i64])
        .to_device(model.device());
    model.forward(&idx, false)
}

/// One request's score from its row's logits `(T, V)`.
fn score(logits: &Tensor, cut: &Cut) -> Scored {
    let start = cut.tokens.len() - 1 - cut.n_cont;
    // Only the continuation's positions get a softmax over the vocabulary.
    let row = logits
        .narrow(0, start as i64, cut.n_cont as i64)
        .log_softmax(-1, Kind::Float)
        .to_device(Device::Cpu);
    let targets: Vec<i64> = cut.targets().iter().map(|&t| i64::from(t)).collect();
    let picked = row
        .gather(1, &Tensor::from_slice(&targets).unsqueeze(1), false)
        .squeeze_dim(1);
    let values: Vec<f32> = Vec::<f32>::try_from(&picked).unwrap_or_default();
    let argmax: Vec<i64> = Vec::<i64>::try_from(&row.argmax(1, false)).unwrap_or_default();
    Scored {
        // Summed in f64, in token order.
        logprob: values.iter().map(|&v| v as f64).sum(),
        greedy: argmax.iter().zip(&targets).all(|(a, t)| a == t),
    }
}
