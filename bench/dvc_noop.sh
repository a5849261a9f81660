#!/usr/bin/env bash
# No-op re-run of a 20-stage pipeline: binarylm vs DVC.
#
#   bash bench/dvc_noop.sh
#
# Builds binarylm (release), generates one 20-stage pipeline twice — as a binarylm manifest of
# `kind: command` stages and as an equivalent dvc.yaml — runs each once to fill its cache, checks
# that a second run does nothing, then times interleaved no-op re-runs of both and prints the
# medians, minima and the ratio as a Markdown table (also written to $WORK/results.md and
# $WORK/results.json).
#
# DVC is measured twice: in a git repository (`git init` + `dvc init`, the usual set-up) and
# without one (`dvc init --no-scm`). The headline ratio uses the faster of the two.
#
# Environment:
#   BENCH_RUNS            timed no-op runs per tool (default 10)
#   BINARYLM_BENCH_VENV   virtualenv for DVC (default ~/.cache/binarylm/bench-venv); created and
#                         `pip install dvc`-ed when it has no dvc
#   BENCH_DVC_SPEC        pip requirement for DVC (default: dvc)
#   BENCH_SKIP_BUILD=1    use the existing release binary
#   BENCH_HYPERFINE=0     skip the hyperfine cross-check (run only when hyperfine is installed)
#   BENCH_ALLOW_BUSY=1    time even when the load average exceeds the cores (the report says
#                         "not for publication"); otherwise a busy machine is refused
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
RUNS="${BENCH_RUNS:-10}"
VENV="${BINARYLM_BENCH_VENV:-$HOME/.cache/binarylm/bench-venv}"
DVC_SPEC="${BENCH_DVC_SPEC:-dvc}"
WORK="$REPO/bench/work/dvc_noop"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# 1. Tools: binarylm (release build) and DVC (its own virtualenv, never the torch one).
# ---------------------------------------------------------------------------------------------
if [ -f "$REPO/scripts/env.sh" ]; then
    # shellcheck source=/dev/null
    source "$REPO/scripts/env.sh"
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/binarylm/target}"
    if [ -e "$REPO/.libtorch" ]; then LIBTORCH="$(realpath "$REPO/.libtorch")"; export LIBTORCH; fi
fi
BIN="$CARGO_TARGET_DIR/release/binarylm"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building binarylm (release)"
    (cd "$REPO" && cargo build --release --quiet -p binarylm)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

if [ ! -x "$VENV/bin/dvc" ]; then
    log "installing $DVC_SPEC into $VENV"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$DVC_SPEC"
fi
DVC="$VENV/bin/dvc"
# No telemetry or update checks: they are background work that has nothing to do with repro.
export DVC_NO_ANALYTICS=1
export DVC_NO_UPDATER=1

# ---------------------------------------------------------------------------------------------
# 2. The pipeline: 20 stages.
#    5 sources  src1..src5     each reads data/srcN.txt            (deps: a file)
#    5 cleaners clean1..clean5 each reads srcN                     (chains)
#    5 features feat1..feat5   each reads cleanN                   (chains)
#    merge_a <- feat1 feat2 feat3;  merge_b <- feat4 feat5         (fan-in)
#    joined  <- merge_a merge_b;  stats <- joined;  report <- stats src1
#    Every stage writes one small text file derived from its inputs.
# ---------------------------------------------------------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK/binarylm/data" "$WORK/dvc-git/data" "$WORK/dvc-noscm/data"
for i in 1 2 3 4 5; do
    # ~2000 lines of deterministic text per source.
    awk -v s="$i" 'BEGIN { for (n = 0; n < 2000; n++) printf "doc %d line %d the quick brown fox value %d\n", s, n, (n * 7919 + s) % 1000 }' \
        > "$WORK/binarylm/data/src$i.txt"
    cp "$WORK/binarylm/data/src$i.txt" "$WORK/dvc-git/data/"
    cp "$WORK/binarylm/data/src$i.txt" "$WORK/dvc-noscm/data/"
done

# Stage table: name | upstream stages | data deps | command template.
# In templates, IN_<stage> stands for the upstream stage's file and OUT for this stage's file;
# they are rewritten per tool below.
STAGES=()
for i in 1 2 3 4 5; do
    STAGES+=("src$i||data/src$i.txt|sort data/src$i.txt | uniq > OUT")
    STAGES+=("clean$i|src$i||tr 'a-z' 'A-Z' < IN_src$i | grep -v ' 0\$' > OUT")
    STAGES+=("feat$i|clean$i||awk '{ n[\$NF]++ } END { for (k in n) print k, n[k] }' IN_clean$i | sort -n > OUT")
