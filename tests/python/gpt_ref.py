"""A plain PyTorch GPT, written independently of binarylm's tch model, to check it.

Usage:
    gpt_ref.py parity <dir>     read config.json, model.safetensors, batch.safetensors and
                                train.json from <dir>; write ref.safetensors with the initial
                                logits and the loss before each of a few AdamW steps.
    gpt_ref.py loglik <dir>     read config.json, model.safetensors and requests.json
                                (context/continuation token lists); write ref.json with each
                                continuation's summed log-probability and greedy flag.
    gpt_ref.py bench <steps> <threads> [eager|compile] [tiny|gpt2]
                                time training steps of nanoGPT's CPU config (4 layers, 4 heads,
                                128 wide, block 64, batch 12, vocab 65) or GPT-2 small (4 × 128
                                tokens a batch) with fused kernels (and torch.compile) and print
                                ms/step and the final loss.

Attention is written out (q·kᵀ/√d, causal mask, softmax, ·v) and grouped-query heads are
expanded with repeat_interleave, rather than calling scaled_dot_product_attention, so the two
implementations share as little as possible.
"""

import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The parity check writes attention and normalisation out by hand; the benchmark uses the
# fused kernels (scaled_dot_product_attention, layer_norm), as nanoGPT does, so the comparison
# is against PyTorch at its best.
USE_SDPA = False
FUSED_NORM = False


class Norm(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.kind = cfg["norm"]
        self.eps = cfg["norm_eps"]
        self.weight = nn.Parameter(torch.ones(cfg["n_embd"]))
        has_bias = cfg["bias"] and self.kind == "layernorm"
        self.bias = nn.Parameter(torch.zeros(cfg["n_embd"])) if has_bias else None

    def forward(self, x):
        if FUSED_NORM:
            if self.kind == "layernorm":
                return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        if self.kind == "layernorm":
            mean = x.mean(-1, keepdim=True)
            var = ((x - mean) ** 2).mean(-1, keepdim=True)
            y = (x - mean) / torch.sqrt(var + self.eps) * self.weight
            return y + self.bias if self.bias is not None else y
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg):
    d = cfg["n_embd"] // cfg["n_head"]
    inv = cfg["rope_theta"] ** (-torch.arange(0, d // 2, dtype=torch.float32) * 2.0 / d)
    ang = torch.arange(cfg["block_size"], dtype=torch.float32)[:, None] * inv[None, :]
    return ang.cos(), ang.sin()


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.nh, self.nkv = cfg["n_head"], cfg["n_kv_head"]
        self.hd = cfg["n_embd"] // self.nh
        out = (self.nh + 2 * self.nkv) * self.hd
        self.qkv = nn.Linear(cfg["n_embd"], out, bias=cfg["bias"])
        self.proj = nn.Linear(cfg["n_embd"], cfg["n_embd"], bias=cfg["bias"])
        self.rope = cfg["positions"] == "rope"

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split([self.nh * self.hd, self.nkv * self.hd, self.nkv * self.hd], 2)
        q = q.view(B, T, self.nh, self.hd).transpose(1, 2)  # (B, nh, T, hd)
        k = k.view(B, T, self.nkv, self.hd).transpose(1, 2)  # (B, nkv, T, hd)
        v = v.view(B, T, self.nkv, self.hd).transpose(1, 2)
        if self.rope:
            q, k = rotate(q, cos[:T], sin[:T]), rotate(k, cos[:T], sin[:T])
        if USE_SDPA:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.nh != self.nkv)
            return self.proj(y.transpose(1, 2).reshape(B, T, C))
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y)


