#!/usr/bin/env python3
"""Driver of bench/data_clean.sh: times binarylm's data stage and datatrove's pipeline on the
same corpus under bench/harness.py's rules, checks what each removed, and prints the tables.

    python bench/data_clean.py BINARYLM_BIN WORK_DIR CORPUS_DIR THREADS SETUP [SETUP…]

A SETUP names the steps both sides run: `html` (HTML extraction, length bounds, English only,
Gopher repetition and quality, exact dedup, MinHash near dedup) or `plain` (the same without
HTML extraction). WORK_DIR holds `binarylm-SETUP.yaml` (written by the shell script) and gets
each run's output, logs and the results (results.md, results.json).

Measured for each run, whole command from start to exit: wall time, and memory polled every
50 ms over the process and all its descendants (datatrove runs each task in a worker process):
the peak of the summed PSS (resident pages, a page shared by n processes counted 1/n, so
forked workers' shared pages are not counted n times) and the largest peak RSS (VmHWM) of any
single process. GNU time's figure is not used: wait4 reports the largest process among the
descendants that were waited for, which misses workers their pool does not reap. Run in the
bench venv (pyarrow).
"""
import collections
import glob
import hashlib
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402

# Agreement, checked before any ratio is printed (BENCHMARKS.md, "Data cleaning").
KEPT_TOLERANCE = 0.01  # the sides' kept-document counts within 1 % of the larger
MIN_REMOVED = {"exact_copy": 0.99, "near_copy": 0.95, "noise": 0.95, "german": 0.95}
MIN_KEPT = 0.97  # of the clean documents (prose families; HTML pages when extracted)
MAX_UNMATCHED = 0.005  # output documents that match no input document
POLL_S = 0.05

WORD = re.compile(r"\w+")
HIDDEN = re.compile(r"<(head|script|style)\b.*?</\1\s*>", re.S | re.I)
TAG = re.compile(r"<[^>]*>")


def words(text):
    return WORD.findall(text.lower())


def key(ws):
    return hashlib.blake2b(" ".join(ws).encode(), digest_size=12).digest()


def visible(page):
    """The words a reader sees on a generated HTML page (gen_corpus.py's pages are simple)."""
    return words(html.unescape(TAG.sub(" ", HIDDEN.sub(" ", page))))


