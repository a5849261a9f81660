//! The fine-tuning loss: next-token cross-entropy over the assistant's tokens only.
//!
//! `L = −(1/N) Σ log p(t_{i+1} | t_{≤i})` over the `N` pairs whose target is an assistant token
//! (its text and the `<|end|>` that closes its turn); prompt, role markers and padding have the
//! target [`super::pack::IGNORE`] and contribute nothing, to the loss or to its gradient.

use tch::{Kind, Reduction, Tensor};

use super::pack::{Batch, IGNORE};
use crate::model::Gpt;

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
