"""Greedy decode tokens/s: binarylm's f32/int8/int4 models against llama.cpp's f32/f16/Q8_0/Q4_0
GGUF files of the same model, under bench/harness.py's rules. Called by
bench/export_llama_cpp.sh, which trains, quantizes and exports the model first.

    python bench/llama_decode.py BINARYLM WORKDIR LLAMA_DECODE LIB_DIR EOS_ID TOKENS

WORKDIR is the bench pipeline's directory (stages base, q8, q4 and gguf_*); LLAMA_DECODE is
bench/llama_decode.c built. Each side is one process per round (model load not timed: both
time only their decode loop); llama.cpp runs with 1 and with 2 threads and its faster setting is
its row. Before any figure: llama.cpp's f32 greedy text must equal `binarylm generate`'s
(exit 1 otherwise). Prints a Markdown table (median, min–max tokens/s over BENCH_ROUNDS).
"""

import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    binarylm, work, tool, libdir, eos, tokens = sys.argv[1:7]
    load = harness.require_quiet("decode speed")
    rounds = harness.rounds_wanted()

    def path(stage):
        out = subprocess.run(
            [binarylm, "show", stage, "--json"], cwd=work, check=True, capture_output=True, text=True
        )
        return json.loads(out.stdout)["path"]

    def ours(stage):
        def run():
            out = subprocess.run(
                [binarylm, "generate", stage, "-n", tokens, "--temperature", "0", "--device", "cpu"],
                cwd=work, check=True, capture_output=True, text=True,
            )
            m = re.search(r"([0-9.]+) tokens/s", out.stderr)
            if not m:
                sys.exit(f"bench: no tokens/s in binarylm generate's output:\n{out.stderr[-2000:]}")
            return {"tokens_per_s": float(m.group(1)), "output": out.stdout.strip()}
        return run

    def llama(fmt, threads):
        gguf = os.path.join(path(f"gguf_{fmt}"), "model.gguf")

        def run():
            # Five decodes in one process, their median as this round's figure: 56 tokens of a
            # tiny model take milliseconds, too short for one timing to mean much.
            out = subprocess.run(
                [tool, libdir, gguf, eos, tokens, "5", str(threads)],
                check=True, capture_output=True, text=True,
            )
            r = json.loads(out.stdout)
            return {"tokens_per_s": statistics.median(r["tokens_per_s"]), "output": r["text"].strip()}
        return run

    sides = [
        ("binarylm f32", ours("base")),
        ("binarylm int8", ours("q8")),
        ("binarylm int4", ours("q4")),
    ]
    for fmt in ("f32", "f16", "q8_0", "q4_0"):
        for threads in (1, 2):
            sides.append((f"llama.cpp {fmt} ({threads} thread{'s' if threads > 1 else ''})", llama(fmt, threads)))
    results = harness.run_rounds(sides, rounds)
    f32 = {k: v for k, v in results.items() if k == "binarylm f32" or k.startswith("llama.cpp f32")}
    harness.check_agree(f32, "greedy text of the f32 model")

    def med(runs):
        xs = [r["tokens_per_s"] for r in runs]
        return statistics.median(xs), min(xs), max(xs)

    print(f"Decode tokens/s, {tokens} greedy tokens from <|eos|>, {rounds} rounds.")
    print()
    print("| model | tokens/s, median (min–max) | threads |")
    print("|---|---:|---:|")
    for name in ("binarylm f32", "binarylm int8", "binarylm int4"):
        m, lo, hi = med(results[name])
        print(f"| {name} | {m:.0f} ({lo:.0f}–{hi:.0f}) | 2 |")
    for fmt in ("f32", "f16", "q8_0", "q4_0"):
        best = max(
            (k for k in results if k.startswith(f"llama.cpp {fmt} ")),
            key=lambda k: med(results[k])[0],
        )
        m, lo, hi = med(results[best])
        threads = best.split("(")[1].split(" ")[0]
        print(f"| llama.cpp {fmt.upper() if fmt.startswith('q') else fmt} | {m:.0f} ({lo:.0f}–{hi:.0f}) | {threads} (faster of 1 and 2) |")
    print()
    print(harness.footer(load))


if __name__ == "__main__":
    main()
