//! Held-out measures: the loss per assistant token of the `val` split, and how often the
//! greedy answer to a `val` prompt is exactly the reference answer.

use serve::chat::{ChatTemplate, Message};
use serve::engine::Codec;
use tch::{Kind, Reduction, Tensor};

use super::data::Exchange;
use super::loss::{logits, masked_cross_entropy};
use super::pack::Packed;
use crate::generate::{generate, Sampling};
use crate::model::{Gpt, ModelError};
use crate::server::engine::TokenizerCodec;

/// Mean loss per assistant token over the first `max_rows` rows of `val` (the same rows every
/// time, so successive evaluations compare the model, not the sample), `batch` rows at a time.
pub fn val_loss(model: &Gpt, val: &Packed, max_rows: usize, batch: usize) -> f64 {
    let _guard = tch::no_grad_guard();
    let rows = val.rows().min(max_rows);
    let mut total = Tensor::zeros([], (Kind::Double, model.device()));
    let mut count = 0usize;
    let order: Vec<usize> = (0..rows).collect();
    for chunk in order.chunks(batch.max(1)) {
        let b = val.batch(chunk, model.device());
        let sum = masked_cross_entropy(&logits(model, &b, false), &b.targets, Reduction::Sum);
        total += sum.to_kind(Kind::Double);
        count += chunk.iter().map(|&r| val.row_targets(r)).sum::<usize>();
    }
    total.double_value(&[]) / count.max(1) as f64
}

/// Greedy answers to held-out prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    /// Share equal to the reference.
    pub accuracy: f64,
    /// Every greedy answer, in the order of the exchanges.
    pub answers: Vec<String>,
}

impl Answers {
    /// The first `n` (answer, reference) pairs, for the log.
    pub fn samples<'a>(
        &'a self,
        exchanges: &'a [Exchange],
        n: usize,
    ) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.answers
            .iter()
            .zip(exchanges)
            .take(n)
            .map(|(a, e)| (a.as_str(), e.response()))
    }
}

/// The greedy answer (at most `max_new_tokens`, ending at `<|end|>`) to each prompt (the
/// conversation so far), trimmed.
pub fn greedy_answers(
    model: &Gpt,
    prompts: &[&[Message]],
    template: &ChatTemplate,
    codec: &TokenizerCodec,
    max_new_tokens: usize,
) -> Result<Vec<String>, ModelError> {
    let sampling = Sampling {
        temperature: 0.0,
        max_tokens: max_new_tokens,
        stop: template.end_token().map(i64::from),
        ..Sampling::default()
    };
    prompts
        .iter()
        .map(|p| {
            let prompt: Vec<i64> = template
                .render(codec, p)
                .into_iter()
                .map(i64::from)
                .collect();
            let answer = generate(model, &prompt, &sampling, |_| {})?;
            let ids: Vec<u32> = answer.iter().map(|&t| t as u32).collect();
            Ok(String::from_utf8_lossy(&codec.decode(&ids))
                .trim()
                .to_string())
        })
        .collect()
}

/// Share of `exchanges` whose greedy answer equals the reference response, both trimmed of
/// surrounding whitespace.
pub fn exact_match(
    model: &Gpt,
    exchanges: &[Exchange],
    template: &ChatTemplate,
    codec: &TokenizerCodec,
    max_new_tokens: usize,
) -> Result<Answers, ModelError> {
    let prompts: Vec<&[Message]> = exchanges.iter().map(|e| e.prompt_messages()).collect();
    let answers = greedy_answers(model, &prompts, template, codec, max_new_tokens)?;
    let hits = answers
        .iter()
        .zip(exchanges)
        .filter(|(a, e)| a.as_str() == e.response())
        .count();
    Ok(Answers {
        accuracy: hits as f64 / exchanges.len().max(1) as f64,
        answers,
    })
}

/// Writes `answers.jsonl`: for each exchange, its prompt (the messages before the answer), the
/// reference, the greedy answer and
/// whether they are equal (as [`exact_match`] counts).
pub fn write_answers(
    path: &std::path::Path,
    exchanges: &[Exchange],
    answers: &Answers,
) -> std::io::Result<()> {
    let mut out = String::new();
    for (e, a) in exchanges.iter().zip(&answers.answers) {
        let line = serde_json::json!({
            "prompt": records::messages::to_value(e.prompt_messages()),
            "reference": e.response(),
            "answer": a,
            "exact": a.as_str() == e.response(),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(path, out)
}
