# Entropy of the unigram distribution in bits per word, from `uniq -c` output ("count word").
# It is the loss of a model that ignores context: the baseline a language model must beat.
{ n += $1; c[NR] = $1 }
END {
  for (i in c) { p = c[i] / n; h -= p * log(p) / log(2) }
  printf "{\"unigram_bits_per_word\": %.4f, \"words\": %d, \"vocab\": %d}\n", h, n, NR
}
