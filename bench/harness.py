"""The rules every comparison benchmark follows (BENCHMARKS.md, "How the figures are made").

- The machine must be quiet: the 1-minute load average, read before the benchmark and again
  before every timed run, must be at or below the number of cores. A machine busier at the
  start is refused (exit 3); one that becomes busier between runs (after waiting up to
  BENCH_SETTLE seconds for the reading to fall) marks every table "busy machine: not for
  publication", as BENCH_ALLOW_BUSY=1 does. The reading after the last run is printed but not
  judged: taken while the benchmark's own processes are still counted in it (a peer with two
  workers, its parent and the memory poller keep more than two processes runnable on two
  cores), it measures the benchmark, not the rest of the machine.
- Each side runs `rounds` times (at least 5 for a published figure; BENCH_ROUNDS sets it), in
  an order rotated every round, so drift and load spikes fall on every side alike.
- Every figure is min / median / max over the rounds, and a ratio is of medians.
- The sides must have produced the same thing: each run returns a fingerprint of its output
  (a hash of token ids, a vocabulary size, a loss…) and `check_agree` stops the benchmark
  (exit 1) when they differ, before any ratio is printed.

A side is a callable returning a dict with at least `seconds` and `output` (what must agree);
other keys are kept. Results are plain dicts, so a driver can dump them as JSON.
"""

import json
import os
import statistics
import sys
import time


class Disagreement(SystemExit):
    pass


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cores():
    return len(os.sched_getaffinity(0))


def allow_busy():
    return os.environ.get("BENCH_ALLOW_BUSY") == "1"


# The 1-minute load average read before each timed run, after settling (see `settle`).
_BEFORE_RUNS = []


def settle():
    """Waits up to BENCH_SETTLE seconds (default 180) for the 1-minute load average to fall to
    the core count, and returns the last reading. The average lags by about a minute, so right
    after a run that kept every core busy it reads near the core count even on an idle machine;
    a few seconds of waiting separate that from other work."""
    load = load_average()
    deadline = time.monotonic() + float(os.environ.get("BENCH_SETTLE", 180))
    while load[0] > cores() and not allow_busy() and time.monotonic() < deadline:
        time.sleep(5)
        load = load_average()
    return load


def require_quiet(what):
    """Refuses to start `what` on a machine busier than its cores (exit 3). The 1-minute load
    average lags: after a script's own set-up (a build, training the model to time) it reads
    busy for a minute or two on an idle machine, so first wait up to BENCH_SETTLE seconds
    (default 180) for it to fall."""
    load = settle()
    if load[0] > cores() and not allow_busy():
        sys.stderr.write(
            f"bench: refusing to time {what}: load average {load[0]:.2f} on {cores()} cores.\n"
            "hint: wait for the machine to be idle, or set BENCH_ALLOW_BUSY=1 for a smoke run "
            "whose figures are marked as not for publication\n"
        )
        raise SystemExit(3)
    return load


def rounds_wanted(default=5):
    n = int(os.environ.get("BENCH_ROUNDS", default))
    if n < 1:
        raise SystemExit("bench: BENCH_ROUNDS must be at least 1")
    return n


def run_rounds(sides, rounds, log=sys.stderr):
    """Runs every side `rounds` times, rotating the order each round. `sides` is a list of
    (name, callable). Returns {name: [result, …]} in round order."""
    results = {name: [] for name, _ in sides}
    for r in range(rounds):
        k = r % len(sides)
        order = sides[k:] + sides[:k]
        for name, run in order:
            _BEFORE_RUNS.append(settle()[0])
            start = time.perf_counter()
            out = run()
            out.setdefault("seconds", time.perf_counter() - start)
            results[name].append(out)
            log.write(f"round {r + 1}/{rounds} {name}: {out['seconds']:.3f} s\n")
            log.flush()
    return results


def check_agree(results, what, key="output", close=None):
    """Every run of every side produced the same `key` (or values within `close(a, b)`);
    otherwise the benchmark stops with exit 1, naming the sides that differ."""
    items = [(name, i, r[key]) for name, runs in results.items() for i, r in enumerate(runs)]
    ref_name, _, ref = items[0]
    for name, i, value in items[1:]:
        same = close(ref, value) if close else value == ref
        if not same:
            raise Disagreement(
                f"bench: {what}: {name} (round {i + 1}) produced {value!r}, "
                f"{ref_name} produced {ref!r}; no ratio is printed for outputs that differ"
            )


def summary(runs, key="seconds"):
    values = [r[key] for r in runs]
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "rounds": len(values),
    }


def table(title, results, baseline, unit="s", key="seconds", invert=False):
    """A Markdown table: one row per side with min / median / max and the ratio of medians that
    reads as "how many times the baseline is faster": this side's time over the baseline's, or
    for rates (`invert`, higher is better) the baseline's rate over this side's."""
    base = summary(results[baseline], key)["median"]
    ratio_head = f"{baseline}'s ÷ this" if invert else f"this ÷ {baseline}'s"
    lines = [
        f"{title}",
        "",
        f"| side | min {unit} | median {unit} | max {unit} | median, {ratio_head} |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        s = summary(runs, key)
        ratio = base / s["median"] if invert else s["median"] / base
        lines.append(
            f"| {name} | {s['min']:.3f} | {s['median']:.3f} | {s['max']:.3f} | {ratio:.2f}× |"
        )
    return "\n".join(lines)


def footer(load_before):
    load_after = load_average()
    rounds = {int(os.environ.get("BENCH_ROUNDS", 5))}
    text = (
        f"load average (1/5/15 min) before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in load_after)}; {cores()} cores"
    )
    if _BEFORE_RUNS:
        text += (
            f"; before each timed run (1 min) at most {max(_BEFORE_RUNS):.2f}, "
            f"median {statistics.median(_BEFORE_RUNS):.2f}"
        )
    busy = load_before[0] > cores() or any(x > cores() for x in _BEFORE_RUNS)
    if busy or allow_busy():
        text += "\n\n**busy machine: not for publication**"
    elif min(rounds) < 5:
        text += "\n\n**fewer than 5 rounds: not for publication**"
    return text


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