done
STAGES+=("merge_a|feat1 feat2 feat3||cat IN_feat1 IN_feat2 IN_feat3 | sort -n > OUT")
STAGES+=("merge_b|feat4 feat5||cat IN_feat4 IN_feat5 | sort -n > OUT")
STAGES+=("joined|merge_a merge_b||sort -n -m IN_merge_a IN_merge_b > OUT")
STAGES+=("stats|joined||awk '{ s += \$2 } END { print NR, s }' IN_joined > OUT")
STAGES+=("report|stats src1||{ cat IN_stats; wc -l < IN_src1; } > OUT")
[ "${#STAGES[@]}" -eq 20 ] || die "expected 20 stages, have ${#STAGES[@]}"

yaml_quote() { # a YAML double-quoted scalar
    local s="${1//\\/\\\\}"
    printf '"%s"' "${s//\"/\\\"}"
}
upper() { printf '%s' "$1" | tr 'a-z-' 'A-Z_'; }

# binarylm manifest
{
    echo "name: bench-noop-20"
    echo "seed: 1"
    echo "stages:"
    for row in "${STAGES[@]}"; do
        IFS='|' read -r name ups deps cmd <<<"$row"
        for u in $ups; do cmd="${cmd//IN_$u/\"\$BINARYLM_INPUT_$(upper "$u")/out.txt\"}"; done
        cmd="${cmd//OUT/\"\$BINARYLM_OUT/out.txt\"}"
        echo "  $name:"
        echo "    kind: command"
        echo "    run: $(yaml_quote "$cmd")"
        [ -n "$ups" ] && echo "    inputs: [$(echo "$ups" | sed 's/ /, /g')]"
        [ -n "$deps" ] && echo "    deps: [$deps]"
    done
} > "$WORK/binarylm/pipeline.yaml"

# dvc.yaml (same commands; files under out/)
write_dvc_yaml() {
    echo "stages:"
    for row in "${STAGES[@]}"; do
        IFS='|' read -r name ups deps cmd <<<"$row"
        for u in $ups; do cmd="${cmd//IN_$u/out/$u.txt}"; done
        cmd="${cmd//OUT/out/$name.txt}"
        echo "  $name:"
        echo "    cmd: $(yaml_quote "$cmd")"
        echo "    deps:"
        for d in $deps; do echo "      - $d"; done
        for u in $ups; do echo "      - out/$u.txt"; done
        echo "    outs:"
        echo "      - out/$name.txt"
    done
}
for d in dvc-git dvc-noscm; do
    mkdir -p "$WORK/$d/out"
    write_dvc_yaml > "$WORK/$d/dvc.yaml"
done

# ---------------------------------------------------------------------------------------------
# 3. Set up and populate the caches (not timed).
# ---------------------------------------------------------------------------------------------
GIT=(git -c user.name=bench -c user.email=bench@localhost -c init.defaultBranch=main)
(
    cd "$WORK/dvc-git"
    "${GIT[@]}" init --quiet
    "$DVC" init --quiet
    "$DVC" config core.analytics false
)
(
    cd "$WORK/dvc-noscm"
    "$DVC" init --quiet --no-scm
    "$DVC" config core.analytics false
)

log "first run: binarylm"
(cd "$WORK/binarylm" && "$BIN" run --json pipeline.yaml > "$WORK/first-binarylm.json" 2> "$WORK/first-binarylm.err") \
    || { cat "$WORK/first-binarylm.err" >&2; die "binarylm's first run failed"; }
for d in dvc-git dvc-noscm; do
    log "first run: dvc repro ($d)"
    (cd "$WORK/$d" && "$DVC" repro > "$WORK/first-$d.txt" 2>&1) \
        || { cat "$WORK/first-$d.txt" >&2; die "dvc repro ($d) failed"; }
done
(cd "$WORK/dvc-git" && "${GIT[@]}" add -A > /dev/null && "${GIT[@]}" commit --quiet -m "pipeline and dvc.lock")