class Mlp(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, H, b = cfg["n_embd"], cfg["mlp_hidden"], cfg["bias"]
        self.kind = cfg["mlp"]
        if self.kind == "gelu":
            self.fc = nn.Linear(C, H, bias=b)
        else:
            self.gate = nn.Linear(C, H, bias=b)
            self.up = nn.Linear(C, H, bias=b)
        self.proj = nn.Linear(H, C, bias=b)

    def forward(self, x):
        if self.kind == "gelu":
            return self.proj(F.gelu(self.fc(x)))
        return self.proj(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1, self.attn = Norm(cfg), Attention(cfg)
        self.norm2, self.mlp = Norm(cfg), Mlp(cfg)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class Gpt(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        if cfg["positions"] == "learned":
            self.pos_emb = nn.Embedding(cfg["block_size"], cfg["n_embd"])
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg["n_layer"]))
        self.norm_f = Norm(cfg)
        if not cfg["tied_head"]:
            self.lm_head = nn.Linear(cfg["n_embd"], cfg["vocab_size"], bias=False)
        cos, sin = rope_tables(cfg)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.tok_emb(idx)
        if self.cfg["positions"] == "learned":
            x = x + self.pos_emb(torch.arange(T))
        for block in self.blocks:
            x = block(x, self.cos, self.sin)
        x = self.norm_f(x)
        w = self.tok_emb.weight if self.cfg["tied_head"] else self.lm_head.weight
        logits = x @ w.t()
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
        return logits, loss


def optimizer(model, t, fused=False):
    decay = [p for _, p in sorted(model.named_parameters()) if p.dim() >= 2]
    rest = [p for _, p in sorted(model.named_parameters()) if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": t["weight_decay"]},
        {"params": rest, "weight_decay": 0.0},
    ]
    # Parity: the for-each-parameter update, which binarylm's AdamW mirrors step by step.
    # Benchmark: the fused kernel, PyTorch's fastest AdamW on the CPU.
    kind = {"fused": True} if fused else {"foreach": False}
    return torch.optim.AdamW(groups, lr=t["lr"], betas=(t["beta1"], t["beta2"]), eps=t["eps"], **kind)


def parity(folder):
    from safetensors.torch import load_file, save_file

    cfg = json.load(open(f"{folder}/config.json"))
    t = json.load(open(f"{folder}/train.json"))
    torch.set_num_threads(1)
    model = Gpt(cfg)
    missing, unexpected = model.load_state_dict(load_file(f"{folder}/model.safetensors"), strict=False)
    missing = [m for m in missing if m not in ("cos", "sin")]
    if missing or unexpected:
        sys.exit(f"weight names differ: missing {missing}, unexpected {unexpected}")
    batch = load_file(f"{folder}/batch.safetensors")
    x, y = batch["x"], batch["y"]
    with torch.no_grad():
        logits, _ = model(x)
    opt = optimizer(model, t)
    losses = []
    for _ in range(t["steps"]):
        opt.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        opt.step()
    with torch.no_grad():
        _, loss = model(x, y)
    losses.append(loss.item())
    save_file(
        {"logits": logits.contiguous(), "losses": torch.tensor(losses, dtype=torch.float64)},
        f"{folder}/ref.safetensors",
    )


def loglik(folder):
    """Scores each request of requests.json alone (no batching, no padding): the sum of the
    continuation's log-probabilities and whether each of its tokens was the argmax, on the last
    block_size + 1 tokens of context + continuation."""
    from safetensors.torch import load_file

    cfg = json.load(open(f"{folder}/config.json"))
    torch.set_num_threads(1)
    model = Gpt(cfg)
    model.load_state_dict(load_file(f"{folder}/model.safetensors"), strict=False)
    out = []
    for r in json.load(open(f"{folder}/requests.json")):
        full = (r["context"] + r["continuation"])[-(cfg["block_size"] + 1):]
        n_cont = min(len(r["continuation"]), len(full) - 1)
        x = torch.tensor([full[:-1]])
        with torch.no_grad():
            logits, _ = model(x)
        logp = torch.log_softmax(logits[0].double(), dim=-1)
        targets = torch.tensor(full[1:])
        rows = range(len(full) - 1 - n_cont, len(full) - 1)
        total = sum(logp[i, targets[i]].item() for i in rows)
        greedy = all(int(logp[i].argmax()) == int(targets[i]) for i in rows)
        out.append({"logprob": total, "greedy": greedy})
    json.dump(out, open(f"{folder}/ref.json", "w"))


def bench_token(i):
    """Token i of the benchmark's data (the formula of binarylm's examples/bench_gpt.rs)."""
    return (i % 13 * 5 + i // 13 % 7 * 3) % 65


def gpt2_init(model, n_layer):
    """GPT-2's initialisation, as nanoGPT and binarylm use it (PyTorch's module defaults give
    the tied embedding unit variance, and the first steps a loss far above ln V): weights
    N(0, 0.02), the projections into the residual stream N(0, 0.02/sqrt(2·n_layer)), biases 0."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
                p.normal_(0.0, std)


BENCH_MODELS = {
    # (shape, batch, sequence length, untimed warm-up steps, learning rate)
    # nanoGPT's CPU config, batches of 12 × 64 tokens.
    "tiny": (dict(vocab_size=65, n_layer=4, n_head=4, n_kv_head=4, n_embd=128, block_size=64,
                  mlp_hidden=512), 12, 64, 5, 1e-3),
    # GPT-2 small (124M, vocab padded to 50304), batches of 4 × 128 tokens.
    "gpt2": (dict(vocab_size=50304, n_layer=12, n_head=12, n_kv_head=12, n_embd=768,
                  block_size=1024, mlp_hidden=3072), 4, 128, 2, 3e-4),
}


def bench(steps, threads, variant="eager", model_name="tiny"):
    """ms per training step of `model_name` (BENCH_MODELS; binarylm's examples/bench_gpt.rs
    has the same two) with PyTorch at its best: fused attention, fused LayerNorm, fused AdamW;
    `compile` also runs the model through torch.compile (its compilation happens in the warm-up
    steps, which are not timed)."""
    global USE_SDPA, FUSED_NORM
    USE_SDPA = FUSED_NORM = True
    torch.manual_seed(1337)
    torch.set_num_threads(threads)
    shape, batch, seq, warmup, lr = BENCH_MODELS[model_name]
    cfg = dict(shape, positions="learned", norm="layernorm", mlp="gelu", tied_head=True,
               bias=True, dropout=0.0, rope_theta=10000.0, norm_eps=1e-5)
    model = Gpt(cfg)
    gpt2_init(model, cfg["n_layer"])
    t = dict(lr=lr, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8)
    opt = optimizer(model, t, fused=True)
    forward = torch.compile(model) if variant == "compile" else model
    data = torch.tensor([bench_token(i) for i in range(100_000)])

    phases = [0.0, 0.0, 0.0]  # forward + backward, clipping, AdamW (ms, summed)

    def step(timed):
        ix = torch.randint(len(data) - seq - 1, (batch,))
        x = torch.stack([data[i:i + seq] for i in ix])
        y = torch.stack([data[i + 1:i + seq + 1] for i in ix])
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = forward(x, y)
        loss.backward()
        t1 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if timed:
            for i, d in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                phases[i] += d * 1000
        return loss.item()

    for _ in range(warmup):
        step(False)
    start = time.perf_counter()
    for _ in range(steps):
        last = step(True)
    ms = (time.perf_counter() - start) * 1000 / steps
    fb, clip, adamw = (p / steps for p in phases)
    print(json.dumps({"impl": f"pytorch-{variant}", "model": model_name, "ms_per_step": ms,
                      "steps": steps, "threads": threads, "final_loss": last,
                      "phases_ms": {"forward_backward": fb, "clip": clip, "adamw": adamw}}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "parity":
        parity(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "loglik":
        loglik(sys.argv[2])
    elif len(sys.argv) in (4, 5, 6) and sys.argv[1] == "bench":
        bench(int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:])
    else:
        sys.exit(__doc__)
