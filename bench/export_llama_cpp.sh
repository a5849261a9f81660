#!/usr/bin/env bash
# binarylm's int8/int4 against llama.cpp's Q8_0/Q4_0 of the same model: size, bits per byte on
# the val split, decode tokens/s. The model is the quickstart's (bench/export_llama_cpp.yaml).
#
#   bash bench/export_llama_cpp.sh            (release build; BENCH_ROUNDS=5 decode rounds)
#   SPEED=0 BINARYLM_BIN=path/to/binarylm bash bench/export_llama_cpp.sh   (sizes and bits per
#                                             byte only, any build: they do not depend on it)
#
# Both sides score the same documents the same way (each after <|eos|>, every token once, in
# windows of the context); the script checks that llama.cpp's f32 file scores within 0.5 % of
# binarylm's own model before it prints anything else.
#
# Decode speed (bench/llama_decode.py, under bench/harness.py's rules: a busy machine is refused,
# rounds rotated, llama.cpp's f32 greedy text must equal ours): llama.cpp through
# bench/llama_decode.c, compiled here against the libllama that node-llama-cpp ships — one
# llama_decode per token and an argmax, what llama-bench's text-generation test times, which the
# npm package does not include. node-llama-cpp's own per-token path (a JavaScript generator and an
# event-loop hop per token) costs more than the whole decode of a model this small, so its
# speeds are not used.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=../scripts/env.sh
source "$here/../scripts/env.sh"
cd "$BINARYLM_REPO"
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
tok="$(path tok)"
declare -A llama
for f in f32 f16 q8_0 q4_0; do
    llama[$f]="$(node "$here/llama_cpp_bpb.mjs" "$(path "gguf_$f")/model.gguf" "$tok" "$threads")"
    echo "llama.cpp $f: ${llama[$f]}" >&2
done
python3 - "$(metrics q8)" "$(metrics q4)" "${llama[f32]}" "${llama[f16]}" "${llama[q8_0]}" "${llama[q4_0]}" \
    "$(stat -c %s "$(path gguf_f32)/model.gguf")" "$(stat -c %s "$(path gguf_q8_0)/model.gguf")" \
    "$(stat -c %s "$(path gguf_q4_0)/model.gguf")" "$(stat -c %s "$(path gguf_f16)/model.gguf")" <<'PY'
import json, sys
q8, q4, l32, l16, l8, l4 = (json.loads(a) for a in sys.argv[1:7])
s32, s8, s4, s16 = (int(a) for a in sys.argv[7:11])
src = q8["bits_per_byte_source"]
gap = abs(l32["bits_per_byte"] - src) / src
if gap > 0.005:
    sys.exit(f"llama.cpp's f32 file scores {l32['bits_per_byte']:.5f} bits/byte, binarylm {src:.5f}: not the same computation")
def row(name, size, bpb):
    print(f"| {name} | {size:.3f} | {bpb:.5f} | {100 * (bpb - src) / src:+.2f} % |")
print(f"bits per byte of the f32 model: binarylm {src:.5f}, llama.cpp f32 {l32['bits_per_byte']:.5f} (gap {100 * gap:.3f} %)")
print()
print("| model | size ratio | bits per byte | vs f32 |")
print("|---|---:|---:|---:|")
row("binarylm f32", 1.0, src)
row("binarylm int8 (per channel)", q8["size_ratio"], q8["bits_per_byte"])
row("binarylm int4 (G = 64)", q4["size_ratio"], q4["bits_per_byte"])
row("llama.cpp f32", 1.0, l32["bits_per_byte"])
row("llama.cpp f16", s16 / s32, l16["bits_per_byte"])
row("llama.cpp Q8_0", s8 / s32, l8["bits_per_byte"])
row("llama.cpp Q4_0", s4 / s32, l4["bits_per_byte"])
PY

[ "$speed" = 1 ] || exit 0
echo
lib="$BINARYLM_LLAMA_CPP/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
command -v cc >/dev/null || { echo "bench: timing llama.cpp needs a C compiler for bench/llama_decode.c (apt-get install gcc), or SPEED=0" >&2; exit 1; }
[ -e "$lib/libllama.v0.5.0.so" ] || { echo "bench: no libllama in $lib: run scripts/setup.sh (it installs node-llama-cpp)" >&2; exit 1; }
cc -O2 -o "$work/llama_decode" "$here/llama_decode.c" -ldl
eos="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["eos_id"])' "$tok/shards.json")"
"$BINARYLM_VENV/bin/python" "$here/llama_decode.py" "$BINARYLM_BIN" "$work" "$work/llama_decode" "$lib" "$eos" 56
