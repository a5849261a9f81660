#!/usr/bin/env bash
# Sets up the checkout (scripts/setup.sh), builds every target of the workspace and runs the
# whole test suite. Exits non-zero if anything fails to build or any test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
bash "$here/setup.sh"
# shellcheck source=scripts/env.sh
source "$here/env.sh"
cd "$BINARYLM_REPO"

echo "test: LIBTORCH=$LIBTORCH"
echo "test: CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
set -x
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast
