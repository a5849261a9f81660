#!/usr/bin/env bash
# binarylm's int8/int4 against llama.cpp's Q8_0/Q4_0 of the same model: size, bits per byte on
# the val split, decode tokens/s. The model is the quickstart's (bench/export_llama_cpp.yaml).
#
#   bash bench/export_llama_cpp.sh            (release build; ROUNDS=5 decode rounds, 2 threads)
#   SPEED=0 BINARYLM_BIN=path/to/binarylm bash bench/export_llama_cpp.sh   (sizes and bits per
#                                             byte only, any build: they do not depend on it)
#
# Both sides score the same documents the same way (each after <|eos|>, every token once, in
# windows of the context); the script checks that llama.cpp's f32 file scores within 0.5 % of
# binarylm's own model before it prints anything else.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../scripts/env.sh
source "$here/../scripts/env.sh"
cd "$BINARYLM_REPO"
rounds="${ROUNDS:-5}"
threads="${THREADS:-2}"
speed="${SPEED:-1}"
if [ -z "${BINARYLM_BIN:-}" ]; then
    cargo build --release --workspace --bins >&2
    BINARYLM_BIN="$CARGO_TARGET_DIR/release/binarylm"
fi
work="${WORK:-$BINARYLM_REPO/bench/.export_llama_cpp}"
mkdir -p "$work"
cp "$here/export_llama_cpp.yaml" "$work/pipeline.yaml"
cd "$work"
"$BINARYLM_BIN" run pipeline.yaml --threads "$threads" >&2
path() { "$BINARYLM_BIN" show "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["path"])'; }
metrics() { "$BINARYLM_BIN" show "$1" --json | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["metrics"]))'; }
decode() { # binarylm's greedy decode tokens/s of a model stage, from generate's timing line
    "$BINARYLM_BIN" generate "$1" -n 56 --temperature 0 --device cpu 2>&1 >/dev/null |
        sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p'
}
tok="$(path tok)"
n=$((speed == 1 ? rounds : 0))
declare -A llama ours_speed
for f in f32 f16 q8_0 q4_0; do
    llama[$f]="$(node "$here/llama_cpp_bpb.mjs" "$(path "gguf_$f")/model.gguf" "$tok" 56 "$n" "$threads")"
    echo "llama.cpp $f: ${llama[$f]}" >&2
done
for s in base q8 q4; do
    ours_speed[$s]=""
    for _ in $(seq "$n"); do ours_speed[$s]+="$(decode "$s") "; done
done
python3 - "$(metrics q8)" "$(metrics q4)" "${llama[f32]}" "${llama[f16]}" "${llama[q8_0]}" "${llama[q4_0]}" \
    "$(stat -c %s "$(path gguf_f32)/model.gguf")" "$(stat -c %s "$(path gguf_q8_0)/model.gguf")" \
    "$(stat -c %s "$(path gguf_q4_0)/model.gguf")" "$(stat -c %s "$(path gguf_f16)/model.gguf")" \
    "${ours_speed[base]}" "${ours_speed[q8]}" "${ours_speed[q4]}" <<'PY'
import json, statistics, sys
q8, q4, l32, l16, l8, l4 = (json.loads(a) for a in sys.argv[1:7])
s32, s8, s4, s16 = (int(a) for a in sys.argv[7:11])
speeds = [[float(x) for x in a.split()] for a in sys.argv[11:14]]
src = q8["bits_per_byte_source"]
gap = abs(l32["bits_per_byte"] - src) / src
if gap > 0.005:
    sys.exit(f"llama.cpp's f32 file scores {l32['bits_per_byte']:.5f} bits/byte, binarylm {src:.5f}: not the same computation")
def med(xs):
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}–{max(xs):.0f})" if xs else "not measured"
def row(name, size, bpb, tps):
    print(f"| {name} | {size:.3f} | {bpb:.5f} | {100 * (bpb - src) / src:+.2f} % | {tps} |")
print(f"bits per byte of the f32 model: binarylm {src:.5f}, llama.cpp f32 {l32['bits_per_byte']:.5f} (gap {100 * gap:.3f} %)")
print("| model | size ratio | bits per byte | vs f32 | decode tokens/s, median (min–max) |")
print("|---|---:|---:|---:|---:|")
row("binarylm f32", 1.0, src, med(speeds[0]))
row("binarylm int8 (per channel)", q8["size_ratio"], q8["bits_per_byte"], med(speeds[1]))
row("binarylm int4 (G = 64)", q4["size_ratio"], q4["bits_per_byte"], med(speeds[2]))
row("llama.cpp f32", 1.0, l32["bits_per_byte"], med(l32["tokens_per_s"]))
row("llama.cpp f16", s16 / s32, l16["bits_per_byte"], med(l16["tokens_per_s"]))
row("llama.cpp Q8_0", s8 / s32, l8["bits_per_byte"], med(l8["tokens_per_s"]))
row("llama.cpp Q4_0", s4 / s32, l4["bits_per_byte"], med(l4["tokens_per_s"]))
PY
