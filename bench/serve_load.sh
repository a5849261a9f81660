#!/usr/bin/env bash
# Load test of the model server on loopback: continuous batching vs one-at-a-time serving, and
# a peer: llama-cpp-python's OpenAI-compatible server (llama.cpp) on the same model.
#
#   bash bench/serve_load.sh [model dir]
#
# Without a model directory, trains the small model of bench/serve_load.yaml first (data →
# tokenizer → pretrain → GGUF export, on the CPU by default; cached in
# bench/work/serve_load/project). Then serves the model on 127.0.0.1 with continuous batching
# (max_batch 16), one sequence at a time (max_batch 1) and, with BENCH_PEER=1, through
# llama-cpp-python's server (the exported f32 GGUF; it serves one request at a time),
# BENCH_ROUNDS times each (default 5, the order rotated every round), and runs the same load
# against each: BENCH_CLIENTS (default 16) concurrent streaming clients for BENCH_DURATION
# seconds (default 10), each asking for BENCH_MAX_TOKENS (default 64) tokens per request at
# temperature 0.8, back to back (stages/serve/examples/loadtest.rs). First it checks that every
# side gives the same greedy text for 8 prompts sent together (exit 1 otherwise).
# Prints median (min–max) over rounds of p50/p99 time to first token (TTFT, streams that carried
# no text left out and counted), time per output token (TPOT) and aggregate tokens/s, with the
# errors and dropped streams, as a Markdown table (also bench/work/serve_load/results.md,
# *.json, the servers' logs and /metrics); exits non-zero if any request failed or any stream
# was dropped. A machine busier than its cores is refused (BENCH_ALLOW_BUSY=1 overrides).
#
# Environment:
#   BENCH_CLIENTS, BENCH_DURATION, BENCH_MAX_TOKENS   the load (see above)
#   BENCH_PORT          port to serve on (default 18431; loopback only)
#   BENCH_DEVICE        device of the server and of the training (default cpu)
#   BENCH_THREADS       CPU threads of the server's libtorch (default 0: one per core)
#   BENCH_SKIP_BUILD=1  use the binaries already built
#   BINARYLM_BIN        the binarylm that trains the model (default: the dev build)
#   BENCH_PEER=1        also serve through llama-cpp-python (default 0). Its venv is created when
#                       missing: ~/.cache/binarylm/bench-llamacpp-server (BENCH_PEER_VENV),
#                       llama-cpp-python[server] 0.3.36, which pip compiles from source
#                       (llama.cpp; about 20 minutes on 2 cores, once)
#   BENCH_PEER_THREADS  llama.cpp's threads (default 1: on this model, bench/llama_decode.py
#                       found llama.cpp slower at 2 threads than at 1 on a 2-core machine)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
MODEL="${1:-}"
CLIENTS="${BENCH_CLIENTS:-16}"
DURATION="${BENCH_DURATION:-10}"
MAX_TOKENS="${BENCH_MAX_TOKENS:-64}"
ROUNDS="${BENCH_ROUNDS:-5}"
PORT="${BENCH_PORT:-18431}"
DEVICE="${BENCH_DEVICE:-cpu}"
THREADS="${BENCH_THREADS:-0}"
PEER="${BENCH_PEER:-0}"
PEER_VENV="${BENCH_PEER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/binarylm/bench-llamacpp-server}"
PEER_THREADS="${BENCH_PEER_THREADS:-1}"
WORK="$REPO/bench/work/serve_load"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=/dev/null
source "$REPO/scripts/env.sh"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    # The server and the load generator optimized; `binarylm` itself only orchestrates training.
    log "building binarylm-torch and the load generator (release), binarylm (dev)"
    (cd "$REPO" && cargo build --release -p stages-torch --bin binarylm-torch -p serve --example loadtest \
        && cargo build -p binarylm --bin binarylm) >&2
fi
TORCH="$CARGO_TARGET_DIR/release/binarylm-torch"
LOAD="$CARGO_TARGET_DIR/release/examples/loadtest"
BIN="${BINARYLM_BIN:-$CARGO_TARGET_DIR/debug/binarylm}"
for exe in "$TORCH" "$LOAD"; do [ -x "$exe" ] || die "$exe is missing (run without BENCH_SKIP_BUILD)"; done
mkdir -p "$WORK"

