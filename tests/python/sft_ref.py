"""PyTorch references for supervised fine-tuning, written independently of binarylm's code.

Usage:
    sft_ref.py parity <dir>   read config.json, model.safetensors, examples.json,
                              adapters.safetensors, lora.json and batch.safetensors from <dir>;
                              write ref.safetensors with
                              - "loss": the mean next-token cross-entropy over the assistant
                                tokens of the examples, each example run ALONE through the
                                model (no packing, no masks): what binarylm's packed rows with
                                their block-diagonal mask and restarting positions must equal;
                              - "lora_logits": logits of batch["x"] with the LoRA adapters
                                applied as separate low-rank branches (never merged) and the
                                trained embedding rows put in the token table, to compare
                                with binarylm's merged model.

The model is gpt_ref.py's plain GPT. The adapters follow the LoRA paper: a layer's output gains
(alpha / r) * (x @ A.T) @ B.T; on the fused attention projection an adapter on q, k or v adds to
that part's rows only.
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_ref import Gpt  # noqa: E402


def load_model(folder):
    from safetensors.torch import load_file

    cfg = json.load(open(f"{folder}/config.json"))
    model = Gpt(cfg)
    missing, unexpected = model.load_state_dict(load_file(f"{folder}/model.safetensors"), strict=False)
    missing = [m for m in missing if m not in ("cos", "sin")]
    if missing or unexpected:
        sys.exit(f"weight names differ: missing {missing}, unexpected {unexpected}")
    return cfg, model.eval()


def assistant_loss(model, examples):
    """Sum of -log p over assistant targets, example by example, divided by their count."""
    total, count = 0.0, 0
    for ex in examples:
        tokens = torch.tensor(ex["tokens"], dtype=torch.long)
        is_target = torch.tensor(ex["targets"], dtype=torch.bool)
        with torch.no_grad():
            logits, _ = model(tokens[None, :-1])
        logp = F.log_softmax(logits[0].double(), dim=-1)
        picked = logp.gather(1, tokens[1:, None])[:, 0]
        keep = is_target[1:]
        total += -picked[keep].sum().item()
        count += int(keep.sum())
    return total / count


def add_lora(cfg, model, adapters, lora):
    """Wraps the adapted linear layers so each adds its low-rank branch to its rows, and puts
    the trained embedding rows into the token table (which a tied head reads too)."""
    scale = lora["alpha"] / lora["r"]
    if "tok_emb.rows" in adapters:
        with torch.no_grad():
            ids = torch.tensor(lora["token_ids"], dtype=torch.long)
            model.tok_emb.weight[ids] = adapters["tok_emb.rows"]
    hd = cfg["n_embd"] // cfg["n_head"]
    q_rows, kv_rows = cfg["n_head"] * hd, cfg["n_kv_head"] * hd
    rows = {"q": (0, q_rows), "k": (q_rows, kv_rows), "v": (q_rows + kv_rows, kv_rows)}

    def wrap(layer, branches):
        base = layer.forward

        def forward(x):
            y = base(x)
            extra = torch.zeros_like(y)
            for (start, width), a, b in branches:
                extra[..., start:start + width] += scale * (x @ a.t()) @ b.t()
            return y + extra

        layer.forward = forward

    for i, block in enumerate(model.blocks):
        prefix = f"blocks.{i}"
        qkv = []
        for part in ("q", "k", "v"):
            a = adapters.get(f"{prefix}.attn.{part}.lora_a")
            if a is not None:
                qkv.append((rows[part], a, adapters[f"{prefix}.attn.{part}.lora_b"]))
        if qkv:
            wrap(block.attn.qkv, qkv)
        a = adapters.get(f"{prefix}.attn.o.lora_a")
        if a is not None:
            wrap(block.attn.proj, [((0, cfg["n_embd"]), a, adapters[f"{prefix}.attn.o.lora_b"])])
        for name in ("fc", "gate", "up", "proj"):
            a = adapters.get(f"{prefix}.mlp.{name}.lora_a")
            if a is not None:
                layer = getattr(block.mlp, name)
                b = adapters[f"{prefix}.mlp.{name}.lora_b"]
                wrap(layer, [((0, layer.out_features), a, b)])


def parity(folder):
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(1)
    cfg, model = load_model(folder)
    examples = json.load(open(f"{folder}/examples.json"))
    loss = assistant_loss(model, examples)
    adapters = load_file(f"{folder}/adapters.safetensors")
    add_lora(cfg, model, adapters, json.load(open(f"{folder}/lora.json")))
    x = load_file(f"{folder}/batch.safetensors")["x"]
    with torch.no_grad():
        logits, _ = model(x)
    save_file(
        {"loss": torch.tensor([loss], dtype=torch.float64), "lora_logits": logits.contiguous()},
        f"{folder}/ref.safetensors",
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "parity":
        parity(sys.argv[2])
    else:
        sys.exit(__doc__)
