"""The PyTorch peer of bench/gpu_gpt2.sh: GPT-2 small trained in nanoGPT's GPU configuration.

Written here (not nanoGPT's file), but with everything nanoGPT's train.py turns on for a GPU run,
since the peer must run at its best normal configuration:
- bf16 autocast for the forward pass, TF32 allowed for the fp32 matrix products;
- `F.scaled_dot_product_attention(is_causal=True)`, which dispatches to the flash kernel;
- the fused `nn.LayerNorm`, GELU (erf), tied input/output embeddings, biases, learned positions;
- AdamW with `fused=True` (decay on matrices and embeddings only), warmup + cosine, clip 1.0;
- batches sliced from a memory-mapped uint16 file, pinned and copied without blocking;
- optionally `torch.compile(model)` (`--compile`), reported as its own row.

Usage: gpu_peer.py <shards dir> --steps N --batch B [--compile] [--log-every 10]
Prints one JSON line per log window ({"step", "loss", "tokens_per_s"}) and a final summary line.
"""

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, N_LAYER, N_HEAD, N_EMBD, BLOCK = 50304, 12, 12, 768, 1024
PEAK_FLOPS = 989e12  # H100/H200 dense bf16, as in binarylm's metrics.rs


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(N_EMBD)
        self.qkv = nn.Linear(N_EMBD, 3 * N_EMBD)
        self.attn_proj = nn.Linear(N_EMBD, N_EMBD)
        self.ln2 = nn.LayerNorm(N_EMBD)
        self.fc = nn.Linear(N_EMBD, 4 * N_EMBD)
        self.mlp_proj = nn.Linear(4 * N_EMBD, N_EMBD)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)
        v = v.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.fc(self.ln2(x))))


class Gpt2(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, N_EMBD)
        self.wpe = nn.Embedding(BLOCK, N_EMBD)
        self.blocks = nn.ModuleList(Block() for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD)
        # GPT-2 init: N(0, 0.02²), residual projections N(0, (0.02/√(2L))²), zero biases.
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * N_LAYER) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied head
        return F.cross_entropy(logits.float().view(-1, VOCAB), targets.view(-1))

    def flops_per_token(self):
        # nanoGPT's estimate: 6N + 12·L·H·Q·T, N without the position table.
        n = sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()
        return 6 * n + 12 * N_LAYER * N_HEAD * (N_EMBD // N_HEAD) * BLOCK


def lr_at(step, steps, lr=6e-4, min_lr=6e-5, warmup=10):
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shards")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = "cuda"
    data = np.memmap(os.path.join(a.shards, "train.bin"), dtype=np.uint16, mode="r")
    gen = np.random.default_rng(a.seed)

    def batch():
        ix = gen.integers(0, len(data) - BLOCK - 1, a.batch)
        x = torch.from_numpy(np.stack([data[i:i + BLOCK] for i in ix]).astype(np.int64))
        y = torch.from_numpy(np.stack([data[i + 1:i + 1 + BLOCK] for i in ix]).astype(np.int64))
        return (x.pin_memory().to(dev, non_blocking=True),
                y.pin_memory().to(dev, non_blocking=True))

    model = Gpt2().to(dev)
    fpt = model.flops_per_token()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    step_model = torch.compile(model) if a.compile else model

    tokens_per_step = a.batch * BLOCK
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    window_start = t0
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps)
        x, y = batch()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        done = step + 1
        if done % a.log_every == 0 or done == a.steps:
            lv = loss.item()  # waits for the device, as binarylm's log steps do
            now = time.perf_counter()
            steps_in_window = a.log_every if done % a.log_every == 0 else done % a.log_every
            tps = steps_in_window * tokens_per_step / (now - window_start)
            window_start = now
            print(json.dumps({"step": done, "loss": lv, "tokens_per_s": tps,
                              "mfu": fpt * tps / PEAK_FLOPS}), flush=True)
    print(json.dumps({"summary": True, "impl": "pytorch-compile" if a.compile else "pytorch",
                      "steps": a.steps, "final_loss": lv, "flops_per_token": fpt,
                      "elapsed_s": time.perf_counter() - t0,
                      "torch": torch.__version__,
                      "device": torch.cuda.get_device_name(0)}), flush=True)


if __name__ == "__main__":
    main()
