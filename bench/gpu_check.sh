#!/usr/bin/env bash
# The CUDA paths end to end, on a GPU machine: `binarylm doctor`, the quickstart pipeline with
# `device: auto` (data → tokenizer → pretrain on the GPU → deploy, whose smoke test serves the
# model on the GPU), greedy generation on the GPU against the CPU, then bench/gpu_gpt2.sh.
#
#   bash bench/gpu_check.sh <dir holding binarylm and binarylm-torch>
#
# The binaries are built elsewhere against the same torch 2.11 wheel; this machine's own
# torch/lib is put on LD_LIBRARY_PATH. Results are printed and, when $OUT is set, copied there.
set -euo pipefail
bin="$(cd "${1:?usage: gpu_check.sh <bin dir>}" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"
torch_lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out="${OUT:-$(mktemp -d)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== doctor"
"$bin/binarylm-torch" doctor --json | tee "$out/doctor.json"
grep -q '"cuda_devices":[1-9]' "$out/doctor.json" || { echo "no CUDA device seen"; exit 1; }

echo "== quickstart on the GPU (device: auto)"
cp "$here/../examples/quickstart/pipeline.yaml" "$work/"
(cd "$work" && "$bin/binarylm" run 2>&1 | tee "$out/quickstart.log")
(cd "$work" && "$bin/binarylm" show base --json > "$out/quickstart_base.json")
(cd "$work" && "$bin/binarylm" show api --json > "$out/quickstart_api.json")
"$py" - "$out/quickstart_base.json" "$out/quickstart_api.json" <<'PY'
import json, sys
base, api = (json.load(open(p)) for p in sys.argv[1:3])
print("base device", base["device"], "val_loss", base["metrics"]["val_loss"],
      "tokens/s", round(base["metrics"]["tokens_per_s"]))
print("api device", api["device"], "chat tokens/s", round(api["metrics"]["chat_tokens_per_s"]))
assert base["device"].startswith("cuda"), "pretrain did not run on the GPU"
assert api["device"].startswith("cuda"), "deploy did not run on the GPU"
PY

echo "== greedy generation: GPU against CPU, same model"
for d in cuda cpu; do
    (cd "$work" && "$bin/binarylm" generate base --prompt "Mia put the key" -n 40 -t 0 \
        --device "$d" --json -q > "$out/generate_$d.json")
done
"$py" - "$out/generate_cuda.json" "$out/generate_cpu.json" <<'PY'
import json, sys
g, c = (json.loads(open(p).read().splitlines()[0]) for p in sys.argv[1:3])
print("cuda:", repr(g.get("text"))); print("cpu: ", repr(c.get("text")))
same = g.get("text") == c.get("text")
print("greedy text identical on GPU and CPU:", same)
PY

echo "== GPT-2 small against PyTorch"
bash "$here/gpu_gpt2.sh" "$bin/binarylm-torch" 2>&1 | tee "$out/gpu_gpt2.log"
