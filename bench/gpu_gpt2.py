"""GPT-2 small on a GPU: binarylm against PyTorch in nanoGPT's configuration, side by side.

Run through bench/gpu_gpt2.sh (which points the binary at this machine's libtorch). Each round
runs every side once, in an order that rotates every round; a side's figure for a round is the
median tokens/s of its log windows after the first (the first holds cuBLAS set-up and, for
`torch.compile`, the compilation). Before any ratio is printed the script checks that each side
learned the same thing: the token stream is i.i.d. Zipf over the vocabulary, so a correct model
drives its loss from ln V (10.83) towards the stream's entropy, and the final losses of all
sides must agree within LOSS_TOLERANCE. It exits non-zero when they do not, and refuses to start
on a machine busier than its cores.
"""

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

VOCAB = 50304
LOSS_TOLERANCE = 0.03  # relative, between the final training losses of any two sides
HERE = os.path.dirname(os.path.abspath(__file__))


def make_shards(d, zipf_s=1.1, n_train=20_000_000, n_val=200_000, seed=0):
    """Token shards meeting the token-shard contract (stages/tokenizer/src/shards.rs)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, VOCAB + 1) ** zipf_s
    p /= p.sum()
    entropy = float(-(p * np.log(p)).sum())
    splits = {}
    for split, n in (("train", n_train), ("val", n_val)):
        ids = rng.choice(VOCAB, size=n, p=p).astype(np.uint16)
        ids.tofile(os.path.join(d, f"{split}.bin"))
        with open(os.path.join(d, f"{split}.docs"), "wb") as f:
            f.write((0).to_bytes(8, "little") + n.to_bytes(8, "little"))
        splits[split] = {"tokens": n, "documents": 1, "bytes": 2 * n, "bytes_per_token": 2.0,
                         "unigram_entropy_nats": entropy}
    json.dump({"format": 1, "dtype": "u16", "vocab_size": VOCAB, "eos_id": 0, "bos_id": None,
               "pad_id": None, "splits": splits}, open(os.path.join(d, "shards.json"), "w"))
    open(os.path.join(d, "tokenizer.json"), "w").write("{}")
    return entropy


def run_ours(binary, shards, work, steps, batch, precision):
    out, wd = os.path.join(work, "out"), os.path.join(work, "work")
    job = {"format": 2, "kind": "pretrain", "stage": "gpt2", "seed": 1, "threads": 8,
           "fingerprint": "bench", "resumed": False, "inputs": {"tok": shards},
           "out_dir": out, "work_dir": wd,
           "params": {"kind": "pretrain", "tokenizer": "tok", "device": os.environ.get("BENCH_DEVICE", "cuda"),
                      "model": {"preset": os.environ.get("BENCH_PRESET", "gpt2-small")},
                      "train": {"steps": steps, "batch_size": batch, "grad_accum": 1,
                                "lr": 6e-4, "min_lr": 6e-5, "warmup_steps": 10,
                                "eval_every": 100000, "eval_batches": 2,
                                "checkpoint_every": 100000, "log_every": 10,
                                "precision": precision}}}
    path = os.path.join(work, "job.json")
    json.dump(job, open(path, "w"))
    r = subprocess.run([binary, "run-stage", path], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"binarylm-torch failed ({r.returncode}):\n{r.stderr[-3000:]}")
    # The work directory's metrics log keeps each window's throughput (the artifact's does not).
    lines = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
    train = [l for l in lines if l.get("tokens_per_s")]
    return [l["tokens_per_s"] for l in train], train[-1]["loss"], [l.get("mfu") for l in train]


def run_peer(shards, steps, batch, compile_):
    cmd = [sys.executable, os.path.join(HERE, "gpu_peer.py"), shards, "--steps", str(steps),
           "--batch", str(batch)] + (["--compile"] if compile_ else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"gpu_peer.py failed ({r.returncode}):\n{r.stderr[-3000:]}")
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    windows = [l for l in lines if "tokens_per_s" in l]
    return [l["tokens_per_s"] for l in windows], windows[-1]["loss"], [l["mfu"] for l in windows]


def main():
    binary = os.path.realpath(sys.argv[1])
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    steps = int(os.environ.get("BENCH_STEPS", "60"))
    batch = int(os.environ.get("BENCH_BATCH", "16"))
    precision = os.environ.get("BENCH_PRECISION", "bf16")
    sides = ["binarylm", "pytorch", "pytorch-compile"]
    if os.environ.get("BENCH_COMPILE", "1") == "0":
        sides.remove("pytorch-compile")
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load > cores:
        sys.exit(f"load average {load:.1f} is above the {cores} cores: not measuring")
    out_dir = os.environ.get("OUT")
    results = {s: {"tps": [], "loss": [], "mfu": []} for s in sides}
    with tempfile.TemporaryDirectory() as tmp:
        shards = os.path.join(tmp, "shards")
        os.makedirs(shards)
        entropy = make_shards(shards)
        print(f"token stream: i.i.d. Zipf(1.1) over {VOCAB} ids, entropy {entropy:.3f} nats "
              f"(a model that learns nothing stays at ln V = {math.log(VOCAB):.3f})", flush=True)
        for r in range(rounds):
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            for side in order:
                work = tempfile.mkdtemp(dir=tmp)
                if side == "binarylm":
                    tps, loss, mfu = run_ours(binary, shards, work, steps, batch, precision)
                else:
                    tps, loss, mfu = run_peer(shards, steps, batch, side == "pytorch-compile")
                # The first window holds start-up (cuBLAS, compilation): left out.
                med = statistics.median(tps[1:] if len(tps) > 1 else tps)
                results[side]["tps"].append(med)
                results[side]["loss"].append(loss)
                results[side]["mfu"].append(statistics.median(
                    [m for m in (mfu[1:] if len(mfu) > 1 else mfu) if m is not None] or [0.0]))
                print(f"round {r + 1} {side:16s} {med:10.0f} tok/s  final loss {loss:.4f}",
                      flush=True)
            if out_dir:
                json.dump(results, open(os.path.join(out_dir, "gpu_gpt2.json"), "w"), indent=1)

    print(f"\nload average at start {load:.2f} on {cores} cores; {rounds} rounds, "
          f"{steps} steps of {batch}x1024 tokens each, {precision}")
    print(f"{'side':16s} {'tok/s min':>10s} {'median':>10s} {'max':>10s} {'MFU med':>8s} "
          f"{'final loss':>10s}")
    for s in sides:
        t = results[s]["tps"]
        print(f"{s:16s} {min(t):10.0f} {statistics.median(t):10.0f} {max(t):10.0f} "
              f"{100 * statistics.median(results[s]['mfu']):7.1f}% "
              f"{statistics.median(results[s]['loss']):10.4f}")
    finals = {s: statistics.median(results[s]["loss"]) for s in sides}
    worst = max(abs(a - b) / min(a, b) for a in finals.values() for b in finals.values())
    learned = all(v < math.log(VOCAB) - 1.0 for v in finals.values())
    if worst > LOSS_TOLERANCE or not learned:
        print(f"OUTPUTS DISAGREE: final losses {finals} (spread {100 * worst:.1f} %, "
              f"tolerance {100 * LOSS_TOLERANCE:.0f} %; each must be below ln V - 1)")
        sys.exit(1)
    print(f"final losses agree within {100 * worst:.2f} % (tolerance {100 * LOSS_TOLERANCE:.0f} %)")
    ours = statistics.median(results["binarylm"]["tps"])
    peers = [s for s in sides if s != "binarylm"]
    best = max(peers, key=lambda s: statistics.median(results[s]["tps"]))
    ratio = ours / statistics.median(results[best]["tps"])
    word = "faster" if ratio >= 1 else "slower"
    print(f"binarylm / {best} (the peer's best row): {ratio:.2f}x ({word})")


if __name__ == "__main__":
    main()
