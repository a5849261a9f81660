#!/usr/bin/env python3
"""Writes a synthetic web-like corpus as JSON Lines for bench/data_clean.sh.

    python3 bench/gen_corpus.py OUT_DIR MEGABYTES [FILES]

Documents are English-like prose built from common words (so a language filter keeps them),
with planted problems in fixed proportions: exact copies, near copies (one word changed),
HTML pages (tags, entities, scripts), boilerplate (bullet lists, repeated lines, symbol soup)
and German prose. Deterministic (fixed seed). Prints what it planted as JSON on stdout, and
writes OUT_DIR/labels.tsv: one line per document in generation order (document i is line
i // FILES of part-{i % FILES}), its kind and its family, the index of the clean document an
exact or near copy was made from (a document's own index otherwise), so a benchmark can tell
what each cleaner removed. The labels draw nothing from the generator: the corpus is the same
with or without them.
"""
import json
import os
import random
import sys

WORDS = """the of and to in is was that for it with as on be at by this had not are but from or
have an they which one you were her all she there would their we him been has when who will more
no if out so said what up its about into than them can only other new some could time these two
may then do first any my now such like our over man me even most made after also did many before
must through back years where much your way well down should because each just those people how
too little state good very make world still own see men work long get here between both life
being under never day same another know while last might us great old year off come since against
go came right used take three house river market garden morning evening winter summer bread
water city small country children family road school village harbor field window letter story
night light hand together place found every again always around called number part read show
think without something began left kept night boat bridge storm table kitchen doctor teacher
farmer miller baker mother father brother sister friend neighbour book paper money music"""
WORDS = WORDS.split()
GERMAN = """der die das und ist nicht mit auf dem den ein eine sich von zu des im sie es wir ihr
haben werden wurde noch nach bei aus wenn auch oder aber dass sehr schon heute immer wieder
Haus Garten Stadt Wasser Brot Kinder Familie Strasse Schule Dorf Hafen Feld Fenster Brief""".split()


def sentence(rng, words):
    n = rng.randint(8, 22)
    s = " ".join(rng.choice(words) for _ in range(n))
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "!", "?"])


def prose(rng, words=WORDS):
    paragraphs = []
    for _ in range(rng.randint(2, 6)):
        paragraphs.append(" ".join(sentence(rng, words) for _ in range(rng.randint(3, 7))))
    return "\n\n".join(paragraphs)


def html(rng, text):
    body = "".join(f"<p>{p.replace(' and ', ' &amp; ', 1)}</p>\n" for p in text.split("\n\n"))
    return (
        "<!DOCTYPE html><html><head><title>Page</title><style>p { margin: 0 }</style></head>"
        f"<body><div class=\"main\">\n{body}</div><script>var n = {rng.randint(0, 999)};</script>"
        "</body></html>"
    )


def noise(rng):
    kind = rng.randrange(3)
    if kind == 0:
        return "\n".join("- " + " ".join(rng.choice(WORDS) for _ in range(5)) for _ in range(20))
    if kind == 1:
        line = sentence(rng, WORDS)
        return "\n".join([line] * 15 + [sentence(rng, WORDS) for _ in range(3)])
    return " ".join("#" + rng.choice(WORDS) for _ in range(120))


def main():
    out, megabytes = sys.argv[1], float(sys.argv[2])
    files = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    rng = random.Random(20261129)
    os.makedirs(out, exist_ok=True)
    target = int(megabytes * 1e6)
    handles = [open(os.path.join(out, f"part-{i:02d}.jsonl"), "w", encoding="utf-8") for i in range(files)]
    counts = {"prose": 0, "exact_copy": 0, "near_copy": 0, "html": 0, "noise": 0, "german": 0}
    written = 0
    recent = []  # (text, index) of recent clean documents
    labels = open(os.path.join(out, "labels.tsv"), "w", encoding="utf-8")
    i = 0
    while written < target:
        roll = rng.random()
        family = i
        if roll < 0.08 and recent:
            (text, family), kind = rng.choice(recent), "exact_copy"
        elif roll < 0.16 and recent:
            source, family = rng.choice(recent)
            words = source.split(" ")
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            text, kind = " ".join(words), "near_copy"
        elif roll < 0.31:
            text, kind = html(rng, prose(rng)), "html"
        elif roll < 0.36:
            text, kind = noise(rng), "noise"
        elif roll < 0.39:
            text, kind = prose(rng, GERMAN), "german"
        else:
            text, kind = prose(rng), "prose"
            recent.append((text, i))
            if len(recent) > 1000:
                recent.pop(0)
        counts[kind] += 1
        line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
        handles[i % files].write(line)
        labels.write(f"{kind}\t{family}\n")
        written += len(line.encode("utf-8"))
        i += 1
    for h in handles:
        h.close()
    labels.close()
    print(json.dumps({"documents": i, "bytes": written, "planted": counts}))


if __name__ == "__main__":
    main()
