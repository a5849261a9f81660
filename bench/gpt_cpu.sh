#!/usr/bin/env bash
# GPT training and generation on the CPU, binarylm against the PyTorch reference
# (tests/python/gpt_ref.py, torch 2.11 from the project venv) at its best — fused attention,
# fused LayerNorm, fused AdamW, and a torch.compile row — same config and threads, under
# bench/harness.py's rules (quiet machine, BENCH_ROUNDS=5 rotated rounds, min/median/max, final
# losses checked within 10 % of each other before a ratio is printed).
#
#   bash bench/gpt_cpu.sh [steps] [threads] [gpt2 steps]   (defaults: 50 steps, 2 threads, 8)
#
# Training: nanoGPT's CPU config (4 layers, 4 heads, 128 wide, block 64, batch 12, vocab 65),
# ms per step of forward + backward + clipping + AdamW, 5 warm-up steps first (torch.compile
# compiles during them); then the same for GPT-2 small (124M parameters, batches of 4 × 128
# tokens, 2 warm-up steps, `gpt2 steps` timed steps; 0 leaves it out). Both sides train on the
# same structured token sequence.
# Generation: tokens/s with and without the KV cache (binarylm only).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../scripts/env.sh
source "$here/../scripts/env.sh"
cd "$BINARYLM_REPO"
steps="${1:-50}"
threads="${2:-2}"
gpt2_steps="${3:-8}"
export OMP_NUM_THREADS="$threads"

# BENCH_SKIP_BUILD=1: use the bench_gpt already built (e.g. by `cargo build --release
# --workspace --examples`; building `-p stages-torch` alone resolves features differently and
# recompiles the crate).
[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release -p stages-torch --example bench_gpt >&2
bin="$CARGO_TARGET_DIR/release/examples/bench_gpt"

"$BINARYLM_VENV/bin/python" bench/gpt_cpu.py "$bin" "$steps" "$threads" tiny
if [ "$gpt2_steps" != 0 ]; then
    "$BINARYLM_VENV/bin/python" bench/gpt_cpu.py "$bin" "$gpt2_steps" "$threads" gpt2
fi
"$bin" generate 255 "$threads"
