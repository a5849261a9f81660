"""PyTorch reference for DPO, written independently of binarylm's code.

Usage:
    dpo_ref.py parity <dir>   read config.json, model.safetensors (the policy), batch.safetensors
                              (inputs/targets of the chosen rows then the rejected rows, targets
                              -100 where not scored; ref_chosen/ref_rejected; logps, a given
                              set of answer log-probabilities; chosen_tokens, the answer lengths
                              that go with them) and dpo.json (beta, loss, rpo_alpha);
                              write ref.safetensors with, for the model: "loss" and the
                              gradient of every weight ("grad.<name>"); for the loss alone on the
                              given log-probabilities: "loss_only" and "grad_logps".

The losses follow the papers: sigmoid -log(sigmoid(beta * h)) (Rafailov et al., 2023) and IPO
(h - 1/(2 beta))^2 (Azar et al., 2023), h = (pi_c - ref_c) - (pi_r - ref_r), answer
log-probabilities summed over the scored tokens, averaged over pairs. With rpo_alpha > 0 the
chosen answers' mean token negative log-likelihood is added, times rpo_alpha (RPO, Pang et al.,
2024; TRL's rpo_alpha).
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_ref import Gpt  # noqa: E402


def dpo_loss(pi_c, pi_r, ref_c, ref_r, chosen_tokens, d):
    beta = d["beta"]
    h = (pi_c - ref_c) - (pi_r - ref_r)
    if d["loss"] == "sigmoid":
        loss = (-F.logsigmoid(beta * h)).mean()
    else:
        loss = ((h - 1.0 / (2.0 * beta)) ** 2).mean()
    alpha = d.get("rpo_alpha", 0.0)
    if alpha:
        loss = loss + alpha * (-pi_c.sum() / chosen_tokens.sum())
    return loss


def answer_logps(model, inputs, targets):
    logits, _ = model(inputs)
    logp = logits.log_softmax(-1)
    scored = targets != -100
    picked = logp.gather(2, targets.clamp(min=0)[..., None])[..., 0]
    return (picked * scored).sum(-1)


def parity(folder):
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(1)
    cfg = json.load(open(f"{folder}/config.json"))
    d = json.load(open(f"{folder}/dpo.json"))
    model = Gpt(cfg)
    missing, unexpected = model.load_state_dict(load_file(f"{folder}/model.safetensors"), strict=False)
    missing = [m for m in missing if m not in ("cos", "sin")]
    if missing or unexpected:
        sys.exit(f"weight names differ: missing {missing}, unexpected {unexpected}")
    b = load_file(f"{folder}/batch.safetensors")
    logps = answer_logps(model, b["inputs"], b["targets"])
    n = logps.shape[0] // 2
    lengths = (b["targets"][:n] != -100).sum(-1).float()
    loss = dpo_loss(logps[:n], logps[n:], b["ref_chosen"], b["ref_rejected"], lengths, d)
    loss.backward()
    out = {"loss": loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        out[f"grad.{name}"] = p.grad.contiguous()
    given = b["logps"].clone().requires_grad_(True)
    only = dpo_loss(given[:n], given[n:], b["ref_chosen"], b["ref_rejected"], b["chosen_tokens"], d)
    only.backward()
    out["loss_only"] = only.detach().reshape(1)
    out["grad_logps"] = given.grad
    save_file(out, f"{folder}/ref.safetensors")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "parity":
        parity(sys.argv[2])
    else:
        sys.exit(__doc__)
