"""Driver of bench/gpt_cpu.sh: binarylm's training step against PyTorch at its best (eager with
fused kernels, and torch.compile), under bench/harness.py's rules.

    gpt_cpu.py <bench_gpt binary> <steps> <threads> [tiny|gpt2]

Each side trains the model — nanoGPT's CPU config (`tiny`), or GPT-2 small (`gpt2`, 124M
parameters, batches of 4 × 128 tokens) — on the same structured token sequence from its own
initialisation; their final losses must agree within 10 % (the same model learning the same
data; a broken side would not) before a ratio is printed.
"""

import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python", "gpt_ref.py")


TITLES = {
    "tiny": "nanoGPT's CPU config (batch 12 × 64 tokens)",
    "gpt2": "GPT-2 small, 124M parameters (batch 4 × 128 tokens)",
}


WARMUP = {"tiny": 5, "gpt2": 2}


def main(binary, steps, threads, model="tiny"):
    env = dict(os.environ, OMP_NUM_THREADS=threads)

    def side(*argv):
        def run():
            out = subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout
            r = json.loads(out.strip().splitlines()[-1])
            r["seconds"] = r["ms_per_step"] / 1000
            return r
        return run

    if model not in TITLES:
        sys.exit(f"unknown model {model!r}: tiny or gpt2")
    load = harness.require_quiet(f"GPT training steps ({model})")
    results = harness.run_rounds(
        [
            ("binarylm", side(binary, "train", steps, threads, model)),
            ("PyTorch eager (fused)",
             side(sys.executable, REF, "bench", steps, threads, "eager", model)),
            ("PyTorch torch.compile",
             side(sys.executable, REF, "bench", steps, threads, "compile", model)),
        ],
        harness.rounds_wanted(),
    )
    harness.check_agree(
        results,
        f"final training loss after {steps} steps",
        key="final_loss",
        close=lambda a, b: abs(a - b) <= 0.1 * max(abs(a), abs(b)),
    )
    losses = {name: [round(r["final_loss"], 4) for r in runs] for name, runs in results.items()}
    for runs in results.values():
        for r in runs:
            r["ms"] = r["ms_per_step"]
    print(harness.table(
        f"Training step (forward, backward, clipping, AdamW) of {TITLES[model]}, "
        f"{threads} threads, {steps} timed steps after {WARMUP[model]} warm-up (final losses {losses})",
        results, "binarylm", unit="ms", key="ms"))
    print()
    print("Where a step's time goes, ms (median over rounds): forward + backward / gradient "
          "clipping / AdamW")
    print()
    for name, runs in results.items():
        parts = [statistics.median(r["phases_ms"][k] for r in runs)
                 for k in ("forward_backward", "clip", "adamw")]
        print(f"- {name}: " + " / ".join(f"{p:.1f}" for p in parts))
    print()
    print(harness.footer(load))


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(*sys.argv[1:])
