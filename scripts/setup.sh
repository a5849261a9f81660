#!/usr/bin/env bash
# Prepares a checkout for building: a Python virtualenv holding the torch==2.11.0 wheel (the
# libtorch that tch 0.24 links against) and `<repo>/.libtorch`, a symlink to that wheel's
# `site-packages/torch`, which .cargo/config.toml hands to torch-sys as LIBTORCH.
#
# Idempotent: a venv that already holds the right torch is reused as is. Concurrent runs against
# one shared venv (BINARYLM_VENV) serialize on a lock file next to it.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

TORCH_VERSION="2.11.0"
MIN_PYTHON="3.10"
venv="$BINARYLM_VENV"
link="$BINARYLM_REPO/.libtorch"

say() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}

# --- Rust -----------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    die "no 'cargo' on PATH. Install a Rust toolchain (https://rustup.rs), e.g.
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
then open a new shell (or 'source \$HOME/.cargo/env') and run this again."
fi
say "cargo: $(cargo --version)"

# --- Python ---------------------------------------------------------------------------------
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in ${PYTHON:+"$PYTHON"} python3 python3.13 python3.12 python3.11 python3.10; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# Prints the installed torch version of a venv (without its +local part), or nothing.
# Reads the package metadata instead of importing torch, which takes seconds.
venv_torch_version() {
    "$venv/bin/python" - <<'PY' 2>/dev/null || true
from importlib import metadata
try:
    print(metadata.version("torch").split("+")[0])
except metadata.PackageNotFoundError:
    pass
PY
}

mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    # The lock lives outside the repository (a venv inside it would leave an untracked file).
    lock_dir="${XDG_CACHE_HOME:-$HOME/.cache}/binarylm/locks"
    mkdir -p "$lock_dir"
    exec 9>"$lock_dir/venv-$(printf '%s' "$venv" | sha256sum | cut -c1-16).lock"
    if ! flock -n 9; then
        say "waiting for another setup using $venv ..."
        flock 9
    fi
fi

if [ -x "$venv/bin/python" ] && ! python_ok "$venv/bin/python"; then
    say "the venv at $venv has a broken or too old Python; recreating it"
    rm -rf "$venv"
fi

if [ ! -x "$venv/bin/python" ]; then
    python="$(find_python)" ||
        die "need Python >= $MIN_PYTHON (looked for \$PYTHON, python3, python3.13 ... python3.10).
Install it, e.g. 'apt-get install python3 python3-venv', or point PYTHON at one."
    say "python: $python ($("$python" --version 2>&1))"
    say "creating virtualenv at $venv"
    if ! "$python" -m venv "$venv"; then
        rm -rf "$venv"
        die "'$python -m venv' failed. On Debian/Ubuntu install the venv module: apt-get install python3-venv"
    fi
else
    say "virtualenv: $venv ($("$venv/bin/python" --version 2>&1))"
fi

have="$(venv_torch_version)"
if [ "$have" = "$TORCH_VERSION" ]; then
    say "torch $have already installed"
else
    say "installing torch==$TORCH_VERSION into $venv${have:+ (found $have)}"
    say "  (the wheel and its CUDA libraries are ~3 GB to download and ~5 GB on disk)"
    pip_args=(install --disable-pip-version-check --progress-bar off)
    if [ -n "${BINARYLM_TORCH_INDEX_URL:-}" ]; then
        say "  from index $BINARYLM_TORCH_INDEX_URL"
        pip_args+=(--index-url "$BINARYLM_TORCH_INDEX_URL")
    fi
    "$venv/bin/python" -m pip "${pip_args[@]}" "torch==$TORCH_VERSION"
    have="$(venv_torch_version)"
    [ "$have" = "$TORCH_VERSION" ] || die "after pip install, the venv holds torch '${have:-none}', not $TORCH_VERSION"
fi

# Python packages needed only by tests, if the project lists any. A stamp in the venv keeps
# reruns from calling pip while the list is unchanged.
test_reqs="$BINARYLM_REPO/scripts/requirements-test.txt"
if [ -f "$test_reqs" ]; then
    stamp="$venv/.binarylm-requirements-test.sha256"
    digest="$(sha256sum "$test_reqs" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" = "$digest" ]; then
        say "test requirements already installed"
    else
        say "installing test requirements from scripts/requirements-test.txt"
        "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r "$test_reqs"
        printf '%s\n' "$digest" >"$stamp"
    fi
fi

