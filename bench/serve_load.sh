#!/usr/bin/env bash
# Load test of the model server on loopback: continuous batching vs one-at-a-time serving.
#
#   bash bench/serve_load.sh [model dir]
#
# Without a model directory, trains the small model of bench/serve_load.yaml first (data →
# tokenizer → pretrain, on the CPU by default; cached in bench/work/serve_load/project).
# Then serves the model twice on 127.0.0.1 — with continuous batching (max_batch 16) and one
# sequence at a time (max_batch 1) — and runs the same load against each: BENCH_CLIENTS
# (default 16) concurrent streaming clients for BENCH_DURATION seconds (default 30), each
# asking for BENCH_MAX_TOKENS (default 64) tokens per request at temperature 0.8, back to back
# (stages/serve/examples/loadtest.rs). Prints p50/p99 time to first token (TTFT) and time per
# output token (TPOT), aggregate tokens/s, errors and dropped streams of both as a Markdown table
# (also bench/work/serve_load/results.md, *.json, the servers' logs and /metrics) and exits
# non-zero if any request failed or any stream was dropped.
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
DURATION="${BENCH_DURATION:-30}"
MAX_TOKENS="${BENCH_MAX_TOKENS:-64}"
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

run_one() { # label max_batch
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
    log "$label: $CLIENTS clients for ${DURATION}s, $MAX_TOKENS tokens per request"
    local rc=0
    "$LOAD" --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" --duration "$DURATION" \
        --max-tokens "$MAX_TOKENS" --label "$label" --json "$WORK/$label.json" >&2 || rc=$?
    curl -fsS "http://127.0.0.1:$PORT/metrics" >"$WORK/$label.metrics.txt" || true
    stop_server
    return $rc
}

status=0
run_one batched 16 || status=1
run_one sequential 1 || status=1

python3 - "$WORK" "$CLIENTS" "$DURATION" "$MAX_TOKENS" "$DEVICE" <<'PY' | tee "$WORK/results.md"
import json, sys
work, clients, duration, max_tokens, device = sys.argv[1:]
b = json.load(open(f"{work}/batched.json"))
s = json.load(open(f"{work}/sequential.json"))
print(f"{clients} streaming clients, {duration} s each way, {max_tokens} tokens per request, device {device}\n")
print("| | continuous batching (max_batch 16) | one at a time (max_batch 1) |")
print("|---|---:|---:|")
rows = [("requests completed", "requests", "{:.0f}"), ("errors", "errors", "{:.0f}"),
        ("dropped streams", "dropped_streams", "{:.0f}"), ("tokens generated", "completion_tokens", "{:.0f}"),
        ("aggregate tokens/s", "tokens_per_s", "{:.1f}"), ("TTFT p50 (ms)", "ttft_p50_ms", "{:.1f}"),
        ("TTFT p99 (ms)", "ttft_p99_ms", "{:.1f}"), ("TPOT p50 (ms)", "tpot_p50_ms", "{:.2f}"),
        ("TPOT p99 (ms)", "tpot_p99_ms", "{:.2f}")]
for name, key, fmt in rows:
    print(f"| {name} | {fmt.format(b[key])} | {fmt.format(s[key])} |")
ratio = b["tokens_per_s"] / s["tokens_per_s"] if s["tokens_per_s"] else float("nan")
print(f"\nthroughput ratio (batched / one at a time): {ratio:.2f}x")
PY
exit $status
