#!/usr/bin/env bash
# `binarylm ui`: how long its pages take to load on a workspace with 100 runs, and how long the
# model inspector takes to answer a 64-token prompt on the quickstart model (2 CPU threads).
#
#   bash bench/ui.sh
#
# 1. Builds a project under bench/work/ui/ (git-ignored; reused when present): the quickstart
#    manifest, shortened to train in seconds (600 stories, 30 steps), plus a `note` command
#    stage whose text changes every run, then runs it BENCH_RUNS times (default 100), so the
#    workspace holds that many runs and as many distinct stage results and objects.
# 2. Starts `binarylm ui --port 0` on it and loads each page the way the browser does — the
#    HTML, its script and style, then the JSON the page asks for — BENCH_ROUNDS times (default
#    20), timing each whole page (bench/ui_load.py). Pages: pipelines (home), all runs, a
#    stage, curves; and the home page right after one more run finished (its first request
#    rebuilds the UI's registry snapshot from every file of the workspace), 3 times.
# 3. Asks the inspector, through the UI's HTTP API, for a prompt of exactly 64 tokens (the
#    model's whole context), OMP_NUM_THREADS=2; the first request (which starts
#    `binarylm-torch inspect` and loads the model) is reported apart from the BENCH_ROUNDS
#    timed ones. The script checks every answer (attention rows sum to 1, 64 positions).
#
# Environment: BENCH_RUNS, BENCH_ROUNDS (above); BENCH_PROFILE (release, or debug: dependencies
# at opt-level 2 in this repository's dev profile); BENCH_SKIP_BUILD=1 to use the binaries built.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
RUNS="${BENCH_RUNS:-100}"
ROUNDS="${BENCH_ROUNDS:-20}"
PROFILE="${BENCH_PROFILE:-release}"
WORK="$REPO/bench/work/ui"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=/dev/null
source "$REPO/scripts/env.sh"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    flag=()
    [ "$PROFILE" = release ] && flag=(--release)
    log "building the workspace's binaries ($PROFILE)"
    (cd "$REPO" && cargo build "${flag[@]}" --workspace --bins) >&2
fi
BIN="$CARGO_TARGET_DIR/$PROFILE/binarylm"
[ -x "$BIN" ] || die "$BIN is missing (run without BENCH_SKIP_BUILD)"
[ -x "$CARGO_TARGET_DIR/$PROFILE/binarylm-torch" ] || die "binarylm-torch is missing beside $BIN"

project="$WORK/project"
mkdir -p "$project"
cd "$project"
have=0
[ -d .binarylm/runs ] && have="$(find .binarylm/runs -name '*.json' | wc -l)"
if [ "$have" -lt "$RUNS" ]; then
    log "making $RUNS runs in $project (has $have)"
    sed -e 's/documents: 4000/documents: 600/' -e 's/steps: 600/steps: 30/' \
        -e 's/warmup_steps: 50/warmup_steps: 5/' -e 's/eval_every: 100/eval_every: 10/' \
        -e 's/limit: 200/limit: 20/' "$REPO/examples/quickstart/pipeline.yaml" >base.yaml
    for i in $(seq "$((have + 1))" "$RUNS"); do
        { cat base.yaml; printf '  note:\n    kind: command\n    run: echo run %s > "$BINARYLM_OUT/note"\n' "$i"; } >pipeline.yaml
        OMP_NUM_THREADS=2 "$BIN" -q run pipeline.yaml >/dev/null
    done
fi

model="$("$BIN" show base --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')"
# A 64-token prompt: story text cut to its first 64 tokens and joined back.
story="Late in the evening, Nora was in the cellar. Hana was in the kitchen. Milo was in the cellar. \
There was an old cup in the cellar. Milo went to the attic. Hana went to the park. In the end: \
the old cup is in the cellar. The small book is in the attic."
prompt="$("$BIN" tokenize tok --json "$story $story" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
assert len(doc["tokens"]) >= 64, len(doc["tokens"])
print("".join(t["text"] for t in doc["tokens"][:64]), end="")')"

ui_out="$WORK/ui.out"
OMP_NUM_THREADS=2 "$BIN" ui -f pipeline.yaml --port 0 >"$ui_out" 2>"$WORK/ui.err" &
ui_pid=$!
trap 'kill "$ui_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$ui_out" ] && break; sleep 0.1; done
url="$(head -n1 "$ui_out")"
[ -n "$url" ] || die "binarylm ui printed no link: $(cat "$WORK/ui.err")"
log "ui at $url; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# Between timed loads of the home page after a change: one more run, with a new note.
change="cd '$project' && { cat base.yaml; printf '  note:\\n    kind: command\\n    run: echo later \$RANDOM > \"\$BINARYLM_OUT/note\"\\n'; } >pipeline.yaml && OMP_NUM_THREADS=2 '$BIN' -q run pipeline.yaml >/dev/null"
python3 "$REPO/bench/ui_load.py" "$url" "$ROUNDS" "$prompt" "$change" | tee "$WORK/results.md"
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