if [ -z "$MODEL" ]; then
    [ -x "$BIN" ] || die "$BIN is missing (run without BENCH_SKIP_BUILD)"
    project="$WORK/project"
    mkdir -p "$project"
    sed "s/device: cpu/device: $DEVICE/" "$REPO/bench/serve_load.yaml" >"$project/pipeline.yaml"
    log "training the bench model (bench/serve_load.yaml; cached after the first time)"
    (cd "$project" && BINARYLM_TORCH="$TORCH" "$BIN" run pipeline.yaml >&2)
    MODEL="$(cd "$project" && "$BIN" show base --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')"
    GGUF="$(cd "$project" && "$BIN" show gguf --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')/model.gguf"
elif [ "$PEER" = 1 ]; then
    die "BENCH_PEER=1 needs the GGUF export of the model: run without a model directory"
fi
if [ "$PEER" = 1 ]; then
    if ! "$PEER_VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
        log "creating llama-cpp-python's venv in $PEER_VENV (pip compiles llama.cpp: ~20 min)"
        rm -rf "$PEER_VENV"
        python3 -m venv "$PEER_VENV"
        "$PEER_VENV/bin/pip" install --quiet --disable-pip-version-check 'llama-cpp-python[server]==0.3.36' >&2
    fi
    [ -f "$GGUF" ] || die "$GGUF is missing"
fi
[ -f "$MODEL/model.safetensors" ] || die "$MODEL holds no model.safetensors"
log "model: $MODEL"

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT

start_server() { # label max_batch (0: the peer)
    local label="$1" batch="$2"
    if [ "$batch" = 0 ]; then
        start_peer "$label"
        return
    fi
    log "$label: serving with max_batch $batch on 127.0.0.1:$PORT ($DEVICE)"
    "$TORCH" serve "$MODEL" --name bench --host 127.0.0.1 --port "$PORT" --device "$DEVICE" \
        --threads "$THREADS" --max-batch "$batch" --queue-capacity 256 \
        >"$WORK/$label.server.out" 2>"$WORK/$label.server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 600); do
        grep -q '^listening on ' "$WORK/$label.server.out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $WORK/$label.server.log"
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null || die "server not healthy"
}

# llama-cpp-python's server on the exported GGUF: its context is the model's (128); it serves
# one request at a time (a lock around the model). By default a new request interrupts the
# stream being served (meant for one interactive user): with several clients that drops nearly
# every stream, so requests queue instead (`--interrupt_requests False`), as a shared server's
# would.
start_peer() { # label
    local label="$1"
    log "$label: llama-cpp-python on 127.0.0.1:$PORT ($PEER_THREADS thread(s))"
    "$PEER_VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias bench \
        --host 127.0.0.1 --port "$PORT" --n_ctx 128 --n_threads "$PEER_THREADS" \
        --n_threads_batch "$PEER_THREADS" --interrupt_requests False >"$WORK/$label.server.out" 2>"$WORK/$label.server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 600); do
        curl -fsS "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1 && return
        kill -0 "$SERVER_PID" 2>/dev/null || die "llama-cpp-python exited; see $WORK/$label.server.log"
        sleep 0.1
    done
    die "llama-cpp-python did not answer in 60 s; see $WORK/$label.server.log"
}

# The same prompts at temperature 0, sent all at once (so the batched server batches them):
# every server must give the same text, or the throughput comparison compares different work.
# llama-cpp-python penalises repeats by default (repeat_penalty 1.1), which changes greedy text:
# the check turns that off; the timed load leaves every server at its defaults.
greedy() { # label
    python3 - "http://127.0.0.1:$PORT" "$WORK/$1.greedy.json" "$1" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, out, label = sys.argv[1:4]
prompts = ["Once upon a time", "The dog", "Mia put the key", "It was raining and", "Ben said",
           "In the morning", "The red box", "They went to the park"]
extra = {"repeat_penalty": 1.0} if label == "llama-cpp" else {}
def ask(p):
    body = json.dumps({"model": "bench", "prompt": p, "max_tokens": 32, "temperature": 0,
                       **extra}).encode()
    req = urllib.request.Request(f"{url}/v1/completions", body, {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=120))["choices"][0]["text"]
with ThreadPoolExecutor(len(prompts)) as ex:
    texts = list(ex.map(ask, prompts))
json.dump(dict(zip(prompts, texts)), open(out, "w"), indent=1)
PY
}

run_one() { # label max_batch round
    local label="$1" batch="$2" round="$3"
    start_server "$label" "$batch"
    [ "$round" = 1 ] && greedy "$label"
    log "$label (round $round): $CLIENTS clients for ${DURATION}s, $MAX_TOKENS tokens per request"
    local rc=0
    "$LOAD" --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" --duration "$DURATION" \
        --max-tokens "$MAX_TOKENS" --label "$label" --json "$WORK/$label.$round.json" >&2 || rc=$?
    [ "$batch" = 0 ] || curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/$label.$round.metrics.txt" || true
    stop_server
    return $rc
}