# Both tools must have computed the same thing.
for row in "${STAGES[@]}"; do
    IFS='|' read -r name _ <<<"$row"
    digest="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print([s["digest"] for s in r["stages"] if s["stage"]==sys.argv[2]][0])' \
        "$WORK/first-binarylm.json" "$name")"
    a="$WORK/binarylm/.binarylm/objects/${digest:0:2}/$digest/out.txt"
    cmp -s "$a" "$WORK/dvc-git/out/$name.txt" || die "stage $name: binarylm and dvc outputs differ"
    cmp -s "$a" "$WORK/dvc-noscm/out/$name.txt" || die "stage $name: dvc outputs differ between set-ups"
done
log "both tools produced identical outputs for all 20 stages"

# ---------------------------------------------------------------------------------------------
# 4. No-op checks: each timed run is verified to have done nothing.
# ---------------------------------------------------------------------------------------------
check_binarylm() { # $1: the --json report of a run
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
st = [s["status"] for s in r["stages"]]
if len(st) != 20 or any(s != "cached" for s in st):
    sys.exit(f"binarylm did work on a no-op run: {st}")
PY
}
check_dvc() { # $1: the output of `dvc repro`
    local n
    n="$(grep -c "didn't change, skipping" "$1" || true)"
    if [ "$n" -ne 20 ] || grep -q "Running stage" "$1" || ! grep -qi "up to date" "$1"; then
        cat "$1" >&2
        die "dvc repro did work on a no-op run (see above)"
    fi
}

run_binarylm() { (cd "$WORK/binarylm" && "$BIN" run --json pipeline.yaml > "$1" 2> /dev/null); }
run_dvc() { (cd "$WORK/$1" && "$DVC" repro > "$2" 2>&1); }

log "warm-up no-op run of each tool (verified, not timed)"
run_binarylm "$WORK/warm-binarylm.json"
check_binarylm "$WORK/warm-binarylm.json"
for d in dvc-git dvc-noscm; do
    run_dvc "$d" "$WORK/warm-$d.txt"
    check_dvc "$WORK/warm-$d.txt"
done

# ---------------------------------------------------------------------------------------------
# 5. Timed no-op runs, interleaved (and rotated) so that machine noise hits every tool alike.
#    Wall time of the whole process, from bash's $EPOCHREALTIME (no fork for the clock).
# ---------------------------------------------------------------------------------------------
now_us() { local t="${EPOCHREALTIME/[.,]/}"; printf '%s' "$t"; }
TIMES="$WORK/times.tsv"
: > "$TIMES"
TOOLS=(binarylm dvc-git dvc-noscm)
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${BENCH_ALLOW_BUSY:-0}" != 1 ] && python3 -c "import sys; sys.exit(float('${LOAD_BEFORE%% *}') <= $(nproc))"; then
    die "load average $LOAD_BEFORE on $(nproc) cores: refusing to time a busy machine (BENCH_ALLOW_BUSY=1 runs anyway, marked not for publication)"
