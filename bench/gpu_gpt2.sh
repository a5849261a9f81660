#!/usr/bin/env bash
# GPT-2 small training throughput and MFU on a GPU, binarylm against PyTorch in nanoGPT's
# configuration (bench/gpu_peer.py: flash attention, fused AdamW, bf16 autocast) with and
# without torch.compile. Rounds alternate the sides; final losses must agree before a ratio is
# printed (bench/gpu_gpt2.py says how).
#
# Build here, carry the binary, run there (about 6 minutes on an H200):
#   cargo build --release -p stages-torch --bin binarylm-torch
#   mkdir -p bench/bin && cp "$CARGO_TARGET_DIR/release/binarylm-torch" bench/bin/
#   # on the GPU machine (torch 2.11 in its python), with bench/bin carried:
#   bash bench/gpu_gpt2.sh bench/bin/binarylm-torch
#
# Knobs: BENCH_ROUNDS (5), BENCH_STEPS (60), BENCH_BATCH (16), BENCH_PRECISION (bf16),
# BENCH_COMPILE (1; 0 leaves the torch.compile row out). Results also go to $OUT when set.
set -euo pipefail
bin="${1:?usage: gpu_gpt2.sh <path to binarylm-torch>}"
py="${PYTHON:-python3}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
torch_lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1
"$bin" doctor
exec "$py" "$here/gpu_gpt2.py" "$bin"
