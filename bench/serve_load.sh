#!/usr/bin/env bash
# Load test of the model server on loopback: continuous batching vs one-at-a-time serving.
#
#   bash bench/serve_load.sh [model dir]
#
# Without a model directory, trains the small model of bench/serve_load.yaml first (data →
# tokenizer → pretrain, on the CPU by default; cached in bench/work/serve_load/project).
# Then serves the model on 127.0.0.1 with continuous batching (max_batch 16) and one sequence at
# a time (max_batch 1), BENCH_ROUNDS times each (default 5, alternating which goes first), and
# runs the same load against each: BENCH_CLIENTS (default 16) concurrent streaming clients for
# BENCH_DURATION seconds (default 10), each asking for BENCH_MAX_TOKENS (default 64) tokens per
# request at temperature 0.8, back to back (stages/serve/examples/loadtest.rs). First it checks
# that both modes give the same greedy text for 8 prompts sent together (exit 1 otherwise).
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
BIN="$CARGO_TARGET_DIR/debug/binarylm"
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

start_server() { # label max_batch
    local label="$1" batch="$2"
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

# The same prompts at temperature 0, sent all at once (so the batched server batches them):
# both servers must give the same text, or the throughput comparison compares different work.
greedy() { # label
    python3 - "http://127.0.0.1:$PORT" "$WORK/$1.greedy.json" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, out = sys.argv[1], sys.argv[2]
prompts = ["Once upon a time", "The dog", "Mia put the key", "It was raining and", "Ben said",
           "In the morning", "The red box", "They went to the park"]
def ask(p):
    body = json.dumps({"model": "bench", "prompt": p, "max_tokens": 32, "temperature": 0}).encode()
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
    curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/$label.$round.metrics.txt" || true
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
for round in $(seq "$ROUNDS"); do
    # Alternate which mode goes first, so drift falls on both.
    if [ $((round % 2)) -eq 1 ]; then order="batched:16 sequential:1"; else order="sequential:1 batched:16"; fi
    for mode in $order; do
        run_one "${mode%%:*}" "${mode##*:}" "$round" || status=1
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
if ! cmp -s <(python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))" "$WORK/batched.greedy.json") \
            <(python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))" "$WORK/sequential.greedy.json"); then
    die "greedy text differs between batched and one-at-a-time serving (see $WORK/*.greedy.json): no figures for servers that do different work"
fi
log "greedy text at temperature 0: identical in both modes (8 prompts sent together)"

python3 - "$WORK" "$CLIENTS" "$DURATION" "$MAX_TOKENS" "$DEVICE" "$ROUNDS" "$load_before" "$load_after" "$cores" <<'PY' | tee "$WORK/results.md"
import json, statistics, sys
work, clients, duration, max_tokens, device, rounds, before, after, cores = sys.argv[1:]
runs = {m: [json.load(open(f"{work}/{m}.{r}.json")) for r in range(1, int(rounds) + 1)]
        for m in ("batched", "sequential")}
print(f"{clients} streaming clients, {duration} s per round, {rounds} rounds per mode (order "
      f"alternating), {max_tokens} tokens per request, device {device}; greedy text of 8 "
      f"concurrent prompts identical in both modes\n")
print("| | continuous batching (max_batch 16) | one at a time (max_batch 1) |")
print("|---|---:|---:|")
def cell(m, key, fmt):
    v = [r[key] for r in runs[m] if r[key] is not None]
    if not v:
        return "–"
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"
def total(m, key):
    return str(sum(r[key] for r in runs[m]))
for name, key in (("requests completed", "requests"), ("errors", "errors"),
                  ("dropped streams", "dropped_streams"), ("streams without text", "streams_without_text")):
    print(f"| {name} (all rounds) | {total('batched', key)} | {total('sequential', key)} |")
for name, key, fmt in (("aggregate tokens/s", "tokens_per_s", "{:.1f}"), ("TTFT p50 (ms)", "ttft_p50_ms", "{:.1f}"),
                       ("TTFT p99 (ms)", "ttft_p99_ms", "{:.1f}"), ("TPOT p50 (ms)", "tpot_p50_ms", "{:.2f}"),
                       ("TPOT p99 (ms)", "tpot_p99_ms", "{:.2f}")):
    print(f"| {name}, median (min–max) | {cell('batched', key, fmt)} | {cell('sequential', key, fmt)} |")
med = lambda m: statistics.median(r["tokens_per_s"] for r in runs[m])
print(f"\nthroughput ratio of medians (batched / one at a time): {med('batched') / med('sequential'):.2f}x")
print(f"\nload average before {before}, after {after}; {cores} cores")
if max(float(before.split()[0]), float(after.split()[0])) > int(cores):
    print("\n**busy machine: not for publication**")
PY
exit $status
