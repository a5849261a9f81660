#!/usr/bin/env bash
# The eval stage against lm-evaluation-harness's `hf` backend (transformers) on the same
# 124M-parameter model (its Hugging Face export) and the same 1,000 four-choice questions: wall
# time and peak memory of each whole command, side by side (BENCHMARKS.md, issue 14).
#
#   bash bench/eval_124m.sh
#
# Builds binarylm (release; BINARYLM_BIN=path uses another build), trains bench/eval_124m.yaml's
# model for two steps and exports it, writes 1,000 questions (fixed seed) about short stories,
# then runs both scorers BENCH_ROUNDS (5) times, order rotated, under bench/harness.py's rules:
# a busy machine is refused (BENCH_ALLOW_BUSY=1 overrides and marks the tables), and both must
# agree on acc and acc_norm before a ratio is printed. Threads: BENCH_THREADS (2) for both.
# One round is several minutes per side on 2 cores. BENCH_SMALL=1 runs the same steps on the
# quickstart's tiny model and 50 questions: a check that the script works, not a figure.
#
# lm_eval's `hf` backend needs transformers and torch, which its own venv (scripts/setup.sh,
# for the API parity test) lacks: the script layers a small venv over it and the project's venv
# (~/.cache/binarylm/bench-lmeval-hf: lm_eval and its datasets from the first, torch 2.11 and
# transformers from the second) and adds accelerate and psutil, which the backend imports.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../scripts/env.sh
source "$here/../scripts/env.sh"
cd "$BINARYLM_REPO"
threads="${BENCH_THREADS:-2}"
if [ -z "${BINARYLM_BIN:-}" ]; then
    cargo build --release --workspace --bins >&2
    BINARYLM_BIN="$CARGO_TARGET_DIR/release/binarylm"
fi

layered="$HOME/.cache/binarylm/bench-lmeval-hf"
if [ ! -x "$layered/bin/python" ] || ! "$layered/bin/python" -c 'import lm_eval, transformers, torch, accelerate' 2>/dev/null; then
    [ -x "$BINARYLM_LMEVAL_VENV/bin/python" ] || { echo "bench: no lm_eval venv: run scripts/setup.sh" >&2; exit 1; }
    rm -rf "$layered"
    python3 -m venv --without-pip "$layered"
    site="$("$layered/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    py="python$("$layered/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    printf '%s\n%s\n' "$BINARYLM_LMEVAL_VENV/lib/$py/site-packages" "$BINARYLM_VENV/lib/$py/site-packages" >"$site/layers.pth"
    "$BINARYLM_VENV/bin/pip" install --quiet --no-deps --target "$site" accelerate==1.12.0 psutil==7.1.3 >&2
fi

work="${WORK:-$BINARYLM_REPO/bench/work/eval_124m}"
mkdir -p "$work"
questions=1000
if [ "${BENCH_SMALL:-0}" = 1 ]; then
    questions=50
    sed 's/model: { preset: gpt2-small, n_layer: 17, block_size: 1024 }/model: { preset: tiny }/' \
        "$here/eval_124m.yaml" >"$work/pipeline.yaml"
else
    cp "$here/eval_124m.yaml" "$work/pipeline.yaml"
fi
python3 - "$work/questions.jsonl" "$questions" <<'PY'
import json, random, sys
# Questions about two-sentence stories; the right answer repeats the story's fact.
rng = random.Random(124)
names = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivy", "Jon"]
places = ["the park", "the barn", "the school", "the shop", "the lake", "the garden", "the kitchen", "the hill"]
things = ["a red key", "a blue lamp", "a small box", "a green ball", "an old map", "a yellow hat"]
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        n, t = rng.choice(names), rng.choice(things)
        p = rng.sample(places, 4)
        q = f"{n} went to {p[0]} with {t}. Later {n} was still there. Where is {n}?"
        choices = [f"{n} is in {x}." for x in p]
        order = list(range(4))
        rng.shuffle(order)
        f.write(json.dumps({"question": q, "choices": [choices[k] for k in order], "answer": order.index(0)}) + "\n")
PY
(cd "$work" && "$BINARYLM_BIN" run --threads "$threads" -q >&2)
python3 "$here/eval_124m.py" "$BINARYLM_BIN" "$work" "$layered/bin/python" "$threads" | tee "$work/results.md"
