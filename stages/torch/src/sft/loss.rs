//! The fine-tuning loss: next-token cross-entropy over the assistant's tokens only.
//!
//! `L = −(1/N) Σ log p(t_{i+1} | t_{≤i})` over the `N` pairs whose target is an assistant token
//! (its text and the `<|end|>` that closes its turn); prompt, role markers and padding have the
//! target [`super::pack::IGNORE`] and contribute nothing, to the loss or to its gradient.

use std::collections::BTreeMap;

use tch::{Kind, Reduction, Tensor};

use super::pack::{Batch, Packed, IGNORE};
use crate::model::Gpt;
use crate::train::finetune::Objective;

/// Logits of a packed batch.
pub fn logits(model: &Gpt, batch: &Batch, train: bool) -> Tensor {
    model.forward_packed(&batch.inputs, &batch.positions, &batch.segments, train)
}

/// Cross-entropy of `logits (B, T, V)` against `targets (B, T)` with `IGNORE` skipped, reduced
/// as `reduction` (`Mean`: per counted token).
pub fn masked_cross_entropy(logits: &Tensor, targets: &Tensor, reduction: Reduction) -> Tensor {
    let v = logits.size()[2];
    logits
        .view([-1, v])
        .to_kind(Kind::Float)
        .cross_entropy_loss::<Tensor>(&targets.view([-1]), None, reduction, IGNORE, 0.0)
}

/// Mean loss per assistant token of the batch.
pub fn loss(model: &Gpt, batch: &Batch, train: bool) -> Tensor {
    masked_cross_entropy(
        &logits(model, batch, train),
        &batch.targets,
        Reduction::Mean,
    )
}

/// SFT as the fine-tuning loop sees it: packed rows, the assistant-token loss, and the held-out
/// loss over the first `eval_rows` val rows.
pub struct SftObjective<'a> {
    pub model: &'a Gpt,
    pub train: &'a Packed,
    pub val: &'a Packed,
    pub eval_rows: usize,
    pub batch_size: usize,
}

impl Objective for SftObjective<'_> {
    fn items(&self) -> usize {
        self.train.rows()
    }

    fn loss(&self, rows: &[usize], train: bool) -> (Tensor, u64, Vec<(&'static str, Tensor)>) {
        let scored: usize = rows.iter().map(|&r| self.train.row_targets(r)).sum();
        let batch = self.train.batch(rows, self.model.device());
        (loss(self.model, &batch, train), scored as u64, Vec::new())
    }

    fn evaluate(&self) -> (f64, BTreeMap<String, f64>) {
        let v = super::eval::val_loss(self.model, self.val, self.eval_rows, self.batch_size);
        (v, BTreeMap::new())
    }
}
