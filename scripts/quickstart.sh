#!/usr/bin/env bash
# Sets up the checkout (scripts/setup.sh), builds the release binary and runs the quickstart
# pipeline (examples/quickstart/pipeline.yaml). Extra arguments go to `binarylm run`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
bash "$here/setup.sh"
# shellcheck source=scripts/env.sh
source "$here/env.sh"
cd "$BINARYLM_REPO"

manifest="examples/quickstart/pipeline.yaml"
[ -f "$manifest" ] || {
    echo "quickstart: error: $manifest not found" >&2
    exit 1
}

echo "quickstart: building the release binaries (LIBTORCH=$LIBTORCH)"
# `binarylm` runs the stages that need libtorch through `binarylm-torch` (a binary of the
# `stages-torch` crate), which it expects beside itself.
cargo build --release -p binarylm -p stages-torch --bins
binarylm="$CARGO_TARGET_DIR/release/binarylm"
echo "quickstart: $binarylm run $manifest $*"
exec "$binarylm" run "$manifest" "$@"