# The load generator runs on the same cores as the server (one machine): both modes pay that
# alike, and the absolute figures are lower than a separate client machine would see.
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
cores="$(nproc)"
if [ "${BENCH_ALLOW_BUSY:-0}" != 1 ] && python3 -c "import sys; sys.exit(float('${load_before%% *}') <= $cores)"; then
    die "load average $load_before on $cores cores: refusing to time a busy machine (BENCH_ALLOW_BUSY=1 runs anyway, marked not for publication)"
fi
status=0
sides=(batched:16 sequential:1)
[ "$PEER" = 1 ] && sides+=(llama-cpp:0)
rm -f "$WORK"/*.greedy.json
for round in $(seq "$ROUNDS"); do
    # Rotate which side goes first, so drift falls on all.
    n=${#sides[@]}
    for i in $(seq 0 $((n - 1))); do
        mode="${sides[$(((i + round - 1) % n))]}"
        run_one "${mode%%:*}" "${mode##*:}" "$round" || status=1
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
canon() { python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))" "$1"; }
for mode in "${sides[@]:1}"; do
    label="${mode%%:*}"
    if ! cmp -s <(canon "$WORK/batched.greedy.json") <(canon "$WORK/$label.greedy.json"); then
        die "greedy text differs between batched and $label serving (see $WORK/*.greedy.json): no figures for servers that do different work"
    fi
done
log "greedy text at temperature 0: identical on every side (8 prompts sent together)"

python3 - "$WORK" "$CLIENTS" "$DURATION" "$MAX_TOKENS" "$DEVICE" "$ROUNDS" "$load_before" "$load_after" "$cores" "$PEER" "$PEER_THREADS" <<'PY' | tee "$WORK/results.md"
import json, statistics, sys
work, clients, duration, max_tokens, device, rounds, before, after, cores, peer, peer_threads = sys.argv[1:]
modes = ["batched", "sequential"] + (["llama-cpp"] if peer == "1" else [])
runs = {m: [json.load(open(f"{work}/{m}.{r}.json")) for r in range(1, int(rounds) + 1)]
        for m in modes}
print(f"{clients} streaming clients, {duration} s per round, {rounds} rounds per side (order "
      f"rotated), {max_tokens} tokens per request, device {device}; greedy text of 8 "
      f"concurrent prompts identical on every side\n")
heads = {"batched": "binarylm, continuous batching (max_batch 16)",
         "sequential": "binarylm, one at a time (max_batch 1)",
         "llama-cpp": f"llama-cpp-python 0.3.36 server, f32 GGUF ({peer_threads} thread)"}
print("| | " + " | ".join(heads[m] for m in modes) + " |")
print("|---|" + "---:|" * len(modes))
def cell(m, key, fmt):
    v = [r[key] for r in runs[m] if r[key] is not None]
    if not v:
        return "–"
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"
def total(m, key):
    return str(sum(r.get(key, 0) for r in runs[m]))
for name, key in (("requests completed", "requests"), ("errors", "errors"),
                  ("dropped streams", "dropped_streams"), ("streams without text", "streams_without_text"),
                  ("streams without usage (tokens counted as text frames)", "streams_without_usage")):
    print(f"| {name} (all rounds) | " + " | ".join(total(m, key) for m in modes) + " |")
for name, key, fmt in (("aggregate tokens/s", "tokens_per_s", "{:.1f}"), ("TTFT p50 (ms)", "ttft_p50_ms", "{:.1f}"),
                       ("TTFT p99 (ms)", "ttft_p99_ms", "{:.1f}"), ("TPOT p50 (ms)", "tpot_p50_ms", "{:.2f}"),
                       ("TPOT p99 (ms)", "tpot_p99_ms", "{:.2f}")):
    print(f"| {name}, median (min–max) | " + " | ".join(cell(m, key, fmt) for m in modes) + " |")
med = lambda m: statistics.median(r["tokens_per_s"] for r in runs[m])
print(f"\nthroughput ratio of medians (batched / one at a time): {med('batched') / med('sequential'):.2f}x")
if peer == "1":
    print(f"throughput ratio of medians (binarylm batched / llama-cpp-python): {med('batched') / med('llama-cpp'):.2f}x")
    print(f"throughput ratio of medians (binarylm one at a time / llama-cpp-python): {med('sequential') / med('llama-cpp'):.2f}x")
print(f"\nload average before {before}, after {after}; {cores} cores")
if max(float(before.split()[0]), float(after.split()[0])) > int(cores):
    print("\n**busy machine: not for publication**")
PY
exit $status
