//! The DPO objective.
//!
//! For a prompt `x` with a chosen answer `c` and a rejected one `r`, the policy `π` and the
//! frozen reference `π_ref` each give the log-probability of an answer as the sum of its
//! tokens' log-probabilities (the answer's text and its closing `<|end|>`, as SFT scores them).
//! The implicit reward of an answer is `β·(log π(a|x) − log π_ref(a|x))`, and with
//!
//! ```text
//! h = (log π(c|x) − log π_ref(c|x)) − (log π(r|x) − log π_ref(r|x))
//! sigmoid:  L = −log σ(β·h)              (Rafailov et al., 2023)
//! ipo:      L = (h − 1/(2β))²           (Azar et al., 2023)
//! ```
//!
//! averaged over the pairs of a batch. The sigmoid loss keeps pushing the margin up (ever more
//! slowly); IPO pulls it to the fixed target `1/(2β)`, which stops the policy drifting without
//! bound on pairs it already ranks right.
//!
//! Both losses only see the *difference* between the answers, so the policy can lower the chosen
//! answer's probability too, as long as it lowers the rejected one's more: when the answers share
//! most of their tokens, it learns to distrust the shared ones and greedy decoding drifts off the
//! answer's form. RPO (Pang et al., 2024) adds the chosen answers' language-model loss,
//!
//! ```text
//! L_rpo = L + α · (−Σ log π(c_t | x, c_<t)) / |c|     (|c|: the chosen tokens of the batch)
//! ```
//!
//! which keeps the chosen answer likely while the margin grows (`rpo_alpha`, 0 = plain DPO).

use pipelines::DpoLoss;
use tch::{Kind, Tensor};

use crate::model::Gpt;
use crate::sft::pack::IGNORE;

/// Sum of the log-probabilities of the targets of each row: `inputs`, `targets` `(N, T)`,
/// targets [`IGNORE`] where nothing is scored. Returns `(N,)` fp32.
pub fn sequence_logps(model: &Gpt, inputs: &Tensor, targets: &Tensor, train: bool) -> Tensor {
    let logits = model.forward(inputs, train);
    let logp = logits.log_softmax(-1, Kind::Float);
    let scored = targets.ne(IGNORE);
    let picked = logp
        .gather(2, &targets.clamp_min(0).unsqueeze(2), false)
        .squeeze_dim(2);
    (picked * scored.to_kind(Kind::Float)).sum_dim_intlist(1, false, Kind::Float)
}

/// The batch's preference statistics, each `(B,)` or 0-d.
pub struct Preference {
    /// Mean loss.
    pub loss: Tensor,
    /// β·(log π − log π_ref) of each chosen and rejected answer.
    pub chosen_rewards: Tensor,
    pub rejected_rewards: Tensor,
}

/// Which preference loss, and how strongly it is tied to the chosen answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSettings {
    pub beta: f64,
    pub kind: DpoLoss,
    /// Weight of the chosen answers' per-token negative log-likelihood (RPO); 0 for none.
    pub rpo_alpha: f64,
}

/// The scored tokens of each row of `targets` (`(N, T)`, [`IGNORE`] where nothing is scored),
/// `(N,)` fp32.
pub fn scored_tokens(targets: &Tensor) -> Tensor {
    targets
        .ne(IGNORE)
        .to_kind(Kind::Float)
        .sum_dim_intlist(1, false, Kind::Float)
}

/// The DPO loss from the policy's and the reference's answer log-probabilities, `(B,)` each;
/// `chosen_tokens` `(B,)` counts the tokens of each chosen answer (the RPO term's denominator).
pub fn preference_loss(
    policy_chosen: &Tensor,
    policy_rejected: &Tensor,
    ref_chosen: &Tensor,
    ref_rejected: &Tensor,
    chosen_tokens: &Tensor,
    settings: LossSettings,
) -> Preference {
    let LossSettings {
        beta,
        kind,
        rpo_alpha,
    } = settings;
    let chosen = policy_chosen - ref_chosen;
    let rejected = policy_rejected - ref_rejected;
    let h = &chosen - &rejected;
    let preference = match kind {
        DpoLoss::Sigmoid => -(h * beta).log_sigmoid(),
        DpoLoss::Ipo => (h - 1.0 / (2.0 * beta)).square(),
    }
    .mean(Kind::Float);
    // Out of place: `+=` on a tensor is libtorch's in-place add.
    let loss = if rpo_alpha == 0.0 {
        preference
    } else {
        let nll = -policy_chosen.sum(Kind::Float) / chosen_tokens.sum(Kind::Float).clamp_min(1.0);
        preference + nll * rpo_alpha
    };
    Preference {
        loss,
        chosen_rewards: (chosen * beta).detach(),
        rejected_rewards: (rejected * beta).detach(),
    }
}
