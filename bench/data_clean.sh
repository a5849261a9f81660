#!/usr/bin/env bash
# Cleaning throughput and peak memory of the `data` stage on a generated ~200 MB corpus.
#
#   bash bench/data_clean.sh
#
# Builds binarylm (release), generates BENCH_MB megabytes of JSON Lines with planted
# duplicates, near-duplicates, HTML, boilerplate and German text (bench/gen_corpus.py, fixed
# seed), then runs one data stage over it twice in the same session: with every cleaning step
# on, and with cleaning off (read + split + write only), each in a fresh workspace under
# /usr/bin/time -v. Prints a Markdown table: input size, wall time, MB/s, peak RSS and peak RSS
# as a share of the input (also written to $WORK/results.md).
#
# Environment:
#   BENCH_MB            corpus size in MB (default 200)
#   BENCH_THREADS       --threads for the stage (default: all cores)
#   BENCH_PROFILE       release (default) or dev: the dev profile (dependencies at opt-level 2)
#                       with the `stages` crate at opt-level 3, for machines without a release
#                       build of polars; say which one you used next to the numbers
#   BENCH_SKIP_BUILD=1  use the existing binary
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
MB="${BENCH_MB:-200}"
WORK="$REPO/bench/work/data_clean"
CORPUS="$WORK/corpus-${MB}mb"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed for peak memory: apt-get install time"
# shellcheck source=/dev/null
source "$REPO/scripts/env.sh"
PROFILE="${BENCH_PROFILE:-release}"
case "$PROFILE" in
    release) build_args=(--release); BIN="$CARGO_TARGET_DIR/release/binarylm" ;;
    dev) build_args=(--config 'profile.dev.package.stages.opt-level=3'); BIN="$CARGO_TARGET_DIR/debug/binarylm" ;;
    *) die "BENCH_PROFILE must be release or dev, not $PROFILE" ;;
esac
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building binarylm ($PROFILE)"
    (cd "$REPO" && cargo build "${build_args[@]}" -p binarylm --bin binarylm >&2)
fi
[ -x "$BIN" ] || die "$BIN not found (build it, or unset BENCH_SKIP_BUILD)"

mkdir -p "$WORK"
if [ ! -f "$CORPUS/planted.json" ]; then
    log "generating ${MB} MB of JSON Lines in $CORPUS"
    rm -rf "$CORPUS"
    python3 "$REPO/bench/gen_corpus.py" "$CORPUS" "$MB" 8 > "$CORPUS.planted.tmp"
    mv "$CORPUS.planted.tmp" "$CORPUS/planted.json"
fi
log "corpus: $(cat "$CORPUS/planted.json")"

write_manifest() { # $1 = file, $2 = clean block
    cat > "$1" <<YAML
name: data-clean-bench
seed: 1
stages:
  corpus:
    kind: data
    sources:
      - jsonl: "$CORPUS/*.jsonl"
$2
    split: { val_fraction: 0.01 }
YAML
}
write_manifest "$WORK/all.yaml" "    clean:
      strip_html: true
      normalize: nfc
      strip_control: true
      collapse_whitespace: true
      min_chars: 200
      max_chars: 100000
      languages: [en]
      quality: {}
      dedup: exact
      near_dedup: { threshold: 0.8 }"
write_manifest "$WORK/none.yaml" "    clean:
      normalize: none
      strip_control: false
      dedup: none"

threads=()
[ -n "${BENCH_THREADS:-}" ] && threads=(--threads "$BENCH_THREADS")
rows=()
for setup in all none; do
    ws="$WORK/ws-$setup"
    rm -rf "$ws"
    log "running: $setup steps"
    /usr/bin/time -v -o "$WORK/time-$setup.txt" \
        "$BIN" run "$WORK/$setup.yaml" --workspace "$ws" --json "${threads[@]}" > "$WORK/report-$setup.json"
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-$setup.txt")
    row=$(python3 - "$WORK/report-$setup.json" "$rss_kb" "$setup" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rss_mb = int(sys.argv[2]) / 1024
stage = report["stages"][0]
m = stage["metrics"]
assert stage["status"] == "ran", stage
mb = m["input_mb"]
seconds = mb / m["throughput_mb_s"]
kept = m["documents_train"] + m["documents_val"]
print(f"| {sys.argv[3]} | {mb:.0f} MB | {kept:.0f} ({m['documents_removed']:.0f} removed) "
      f"| {seconds:.1f} s | {m['throughput_mb_s']:.1f} MB/s | {rss_mb:.0f} MB | {100 * rss_mb / mb:.0f} % |")
PY
)
    rows+=("$row")
done

log "profile: $PROFILE, $(nproc) CPUs, $(uname -m)"
{
    echo "| steps | input | documents kept | stage time | throughput | peak RSS | RSS / input |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} | tee "$WORK/results.md"