fi
log "timing $RUNS no-op runs per tool, interleaved"
for ((r = 0; r < RUNS; r++)); do
    for ((k = 0; k < ${#TOOLS[@]}; k++)); do
        tool="${TOOLS[$(((k + r) % ${#TOOLS[@]}))]}"
        out="$WORK/run-$tool-$r.out"
        t0="$(now_us)"
        if [ "$tool" = binarylm ]; then run_binarylm "$out"; else run_dvc "$tool" "$out"; fi
        t1="$(now_us)"
        if [ "$tool" = binarylm ]; then check_binarylm "$out"; else check_dvc "$out"; fi
        printf '%s\t%s\t%s\n' "$tool" "$r" "$((t1 - t0))" >> "$TIMES"
    done
done

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------
# 6. Optional cross-check with hyperfine (not interleaved: each tool in its own batch).
# ---------------------------------------------------------------------------------------------
HF_JSON=""
if [ "${BENCH_HYPERFINE:-1}" != 0 ] && command -v hyperfine > /dev/null; then
    log "hyperfine cross-check"
    HF_JSON="$WORK/hyperfine.json"
    hyperfine --style basic --warmup 2 --runs "$RUNS" --export-json "$HF_JSON" \
        -n binarylm "cd '$WORK/binarylm' && '$BIN' run pipeline.yaml" \
        -n dvc-git "cd '$WORK/dvc-git' && '$DVC' repro" \
        -n dvc-noscm "cd '$WORK/dvc-noscm' && '$DVC' repro" > "$WORK/hyperfine.txt" 2>&1 \
        || { cat "$WORK/hyperfine.txt" >&2; die "hyperfine failed"; }
    # hyperfine's runs must have been no-ops too.
    run_binarylm "$WORK/after-hf-binarylm.json"
    check_binarylm "$WORK/after-hf-binarylm.json"
fi

# ---------------------------------------------------------------------------------------------
# 7. Report.
# ---------------------------------------------------------------------------------------------
BL_VERSION="$("$BIN" --version 2>/dev/null || echo binarylm)"
BL_REV="$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown)"
DVC_VERSION="$("$DVC" --version 2>/dev/null | head -n1)"
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
python3 - "$TIMES" "$WORK" "$RUNS" "$BL_VERSION" "$BL_REV" "$DVC_VERSION" "$(nproc)" "$CPU" "$HF_JSON" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY'
import glob, json, os, statistics, sys
times, work, runs, bl_version, bl_rev, dvc_version, nproc, cpu, hf_json, load_before, load_after = sys.argv[1:]
samples = {}
for line in open(times):
    tool, _, us = line.split("\t")
    samples.setdefault(tool, []).append(int(us) / 1000.0)
# binarylm's own account of each run (in-process, from its report), to split process start-up
# from run time.
inproc = [json.load(open(p))["duration_ms"] for p in sorted(glob.glob(os.path.join(work, "run-binarylm-*.out")))]
stats = {
    t: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v),
        "mean_ms": statistics.fmean(v), "runs": len(v), "samples_ms": v}
    for t, v in samples.items()
}
bl = stats["binarylm"]
best_dvc = min(("dvc-git", "dvc-noscm"), key=lambda t: stats[t]["median_ms"])
ratio_median = stats[best_dvc]["median_ms"] / bl["median_ms"]
ratio_min = stats[best_dvc]["min_ms"] / bl["min_ms"]
result = {
    "binarylm": {"version": bl_version, "rev": bl_rev},
    "dvc": dvc_version, "nproc": int(nproc), "cpu": cpu, "stages": 20,
    "loadavg_before": load_before, "loadavg_after": load_after,
    "stats": stats, "binarylm_inprocess_ms": inproc,
    "headline": {"dvc_setup": best_dvc, "ratio_median": ratio_median, "ratio_min": ratio_min},
}
if hf_json:
    hf = json.load(open(hf_json))
    result["hyperfine"] = {r["command"]: {"median_ms": r["median"] * 1000, "min_ms": r["min"] * 1000}
                           for r in hf["results"]}
json.dump(result, open(os.path.join(work, "results.json"), "w"), indent=2)

label = {"binarylm": "binarylm run", "dvc-git": "dvc repro (git repo)", "dvc-noscm": "dvc repro (--no-scm)"}
lines = [
    f"Machine: {nproc} cores, {cpu}. binarylm {bl_version.split()[-1]} at {bl_rev}; DVC {dvc_version}.",
    f"Load average (1/5/15 min) before the timed runs: {load_before}; after: {load_after}.",
    "",
    f"| tool | runs | median | min | max | vs binarylm (median) |",
    f"|---|---:|---:|---:|---:|---:|",
]
for t in ("binarylm", "dvc-git", "dvc-noscm"):
    s = stats[t]
    rel = "1×" if t == "binarylm" else f"{s['median_ms'] / bl['median_ms']:.1f}×"
    lines.append(f"| {label[t]} | {s['runs']} | {s['median_ms']:.1f} ms | {s['min_ms']:.1f} ms | {s['max_ms']:.1f} ms | {rel} |")
lines += [
    "",
    f"binarylm's own report of those runs (`duration_ms`, inside the process): median "
    f"{statistics.median(inproc):.0f} ms, min {min(inproc)} ms.",
    "",
    f"**Ratio (faster DVC set-up, {label[best_dvc]} / binarylm): {ratio_median:.1f}× on medians, "
    f"{ratio_min:.1f}× on minima.**",
]
if hf_json:
    lines += ["", "hyperfine cross-check (each tool in its own batch, 2 warm-up runs):", ""]
    for cmd, v in result["hyperfine"].items():
        lines.append(f"- {label.get(cmd, cmd)}: median {v['median_ms']:.1f} ms, min {v['min_ms']:.1f} ms")
busy = max(float(load_before.split()[0]), float(load_after.split()[0])) > int(nproc)
if busy:
    lines += ["", "**busy machine: not for publication**"]
text = "\n".join(lines) + "\n"
open(os.path.join(work, "results.md"), "w").write(text)
print(text)
PY
