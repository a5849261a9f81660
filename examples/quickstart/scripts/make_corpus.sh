#!/bin/sh
# Generates a small deterministic corpus of one-line stories from a seed: who holds what,
# and where it goes next. Same seed, same corpus, byte for byte.
seed="${1:-1337}"
awk -v seed="$seed" 'BEGIN {
  split("Ada Ben Cleo Dev Eve Finn Gus Hana", who, " ")
  split("key lamp book coin map apple rope bell", what, " ")
  split("garden kitchen attic harbor library market", where, " ")
  srand(seed)
  for (i = 0; i < 2000; i++) {
    a = who[int(rand() * 8) + 1]; b = who[int(rand() * 8) + 1]
    t = what[int(rand() * 8) + 1]; p = where[int(rand() * 6) + 1]
    if (a == b) continue
    printf "%s found a %s in the %s. %s gave the %s to %s. Now %s has the %s.\n", a, t, p, a, t, b, b, t
  }
}'
