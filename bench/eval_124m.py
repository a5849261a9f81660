"""Driver of bench/eval_124m.sh: the eval stage against lm-evaluation-harness's `hf` backend
(transformers) on the same 124M-parameter model and the same 1,000 questions, under
bench/harness.py's rules. Each side is a whole command, timed with its peak resident memory
(GNU time); both must give the same acc and acc_norm (within one question of 1,000, for
near-ties that batching can flip) before a ratio is printed.

    eval_124m.py <binarylm> <work dir> <lm_eval python> <threads>
"""

import glob
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TASK_YAML = """task: binarylm_questions
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def timed(argv, cwd, env):
    """Runs argv under GNU time: (wall seconds, peak RSS in MB of it and its children)."""
    out = subprocess.run(["/usr/bin/time", "-v", *argv], cwd=cwd, env=env, capture_output=True,
                         text=True)
    if out.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:3])} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", out.stderr)
    h, m, s = (float(x or 0) for x in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return h * 3600 + m * 60 + s, rss / 1024, out


def main(binarylm, work, python, threads):
    env = dict(os.environ, OMP_NUM_THREADS=threads, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_HOME=os.path.join(work, "hf_home"), TOKENIZERS_PARALLELISM="false")
    show = lambda stage: json.loads(subprocess.run(  # noqa: E731
        [binarylm, "show", stage, "--json"], cwd=work, check=True, capture_output=True,
        text=True).stdout)
    hf_dir = show("hf")["path"]
    params = show("big")["metrics"]["params"]
    tasks = os.path.join(work, "lm_eval_tasks")
    os.makedirs(tasks, exist_ok=True)
    with open(os.path.join(tasks, "binarylm_questions.yaml"), "w") as f:
        f.write(TASK_YAML.format(path=os.path.join(work, "questions.jsonl")))

    def ours():
        seconds, rss, _ = timed([binarylm, "run", "--force", "scores", "--threads", threads,
                                 "-q"], work, env)
        m = show("scores")["metrics"]
        return {"seconds": seconds, "rss_mb": rss,
                "output": (m["big/questions/acc"], m["big/questions/acc_norm"])}

    def peer():
        out_dir = os.path.join(work, "lm_eval_out")
        seconds, rss, _ = timed([python, "-m", "lm_eval", "--model", "hf", "--model_args",
                                 f"pretrained={hf_dir},dtype=float32", "--tasks",
                                 "binarylm_questions", "--include_path", tasks, "--device", "cpu",
                                 "--batch_size", "16", "--output_path", out_dir], work, env)
        newest = max(glob.glob(f"{out_dir}/**/results_*.json", recursive=True), key=os.path.getmtime)
        r = json.load(open(newest))["results"]["binarylm_questions"]
        return {"seconds": seconds, "rss_mb": rss, "output": (r["acc,none"], r["acc_norm,none"])}

    load = harness.require_quiet("the eval benchmark")
    results = harness.run_rounds([("binarylm eval stage", ours),
                                  ("lm-evaluation-harness hf", peer)], harness.rounds_wanted())
    harness.check_agree(results, "acc and acc_norm",
                        close=lambda a, b: all(abs(x - y) <= 0.001 + 1e-9 for x, y in zip(a, b)))
    acc = results["binarylm eval stage"][0]["output"]
    n = sum(1 for _ in open(os.path.join(work, "questions.jsonl")))
    print(harness.table(
        f"Scoring {n} four-choice questions with a {params / 1e6:.1f}M-parameter model on "
        f"{threads} threads, whole commands (acc {acc[0]:.3f}, acc_norm {acc[1]:.3f} on both sides)",
        results, "binarylm eval stage"))
    print()
    print(harness.table("Peak resident memory (MB)", results, "binarylm eval stage", unit="MB",
                        key="rss_mb"))
    print()
    print(harness.footer(load))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
