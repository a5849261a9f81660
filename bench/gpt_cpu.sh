#!/usr/bin/env bash
# GPT training and generation on the CPU, binarylm against the PyTorch reference
# (tests/python/gpt_ref.py, torch 2.11 from the project venv), same config and threads, one run.
#
#   bash bench/gpt_cpu.sh [steps] [threads]     (defaults: 50 steps, 2 threads)
#
# Training: nanoGPT's CPU config (4 layers, 4 heads, 128 wide, block 64, batch 12, vocab 65),
# ms per step of forward + backward + clipping + AdamW, 5 warm-up steps first.
# Generation: tokens/s with and without the KV cache (binarylm only).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../scripts/env.sh
source "$here/../scripts/env.sh"
cd "$BINARYLM_REPO"
steps="${1:-50}"
threads="${2:-2}"
export OMP_NUM_THREADS="$threads"

cargo build --release -p stages-torch --example bench_gpt >&2
bin="$CARGO_TARGET_DIR/release/examples/bench_gpt"

# Alternate the two implementations for ROUNDS rounds (default 3) and compare medians, so that
# a load spike on this shared machine hits both sides rather than one.
rounds="${ROUNDS:-3}"
results=()
for r in $(seq "$rounds"); do
    ours=$("$bin" train "$steps" "$threads")
    ref=$("$BINARYLM_VENV/bin/python" tests/python/gpt_ref.py bench "$steps" "$threads")
    echo "round $r: binarylm $ours" >&2
    echo "round $r: pytorch  $ref" >&2
    results+=("$ours" "$ref")
done
python3 - "${results[@]}" <<'PY'
import json, statistics, sys
docs = [json.loads(a) for a in sys.argv[1:]]
ours = [d["ms_per_step"] for d in docs[0::2]]
ref = [d["ms_per_step"] for d in docs[1::2]]
o, r = statistics.median(ours), statistics.median(ref)
print(f"train ms/step (median of {len(ours)}): binarylm {o:.2f} {sorted(round(x, 2) for x in ours)}, "
      f"PyTorch {r:.2f} {sorted(round(x, 2) for x in ref)}, PyTorch/binarylm = {r / o:.2f}x")
PY
"$bin" generate 255 "$threads"
