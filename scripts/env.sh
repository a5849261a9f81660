# shellcheck shell=bash
# Environment shared by the project's scripts; sourced, never run.
#
#   BINARYLM_REPO     the repository root (derived from this file's location)
#   BINARYLM_VENV     the Python virtualenv holding the torch wheel (default: <repo>/.venv)
#   BINARYLM_LMEVAL_VENV  a separate virtualenv holding lm-evaluation-harness, for the parity
#                     test (default: $BINARYLM_VENV-lm-eval; scripts/requirements-lm-eval.txt)
#   BINARYLM_LLAMA_CPP  where setup.sh installs llama.cpp (npm's node-llama-cpp, prebuilt) for
#                     the GGUF export test (default: ~/.cache/binarylm/llama-cpp)
#   CARGO_TARGET_DIR  cargo's build directory (default: ~/.cache/binarylm/target, shared by clones)
#   LIBTORCH          the absolute, symlink-free path of <repo>/.libtorch, once setup.sh made it
#
# An absolute LIBTORCH matters: torch-sys rebuilds whenever the value changes, and the relative
# default from .cargo/config.toml resolves to a different path in every clone. With the real path
# of a shared venv, clones sharing CARGO_TARGET_DIR also share the compiled torch-sys.

BINARYLM_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export BINARYLM_REPO
export BINARYLM_VENV="${BINARYLM_VENV:-$BINARYLM_REPO/.venv}"
case "$BINARYLM_VENV" in
    /*) ;;
    *) BINARYLM_VENV="$PWD/$BINARYLM_VENV" ;; # a relative path is taken from where we run
esac
export BINARYLM_LMEVAL_VENV="${BINARYLM_LMEVAL_VENV:-$BINARYLM_VENV-lm-eval}"
case "$BINARYLM_LMEVAL_VENV" in
    /*) ;;
    *) BINARYLM_LMEVAL_VENV="$PWD/$BINARYLM_LMEVAL_VENV" ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/binarylm/target}"
export BINARYLM_LLAMA_CPP="${BINARYLM_LLAMA_CPP:-${XDG_CACHE_HOME:-$HOME/.cache}/binarylm/llama-cpp}"

# Test binaries in the shared CARGO_TARGET_DIR may have been compiled in another clone: cargo
# reuses them when the sources match, but they carry that clone's path, where insta would look
# for its snapshot files. Point insta at this checkout at run time instead.
export INSTA_WORKSPACE_ROOT="$BINARYLM_REPO"

# These would make torch-sys look for libtorch somewhere other than the project's venv.
unset LIBTORCH_USE_PYTORCH LIBTORCH_INCLUDE LIBTORCH_LIB

if [ -e "$BINARYLM_REPO/.libtorch" ]; then
    LIBTORCH="$(realpath "$BINARYLM_REPO/.libtorch")"
    export LIBTORCH
fi
