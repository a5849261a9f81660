#!/usr/bin/env bash
# GPT-2 small training throughput and MFU on a GPU: 100 steps at batch 16 x 1024 in bf16.
#
# Build here, carry the binary, run there (at most ~5 minutes on an H100/H200):
#   cargo build --release -p stages-torch --bin binarylm-torch
#   mkdir -p bench/bin && cp "$CARGO_TARGET_DIR/release/binarylm-torch" bench/bin/
#   # on the GPU machine (same torch 2.11 in its own python), with bench/bin carried:
#   bash bench/gpu_gpt2.sh bench/bin/binarylm-torch
#
# Token data is random (vocab 50304, a multiple of 64 as nanoGPT pads GPT-2's 50257): speed and
# MFU do not depend on the text. Prints the last metrics lines and summary.json, and copies
# them to $OUT when set.
#
# A smoke test of the script itself on a CPU (minutes, not a measurement):
#   BENCH_DEVICE=cpu BENCH_PRESET=tiny BENCH_STEPS=3 BENCH_BATCH=2 bash bench/gpu_gpt2.sh <bin>
set -euo pipefail
bin="${1:?usage: gpu_gpt2.sh <path to binarylm-torch>}"
bin="$(realpath "$bin")"
py="${PYTHON:-python3}"
torch_lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/shards"
"$py" - "$work/shards" <<'PY'
import json, os, sys, torch
d = sys.argv[1]
g = torch.Generator().manual_seed(0)
splits = {}
for split, n in (("train", 20_000_000), ("val", 200_000)):
    ids = torch.randint(0, 50304, (n,), generator=g, dtype=torch.int32).to(torch.uint16)
    with open(os.path.join(d, f"{split}.bin"), "wb") as f:
        f.write(bytes(ids.untyped_storage()))
    # The token-shard contract (stages/tokenizer/src/shards.rs): one document spanning the
    # split, its u64 offsets in .docs, and the split's entry in shards.json.
    with open(os.path.join(d, f"{split}.docs"), "wb") as f:
        f.write((0).to_bytes(8, "little") + n.to_bytes(8, "little"))
    splits[split] = {"tokens": n, "documents": 1, "bytes": 2 * n, "bytes_per_token": 2.0,
                     "unigram_entropy_nats": float(torch.log(torch.tensor(50304.0)))}
json.dump({"format": 1, "dtype": "u16", "vocab_size": 50304, "eos_id": 0, "bos_id": None,
           "pad_id": None, "splits": splits}, open(os.path.join(d, "shards.json"), "w"))
open(os.path.join(d, "tokenizer.json"), "w").write("{}")
PY
cat > "$work/job.json" <<JSON
{"format": 1, "kind": "pretrain", "stage": "gpt2", "seed": 1, "threads": 8,
 "fingerprint": "bench", "resumed": false,
 "inputs": {"tok": "$work/shards"}, "out_dir": "$work/out", "work_dir": "$work/work",
 "params": {"tokenizer": "tok", "device": "${BENCH_DEVICE:-cuda}",
   "model": {"preset": "${BENCH_PRESET:-gpt2-small}"},
   "train": {"steps": ${BENCH_STEPS:-100}, "batch_size": ${BENCH_BATCH:-16}, "grad_accum": 1, "lr": 6e-4, "min_lr": 6e-5,
             "warmup_steps": 10, "eval_every": 1000, "eval_batches": 2,
             "checkpoint_every": 1000, "log_every": 10, "precision": "${BENCH_PRECISION:-bf16}"}}}
JSON
"$bin" doctor
time "$bin" run-stage "$work/job.json" > "$work/events.jsonl"
tail -n 5 "$work/work/metrics.jsonl"
cat "$work/out/summary.json"
if [ -n "${OUT:-}" ]; then
    cp "$work/work/metrics.jsonl" "$work/out/summary.json" "$OUT/"
fi