# --- lm-evaluation-harness (the parity test) -------------------------------------------------
# Its own venv, so its ~70 dependencies never move the torch venv's packages; the same Python.
# A stamp holding the requirements' digest keeps reruns from calling pip while they are unchanged.
lmeval_reqs="$BINARYLM_REPO/scripts/requirements-lm-eval.txt"
lmeval_venv="$BINARYLM_LMEVAL_VENV"
if [ -f "$lmeval_reqs" ]; then
    stamp="$lmeval_venv/.binarylm-requirements-lm-eval.sha256"
    digest="$(sha256sum "$lmeval_reqs" | cut -d' ' -f1)"
    if [ -x "$lmeval_venv/bin/python" ] && ! python_ok "$lmeval_venv/bin/python"; then
        say "the venv at $lmeval_venv has a broken or too old Python; recreating it"
        rm -rf "$lmeval_venv"
    fi
    if [ "$(cat "$stamp" 2>/dev/null || true)" = "$digest" ]; then
        say "lm-evaluation-harness already installed in $lmeval_venv"
    else
        if [ ! -x "$lmeval_venv/bin/python" ]; then
            say "creating virtualenv for lm-evaluation-harness at $lmeval_venv"
            "$venv/bin/python" -m venv "$lmeval_venv" ||
                die "could not create $lmeval_venv (install python3-venv?)"
        fi
        say "installing lm-evaluation-harness from scripts/requirements-lm-eval.txt (~760 MB)"
        "$lmeval_venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r "$lmeval_reqs"
        "$lmeval_venv/bin/python" -c 'import lm_eval, tenacity' ||
            die "lm_eval does not import in $lmeval_venv after pip install"
        printf '%s\n' "$digest" >"$stamp"
    fi
fi

# --- llama.cpp (the GGUF export test) -------------------------------------------------------
# npm's node-llama-cpp ships llama.cpp prebuilt for linux-x64 and linux-arm64 (its CPU build,
# ~85 MB, ~15 s to install); llama-cpp-python would compile llama.cpp from source, about half an
# hour on CI's 2 cores. Only the CPU package of this machine is installed (--omit=optional skips
# the CUDA and Vulkan builds, ~600 MB), and no install script runs: nothing is compiled.
# docs/export.md says why. A stamp holding the versions keeps reruns from calling npm.
LLAMA_CPP_NPM_VERSION="3.22.1"
llama_dir="$BINARYLM_LLAMA_CPP"
case "$(uname -m)" in
    x86_64 | amd64) llama_pkg="@node-llama-cpp/linux-x64" ;;
    aarch64 | arm64) llama_pkg="@node-llama-cpp/linux-arm64" ;;
    *) llama_pkg="" ;;
esac
stamp="$llama_dir/.binarylm-llama-cpp"
want="node-llama-cpp@$LLAMA_CPP_NPM_VERSION $llama_pkg@$LLAMA_CPP_NPM_VERSION"
if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
    say "llama.cpp (node-llama-cpp $LLAMA_CPP_NPM_VERSION) already installed in $llama_dir"
elif [ -z "$llama_pkg" ] || [ "$(uname -s)" != Linux ]; then
    say "warning: no prebuilt llama.cpp for $(uname -s) $(uname -m); the GGUF export test will fail"
elif ! command -v npm >/dev/null 2>&1; then
    say "warning: no 'npm' on PATH, so llama.cpp is not installed and the GGUF export test will fail.
    Install Node.js 20+ (e.g. 'apt-get install nodejs npm') and run this again."
else
    say "installing llama.cpp for the GGUF export test: $want into $llama_dir"
    mkdir -p "$llama_dir"
    [ -f "$llama_dir/package.json" ] || printf '{ "private": true }\n' >"$llama_dir/package.json"
    (cd "$llama_dir" && npm install --no-audit --no-fund --omit=optional --ignore-scripts \
        --save-exact "node-llama-cpp@$LLAMA_CPP_NPM_VERSION" "$llama_pkg@$LLAMA_CPP_NPM_VERSION") ||
        die "npm install of node-llama-cpp failed"
    printf '%s\n' "$want" >"$stamp"
fi

# --- Chromium (the browser tests of `binarylm ui`, tests/e2e_ui.rs) ---------------------------
# Debian's chromium and its chromedriver, installed only when missing. Without them the tests
# fail under CI (CI=true) and are skipped, with a note, elsewhere.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    say "chromium: $(chromium --version 2>/dev/null | head -n1)"
elif command -v apt-get >/dev/null 2>&1; then
    apt=(apt-get)
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "chromium and chromium-driver are missing and installing them needs root: apt-get install chromium chromium-driver"
        apt=(sudo apt-get)
    fi
    say "installing chromium and chromium-driver (the UI's browser tests)"
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends chromium chromium-driver
else
    msg="no chromium/chromedriver and no apt-get: install Chromium and its chromedriver for tests/e2e_ui.rs"
    if [ "${CI:-}" = "true" ]; then die "$msg"; fi
    say "warning: $msg"
fi

# --- .libtorch ------------------------------------------------------------------------------
torch_dir="$("$venv/bin/python" -c \
    'import importlib.util; print(importlib.util.find_spec("torch").submodule_search_locations[0])')"
for needed in lib/libtorch_cpu.so lib/libc10.so include/torch; do
    [ -e "$torch_dir/$needed" ] || die "$torch_dir has no $needed: not a usable libtorch"
done

if [ -e "$link" ] && [ ! -L "$link" ]; then
    die "$link exists and is not a symlink; move it away and run this again"
fi
if [ "$(readlink "$link" 2>/dev/null || true)" = "$torch_dir" ]; then
    say "$link -> $torch_dir (unchanged)"
else
    ln -sfn "$torch_dir" "$link"
    say "linked $link -> $torch_dir"
fi

if [ -e "$torch_dir/lib/libtorch_cuda.so" ]; then
    say "this libtorch has CUDA support: 'device: auto' uses a GPU when one is present"
else
    say "this libtorch is CPU-only"
fi
say "LIBTORCH=$(realpath "$link")"
say "done"