class Corpus:
    """The input documents, each with its kind and family (gen_corpus.py's labels.tsv), keyed
    by its word sequence: cleaning may change whitespace, Unicode form and markup, but not the
    words, so an output document is recognised by its words."""

    PREFIX = 30  # words; a fallback match for pages an extractor rendered slightly differently

    def __init__(self, corpus_dir):
        files = sorted(glob.glob(os.path.join(corpus_dir, "part-*.jsonl")))
        lines = [open(f, encoding="utf-8").read().splitlines() for f in files]
        labels = [ln.split("\t") for ln in open(os.path.join(corpus_dir, "labels.tsv"))]
        self.kind, self.family, self.canon = [], [], []
        self.alias = {}  # key of an output text → canonical key of the input document
        self.prefix = {}  # first PREFIX words of a page's visible text → its canonical key
        for i, (kind, family) in enumerate(labels):
            text = json.loads(lines[i % len(files)][i // len(files)])["text"]
            raw = words(text)
            canon = key(raw)
            if kind == "html":
                seen = visible(text)
                canon = key(seen)
                self.alias[key(raw)] = canon  # the page kept as it is (no extraction)
                self.prefix[key(seen[: self.PREFIX])] = canon
            self.alias[canon] = canon
            self.kind.append(kind)
            self.family.append(int(family))
            self.canon.append(canon)
        self.planted = collections.Counter(self.kind)

    def score(self, texts):
        """Per category, the share removed (copies, noise, German) or kept (clean documents),
        from the output's texts."""
        count = collections.Counter()
        unmatched = 0
        for text in texts:
            ws = words(text)
            canon = self.alias.get(key(ws)) or self.prefix.get(key(ws[: self.PREFIX]))
            if canon is None:
                unmatched += 1
            else:
                count[canon] += 1
        families = collections.defaultdict(lambda: {"root": None, "exact": 0, "near": []})
        single = collections.defaultdict(lambda: [0, 0])  # kind → [documents, kept]
        for kind, fam, canon in zip(self.kind, self.family, self.canon):
            if kind in ("prose", "exact_copy", "near_copy"):
                f = families[fam]
                if kind == "prose":
                    f["root"] = canon
                elif kind == "exact_copy":
                    f["exact"] += 1
                else:
                    f["near"].append(canon)
            else:
                single[kind][0] += 1
                single[kind][1] += count[canon] > 0
        exact = [0, 0]  # copies, removed
        near = [0, 0]
        kept_families = 0
        for f in families.values():
            root = f["root"]
            # A near copy whose changed word was drawn again is an exact copy.
            f["exact"] += sum(k == root for k in f["near"])
            others = [k for k in f["near"] if k != root]
            exact[0] += f["exact"]
            exact[1] += min(f["exact"], max(0, f["exact"] - max(0, count[root] - 1)))
            kept_keys = {k for k in [root] + others if count[k] > 0}
            near[0] += len(others)
            near[1] += len(others) - min(len(others), max(0, len(kept_keys) - 1))
            kept_families += bool(kept_keys)
        share = lambda a, b: a / b if b else 1.0  # noqa: E731
        return {
            "documents": len(texts),
            "unmatched": unmatched,
            "removed": {
                "exact_copy": share(exact[1], exact[0]),
                "near_copy": share(near[1], near[0]),
                "noise": share(single["noise"][0] - single["noise"][1], single["noise"][0]),
                "german": share(single["german"][0] - single["german"][1], single["german"][0]),
            },
            "kept": {
                "prose": share(kept_families, len(families)),
                "html": share(single["html"][1], single["html"][0]),
            },
        }


def tree(root):
    pids, i = [root], 0
    while i < len(pids):
        try:
            for task in os.listdir(f"/proc/{pids[i]}/task"):
                with open(f"/proc/{pids[i]}/task/{task}/children") as f:
                    pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        i += 1
    return pids


def memory_kb(pids):
    """Summed PSS of `pids`, and the largest peak RSS (VmHWM) among them."""
    pss = hwm = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                pss += next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
            with open(f"/proc/{pid}/status") as f:
                hwm = max(hwm, next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")))
        except (OSError, StopIteration):
            pass  # the process ended between the listing and the read
    return pss, hwm


def measure(cmd, log_path, env=None):
    """Runs `cmd` to completion; wall seconds, peak summed PSS (MB) of its process tree and
    the largest peak RSS (MB) of any process in it. (Popen returns after the child's exec, so no
    sample sees the driver's own pages in a forked child.)"""
    with open(log_path, "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        peak_pss = peak_rss = 0
        while proc.poll() is None:
            pss, hwm = memory_kb(tree(proc.pid))
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, hwm)
            time.sleep(POLL_S)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {cmd[0]} failed (exit {proc.returncode}); see {log_path}")
    return {"seconds": seconds, "pss_mb": peak_pss / 1024, "max_rss_mb": peak_rss / 1024}


def parquet_texts(paths):
    texts = []
    for p in paths:
        texts += pq.read_table(p, columns=["text"]).column("text").to_pylist()
    return texts


def binarylm_side(bin_path, work, setup, threads, corpus):
    manifest = os.path.join(work, f"binarylm-{setup}.yaml")

    def run():
        ws = os.path.join(work, f"ws-binarylm-{setup}")
        shutil.rmtree(ws, ignore_errors=True)
        cmd = [bin_path, "run", manifest, "--workspace", ws, "--threads", str(threads), "-q"]
        out = measure(cmd, os.path.join(work, f"binarylm-{setup}.log"))
        texts = parquet_texts(sorted(glob.glob(os.path.join(ws, "objects/*/*/*.parquet"))))
        out["score"] = corpus.score(texts)
        out["output"] = len(texts)
        return out

    return run


def datatrove_side(python, work, setup, threads, corpus, corpus_dir, env):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_clean_datatrove.py")
    flags = ["--language"] + (["--html"] if setup == "html" else [])

    def run():
        out_dir = os.path.join(work, f"out-datatrove-{setup}")
        shutil.rmtree(out_dir, ignore_errors=True)
        cmd = [python, script, corpus_dir, out_dir, str(threads)] + flags
        out = measure(cmd, os.path.join(work, f"datatrove-{setup}.log"), env)
        texts = parquet_texts(sorted(glob.glob(os.path.join(out_dir, "output/*.parquet"))))
        out["score"] = corpus.score(texts)
        out["output"] = len(texts)
        return out

    return run


def check(results, setup, planted):
    """Stops the benchmark (exit 1) unless both sides did the cleaning the same way."""
    def kept_close(a, b):
        return abs(a - b) <= KEPT_TOLERANCE * max(a, b)

    harness.check_agree(results, f"{setup}: documents kept (±{KEPT_TOLERANCE:.0%})", close=kept_close)
    for name, runs in results.items():
        for i, r in enumerate(runs):
            s = r["score"]
            fail = []
            for cat, least in MIN_REMOVED.items():
                if planted[cat] and s["removed"][cat] < least:
                    fail.append(f"removed {s['removed'][cat]:.1%} of {cat} (< {least:.0%})")
            clean = ["prose"] + (["html"] if setup == "html" else [])
            for cat in clean:
                if s["kept"][cat] < MIN_KEPT:
                    fail.append(f"kept {s['kept'][cat]:.1%} of {cat} (< {MIN_KEPT:.0%})")
            if s["unmatched"] > MAX_UNMATCHED * max(1, s["documents"]):
                fail.append(f"{s['unmatched']} output documents match no input document")
            if fail:
                raise harness.Disagreement(
                    f"bench: {setup}: {name} (round {i + 1}) {'; '.join(fail)}; "
                    "no ratio is printed for cleaners that do not do the same job"
                )


def fmt3(values):
    return f"{min(values):,.1f} / {statistics.median(values):,.1f} / {max(values):,.1f}"


def report(setup, results, input_mb):
    names = list(results)
    base = harness.summary(results[names[0]])["median"]
    lines = [
        f"### `{setup}`: {'with' if setup == 'html' else 'without'} HTML extraction",
        "",
        "| side | wall s (min / median / max) | MB/s (median) | median ÷ binarylm's | "
        "peak PSS, tree sum, MB (min / med / max) | largest process peak RSS, MB (median) | kept |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        runs = results[name]
        t = harness.summary(runs)
        rss = harness.summary(runs, "max_rss_mb")["median"]
        lines.append(
            f"| {name} | {fmt3([r['seconds'] for r in runs])} | {input_mb / t['median']:.2f} "
            f"| {t['median'] / base:.2f}× | {fmt3([r['pss_mb'] for r in runs])} | {rss:,.0f} "
            f"| {runs[0]['output']:,} |"
        )
    lines += [
        "",
        "| category | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    first = {n: results[n][0]["score"] for n in names}
    for what in ("removed", "kept"):
        for cat in first[names[0]][what]:
            lines.append(
                f"| {cat} {what} | " + " | ".join(f"{first[n][what][cat]:.1%}" for n in names) + " |"
            )
    lines.append(
        "| output documents matching no input | "
        + " | ".join(str(first[n]["unmatched"]) for n in names)
        + " |"
    )
    return "\n".join(lines)


def main():
    bin_path, work, corpus_dir, threads = sys.argv[1:5]
    setups = sys.argv[5:]
    threads = int(threads)
    load = harness.require_quiet("data cleaning")
    rounds = harness.rounds_wanted()
    corpus = Corpus(corpus_dir)
    input_mb = sum(os.path.getsize(f) for f in glob.glob(os.path.join(corpus_dir, "*.jsonl"))) / 1e6
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    sections, dump = [], {}
    for setup in setups:
        sides = [
            ("binarylm", binarylm_side(bin_path, work, setup, threads, corpus)),
            ("datatrove", datatrove_side(sys.executable, work, setup, threads, corpus, corpus_dir, env)),
        ]
        results = harness.run_rounds(sides, rounds)
        check(results, setup, corpus.planted)
        sections.append(report(setup, results, input_mb))
        dump[setup] = results
    planted = ", ".join(f"{n:,} {k}" for k, n in sorted(corpus.planted.items()))
    text = "\n\n".join(
        [
            f"Corpus: {input_mb:.1f} MB, {sum(corpus.planted.values()):,} documents ({planted}); "
            f"{threads} threads / tasks per side; {rounds} rounds, order rotated.",
            *sections,
            harness.footer(load),
        ]
    )
    print(text)
    with open(os.path.join(work, "results.md"), "w") as f:
        f.write(text + "\n")
    harness.dump(os.path.join(work, "results.json"), dump)


if __name__ == "__main__":
    main()
