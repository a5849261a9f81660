"""Times `binarylm ui`'s pages and its model inspector over HTTP (see bench/ui.sh).

A page's time is the wall time of every request the page makes, in the order the browser
makes them: the HTML, app.js, style.css, then the page's JSON (the home page asks for every
pipeline's document after the home document). Prints a Markdown table.
"""

import json
import statistics
import subprocess
import sys
import time
import urllib.request

base, rounds, prompt, change = sys.argv[1].rstrip("/"), int(sys.argv[2]), sys.argv[3], sys.argv[4]


def get(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return resp.read()


def page(paths):
    start = time.perf_counter()
    for p in ["/", "/assets/app.js", "/assets/style.css"]:
        get(p)
    docs = [json.loads(get(p)) for p in paths]
    return time.perf_counter() - start, docs


home = json.loads(get("/api/home"))
runs = json.loads(get("/api/runs"))
assert len(runs) >= 100, f"only {len(runs)} runs"
pages = {
    "pipelines (home)": ["/api/home"] + [f"/api/pipelines/{p['id']}" for p in home["pipelines"]],
    f"runs ({len(runs)})": ["/api/runs"],
    "stage `base`": ["/api/pipelines/0/stages/base"],
    "curves": ["/api/curves"],
}
print("| page | min ms | median ms | max ms |")
print("|---|---:|---:|---:|")
for name, paths in pages.items():
    times = [page(paths)[0] * 1000 for _ in range(rounds)]
    print(f"| {name} | {min(times):.1f} | {statistics.median(times):.1f} | {max(times):.1f} |")

# After the workspace changed (one more run finished), the next page rebuilds the snapshot
# from every run, record and object file first.
rebuilt = []
for _ in range(3):
    subprocess.run(change, shell=True, check=True)
    rebuilt.append(page(pages["pipelines (home)"])[0] * 1000)
print(f"| pipelines (home), first load after a new run (snapshot rebuilt) | {min(rebuilt):.1f} | {statistics.median(rebuilt):.1f} | {max(rebuilt):.1f} |")

url = "/api/pipelines/0/stages/base/inspect"
request = {"op": "prompt", "text": prompt, "top_k": 5}


def inspect():
    start = time.perf_counter()
    doc = json.loads(get(url, request))
    elapsed = time.perf_counter() - start
    assert len(doc["tokens"]) == 64, f"{len(doc['tokens'])} tokens"
    for layer in doc["attention"]:
        for head in layer:
            for row in head:
                assert abs(sum(row) - 1) < 1e-4, sum(row)
    return elapsed * 1000


first = inspect()
times = [inspect() for _ in range(rounds)]
print()
print("| inspector, 64-token prompt | ms |")
print("|---|---:|")
print(f"| first request (starts binarylm-torch inspect, loads the model) | {first:.0f} |")
print(f"| min / median / max of {rounds} | {min(times):.0f} / {statistics.median(times):.0f} / {max(times):.0f} |")
